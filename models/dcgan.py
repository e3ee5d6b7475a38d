"""The CIFAR-10 DCGAN of Section 4.5 (generator and discriminator).

The paper's DCGAN points to the "37.7 reported in [46]", the DCGAN of
pfnet-research/chainer-gan-lib (``common/net.py``: ``DCGANGenerator`` and
``DCGANDiscriminator``, trained by its ``dcgan`` updater).  These networks
follow that architecture layer for layer; the code is this project's own.

Generator (z: 128 numbers from Uniform[-1, 1])::

    l0    linear 128 -> 512*4*4, bn0, ReLU, reshape to 512 x 4 x 4
    dc1   deconv 4x4 /2 (pad 1) -> 256 x 8 x 8,   bn1, ReLU
    dc2   deconv 4x4 /2 (pad 1) -> 128 x 16 x 16, bn2, ReLU
    dc3   deconv 4x4 /2 (pad 1) -> 64 x 32 x 32,  bn3, ReLU
    dc4   deconv 3x3 /1 (pad 1) -> 3 x 32 x 32,   tanh

Discriminator (leaky ReLU of slope 0.2 after every layer but the last;
batch normalization without a scale, as in the reference, after every
convolution but the first)::

    c0_0  conv 3x3 /1 -> 64 x 32 x 32
    c0_1  conv 4x4 /2 -> 128 x 16 x 16, bn0_1
    c1_0  conv 3x3 /1 -> 128 x 16 x 16, bn1_0
    c1_1  conv 4x4 /2 -> 256 x 8 x 8,   bn1_1
    c2_0  conv 3x3 /1 -> 256 x 8 x 8,   bn2_0
    c2_1  conv 4x4 /2 -> 512 x 4 x 4,   bn2_1
    c3_0  conv 3x3 /1 -> 512 x 4 x 4,   bn3_0
    l4    linear 512*4*4 -> 1 (a logit)

All weights start from Normal(0, 0.02); biases are kept, as in the
reference.  The channel counts scale with ``ch`` (512 above), which the
tests shrink.

Mixture normalization goes into the generator only: the generator's
normalized layers are named ``l0``, ``dc1``, ``dc2`` and ``dc3`` (their
links ``bn0`` ... ``bn3``), and a configuration's ``norm.layers`` picks
among them (see ``configs/dcgan/mn.yaml`` for the choice made here).
"""
import numpy

import chainer
import chainer.functions as F
import chainer.links as L

from mixnorm import BatchNormalization, Convolution2D, Deconvolution2D

from models import register
from models.layers import norm_relu


