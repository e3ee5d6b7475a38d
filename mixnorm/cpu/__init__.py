"""NumPy code of the ops whose NumPy code in Chainer is far from what the
CPU can do: the CPU side of :mod:`mixnorm.cuda`, with the same functions.

* :mod:`~mixnorm.cpu.bn`: training-mode batch normalization in chunks;
* :mod:`~mixnorm.cpu.conv`: convolution and its transpose as one BLAS GEMM
  per direction and chunk of samples;
* :mod:`~mixnorm.cpu.mn`: the mixture normalizing transform (Eq. 34-36) in
  chunks;
* :mod:`~mixnorm.cpu.pool`: max and average pooling without an unfolded
  copy of the input.

:mod:`mixnorm.batch_normalization`, :mod:`mixnorm.functions`,
:mod:`mixnorm.convolution` and :mod:`mixnorm.pooling` choose between these,
the CUDA kernels and Chainer's code (MN: this package's array-generic
code); the switches of :mod:`mixnorm.cuda` (``MIXNORM_BN=chainer``,
``MIXNORM_CONV=chainer``, ``MIXNORM_POOL=chainer``, and
``MIXNORM_KERNELS=0`` for MN) give that code on both backends.
"""
from mixnorm.cpu import bn  # NOQA: F401
from mixnorm.cpu import conv  # NOQA: F401
from mixnorm.cpu import mn  # NOQA: F401
from mixnorm.cpu import pool  # NOQA: F401
