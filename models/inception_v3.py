"""Inception-V3 for 32x32 inputs (CIFAR variant of Kalayeh & Shah, Sec. 4.3).

The body is the standard Inception-V3 of Szegedy et al., "Rethinking the
Inception Architecture for Computer Vision" (2016): a stem of five
convolutions, three Inception-A layers (the 35x35 blocks of the original),
a grid reduction, four Inception-B layers (17x17, factorized 7x7), a second
grid reduction, two Inception-C layers (8x8, expanded filter bank), global
average pooling, optional dropout and a linear classifier.  The auxiliary
classifier is not used (Sec. 4.3 mentions none).  Every convolution is
conv (no bias) + BatchNormalization + ReLU; channel widths are the standard
ones (times ``width``).

CIFAR modification (Sec. 4.3): the stride of the first convolution is 1
instead of 2 and the first max pooling is removed, so the total output stride
is 8 instead of 32.  Padding choices that turn a 32x32 input into the paper's
3x3 map before global average pooling:

=================================  ======================  ======
layer                              padding                 output
=================================  ======================  ======
stem/0  3x3 conv, stride 1         valid (as original)     30x30
stem/1  3x3 conv                   valid (as original)     28x28
stem/2  3x3 conv                   1 (as original)         28x28
(first max pooling)                removed                 --
stem/3  1x1 conv                   --                      28x28
stem/4  3x3 conv                   valid (as original)     26x26
3x3 max pooling, stride 2          1 (original: valid)     13x13
inc1/0..inc1/2 (Inception-A)       same (as original)      13x13
red1 (stride-2 3x3 convs, pool)    1 (original: valid)     7x7
inc2/0..inc2/3 (Inception-B)       same (as original)      7x7
red2 (stride-2 3x3 convs, pool)    valid (as original)     3x3
inc3/0..inc3/1 (Inception-C)       same (as original)      3x3
=================================  ======================  ======

With the original all-valid stem pooling and reductions a 32x32 input would
end at 2x2; padding the stem pooling and ``red1`` by one pixel gives grids of
13, 7 and 3, which halve at each stride-2 stage like the original 35/17/8.
Max pooling pads with -inf; the 3x3 average pooling of the pooling branches
excludes the padded pixels (``pad_value=None``).

Naming and BN addressing (Table 4 caption, Sec. 5.2):

* Inception layers and grid reductions are named as in the paper:
  ``inc1/0..inc1/2``, ``red1``, ``inc2/0..inc2/3``, ``red2``,
  ``inc3/0..inc3/1``; the name is also the Chainer link path of the layer.
* A layer is a ``ChainList`` of branches, a branch a ``ChainList`` of
  conv-BN units, and a unit a ``Chain`` with children ``conv`` and ``bn``.
  The BN address ``<layer>/<branch>/<index>`` (0-based, the order of the
  branch's units) is therefore the link path ``<layer>/<branch>/<index>/bn``;
  e.g. the paper's "inc2/0/2/4" (fifth BN of the third branch of the first
  Inception-B layer, the last BN of its double 7x7 branch) is the link
  ``inc2/0/2/4/bn``.
* Branch order: Inception-A: 1x1, 5x5, double 3x3, pool.  Inception-B: 1x1,
  7x7, double 7x7, pool.  Inception-C: 1x1, 3x3, double 3x3, pool.
  Reductions: the 3x3 branch, the multi-conv branch, then the pure max-pool
  branch, which has no BN and no index (it is always last, so no index is
  skipped).  A pooling branch (3x3 average pooling + 1x1 conv-BN) is a branch
  with one BN.
* Forked branches (Inception-C's 1x3/3x1 split): the units before the fork
  come first, then the parallel units in the order 1x3, 3x1; each parallel
  output path ends with its own last BN, so a forked branch has two "last
  BNs".  E.g. ``inc3/0/1`` holds 1x1, 1x3, 3x1 (indices 0, 1, 2; last BNs 1
  and 2) and ``inc3/0/2`` holds 1x1, 3x3, 1x3, 3x1 (last BNs 2 and 3).
* ``norm_paths([layer])`` returns the last BN of each branch of the layer
  (Table 4 caption): 4 for an Inception-A or -B layer, 6 for an Inception-C
  layer and 2 for a grid reduction.  Thus Table 4's MN-1 (red1, red2)
  replaces 4 BNs, MN-2 (red1, red2, inc3/0) 10, MN-3/4/5 (inc2/0, inc3/0) 10
  (the "10 mixture normalization modules" of Fig. 9) and Table 6's setting
  (inc2/1, inc3/0) 10.

Stem BNs are the links ``stem/<i>/bn`` (not part of the paper's naming).
"""
import collections

