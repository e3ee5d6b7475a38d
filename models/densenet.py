"""Basic DenseNet for CIFAR (Huang et al., CVPR 2017; Kalayeh & Shah Sec. 4.4).

No bottleneck and no compression: a 3x3 convolution with 16 output channels,
three dense blocks of ``(depth - 4) / 3`` layers each, every layer a
BN-ReLU-conv(3x3, ``growth_rate`` channels) composite whose output is
concatenated to its input, two transition layers (BN-ReLU-1x1 conv keeping
the channel count-2x2 average pooling) between the blocks, and a final
BN-ReLU-global average pooling-linear classifier.  Convolutions have no
bias; their weights are drawn from He's normal with fan-out, as in the
DenseNet reference code.  Dropout (after every convolution except the first,
DenseNet paper Sec. 4.2) is used there only without data augmentation, so it
defaults to 0.

Channels seen by the last BN are ``16 + 3 * n * growth_rate``: 448 for
depth 40 and 1168 for depth 100 (Sec. 4.4), and 196 for the n = 5 network
of Table 7 (depth 19 in the ``3n + 4`` formula; Sec. 5.1 calls it 20).

Naming (Sec. 4.4 replaces the BN of both transitions and the last one):
the transitions are the links ``trans1`` and ``trans2`` and the final
BN-ReLU-pooling is ``final``; each has a child ``bn``, so
``norm_paths(['trans1', 'trans2', 'final'])`` gives
``['trans1/bn', 'trans2/bn', 'final/bn']``.  The dense blocks are
``block1..block3``; the BN of layer ``j`` (0-based) of block ``b`` is
addressed ``block<b>/<j>`` (link ``block<b>/<j>/bn``).

Parameter counts (``n_classes=10``/``100``; BN scale and shift included):

===========  ============  ============
depth        10 classes    100 classes
===========  ============  ============
19 (n = 5)      192,490       210,220
40            1,019,722     1,060,132
100           6,979,642     7,084,852
===========  ============  ============

The DenseNet paper reports 1.0M (depth 40) and 7.0M (depth 100).
"""
import chainer
import chainer.functions as F
import chainer.initializers as I
import chainer.links as L

import mixnorm
from mixnorm import BatchNormalization, Convolution2D

from models import register
from models.layers import norm_relu


def _conv(in_channels, out_channels, ksize, pad):
    return Convolution2D(in_channels, out_channels, ksize, pad=pad,
                           nobias=True,
                           initialW=I.HeNormal(fan_option='fan_out'))


class DenseLayer(chainer.Chain):
    """BN-ReLU-conv(3x3) composite; returns ``concat(x, new features)``.

    Args:
        in_channels (int): Input channels.
        growth_rate (int): Channels added by the layer.
        dropout (float): Dropout ratio after the convolution.
    """

    def __init__(self, in_channels, growth_rate, dropout=0.0):
        super(DenseLayer, self).__init__()
        self.dropout = dropout
        with self.init_scope():
            self.bn = BatchNormalization(in_channels)
            self.conv = _conv(in_channels, growth_rate, 3, 1)

    def forward(self, x):
        h = self.conv(norm_relu(self.bn, x))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout)
        return F.concat((x, h), axis=1)


class DenseBlock(chainer.ChainList):
    """``n_layers`` densely connected :class:`DenseLayer` s.

    Args:
        in_channels (int): Input channels.
        n_layers (int): Number of layers.
        growth_rate (int): Channels added by each layer.
        dropout (float): Dropout ratio.
    """

    def __init__(self, in_channels, n_layers, growth_rate, dropout=0.0):
        super(DenseBlock, self).__init__()
        for i in range(n_layers):
            self.add_link(DenseLayer(in_channels + i * growth_rate,
                                     growth_rate, dropout))
        self.out_channels = in_channels + n_layers * growth_rate

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x


