"""The Inception-V3 network of the FID, as a Chainer network.

The Fréchet Inception Distance (Heusel et al., 2017; the paper's [46])
reads the 2,048 pooled features ("pool3") of the Inception-V3 that
TensorFlow released on 2015-12-05.  This module rebuilds that network for
Chainer, following the PyTorch port in mseitzer/pytorch-fid
(``src/pytorch_fid/inception.py``), whose weight file
``pt_inception-2015-12-05-6726825d.pth`` :mod:`train.fid.convert` turns
into this network's ``.npz``.  The network is torchvision's Inception-V3
layout with the port's four departures, which are what make it the FID
network rather than the torchvision one:

* the 3x3 average pooling in the pooling branch of the Inception-A, -C and
  first -E blocks (``Mixed_5b``-``5d``, ``Mixed_6b``-``6e``, ``Mixed_7b``)
  does not count the zero padding (TensorFlow's rule);
* the last block (``Mixed_7c``) pools its pooling branch with a 3x3 *max*
  pooling instead;
* the classifier has 1,008 outputs (unused here: the FID stops at pool3);
* there is no auxiliary classifier.

Every convolution is conv (no bias) + batch normalization (eps 0.001) +
ReLU.  Link names are those of the PyTorch state dict (``Mixed_6b``,
``branch7x7dbl_3``, ...), so a parameter ``Mixed_6b.branch1x1.conv.weight``
there is ``Mixed_6b/branch1x1/conv/W`` here.

Inputs are images in [-1, 1] of any size; they are resized to 299 x 299
bilinearly (half-pixel centres, as PyTorch's ``interpolate`` with
``align_corners=False``, which the port uses) and run in test mode.
"""
import hashlib

import numpy

import chainer
import chainer.functions as F
import chainer.links as L

import mixnorm

SIZE = 299  # the network's input side
DIMS = 2048  # pool3 features


class BasicConv(chainer.Chain):
    """Convolution without bias, batch normalization (eps 0.001), ReLU."""

    def __init__(self, in_channels, out_channels, ksize, stride=1, pad=0):
        super(BasicConv, self).__init__()
        with self.init_scope():
            # on a GPU without cuDNN, convolution as GEMMs (mixnorm)
            self.conv = mixnorm.Convolution2D(
                in_channels, out_channels, ksize, stride=stride, pad=pad,
                nobias=True)
            self.bn = L.BatchNormalization(out_channels, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def resize_matrix(n_in, n_out):
    """``(n_out, n_in)`` weights of 1-D linear interpolation with
    half-pixel centres (PyTorch's ``align_corners=False``, no antialias):
    output ``i`` samples the input at ``(i + 0.5) * n_in / n_out - 0.5``,
    clamped at the first pixel."""
    src = (numpy.arange(n_out) + 0.5) * (n_in / float(n_out)) - 0.5
    src = numpy.maximum(src, 0)
    lo = numpy.minimum(numpy.floor(src).astype(int), n_in - 1)
    hi = numpy.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = numpy.zeros((n_out, n_in))
    numpy.add.at(m, (numpy.arange(n_out), lo), 1 - frac)
    numpy.add.at(m, (numpy.arange(n_out), hi), frac)
    return m


def resize_bilinear(x, size):
    """Bilinear resize of ``(N, C, H, W)`` arrays to ``size`` x ``size``.

    Two matrix products with :func:`resize_matrix` (Chainer 7.8.1's own
    ``resize_images(align_corners=False)`` does not run on current NumPy).
    """
    xp = chainer.backend.get_array_module(x)
    rows = xp.asarray(resize_matrix(x.shape[2], size), x.dtype)
    cols = xp.asarray(resize_matrix(x.shape[3], size).T, x.dtype)
    return xp.matmul(rows, xp.matmul(x, cols))


def _avg_pool_exclusive(x):
    """3x3 average pooling, stride 1, pad 1, padding not counted."""
    return F.average_pooling_nd(x, 3, 1, 1, pad_value=None)


def _max_pool(x, stride, pad=0):
    """3x3 max pooling without Chainer's ``cover_all`` (PyTorch's floor
    rule for the output size)."""
    return mixnorm.max_pooling_2d(x, 3, stride=stride, pad=pad,
                                  cover_all=False)


class _Block(chainer.Chain):
    """Inception block: children are :class:`BasicConv` units; ``forward``
    concatenates the branch outputs along the channels."""

    def _units(self, specs):
        with self.init_scope():
            for name, args, kwargs in specs:
                setattr(self, name, BasicConv(*args, **kwargs))

    def _chain(self, x, *names):
        for name in names:
            x = getattr(self, name)(x)
        return x


class FIDInceptionA(_Block):
    """35 x 35 block (``Mixed_5b``-``5d``): 1x1, 5x5, double 3x3, pool."""

    def __init__(self, in_channels, pool_features):
        super(FIDInceptionA, self).__init__()
        c = in_channels
        self._units([
            ('branch1x1', (c, 64, 1), {}),
            ('branch5x5_1', (c, 48, 1), {}),
            ('branch5x5_2', (48, 64, 5), {'pad': 2}),
            ('branch3x3dbl_1', (c, 64, 1), {}),
            ('branch3x3dbl_2', (64, 96, 3), {'pad': 1}),
            ('branch3x3dbl_3', (96, 96, 3), {'pad': 1}),
            ('branch_pool', (c, pool_features, 1), {}),
        ])

    def forward(self, x):
        return F.concat([
            self.branch1x1(x),
            self._chain(x, 'branch5x5_1', 'branch5x5_2'),
            self._chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2',
                        'branch3x3dbl_3'),
            self.branch_pool(_avg_pool_exclusive(x))])


