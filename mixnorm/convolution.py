"""2-D convolution and its transpose as single GEMMs where Chainer has no
fast path.

Without cuDNN or iDeep, Chainer convolves through ``im2col`` into a (N, C,
KH, KW, OH, OW) array and ``tensordot``, which transposes that array (the
size of the input times KH KW) before its GEMM, and gives a non-contiguous
output; its backward builds the array again and transposes it again.
:class:`Convolution2D` is Chainer's link, with its parameters and
arithmetic, that writes the column matrix once in the layout of the GEMM,
so that y, gW and gx are one GEMM each: on a GPU without cuDNN through the
kernels of :mod:`mixnorm.cuda.conv`, on NumPy through
:mod:`mixnorm.cpu.conv`, one GEMM per chunk of samples (the formulas are in
those modules, which have the same functions).  :func:`implementation` chooses between them and Chainer
in one place: cuDNN, iDeep, dilation, groups, channel-last layouts and
dtypes other than the parameters' stay with Chainer, and so does every
call when :data:`mixnorm.cuda.conv_kernels` is False
(``MIXNORM_CONV=chainer``): that one switch gives Chainer's convolution on
both backends, for comparison.  :class:`Deconvolution2D` does the same for
:class:`chainer.links.Deconvolution2D` (the DCGAN generator's layers).
"""
import numpy

import chainer
from chainer.backends import intel64
from chainer import function_node
import chainer.links as L

from mixnorm import cpu
from mixnorm import cuda


def _backend(x):
    """The module that convolves array ``x`` (:mod:`mixnorm.cuda.conv` or
    :mod:`mixnorm.cpu.conv`), or None for Chainer's code."""
    if cuda.replaces_chainer(cuda.conv_kernels, x):
        return cuda.conv
    if (cuda.conv_kernels and isinstance(x, numpy.ndarray)
            and x.dtype in (numpy.float32, numpy.float64)
            and not intel64.should_use_ideep('>=auto')):
        return cpu.conv
    return None


def implementation(link, x):
    """The module that convolves array ``x`` for ``link`` (a
    :class:`Convolution2D` or :class:`Deconvolution2D`):
    :mod:`mixnorm.cuda.conv` for a CuPy array without cuDNN,
    :mod:`mixnorm.cpu.conv` for a NumPy array, when the switch is on
    (:data:`mixnorm.cuda.conv_kernels`, ``MIXNORM_CONV``), the input is
    float32 or float64 of the parameters' dtype and the link has no
    dilation, no groups, the default layout and output size; otherwise
    None: Chainer's own convolution."""
    if x.ndim != 4:
        return None
    backend = _backend(x)
    W = link.W.array
    transposed = isinstance(link, L.Deconvolution2D)
    if backend is None or W is None or W.dtype != x.dtype or W.shape[
            0 if transposed else 1] != x.shape[1]:
        return None
    size = backend.deconv_size if transposed else backend.out_size
    out = tuple(size(x.shape[2 + i], W.shape[2 + i], link.stride[i],
                     link.pad[i]) for i in (0, 1))
    fits = (backend is not cuda.conv
            or W.shape[1] * W.shape[2] * W.shape[3] <= cuda.conv.MAX_TAPS)
    usable = ((link.b is None or link.b.dtype == x.dtype)
              and link.groups == 1 and tuple(link.dilate) == (1, 1)
              and getattr(link, 'x_layout', None) is None
              and getattr(link, 'outsize', (None, None)) in (
                  (None, None), out)
              and fits and min(out) > 0)
    return backend if usable else None


class Convolution2DFunction(function_node.FunctionNode):
    """y = conv(x, W) (+ b), or its transpose, from (x, W) or (x, W, b), by
    ``backend``: :mod:`mixnorm.cuda.conv` or :mod:`mixnorm.cpu.conv` (as
    :func:`implementation` chooses)."""

    def __init__(self, stride, pad, transposed, backend):
        self.stride, self.pad = tuple(stride), tuple(pad)
        self.transposed, self.backend = transposed, backend

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, W = inputs[:2]
        b = inputs[2] if len(inputs) == 3 else None
        run = self.backend.deconv_forward if self.transposed else \
            self.backend.forward
        return run(x, W, b, self.stride, self.pad),

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        return Convolution2DGrad(self, indexes).apply(
            (x, W, grad_outputs[0]))


class Convolution2DGrad(function_node.FunctionNode):
    """The gradients of :class:`Convolution2DFunction` named by ``indexes``
    (0: x, 1: W, 2: b), from (x, W, gy); double backprop raises."""

    def __init__(self, forward_node, indexes):
        self._forward, self.indexes = forward_node, tuple(indexes)

    def forward(self, inputs):
        x, W, gy = inputs
        node = self._forward
        run = node.backend.deconv_backward if node.transposed else \
            node.backend.backward
        grads = run(x, W, gy, node.stride, node.pad,
                    need_x=0 in self.indexes, need_w=1 in self.indexes)
        return tuple(grads[i] for i in self.indexes)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'mixnorm\'s convolution: the gradient of its '
            'gradient (double backprop) is not implemented; set '
            'mixnorm.cuda.conv_kernels = False (or MIXNORM_CONV=chainer) '
            'for Chainer\'s own convolution')


def _forward(link, x, chainer_forward):
    """The link's output by :func:`implementation`'s choice, or by
    ``chainer_forward``."""
    x_array = chainer.as_array(x)
    if link.W.array is None:
        link._initialize_params(x_array.shape[1])
    backend = implementation(link, x_array)
    if backend is None:
        return chainer_forward(x)
    inputs = (x, link.W) if link.b is None else (x, link.W, link.b)
    y, = Convolution2DFunction(
        link.stride, link.pad, isinstance(link, L.Deconvolution2D),
        backend).apply(inputs)
    return y


class Convolution2D(L.Convolution2D):

    """:class:`chainer.links.Convolution2D` as GEMMs
    (:mod:`mixnorm.cuda.conv`, :mod:`mixnorm.cpu.conv`) where they apply
    (:func:`implementation`); the same arguments, parameters and npz
    files."""

    def forward(self, x):
        return _forward(self, x, super(Convolution2D, self).forward)


class Deconvolution2D(L.Deconvolution2D):

    """:class:`chainer.links.Deconvolution2D` as GEMMs
    (:mod:`mixnorm.cuda.conv`, :mod:`mixnorm.cpu.conv`) where they apply
    (:func:`implementation`); the same arguments, parameters and npz
    files."""

    def forward(self, x):
        return _forward(self, x, super(Deconvolution2D, self).forward)