import chainer
import chainer.functions as F
import chainer.links as L

import mixnorm

from models import register
from models.layers import ConvBN


class Branch(chainer.ChainList):
    """One branch of an Inception layer: optional pooling, then conv-BN units.

    Args:
        in_channels (int): Input channels of the layer.
        specs (list): ``(out_channels, ksize, stride, pad)`` per unit, in
            index order; ``stride`` and ``pad`` may be omitted (1 and 0).
        pool (str or None): ``'avg'`` for a 3x3/stride-1 average pooling in
            front of the units (pooling branch), ``None`` for none.
        fork (int): Number of trailing units applied in parallel to the
            output of the units before them (2 for Inception-C's 1x3/3x1
            split); their outputs are concatenated.
    """

    def __init__(self, in_channels, specs, pool=None, fork=1):
        super(Branch, self).__init__()
        if not 1 <= fork <= len(specs):
            raise ValueError('fork must be in [1, %d]' % len(specs))
        self.pool = pool
        self.fork = fork
        ch = in_channels
        n_trunk = len(specs) - fork
        for i, spec in enumerate(specs):
            out, ksize = spec[0], spec[1]
            stride = spec[2] if len(spec) > 2 else 1
            pad = spec[3] if len(spec) > 3 else 0
            self.add_link(ConvBN(ch, out, ksize, stride, pad))
            if i < n_trunk:
                ch = out
        self.out_channels = sum(s[0] for s in specs[n_trunk:])

    def last_indices(self):
        """Indices of the last BN of each output path of the branch."""
        return list(range(len(self) - self.fork, len(self)))

    def forward(self, x):
        h = x
        if self.pool == 'avg':
            # pooling branch: padded pixels excluded from the average
            h = mixnorm.average_pooling_2d(h, 3, 1, 1, pad_value=None)
        units = list(self)
        n_trunk = len(units) - self.fork
        for unit in units[:n_trunk]:
            h = unit(h)
        if self.fork == 1:
            return units[-1](h)
        return F.concat([unit(h) for unit in units[n_trunk:]], axis=1)


class InceptionLayer(chainer.ChainList):
    """Parallel branches concatenated along channels.

    Args:
        branches (list of Branch): Branches with BNs, in index order.
        max_pool (tuple or None): ``(stride, pad)`` of a pure 3x3 max-pool
            branch appended after the others (grid reductions), or ``None``.
        in_channels (int): Input channels (needed for the max-pool branch).
    """

    def __init__(self, branches, max_pool=None, in_channels=0):
        super(InceptionLayer, self).__init__(*branches)
        self.max_pool = max_pool
        self.out_channels = sum(b.out_channels for b in branches)
        if max_pool is not None:
            self.out_channels += in_channels

    def forward(self, x):
        hs = [branch(x) for branch in self]
        if self.max_pool is not None:
            stride, pad = self.max_pool
            hs.append(mixnorm.max_pooling_2d(x, 3, stride, pad,
                                             cover_all=False))
        return F.concat(hs, axis=1)


def inception_a(in_ch, pool_ch, c):
    """Inception-A (35x35 module; 5x5 and double 3x3 branches)."""
    return InceptionLayer([
        Branch(in_ch, [(c(64), 1)]),
        Branch(in_ch, [(c(48), 1), (c(64), 5, 1, 2)]),
        Branch(in_ch, [(c(64), 1), (c(96), 3, 1, 1), (c(96), 3, 1, 1)]),
        Branch(in_ch, [(c(pool_ch), 1)], pool='avg'),
    ])


