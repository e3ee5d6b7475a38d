"""2-D max and average pooling on kernels where Chainer has no fast path.

:func:`max_pooling_2d` and :func:`average_pooling_2d` are Chainer's
functions of the same names and arguments; on a float32 or float64 CuPy
array without cuDNN they take :mod:`mixnorm.cuda.pool` (one launch each
way, the same window rule and arithmetic), elsewhere Chainer's code.
"""
import chainer
from chainer import function_node
import chainer.functions as F

from mixnorm import cuda


def _pair(v):
    return tuple(v) if hasattr(v, '__getitem__') else (v, v)


def uses_kernels(x):
    """Whether pooling array ``x`` takes the kernels: a 4-D float32 or
    float64 CuPy array, kernels on (:data:`mixnorm.cuda.pool_kernels`,
    ``MIXNORM_POOL``) and no cuDNN to do it."""
    return x.ndim == 4 and cuda.replaces_chainer(cuda.pool_kernels, x)


class Pooling2D(function_node.FunctionNode):
    """Max (``kind='max'``) or average pooling of x on the kernels."""

    def __init__(self, kind, ksize, stride, pad, cover_all):
        self.kind, self.cover_all = kind, cover_all
        self.ksize, self.stride, self.pad = ksize, stride, pad
        self._argmax = self._x_shape = None

    def forward(self, inputs):
        x, = inputs
        self._x_shape = x.shape
        y, self._argmax = cuda.pool.forward(
            x, self.ksize, self.stride, self.pad, self.cover_all, self.kind)
        return y,

    def backward(self, indexes, grad_outputs):
        return Pooling2DGrad(self).apply(grad_outputs)


class Pooling2DGrad(function_node.FunctionNode):
    """gx of a :class:`Pooling2D` from gy; double backprop raises."""

    def __init__(self, forward_node):
        self._forward = forward_node

    def forward(self, inputs):
        node = self._forward
        return cuda.pool.backward(node._x_shape, inputs[0], node._argmax,
                                  node.ksize, node.stride, node.pad,
                                  node.cover_all),

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'pooling on the mixnorm kernels: the gradient of its gradient '
            '(double backprop) is not implemented; set '
            'mixnorm.cuda.pool_kernels = False (or MIXNORM_POOL=chainer) for '
            'Chainer\'s own pooling')


def _pool(kind, x, ksize, stride, pad, cover_all):
    """Pooling of ``kind`` on the kernels, Chainer's arguments."""
    ksize = _pair(ksize)
    stride = ksize if stride is None else _pair(stride)
    return Pooling2D(kind, ksize, stride, _pair(pad), cover_all).apply(
        (x,))[0]


def max_pooling_2d(x, ksize, stride=None, pad=0, cover_all=True):
    """:func:`chainer.functions.max_pooling_2d` (without
    ``return_indices``), on the kernels where they apply."""
    if not uses_kernels(chainer.as_array(x)):
        return F.max_pooling_2d(x, ksize, stride, pad, cover_all)
    return _pool('max', x, ksize, stride, pad, cover_all)


def average_pooling_2d(x, ksize, stride=None, pad=0):
    """:func:`chainer.functions.average_pooling_2d`, on the kernels where
    they apply (the padding counts as zeros, as in Chainer)."""
    if not uses_kernels(chainer.as_array(x)):
        return F.average_pooling_2d(x, ksize, stride, pad)
    return _pool('average', x, ksize, stride, pad, False)
