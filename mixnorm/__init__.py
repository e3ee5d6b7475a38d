"""Mixture Normalization (Kalayeh & Shah, TPAMI 2019) for Chainer.

Importing this package first makes Chainer 7.8.1 importable on current
Python/NumPy/setuptools (see :mod:`mixnorm._compat`).
"""
from mixnorm import _compat

_compat.patch()

from mixnorm import gmm  # NOQA: E402
from mixnorm.gmm import GMM  # NOQA: E402
from mixnorm.functions import mixture_normalization  # NOQA: E402
from mixnorm.links import MixtureNormalization  # NOQA: E402
from mixnorm.replace import batch_normalizations, replace_bn  # NOQA: E402

__version__ = '0.1.0'
__all__ = ['GMM', 'gmm', 'mixture_normalization', 'MixtureNormalization',
           'replace_bn', 'batch_normalizations']