def reduction_a(in_ch, c, pad):
    """First grid reduction ``red1`` (35x35 -> 17x17 in the original)."""
    return InceptionLayer([
        Branch(in_ch, [(c(384), 3, 2, pad)]),
        Branch(in_ch, [(c(64), 1), (c(96), 3, 1, 1), (c(96), 3, 2, pad)]),
    ], max_pool=(2, pad), in_channels=in_ch)


def inception_b(in_ch, c7, c):
    """Inception-B (17x17 module; 7x7 factorized into 1x7 and 7x1)."""
    h, v = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))  # 1x7, 7x1 (ksize, s, p)
    return InceptionLayer([
        Branch(in_ch, [(c(192), 1)]),
        Branch(in_ch, [(c(c7), 1), (c(c7),) + h, (c(192),) + v]),
        Branch(in_ch, [(c(c7), 1), (c(c7),) + v, (c(c7),) + h,
                       (c(c7),) + v, (c(192),) + h]),
        Branch(in_ch, [(c(192), 1)], pool='avg'),
    ])


def reduction_b(in_ch, c, pad):
    """Second grid reduction ``red2`` (17x17 -> 8x8 in the original)."""
    return InceptionLayer([
        Branch(in_ch, [(c(192), 1), (c(320), 3, 2, pad)]),
        Branch(in_ch, [(c(192), 1), (c(192), (1, 7), 1, (0, 3)),
                       (c(192), (7, 1), 1, (3, 0)), (c(192), 3, 2, pad)]),
    ], max_pool=(2, pad), in_channels=in_ch)


def inception_c(in_ch, c):
    """Inception-C (8x8 module; expanded filter bank with 1x3/3x1 forks)."""
    h, v = ((1, 3), 1, (0, 1)), ((3, 1), 1, (1, 0))
    return InceptionLayer([
        Branch(in_ch, [(c(320), 1)]),
        Branch(in_ch, [(c(384), 1), (c(384),) + h, (c(384),) + v], fork=2),
        Branch(in_ch, [(c(448), 1), (c(384), 3, 1, 1), (c(384),) + h,
                       (c(384),) + v], fork=2),
        Branch(in_ch, [(c(192), 1)], pool='avg'),
    ])