@register('dcgan')
class Generator(chainer.Chain):

    """The DCGAN generator: z -> 3 x 32 x 32 images in [-1, 1].

    Registered as ``dcgan`` so that :func:`models.build` puts mixture
    normalization into it.

    Args:
        n_classes: Unused (an unconditional generator); must be None.
        n_hidden (int): Dimensions of z.
        bottom_width (int): Side of the first feature map (4 for 32 x 32
            images).
        ch (int): Channels of the first feature map; halved by each
            deconvolution.
        wscale (float): Standard deviation of the initial weights.

    """

    layer_names = ('l0', 'dc1', 'dc2', 'dc3')

    def __init__(self, n_classes=None, n_hidden=128, bottom_width=4, ch=512,
                 wscale=0.02):
        if n_classes is not None:
            raise ValueError('the DCGAN generator is unconditional: '
                             'n_classes must be None, got {!r}'.format(
                                 n_classes))
        if ch % 8 or ch <= 0:
            raise ValueError('ch must be a positive multiple of 8, got '
                             '{!r}'.format(ch))
        super(Generator, self).__init__()
        self.n_hidden = n_hidden
        self.bottom_width = bottom_width
        self.ch = ch
        w = chainer.initializers.Normal(wscale)
        units = bottom_width * bottom_width * ch
        with self.init_scope():
            self.l0 = L.Linear(n_hidden, units, initialW=w)
            self.bn0 = BatchNormalization(units)
            self.dc1 = Deconvolution2D(ch, ch // 2, 4, 2, 1, initialW=w)
            self.bn1 = BatchNormalization(ch // 2)
            self.dc2 = Deconvolution2D(ch // 2, ch // 4, 4, 2, 1,
                                         initialW=w)
            self.bn2 = BatchNormalization(ch // 4)
            self.dc3 = Deconvolution2D(ch // 4, ch // 8, 4, 2, 1,
                                         initialW=w)
            self.bn3 = BatchNormalization(ch // 8)
            self.dc4 = Deconvolution2D(ch // 8, 3, 3, 1, 1, initialW=w)

    def norm_paths(self, layers):
        """Maps the layer names ``l0``, ``dc1``-``dc3`` to their BN links.

        Raises:
            ValueError: A name is not a normalized layer of the generator.

        """
        paths = []
        for name in layers:
            if name not in self.layer_names:
                raise ValueError('the DCGAN generator has no normalized '
                                 'layer {!r} (normalized layers: {})'.format(
                                     name, ', '.join(self.layer_names)))
            paths.append('bn{}'.format(self.layer_names.index(name)))
        return paths

    def make_hidden(self, n, xp=numpy):
        """``n`` latent vectors from Uniform[-1, 1], drawn with ``xp``'s
        global generator (CuPy's on a GPU: no transfer from the host)."""
        return xp.random.uniform(-1, 1, (n, self.n_hidden)).astype(
            numpy.float32)

    def forward(self, z):
        h = norm_relu(self.bn0, self.l0(z))
        h = F.reshape(h, (len(z), self.ch, self.bottom_width,
                          self.bottom_width))
        h = norm_relu(self.bn1, self.dc1(h))
        h = norm_relu(self.bn2, self.dc2(h))
        h = norm_relu(self.bn3, self.dc3(h))
        return F.tanh(self.dc4(h))


class Discriminator(chainer.Chain):

    """The DCGAN discriminator: images -> one logit each (real: high).

    Args:
        bottom_width (int): Side of the last feature map (4 for 32 x 32).
        ch (int): Channels of the last feature map (halved going back).
        wscale (float): Standard deviation of the initial weights.

    """

    # (name, in, out, ksize, stride, pad) in order; 'c' is 'ch' divided
    _CONVS = (('c0_0', 0, 8, 3, 1, 1), ('c0_1', 8, 4, 4, 2, 1),
              ('c1_0', 4, 4, 3, 1, 1), ('c1_1', 4, 2, 4, 2, 1),
              ('c2_0', 2, 2, 3, 1, 1), ('c2_1', 2, 1, 4, 2, 1),
              ('c3_0', 1, 1, 3, 1, 1))

    def __init__(self, bottom_width=4, ch=512, wscale=0.02):
        if ch % 8 or ch <= 0:
            raise ValueError('ch must be a positive multiple of 8, got '
                             '{!r}'.format(ch))
        super(Discriminator, self).__init__()
        w = chainer.initializers.Normal(wscale)
        with self.init_scope():
            for name, cin, cout, k, s, p in self._CONVS:
                setattr(self, name, Convolution2D(
                    ch // cin if cin else 3, ch // cout, k, s, p,
                    initialW=w))
                if name != 'c0_0':
                    setattr(self, 'bn' + name[1:], BatchNormalization(
                        ch // cout, use_gamma=False))
            self.l4 = L.Linear(bottom_width * bottom_width * ch, 1,
                               initialW=w)

    def forward(self, x):
        h = x
        for name, _, _, _, _, _ in self._CONVS:
            h = getattr(self, name)(h)
            if name != 'c0_0':
                h = getattr(self, 'bn' + name[1:])(h)
            h = F.leaky_relu(h, slope=0.2)
        return self.l4(h)
