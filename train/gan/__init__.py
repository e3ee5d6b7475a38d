"""DCGAN training with mixture normalization in the generator (Sec. 4.5).

* :mod:`train.gan.runner`: :func:`run`, one GAN configuration through the
  trainer skeleton; :func:`fid_settings`, :func:`settings`.
* :mod:`train.gan.updater`: :class:`GANUpdater`, the training step.
* :mod:`train.gan.evaluation`: :class:`FIDEvaluation`, the FID during
  training and the sample grids.

The schema is :mod:`train.config.gan`'s; Figures 6 and 7 are
:mod:`train.figures.dcgan`'s.
"""
from train.gan.evaluation import FIDEvaluation  # NOQA
from train.gan.evaluation import GRID  # NOQA
from train.gan.evaluation import tile  # NOQA
from train.gan.runner import fid_settings  # NOQA
from train.gan.runner import RESUME_KEYS  # NOQA
from train.gan.runner import run  # NOQA
from train.gan.runner import settings  # NOQA
from train.gan.updater import GANUpdater  # NOQA
