"""The data of the experiments.

* :mod:`train.data.imagefolder`: an image folder or .zip
  (``train/<class>/*.png|jpg``, ``test/<class>/...``), decoded once into
  uint8 arrays and cached (:class:`DataError` when it cannot be read).
* :mod:`train.data.datasets`: :data:`DATASETS` (CIFAR-10, CIFAR-100),
  :func:`load_dataset` through :mod:`chainer.datasets` or an image folder,
  fixed random subsets.
* :mod:`train.data.batches`: :class:`Preprocess` (classifier batches,
  normalized and augmented on the device) and :class:`DeviceImages` (GAN
  batches gathered on the device).

It imports only :mod:`train.output` from :mod:`train`.
"""
from train.data.batches import DeviceImages  # NOQA
from train.data.batches import Preprocess  # NOQA
from train.data.datasets import check_available  # NOQA
from train.data.datasets import cifar_cached  # NOQA
from train.data.datasets import data_path  # NOQA
from train.data.datasets import Dataset  # NOQA
from train.data.datasets import DATASETS  # NOQA
from train.data.datasets import load_cifar  # NOQA
from train.data.datasets import load_dataset  # NOQA
from train.data.datasets import subset  # NOQA
from train.data.imagefolder import cache_dir  # NOQA
from train.data.imagefolder import channel_stats  # NOQA
from train.data.imagefolder import DataError  # NOQA
from train.data.imagefolder import list_classes  # NOQA
from train.data.imagefolder import load_image_folder  # NOQA
