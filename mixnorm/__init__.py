"""Mixture Normalization (Kalayeh & Shah, TPAMI 2019) for Chainer.

Importing this package first makes Chainer 7.8.1 importable on current
Python/NumPy/setuptools (see :mod:`mixnorm._compat`).
"""
from mixnorm import _compat

_compat.patch()

import numpy  # NOQA: E402

from mixnorm import cuda  # NOQA: E402
from mixnorm import gmm  # NOQA: E402
from mixnorm._common import GMM  # NOQA: E402
from mixnorm.batch_normalization import BatchNormalization  # NOQA: E402
from mixnorm.convolution import Convolution2D, Deconvolution2D  # NOQA: E402
from mixnorm.functions import mixture_normalization  # NOQA: E402
from mixnorm.links import MixtureNormalization  # NOQA: E402
from mixnorm.multinode import MultiNodeMixtureNormalization  # NOQA: E402
from mixnorm.pooling import average_pooling_2d, max_pooling_2d  # NOQA: E402
from mixnorm.replace import batch_normalizations, replace_bn  # NOQA: E402

__version__ = '0.1.0'
__all__ = ['BatchNormalization', 'Convolution2D', 'Deconvolution2D', 'GMM',
           'gmm', 'mixture_normalization', 'MixtureNormalization',
           'MultiNodeMixtureNormalization', 'replace_bn',
           'batch_normalizations', 'seed', 'max_pooling_2d',
           'average_pooling_2d']


def seed(value=None):
    """Seed every generator mixture normalization draws from by default.

    The fits draw k-means++ seeds and, with ``fit_fraction < 1``, their
    subset from NumPy's global generator on the CPU, and on a GPU from the
    kernel path's device generator (:mod:`mixnorm.cuda.random`) or, with
    the kernels off, CuPy's global generator.  This seeds NumPy's and, when
    CuPy sees a GPU, both GPU generators on the current device.
    """
    numpy.random.seed(value)
    if cuda.available():
        cuda.seed(value)
