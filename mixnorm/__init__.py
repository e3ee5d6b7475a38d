"""Mixture Normalization (Kalayeh & Shah, TPAMI 2019) for Chainer.

Importing this package first makes Chainer 7.8.1 importable on current
Python/NumPy/setuptools (see :mod:`mixnorm._compat`).
"""
from mixnorm import _compat

_compat.patch()

__version__ = '0.1.0'
