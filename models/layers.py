"""Building blocks shared by the models."""
import chainer
import chainer.functions as F

from mixnorm import BatchNormalization, Convolution2D


def norm_relu(norm, x):
    """ReLU(norm(x)), or norm(x) where the normalization applies the ReLU
    itself (mixture normalization with Eq. 40's ``activation='relu'``)."""
    h = norm(x)
    return h if getattr(norm, 'fuses_relu', False) else F.relu(h)


class ConvBN(chainer.Chain):

    """Convolution without bias, batch normalization, ReLU.

    The normalization link is the child ``bn``, so that
    :func:`mixnorm.replace_bn` can swap it for mixture normalization by the
    path ``'<unit>/bn'``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        ksize (int or tuple): Kernel size ``(kh, kw)``.
        stride (int): Stride.
        pad (int or tuple): Zero padding ``(ph, pw)``.

    """

    def __init__(self, in_channels, out_channels, ksize, stride=1, pad=0):
        super(ConvBN, self).__init__()
        self.out_channels = out_channels
        with self.init_scope():
            # The normalization's shift makes a convolution bias redundant.
            self.conv = Convolution2D(in_channels, out_channels, ksize,
                                        stride=stride, pad=pad, nobias=True)
            self.bn = BatchNormalization(out_channels)

    def forward(self, x):
        return norm_relu(self.bn, self.conv(x))
