"""2-D convolution and its transpose as single GEMMs where Chainer has no
fast path.

Without cuDNN, Chainer convolves through ``im2col`` into a (N, C, KH, KW,
OH, OW) array and ``tensordot``, which transposes that array (the size of
the input times KH KW) before its GEMM, and gives a non-contiguous
output; its backward builds the array again and transposes it again.
:class:`Convolution2D` is Chainer's link, with its parameters and
arithmetic, that on such a GPU takes :mod:`mixnorm.cuda.conv`: the column
matrix is written once in the layout of the GEMM, and y, gW and gx are one
GEMM each (the formulas are in that module).  NumPy, cuDNN, dilation,
groups, channel-last layouts and dtypes other than the parameters' stay
with Chainer.  :class:`Deconvolution2D` does the same for
:class:`chainer.links.Deconvolution2D` (the DCGAN generator's layers).
"""
import chainer
from chainer import function_node
import chainer.links as L

from mixnorm import cuda


def uses_kernels(link, x):
    """Whether ``link`` (a :class:`Convolution2D` or
    :class:`Deconvolution2D`) convolves array ``x`` on the kernels: float32
    or float64 CuPy input of the parameters' dtype, no dilation, no groups,
    the default layout and output size, kernels on
    (:data:`mixnorm.cuda.conv_kernels`, ``MIXNORM_CONV``) and no cuDNN to
    do it."""
    if x.ndim != 4 or not cuda.replaces_chainer(cuda.conv_kernels, x):
        return False
    W = link.W.array
    transposed = isinstance(link, L.Deconvolution2D)
    if W is None or W.dtype != x.dtype or W.shape[
            0 if transposed else 1] != x.shape[1]:
        return False
    size = cuda.conv.deconv_size if transposed else cuda.conv.out_size
    out = tuple(size(x.shape[2 + i], W.shape[2 + i], link.stride[i],
                     link.pad[i]) for i in (0, 1))
    return ((link.b is None or link.b.dtype == x.dtype)
            and link.groups == 1 and tuple(link.dilate) == (1, 1)
            and getattr(link, 'x_layout', None) is None
            and getattr(link, 'outsize', (None, None)) in ((None, None), out)
            and W.shape[1] * W.shape[2] * W.shape[3] <= cuda.conv.MAX_TAPS
            and min(out) > 0)


class Convolution2DFunction(function_node.FunctionNode):
    """y = conv(x, W) (+ b), or its transpose, on the kernels, from (x, W)
    or (x, W, b)."""

    def __init__(self, stride, pad, transposed=False):
        self.stride, self.pad = tuple(stride), tuple(pad)
        self.transposed = transposed

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, W = inputs[:2]
        b = inputs[2] if len(inputs) == 3 else None
        run = cuda.conv.deconv_forward if self.transposed else \
            cuda.conv.forward
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
        run = cuda.conv.deconv_backward if node.transposed else \
            cuda.conv.backward
        grads = run(x, W, gy, node.stride, node.pad,
                    need_x=0 in self.indexes, need_w=1 in self.indexes)
        return tuple(grads[i] for i in self.indexes)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'convolution on the mixnorm kernels: the gradient of its '
            'gradient (double backprop) is not implemented; set '
            'mixnorm.cuda.conv_kernels = False (or MIXNORM_CONV=chainer) '
            'for Chainer\'s own convolution')


def _forward(link, x, chainer_forward):
    """The link's output on the kernels, or by ``chainer_forward``."""
    x_array = chainer.as_array(x)
    if link.W.array is None:
        link._initialize_params(x_array.shape[1])
    if not uses_kernels(link, x_array):
        return chainer_forward(x)
    inputs = (x, link.W) if link.b is None else (x, link.W, link.b)
    y, = Convolution2DFunction(
        link.stride, link.pad,
        isinstance(link, L.Deconvolution2D)).apply(inputs)
    return y


class Convolution2D(L.Convolution2D):

    """:class:`chainer.links.Convolution2D` on the kernels of
    :mod:`mixnorm.cuda.conv` where they apply (:func:`uses_kernels`);
    the same arguments, parameters and npz files."""

    def forward(self, x):
        return _forward(self, x, super(Convolution2D, self).forward)


class Deconvolution2D(L.Deconvolution2D):

    """:class:`chainer.links.Deconvolution2D` on the kernels of
    :mod:`mixnorm.cuda.conv` where they apply (:func:`uses_kernels`);
    the same arguments, parameters and npz files."""

    def forward(self, x):
        return _forward(self, x, super(Deconvolution2D, self).forward)
