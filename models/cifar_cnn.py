"""The CIFAR CNN of Table 1 (Kalayeh & Shah, Section 4.2).

==========  ==============  =============  =======  ============
layer       type            output         kernel   (stride,pad)
==========  ==============  =============  =======  ============
conv1       conv+bn+relu    64 x 32 x 32   5 x 5    (1, 2)
pool1       max pool        64 x 16 x 16   3 x 3    (2, 0)
conv2       conv+bn+relu    128 x 16 x 16  5 x 5    (1, 2)
pool2       max pool        128 x 8 x 8    3 x 3    (2, 0)
conv3       conv+bn+relu    128 x 8 x 8    5 x 5    (1, 2)
pool3       max pool        128 x 4 x 4    3 x 3    (2, 0)
conv4       conv+bn+relu    256 x 4 x 4    3 x 3    (1, 1)
pool4       avg pool        256 x 1 x 1    4 x 4    (1, 0)
linear      linear          10 or 100
==========  ==============  =============  =======  ============

Chainer's max pooling covers the whole input by default (``cover_all``),
which is what turns 32 into 16 with a 3x3 window, stride 2 and no padding.
"""
import chainer
import chainer.functions as F
import chainer.links as L

import mixnorm

from models import register
from models.layers import ConvBN


@register('cifar_cnn')
class CifarCNN(chainer.Chain):

    """Five-layer CIFAR CNN of Table 1.

    Args:
        n_classes (int): Number of output classes (10 or 100 for CIFAR).
        in_channels (int): Channels of the input images.

    """

    layer_names = ('conv1', 'conv2', 'conv3', 'conv4')

    def __init__(self, n_classes, in_channels=3):
        super(CifarCNN, self).__init__()
        with self.init_scope():
            self.conv1 = ConvBN(in_channels, 64, 5, pad=2)
            self.conv2 = ConvBN(64, 128, 5, pad=2)
            self.conv3 = ConvBN(128, 128, 5, pad=2)
            self.conv4 = ConvBN(128, 256, 3, pad=1)
            self.linear = L.Linear(256, n_classes)

    def norm_paths(self, layers):
        """Maps layer names of Table 1 to the paths of their BN links.

        Args:
            layers (list of str): Names among ``conv1`` ... ``conv4``.

        Returns:
            list of str: Paths such as ``'conv3/bn'``.

        Raises:
            ValueError: A name is not a normalized layer of this model.

        """
        for name in layers:
            if name not in self.layer_names:
                raise ValueError('CifarCNN has no layer {!r} (normalized '
                                 'layers: {})'.format(
                                     name, ', '.join(self.layer_names)))
        return ['{}/bn'.format(name) for name in layers]

    def features(self, x):
        """The pooled features that the classifier reads: ``(N, 256)``
        (pool4; the proxy FID of :mod:`train.fid` uses them)."""
        pool = mixnorm.max_pooling_2d
        h = pool(self.conv1(x), 3, stride=2)  # pool1: 16x16
        h = pool(self.conv2(h), 3, stride=2)  # pool2: 8x8
        h = pool(self.conv3(h), 3, stride=2)  # pool3: 4x4
        h = mixnorm.average_pooling_2d(self.conv4(h), 4, stride=1)  # 1x1
        return F.reshape(h, (len(x), -1))

    def forward(self, x):
        return self.linear(self.features(x))
