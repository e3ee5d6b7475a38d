"""2-D max and average pooling on the GPU without cuDNN (``pool.cu``).

One launch each way; the max pooling keeps the window offset of each
maximum (int32, as Chainer does) for its backward pass, which gathers, per
input element, the gradients of the windows whose maximum it was.
"""
import numpy

from mixnorm.cuda import _compile
from mixnorm.cuda._compile import cupy


def out_size(size, k, s, p, cover_all):
    """Output length of a pooling (Chainer's ``get_conv_outsize``)."""
    if cover_all:
        return (size + 2 * p - k + s - 1) // s + 1
    return (size + 2 * p - k) // s + 1


def _geometry(shape, ksize, stride, pad, cover_all):
    n, c, h, w = shape
    return (n * c, h, w) + tuple(ksize) + tuple(stride) + tuple(pad) + (
        out_size(h, ksize[0], stride[0], pad[0], cover_all),
        out_size(w, ksize[1], stride[1], pad[1], cover_all))


def _kernel(name, dtype, size):
    return _compile.kernel('pool.cu', name, dtype, defines=(
        _compile.index_type(size),))


def forward(x, ksize, stride, pad, cover_all, kind, pad_value=0):
    """``(y, argmax)`` of max pooling (``kind='max'``) or ``(y, None)`` of
    average pooling of (N, C, H, W) x; ksize, stride and pad are pairs.
    Average pooling counts the padding as zeros (``pad_value`` 0 only)."""
    if pad_value != 0:
        raise ValueError('mixnorm.cuda.pool: average pooling counts the '
                         'padding (pad_value=0), not {!r}'.format(pad_value))
    x = cupy.ascontiguousarray(x)
    geo = _geometry(x.shape, ksize, stride, pad, cover_all)
    y = cupy.empty(x.shape[:2] + geo[-2:], x.dtype)
    size = max(x.size, y.size)
    if kind == 'max':
        argmax = cupy.empty(y.shape, numpy.int32)
        _compile.launch(_kernel('max_pool', x.dtype, size),
                        _compile.flat_grid(y.size),
                        (x,) + geo + (y, argmax))
        return y, argmax
    _compile.launch(_kernel('average_pool', x.dtype, size),
                    _compile.flat_grid(y.size), (x,) + geo + (y,))
    return y, None


def backward(x_shape, gy, argmax, ksize, stride, pad, cover_all,
             kind='max'):
    """gx of :func:`forward` (``argmax``: what it returned beside y)."""
    gy = cupy.ascontiguousarray(gy)
    geo = _geometry(x_shape, ksize, stride, pad, cover_all)
    gx = cupy.empty(x_shape, gy.dtype)
    size = max(gx.size, gy.size)
    if kind == 'max':
        _compile.launch(_kernel('max_pool_grad', gy.dtype, size),
                        _compile.flat_grid(gx.size),
                        (gy, argmax) + geo + (gx,))
    else:
        _compile.launch(_kernel('average_pool_grad', gy.dtype, size),
                        _compile.flat_grid(gx.size), (gy,) + geo + (gx,))
    return gx
