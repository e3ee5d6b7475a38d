"""CUDA kernels: the GPU path of the GMM engine and of the MN transform.

One module per concern, each next to its ``.cu`` source:

* :mod:`~mixnorm.cuda._compile`: the compile cache and launch geometry;
* :mod:`~mixnorm.cuda.random`: the device-side random generator;
* :mod:`~mixnorm.cuda.gmm`: the GMM primitives of :func:`mixnorm.gmm.fit`
  (``gmm.cu``, ``kmeanspp.cu``);
* :mod:`~mixnorm.cuda.mn`: the mixture normalizing transform (``mn.cu``);
* :mod:`~mixnorm.cuda.layout`: activations to the fit's rows (``layout.cu``);
* :mod:`~mixnorm.cuda.bn`: batch normalization (``bn.cu``);
* :mod:`~mixnorm.cuda.conv`: convolution as GEMMs (``conv.cu``);
* :mod:`~mixnorm.cuda.pool`: max and average pooling (``pool.cu``);
* :mod:`~mixnorm.cuda.finite`: the NaN/Inf flag (``finite.cu``).

CuPy is imported only if it is installed; :func:`supports` tells whether
an array takes this path.  It is on by default; the environment variable
``MIXNORM_KERNELS=0``, or ``mixnorm.cuda.enabled = False``, turns it off,
and CuPy arrays then run the array-generic reference code of
:mod:`mixnorm._gmm_generic` and :mod:`mixnorm.functions`, which
synchronises in a few places and is much slower.

Batch normalization, convolution and pooling have switches of their own:
:data:`bn_kernels` (``MIXNORM_BN=chainer`` in the environment) gives every
:class:`mixnorm.BatchNormalization`, :data:`conv_kernels`
(``MIXNORM_CONV=chainer``) every :class:`mixnorm.Convolution2D` and
``Deconvolution2D``, and :data:`pool_kernels` (``MIXNORM_POOL=chainer``)
:func:`mixnorm.max_pooling_2d` and ``average_pooling_2d`` Chainer's own
implementation, for comparison; ``kernels`` is the default.
"""
import os

import numpy

from mixnorm.cuda import bn  # NOQA: F401
from mixnorm.cuda import conv  # NOQA: F401
from mixnorm.cuda import pool  # NOQA: F401
from mixnorm.cuda import finite  # NOQA: F401
from mixnorm.cuda import gmm  # NOQA: F401
from mixnorm.cuda import layout  # NOQA: F401
from mixnorm.cuda import mn  # NOQA: F401
from mixnorm.cuda import random
from mixnorm.cuda._compile import cupy
from mixnorm.cuda._compile import fits_channel_grid  # NOQA: F401

#: Whether CuPy arrays take the kernel path (see the module docstring).
enabled = os.environ.get('MIXNORM_KERNELS', '1') != '0'


def _switch(variable):
    """True for ``kernels`` (the default), False for ``chainer``."""
    value = os.environ.get(variable, 'kernels')
    if value not in ('kernels', 'chainer'):
        raise ValueError('{} must be kernels or chainer, not {!r}'.format(
            variable, value))
    return value == 'kernels'


#: Whether :class:`mixnorm.BatchNormalization` may take the kernels of
#: :mod:`.bn` (the module docstring); False: Chainer's code everywhere.
bn_kernels = _switch('MIXNORM_BN')
#: The same for :class:`mixnorm.Convolution2D` and :mod:`.conv`.
conv_kernels = _switch('MIXNORM_CONV')
#: The same for :func:`mixnorm.max_pooling_2d`, ``average_pooling_2d``
#: and :mod:`.pool`.
pool_kernels = _switch('MIXNORM_POOL')


def supports(x):
    """Whether ``x`` takes the kernel path: kernels enabled and ``x`` a
    float32/float64 CuPy array."""
    return (enabled and cupy is not None and isinstance(x, cupy.ndarray)
            and x.dtype in (numpy.float32, numpy.float64))


def replaces_chainer(switch, x):
    """Whether an op whose switch (:data:`bn_kernels`, :data:`conv_kernels`
    or :data:`pool_kernels`) is ``switch`` takes the kernels for array
    ``x``: ``x`` takes the kernel path (:func:`supports`) and Chainer would
    not run cuDNN for it."""
    if not (switch and supports(x)):
        return False
    import chainer  # mixnorm has made it importable by now
    return not (chainer.backends.cuda.cudnn_enabled
                and chainer.should_use_cudnn('>=auto'))


def set_switches(values=None):
    """Set :data:`bn_kernels`, :data:`conv_kernels` and
    :data:`pool_kernels` to ``values`` (one bool for all three, or a tuple
    of three; None: leave them); returns their previous values, as a
    tuple."""
    global bn_kernels, conv_kernels, pool_kernels
    before = bn_kernels, conv_kernels, pool_kernels
    if values is None:
        return before
    if isinstance(values, bool):
        values = (values,) * 3
    bn_kernels, conv_kernels, pool_kernels = values
    return before


def available():
    """Whether CuPy is installed and sees a CUDA device."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, or a driver too old for this CuPy
        return False


def seed(value=None):
    """Seed the GPU generators on the current device: CuPy's global one
    (the generic path's) and the kernel path's (:mod:`.random`)."""
    cupy.random.seed(value)
    random.uniforms.seed(value)