@register('inception_v3')
class InceptionV3(chainer.Chain):
    """Inception-V3, CIFAR variant (output stride 8, 3x3 final map).

    Args:
        n_classes (int): Number of classes.
        width (float): Multiplier of every channel width (1.0 is the standard
            network; small values give cheap networks for tests).
        dropout (float): Dropout ratio before the classifier (0 disables it;
            the paper does not state one).
    """

    layer_names = ('inc1/0', 'inc1/1', 'inc1/2', 'red1',
                   'inc2/0', 'inc2/1', 'inc2/2', 'inc2/3', 'red2',
                   'inc3/0', 'inc3/1')

    def __init__(self, n_classes=10, width=1.0, dropout=0.0):
        super(InceptionV3, self).__init__()
        if width <= 0:
            raise ValueError('width must be positive, got %r' % (width,))

        def c(n):
            return max(1, int(round(n * width)))

        self.dropout = dropout
        with self.init_scope():
            # Sec. 4.3: first conv stride 2 -> 1, first max pooling removed
            self.stem = chainer.ChainList(
                ConvBN(3, c(32), 3, stride=1),
                ConvBN(c(32), c(32), 3),
                ConvBN(c(32), c(64), 3, pad=1),
                ConvBN(c(64), c(80), 1),
                ConvBN(c(80), c(192), 3))
            ch = c(192)
            inc1 = []
            for pool_ch in (32, 64, 64):
                inc1.append(inception_a(ch, pool_ch, c))
                ch = inc1[-1].out_channels
            self.inc1 = chainer.ChainList(*inc1)
            self.red1 = reduction_a(ch, c, pad=1)
            ch = self.red1.out_channels
            inc2 = []
            for c7 in (128, 160, 160, 192):
                inc2.append(inception_b(ch, c7, c))
                ch = inc2[-1].out_channels
            self.inc2 = chainer.ChainList(*inc2)
            self.red2 = reduction_b(ch, c, pad=0)
            ch = self.red2.out_channels
            inc3 = []
            for _ in range(2):
                inc3.append(inception_c(ch, c))
                ch = inc3[-1].out_channels
            self.inc3 = chainer.ChainList(*inc3)
            self.fc = L.Linear(ch, n_classes)
        self.out_channels = ch

    def layer(self, name):
        """The ``InceptionLayer`` named as in the paper (e.g. ``'inc2/0'``)."""
        if name not in self.layer_names:
            raise ValueError('unknown Inception-V3 layer %r; valid layers: %s'
                             % (name, ', '.join(self.layer_names)))
        if '/' in name:
            block, i = name.split('/')
            return getattr(self, block)[int(i)]
        return getattr(self, name)

    def layers(self):
        """``OrderedDict`` of paper layer name -> ``InceptionLayer``."""
        return collections.OrderedDict(
            (name, self.layer(name)) for name in self.layer_names)

    def bn_addresses(self, layer=None):
        """All BN addresses ``<layer>/<branch>/<index>``, in network order.

        Args:
            layer (str or None): Restrict to one layer name.
        """
        names = self.layer_names if layer is None else [layer]
        out = []
        for name in names:
            for b, branch in enumerate(self.layer(name)):
                out.extend('%s/%d/%d' % (name, b, i)
                           for i in range(len(branch)))
        return out

    def last_bn_addresses(self, layer):
        """Addresses of the last BN of each branch (Table 4 caption)."""
        return ['%s/%d/%d' % (layer, b, i)
                for b, branch in enumerate(self.layer(layer))
                for i in branch.last_indices()]

    @staticmethod
    def bn_path(address):
        """Chainer link path of the BN at ``<layer>/<branch>/<index>``."""
        return address + '/bn'

    def bn_address(self, path):
        """Inverse of :meth:`bn_path`: ``'inc2/0/2/4/bn'`` -> ``'inc2/0/2/4'``.

        A leading ``'/'`` (as in ``namedlinks``) is accepted.
        """
        p = path.lstrip('/')
        if p.endswith('/bn') and p[:-3] in self.bn_addresses():
            return p[:-3]
        raise ValueError('%r is not the link path of a BN inside an '
                         'Inception layer or grid reduction' % (path,))

    def norm_paths(self, layers):
        """Link paths of the BNs to replace for a list of layers/addresses.

        Args:
            layers (str or list of str): Each entry is a layer name
                (``'red1'``, ``'inc3/0'``, ...), meaning the last BN of each
                branch of that layer (Table 4 caption), or a BN address
                ``'<layer>/<branch>/<index>'`` meaning exactly that BN.

        Returns:
            list of str: BN link paths relative to the model, without
            duplicates, in the order given.

        Raises:
            ValueError: An entry is neither a layer name nor a BN address.
        """
        if isinstance(layers, str):
            layers = [layers]
        valid = set(self.bn_addresses())
        paths = []
        for entry in layers:
            if entry in self.layer_names:
                addresses = self.last_bn_addresses(entry)
            elif entry in valid:
                addresses = [entry]
            else:
                raise ValueError(
                    'unknown Inception-V3 layer or BN address %r; valid '
                    'layers: %s (a BN is <layer>/<branch>/<index>, e.g. '
                    'inc2/0/2/4)' % (entry, ', '.join(self.layer_names)))
            for a in addresses:
                path = self.bn_path(a)
                if path not in paths:
                    paths.append(path)
        return paths

    def feature_map(self, x):
        """Activation before global average pooling (3x3 for 32x32 input)."""
        h = x
        for unit in self.stem:
            h = unit(h)
        # second stem max pooling, padded by 1 (see module docstring)
        h = mixnorm.max_pooling_2d(h, 3, stride=2, pad=1, cover_all=False)
        for layer in self.inc1:
            h = layer(h)
        h = self.red1(h)
        for layer in self.inc2:
            h = layer(h)
        h = self.red2(h)
        for layer in self.inc3:
            h = layer(h)
        return h

    def forward(self, x):
        h = F.average(self.feature_map(x), axis=(2, 3))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout)
        return self.fc(h)
