"""2-D convolution as single GEMMs where Chainer has no fast path.

Without cuDNN, Chainer convolves through ``im2col`` into a (N, C, KH, KW,
OH, OW) array and ``tensordot``, which transposes that array (the size of
the input times KH KW) before its GEMM, and gives a non-contiguous
output; its backward builds the array again and transposes it again.
:class:`Convolution2D` is Chainer's link, with its parameters and
arithmetic, that on such a GPU takes :mod:`mixnorm.cuda.conv`: the column
matrix is written once in the layout of the GEMM, and y, gW and gx are one
GEMM each (the formulas are in that module).  NumPy, cuDNN, dilation,
groups, channel-last layouts and dtypes other than the parameters' stay
with Chainer.
"""
import chainer
from chainer import function_node
import chainer.links as L

from mixnorm import cuda


def uses_kernels(link, x):
    """Whether ``link`` convolves array ``x`` on the kernels: float32 or
    float64 CuPy input of the parameters' dtype, no dilation, no groups,
    the default layout, kernels on (:data:`mixnorm.cuda.conv_kernels`,
    ``MIXNORM_CONV``) and no cuDNN to do it."""
    if not (cuda.conv_kernels and cuda.supports(x)) or x.ndim != 4:
        return False
    if chainer.backends.cuda.cudnn_enabled and chainer.should_use_cudnn(
            '>=auto'):
        return False
    W = link.W.array
    return (W is not None and W.dtype == x.dtype and W.shape[1] == x.shape[1]
            and (link.b is None or link.b.dtype == x.dtype)
            and link.groups == 1 and tuple(link.dilate) == (1, 1)
            and link.x_layout is None
            and W.shape[1] * W.shape[2] * W.shape[3] <= cuda.conv.MAX_TAPS
            and min(cuda.conv.out_size(x.shape[2], W.shape[2],
                                       link.stride[0], link.pad[0]),
                    cuda.conv.out_size(x.shape[3], W.shape[3],
                                       link.stride[1], link.pad[1])) > 0)


class Convolution2DFunction(function_node.FunctionNode):
    """y = conv(x, W) (+ b) on the kernels, from (x, W) or (x, W, b)."""

    def __init__(self, stride, pad):
        self.stride, self.pad = tuple(stride), tuple(pad)

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, W = inputs[:2]
        b = inputs[2] if len(inputs) == 3 else None
        return cuda.conv.forward(x, W, b, self.stride, self.pad),

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        return Convolution2DGrad(self.stride, self.pad, indexes).apply(
            (x, W, grad_outputs[0]))


class Convolution2DGrad(function_node.FunctionNode):
    """The gradients of :class:`Convolution2DFunction` named by ``indexes``
    (0: x, 1: W, 2: b), from (x, W, gy); double backprop raises."""

    def __init__(self, stride, pad, indexes):
        self.stride, self.pad, self.indexes = stride, pad, tuple(indexes)

    def forward(self, inputs):
        x, W, gy = inputs
        grads = cuda.conv.backward(x, W, gy, self.stride, self.pad,
                                   need_x=0 in self.indexes,
                                   need_w=1 in self.indexes)
        return tuple(grads[i] for i in self.indexes)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'convolution on the mixnorm kernels: the gradient of its '
            'gradient (double backprop) is not implemented; set '
            'mixnorm.cuda.conv_kernels = False (or MIXNORM_CONV=chainer) '
            'for Chainer\'s own convolution')


class Convolution2D(L.Convolution2D):

    """:class:`chainer.links.Convolution2D` on the kernels of
    :mod:`mixnorm.cuda.conv` where they apply (:func:`uses_kernels`);
    the same arguments, parameters and npz files."""

    def forward(self, x):
        x_array = x.array if isinstance(x, chainer.Variable) else x
        if self.W.array is None:
            self._initialize_params(x_array.shape[1])
        if not uses_kernels(self, x_array):
            return super(Convolution2D, self).forward(x)
        inputs = (x, self.W) if self.b is None else (x, self.W, self.b)
        y, = Convolution2DFunction(self.stride, self.pad).apply(inputs)
        return y
