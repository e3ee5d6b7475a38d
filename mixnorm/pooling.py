"""2-D max and average pooling where Chainer has no fast path.

:func:`max_pooling_2d` and :func:`average_pooling_2d` are Chainer's
functions of the same names and arguments; on a float32 or float64 CuPy
array without cuDNN they take :mod:`mixnorm.cuda.pool` (one launch each
way, the same window rule and arithmetic), a float32 or float64 NumPy
array takes :mod:`mixnorm.cpu.pool` (contiguous passes per window tap
instead of an unfolded copy of the input), and everything else Chainer's
code.  :func:`implementation` chooses, in one place; with
:data:`mixnorm.cuda.pool_kernels` False (``MIXNORM_POOL=chainer``) it is
Chainer's code on both backends.
"""
import numpy

import chainer
from chainer.backends import intel64
from chainer import function_node
import chainer.functions as F

from mixnorm import cpu
from mixnorm import cuda


def _pair(v):
    return tuple(v) if hasattr(v, '__getitem__') else (v, v)


def implementation(x, kind, pad_value=0):
    """The module that pools array ``x`` (``kind``: ``'max'`` or
    ``'average'``): :mod:`mixnorm.cuda.pool` for a 4-D float32 or float64
    CuPy array without cuDNN (average pooling: only with the padding
    counted, ``pad_value=0``), :mod:`mixnorm.cpu.pool` for such a NumPy
    array (without iDeep), when the switch is on
    (:data:`mixnorm.cuda.pool_kernels`, ``MIXNORM_POOL``); otherwise None:
    Chainer's own pooling."""
    if x.ndim != 4:
        return None
    if cuda.replaces_chainer(cuda.pool_kernels, x):
        return cuda.pool if pad_value is not None else None
    if (cuda.pool_kernels and isinstance(x, numpy.ndarray)
            and x.dtype in (numpy.float32, numpy.float64)
            and not intel64.should_use_ideep('>=auto')):
        return cpu.pool
    return None


class Pooling2D(function_node.FunctionNode):
    """Max (``kind='max'``) or average pooling of x by ``backend``
    (:mod:`mixnorm.cuda.pool` or :mod:`mixnorm.cpu.pool`)."""

    def __init__(self, kind, ksize, stride, pad, cover_all, backend,
                 pad_value=0):
        self.kind, self.cover_all, self.pad_value = kind, cover_all, pad_value
        self.ksize, self.stride, self.pad = ksize, stride, pad
        self.backend = backend
        self._argmax = self._x_shape = None

    def forward(self, inputs):
        x, = inputs
        self._x_shape = x.shape
        y, self._argmax = self.backend.forward(
            x, self.ksize, self.stride, self.pad, self.cover_all, self.kind,
            self.pad_value)
        return y,

    def backward(self, indexes, grad_outputs):
        return Pooling2DGrad(self).apply(grad_outputs)


class Pooling2DGrad(function_node.FunctionNode):
    """gx of a :class:`Pooling2D` from gy; double backprop raises."""

    def __init__(self, forward_node):
        self._forward = forward_node

    def forward(self, inputs):
        node = self._forward
        return node.backend.backward(
            node._x_shape, inputs[0], node._argmax, node.ksize, node.stride,
            node.pad, node.cover_all, node.kind),

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'mixnorm\'s pooling: the gradient of its gradient '
            '(double backprop) is not implemented; set '
            'mixnorm.cuda.pool_kernels = False (or MIXNORM_POOL=chainer) for '
            'Chainer\'s own pooling')


def _pool(kind, x, ksize, stride, pad, cover_all, backend, pad_value=0):
    """Pooling of ``kind`` by ``backend``, Chainer's arguments."""
    ksize = _pair(ksize)
    stride = ksize if stride is None else _pair(stride)
    return Pooling2D(kind, ksize, stride, _pair(pad), cover_all, backend,
                     pad_value).apply((x,))[0]


def max_pooling_2d(x, ksize, stride=None, pad=0, cover_all=True):
    """:func:`chainer.functions.max_pooling_2d` (without
    ``return_indices``), by :func:`implementation`'s choice."""
    backend = implementation(chainer.as_array(x), 'max')
    if backend is None:
        return F.max_pooling_2d(x, ksize, stride, pad, cover_all)
    return _pool('max', x, ksize, stride, pad, cover_all, backend)


def average_pooling_2d(x, ksize, stride=None, pad=0, pad_value=0):
    """:func:`chainer.functions.average_pooling_2d` (the padding counts as
    zeros), or with ``pad_value=None`` Chainer's ``average_pooling_nd``
    with that argument (each window averages only its pixels of x), by
    :func:`implementation`'s choice."""
    backend = implementation(chainer.as_array(x), 'average', pad_value)
    if backend is None:
        if pad_value is None:
            return F.average_pooling_nd(x, ksize, stride, pad,
                                        pad_value=None)
        return F.average_pooling_2d(x, ksize, stride, pad)
    return _pool('average', x, ksize, stride, pad, False, backend,
                 pad_value)