class InceptionB(_Block):
    """Grid reduction 35 -> 17 (``Mixed_6a``)."""

    def __init__(self, in_channels):
        super(InceptionB, self).__init__()
        c = in_channels
        self._units([
            ('branch3x3', (c, 384, 3), {'stride': 2}),
            ('branch3x3dbl_1', (c, 64, 1), {}),
            ('branch3x3dbl_2', (64, 96, 3), {'pad': 1}),
            ('branch3x3dbl_3', (96, 96, 3), {'stride': 2}),
        ])

    def forward(self, x):
        return F.concat([
            self.branch3x3(x),
            self._chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2',
                        'branch3x3dbl_3'),
            _max_pool(x, 2)])


class FIDInceptionC(_Block):
    """17 x 17 block with factorized 7x7 convolutions (``Mixed_6b``-``6e``)."""

    def __init__(self, in_channels, channels_7x7):
        super(FIDInceptionC, self).__init__()
        c, c7 = in_channels, channels_7x7
        row = {'pad': (0, 3)}  # 1x7
        col = {'pad': (3, 0)}  # 7x1
        self._units([
            ('branch1x1', (c, 192, 1), {}),
            ('branch7x7_1', (c, c7, 1), {}),
            ('branch7x7_2', (c7, c7, (1, 7)), row),
            ('branch7x7_3', (c7, 192, (7, 1)), col),
            ('branch7x7dbl_1', (c, c7, 1), {}),
            ('branch7x7dbl_2', (c7, c7, (7, 1)), col),
            ('branch7x7dbl_3', (c7, c7, (1, 7)), row),
            ('branch7x7dbl_4', (c7, c7, (7, 1)), col),
            ('branch7x7dbl_5', (c7, 192, (1, 7)), row),
            ('branch_pool', (c, 192, 1), {}),
        ])

    def forward(self, x):
        return F.concat([
            self.branch1x1(x),
            self._chain(x, 'branch7x7_1', 'branch7x7_2', 'branch7x7_3'),
            self._chain(x, 'branch7x7dbl_1', 'branch7x7dbl_2',
                        'branch7x7dbl_3', 'branch7x7dbl_4',
                        'branch7x7dbl_5'),
            self.branch_pool(_avg_pool_exclusive(x))])


class InceptionD(_Block):
    """Grid reduction 17 -> 8 (``Mixed_7a``)."""

    def __init__(self, in_channels):
        super(InceptionD, self).__init__()
        c = in_channels
        self._units([
            ('branch3x3_1', (c, 192, 1), {}),
            ('branch3x3_2', (192, 320, 3), {'stride': 2}),
            ('branch7x7x3_1', (c, 192, 1), {}),
            ('branch7x7x3_2', (192, 192, (1, 7)), {'pad': (0, 3)}),
            ('branch7x7x3_3', (192, 192, (7, 1)), {'pad': (3, 0)}),
            ('branch7x7x3_4', (192, 192, 3), {'stride': 2}),
        ])

    def forward(self, x):
        return F.concat([
            self._chain(x, 'branch3x3_1', 'branch3x3_2'),
            self._chain(x, 'branch7x7x3_1', 'branch7x7x3_2',
                        'branch7x7x3_3', 'branch7x7x3_4'),
            _max_pool(x, 2)])


