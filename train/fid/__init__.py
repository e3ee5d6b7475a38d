"""The features the FID reads, their statistics, and the Inception weights.

* :mod:`train.fid.features`: :class:`InceptionFeatures` (the standard FID)
  and :class:`ProxyFeatures` (a CIFAR CNN run's, labelled
  :data:`PROXY_LABEL`), :func:`make_features`.
* :mod:`train.fid.inception`: the FID's Inception-V3 network in Chainer.
* :mod:`train.fid.convert`: pytorch-fid's weight file into its ``.npz``.
* :mod:`train.fid.statistics`: the statistics of image sets, their files
  and the cache that runs share.
* :mod:`train.fid.cli`: ``python -m train.fid stats | convert``.

The numerics (the Fréchet distance, the 2,048-sample rule) are
:mod:`train.metrics.fid`'s.
"""
from train.fid.features import Features  # NOQA
from train.fid.features import InceptionFeatures  # NOQA
from train.fid.features import make_features  # NOQA
from train.fid.features import PROXY_LABEL  # NOQA
from train.fid.features import ProxyFeatures  # NOQA
from train.fid.statistics import activations  # NOQA
from train.fid.statistics import cached_real_statistics  # NOQA
from train.fid.statistics import load_statistics  # NOQA
from train.fid.statistics import real_statistics  # NOQA
from train.fid.statistics import save_statistics  # NOQA