class Transition(chainer.Chain):
    """BN-ReLU-conv(1x1)-2x2 average pooling, no compression.

    Args:
        channels (int): Input and output channels.
        dropout (float): Dropout ratio after the convolution.
    """

    def __init__(self, channels, dropout=0.0):
        super(Transition, self).__init__()
        self.dropout = dropout
        with self.init_scope():
            self.bn = BatchNormalization(channels)
            self.conv = _conv(channels, channels, 1, 0)

    def forward(self, x):
        h = self.conv(norm_relu(self.bn, x))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout)
        return mixnorm.average_pooling_2d(h, 2)


class Final(chainer.Chain):
    """BN-ReLU-global average pooling after the last dense block.

    Args:
        channels (int): Input channels.
    """

    def __init__(self, channels):
        super(Final, self).__init__()
        with self.init_scope():
            self.bn = BatchNormalization(channels)

    def forward(self, x):
        return F.average(norm_relu(self.bn, x), axis=(2, 3))


@register('densenet')
class DenseNet(chainer.Chain):
    """Basic DenseNet (3 blocks, no bottleneck, no compression).

    Args:
        n_classes (int): Number of classes.
        depth (int): ``3n + 4`` for ``n`` layers per block (40, 100; 19 for
            Table 7's 196-channel network).
        growth_rate (int): Growth rate ``k``.
        init_channels (int): Output channels of the first convolution.
        dropout (float): Dropout ratio (DenseNet uses 0.2 only without data
            augmentation).
    """

    layer_names = ('trans1', 'trans2', 'final')

    def __init__(self, n_classes=100, depth=40, growth_rate=12,
                 init_channels=16, dropout=0.0):
        super(DenseNet, self).__init__()
        if depth < 7 or (depth - 4) % 3:
            raise ValueError('DenseNet depth must be 3n + 4 with n >= 1, '
                             'got %r' % (depth,))
        self.depth = depth
        self.n_layers = (depth - 4) // 3
        ch = init_channels
        with self.init_scope():
            self.conv0 = _conv(3, init_channels, 3, 1)
            self.block1 = DenseBlock(ch, self.n_layers, growth_rate, dropout)
            ch = self.block1.out_channels
            self.trans1 = Transition(ch, dropout)
            self.block2 = DenseBlock(ch, self.n_layers, growth_rate, dropout)
            ch = self.block2.out_channels
            self.trans2 = Transition(ch, dropout)
            self.block3 = DenseBlock(ch, self.n_layers, growth_rate, dropout)
            ch = self.block3.out_channels
            self.final = Final(ch)
            self.fc = L.Linear(ch, n_classes)
        self.final_channels = ch

    def bn_addresses(self):
        """All BN addresses in network order (``block<b>/<j>``, transitions,
        ``final``)."""
        out = []
        for b in (1, 2, 3):
            out.extend('block%d/%d' % (b, j) for j in range(self.n_layers))
            if b < 3:
                out.append('trans%d' % b)
        out.append('final')
        return out

    def norm_paths(self, layers):
        """BN link paths for layer names / BN addresses.

        Args:
            layers (str or list of str): ``'trans1'``, ``'trans2'``,
                ``'final'`` or a dense-layer address ``'block<b>/<j>'``.

        Returns:
            list of str: Link paths such as ``'trans1/bn'``, no duplicates.

        Raises:
            ValueError: An entry names no BN of this network.
        """
        if isinstance(layers, str):
            layers = [layers]
        valid = self.bn_addresses()
        paths = []
        for entry in layers:
            if entry not in valid:
                raise ValueError(
                    'unknown DenseNet layer %r; valid layers: %s (or '
                    'block<b>/<j> with b in 1..3, j < %d)'
                    % (entry, ', '.join(self.layer_names),
                       self.n_layers))
            path = entry + '/bn'
            if path not in paths:
                paths.append(path)
        return paths

    def forward(self, x):
        h = self.conv0(x)
        h = self.trans1(self.block1(h))
        h = self.trans2(self.block2(h))
        h = self.final(self.block3(h))
        return self.fc(h)