class FIDInceptionE(_Block):
    """8 x 8 block with expanded filter bank (``Mixed_7b``, ``Mixed_7c``).

    Args:
        in_channels (int): Input channels.
        pool (str): ``'avg'`` (``Mixed_7b``: average pooling without the
            padding) or ``'max'`` (``Mixed_7c``, as the FID network has it).

    """

    def __init__(self, in_channels, pool):
        super(FIDInceptionE, self).__init__()
        if pool not in ('avg', 'max'):
            raise ValueError('pool must be avg or max, got {!r}'.format(pool))
        self.pool = pool
        c = in_channels
        self._units([
            ('branch1x1', (c, 320, 1), {}),
            ('branch3x3_1', (c, 384, 1), {}),
            ('branch3x3_2a', (384, 384, (1, 3)), {'pad': (0, 1)}),
            ('branch3x3_2b', (384, 384, (3, 1)), {'pad': (1, 0)}),
            ('branch3x3dbl_1', (c, 448, 1), {}),
            ('branch3x3dbl_2', (448, 384, 3), {'pad': 1}),
            ('branch3x3dbl_3a', (384, 384, (1, 3)), {'pad': (0, 1)}),
            ('branch3x3dbl_3b', (384, 384, (3, 1)), {'pad': (1, 0)}),
            ('branch_pool', (c, 192, 1), {}),
        ])

    def forward(self, x):
        h3 = self.branch3x3_1(x)
        hd = self._chain(x, 'branch3x3dbl_1', 'branch3x3dbl_2')
        pooled = (_avg_pool_exclusive(x) if self.pool == 'avg'
                  else _max_pool(x, 1, pad=1))
        return F.concat([
            self.branch1x1(x),
            self.branch3x3_2a(h3), self.branch3x3_2b(h3),
            self.branch3x3dbl_3a(hd), self.branch3x3dbl_3b(hd),
            self.branch_pool(pooled)])


class FIDInceptionV3(chainer.Chain):

    """Inception-V3 up to pool3, as the FID uses it.

    Call it on images in [-1, 1] (``(N, 3, H, W)`` float32); it returns the
    ``(N, 2048)`` pooled features.  It always runs in test mode (batch
    normalization with the stored statistics) and without a graph.

    Args:
        resize (bool): Resize inputs to 299 x 299 first (the FID does).

    """

    def __init__(self, resize=True):
        super(FIDInceptionV3, self).__init__()
        self.resize = resize
        with self.init_scope():
            self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2)
            self.Conv2d_2a_3x3 = BasicConv(32, 32, 3)
            self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, pad=1)
            self.Conv2d_3b_1x1 = BasicConv(64, 80, 1)
            self.Conv2d_4a_3x3 = BasicConv(80, 192, 3)
            self.Mixed_5b = FIDInceptionA(192, pool_features=32)
            self.Mixed_5c = FIDInceptionA(256, pool_features=64)
            self.Mixed_5d = FIDInceptionA(288, pool_features=64)
            self.Mixed_6a = InceptionB(288)
            self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
            self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
            self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
            self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
            self.Mixed_7a = InceptionD(768)
            self.Mixed_7b = FIDInceptionE(1280, pool='avg')
            self.Mixed_7c = FIDInceptionE(2048, pool='max')

    def forward(self, x):
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            x = x.array if isinstance(x, chainer.Variable) else x
            if self.resize and x.shape[2:] != (SIZE, SIZE):
                x = resize_bilinear(x, SIZE)
            h = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
            h = _max_pool(h, 2)
            h = _max_pool(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(h)), 2)
            for name in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a',
                         'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e',
                         'Mixed_7a', 'Mixed_7b', 'Mixed_7c'):
                h = getattr(self, name)(h)
            return F.mean(h, axis=(2, 3))


def file_digest(path):
    """The first 12 hex digits of a file's SHA-256 (names weight files)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:12]


def load(path):
    """The FID network with the weights of a converted ``.npz`` file.

    Args:
        path (str): Written by ``python -m train.fid convert``.

    Raises:
        ValueError: The file is missing, or is not such a file (its
            message names the path).

    """
    net = FIDInceptionV3()
    try:
        chainer.serializers.load_npz(path, net)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError('{}: not a converted FID Inception weight file '
                         '(python -m train.fid convert writes one): {}'.format(
                             path, e))
    return net
