"""2-D max and average pooling on NumPy as a few passes over contiguous
memory.

Chainer's NumPy max pooling unfolds x into (N, C, KH, KW, OH, OW) (the
input's size times KH KW / (SY SX)), takes ``max`` and ``argmax`` across
the window axis (``argmax`` copies that axis to the end, then reduces rows
of KH KW values one call each), and its backward scatters gy into such an
array and folds it back (``col2im``).  Strided views of x per window tap
avoid the copy, but NumPy runs a strided pass in inner loops of OW
elements, several times slower than a contiguous one.  So x is split once
into its stride phases, each plane padded with -inf to (HQ, WQ) =
(OH + (KH - 1) // SY, OW + (KW - 1) // SX):

    P[r, c][n, u, v] = xpad[n, SY u + r, SX v + c]

(xpad: x padded with -inf).  Tap (i, j) = (SY a + r, SX b + c) of output
(p, q) reads P[r, c][n, p + a, q + b]: in the flattened plane of the
phase, the outputs' own flat index p WQ + q shifted by a WQ + b.  So over
the "wide" output grid (N C, HQ, WQ), of which (OH, OW) is kept, every tap
is one contiguous 1-D slice of a phase, and from tap (0, 0)

    better = tap > y;  y <- max(y, tap);  argmax <- i KW + j where better

in row-major tap order keeps the first maximum of each window (Chainer's
rule; a window entirely in the padding keeps offset 0, as on the GPU,
:mod:`mixnorm.cuda.pool`).  The backward pass is the adjoint: gy on the
wide grid (0 off the kept part) is added, for each tap, where argmax is
that tap, to the gradient of the tap's slice of its phase, and the phases
are folded back into gx.  "Where" is arithmetic, not a masked copy (which
branches per element, several times slower on random masks): an integer
update of argmax, and gy's bits ANDed with all ones or all zeros.  Strided
passes: two over x's size (the split, the fold) and two over y's (y, gy);
the rest is contiguous.  Each plane takes HQ WQ + ``slack`` (the largest
shift) elements of the phases and of the wide grid, so that no tap of one
plane reaches another's: the planes are done in chunks small enough for
the taps' passes to stay in the core's cache, and the chunks split over
the cores (:mod:`mixnorm.cpu.parallel`), each writing its own planes.

Average pooling is the same split with zeros for padding, each tap one
contiguous addition, the sum divided per output (by KH KW, or by the
window's pixels of x with ``pad_value=None``); its backward pass adds gy /
divisor at every tap.

The functions take and return the arrays of :mod:`mixnorm.cuda.pool`'s
(``argmax`` here is the wide grid's, flat; for average pooling the
divisor takes its place).
"""
import numpy

from chainer.utils import conv as chainer_conv

from mixnorm.cpu import parallel

CHUNK = 1 << 18  # elements of the wide grid a chunk of planes holds


def out_size(size, k, s, p, cover_all):
    """Output length of a pooling (Chainer's ``get_conv_outsize``)."""
    return chainer_conv.get_conv_outsize(size, k, s, p, cover_all)


def _span(size, offset, s, p, n):
    """(kept, read): the slice of positions u < n of a phase (offset r)
    whose input row s u + r - p lies in [0, size), and those rows of x;
    None if there are none."""
    first = max(0, -(-(p - offset) // s))
    stop = min(n, (size - 1 - offset + p) // s + 1)
    if stop <= first:
        return None
    start = s * first + offset - p
    return (slice(first, stop),
            slice(start, start + s * (stop - first - 1) + 1, s))


class _Geometry(object):
    """The phase planes and wide grid of one pooling.  Each of the N C
    planes takes ``step`` = HQ WQ + ``slack`` elements, ``slack`` being
    the largest shift, so that a plane's taps stay in its own ``step``."""

    def __init__(self, x_shape, ksize, stride, pad, cover_all):
        n, c, self.h, self.w = x_shape
        self.planes = n * c
        self.ksize, self.stride, self.pad = ksize, stride, pad
        self.out = tuple(out_size(x_shape[2 + a], ksize[a], stride[a],
                                  pad[a], cover_all) for a in (0, 1))
        self.hq, self.wq = (self.out[a] + (ksize[a] - 1) // stride[a]
                            for a in (0, 1))
        self.slack = (ksize[0] - 1) // stride[0] * self.wq + (
            ksize[1] - 1) // stride[1]
        self.step = self.hq * self.wq + self.slack
        self.size = self.planes * self.step  # of the wide grid
        self.phases = (min(stride[0], ksize[0]), min(stride[1], ksize[1]))

    def taps(self):
        """(offset i KW + j, phase (r, c), flat shift) of each tap."""
        (kh, kw), (sy, sx) = self.ksize, self.stride
        for i in range(kh):
            for j in range(kw):
                yield (i * kw + j, (i % sy, j % sx),
                       i // sy * self.wq + j // sx)

    def spans(self):
        """(phase, (kept rows, kept columns), (x rows, x columns)) of each
        phase that meets x."""
        for r in range(self.phases[0]):
            rows = _span(self.h, r, self.stride[0], self.pad[0], self.hq)
            for c in range(self.phases[1]):
                cols = _span(self.w, c, self.stride[1], self.pad[1], self.wq)
                if rows and cols:
                    yield (r, c), (rows[0], cols[0]), (rows[1], cols[1])

    def planes_of(self, flat, lo, hi):
        """Planes lo..hi of a wide-grid or phase array: (hi - lo, step)."""
        return flat[lo * self.step:hi * self.step].reshape(hi - lo, -1)

    def grid(self, flat, lo, hi):
        """Their (HQ, WQ) part: (hi - lo, HQ, WQ)."""
        return self.planes_of(flat, lo, hi)[:, :self.hq * self.wq].reshape(
            hi - lo, self.hq, self.wq)

    def run(self, part):
        """``part(lo, hi)`` over chunks of planes whose wide grid holds
        about :data:`CHUNK` elements, on every core
        (:func:`mixnorm.cpu.parallel.over_chunks`)."""
        parallel.over_chunks(part, self.planes, CHUNK // self.step,
                             self.size)


def _split(x, geo, fill):
    """The phases P (as in the module docstring), ``fill`` outside x,
    each flat with ``slack`` more ``fill`` after its last plane."""
    phases = numpy.empty(geo.phases + (geo.size + geo.slack,), x.dtype)
    phases[..., geo.size:] = fill
    x3 = x.reshape(geo.planes, geo.h, geo.w)
    spans = {phase: (kept, read) for phase, kept, read in geo.spans()}

    def part(lo, hi):
        for r in range(geo.phases[0]):
            for c in range(geo.phases[1]):
                if (r, c) not in spans:
                    geo.planes_of(phases[r, c], lo, hi)[...] = fill
                    continue
                (rows, cols), (x_rows, x_cols) = spans[r, c]
                geo.planes_of(phases[r, c], lo, hi)[
                    :, geo.hq * geo.wq:] = fill
                plane = geo.grid(phases[r, c], lo, hi)
                plane[:, :rows.start] = plane[:, rows.stop:] = fill
                plane[:, :, :cols.start] = fill
                plane[:, :, cols.stop:] = fill
                plane[:, rows, cols] = x3[lo:hi, x_rows, x_cols]
    geo.run(part)
    return phases


def forward(x, ksize, stride, pad, cover_all, kind='max', pad_value=0):
    """``(y, argmax)`` of max pooling (``kind='max'``) or ``(y, divisor)``
    of average pooling of (N, C, H, W) x; ksize, stride and pad are pairs.
    Average pooling counts the padding as zeros (``pad_value=0``: the
    divisor is KH KW) or leaves it out (``pad_value=None``, Chainer's
    ``average_pooling_nd``: the divisor (OH, OW) counts each window's
    pixels of x)."""
    geo = _Geometry(x.shape, ksize, stride, pad, cover_all)
    if kind == 'average':
        divisor = _divisor(geo, x.dtype, pad_value)
        return _average(x, geo, divisor), divisor
    if kind != 'max':
        raise ValueError('NumPy pooling: max or average, not {!r}'.format(
            kind))
    phases = _split(x, geo, -numpy.inf)
    taps = list(geo.taps())
    wide = numpy.empty(geo.size, x.dtype)
    argmax = numpy.zeros(geo.size, numpy.min_scalar_type(len(taps) - 1))
    better = numpy.empty(geo.size, bool)
    change = numpy.empty_like(argmax)
    y = numpy.empty(x.shape[:2] + geo.out, x.dtype)
    y3 = y.reshape(geo.planes, *geo.out)

    def part(lo, hi):
        a, b = lo * geo.step, hi * geo.step
        w, arg, more, delta = wide[a:b], argmax[a:b], better[a:b], change[a:b]
        w[...] = phases[taps[0][1]][a:b]  # tap (0, 0): shift 0
        for offset, phase, shift in taps[1:]:
            tap = phases[phase][a + shift:b + shift]
            numpy.greater(tap, w, out=more)
            numpy.maximum(w, tap, out=w)
            # argmax <- offset where better: argmax -= (argmax - offset) b.
            numpy.subtract(arg, offset, out=delta)
            numpy.multiply(delta, more.view(numpy.uint8), out=delta)
            numpy.subtract(arg, delta, out=arg)
        y3[lo:hi] = geo.grid(wide, lo, hi)[:, :geo.out[0], :geo.out[1]]
    geo.run(part)
    return y, argmax


def _divisor(geo, dtype, pad_value):
    """What average pooling divides each window's sum by: KH KW, or with
    ``pad_value=None`` the (OH, OW) counts of the windows' pixels in x."""
    (kh, kw), (sy, sx), (ph, pw) = geo.ksize, geo.stride, geo.pad
    if pad_value is not None:
        if pad_value != 0:
            raise ValueError('average pooling: pad_value 0 or None, not '
                             '{!r}'.format(pad_value))
        return numpy.dtype(dtype).type(kh * kw)

    def inside(size, k, s, p, n):
        start = numpy.arange(n) * s - p
        return numpy.minimum(start + k, size) - numpy.maximum(start, 0)
    return numpy.outer(inside(geo.h, kh, sy, ph, geo.out[0]),
                       inside(geo.w, kw, sx, pw, geo.out[1])).astype(dtype)


def _average(x, geo, divisor):
    """y of average pooling: the sum of the taps over the wide grid (the
    padding zeros), divided by ``divisor``."""
    phases = _split(x, geo, 0)
    taps = list(geo.taps())
    wide = numpy.empty(geo.size, x.dtype)
    y = numpy.empty(x.shape[:2] + geo.out, x.dtype)
    y3 = y.reshape(geo.planes, *geo.out)

    def part(lo, hi):
        a, b = lo * geo.step, hi * geo.step
        w = wide[a:b]
        w[...] = phases[taps[0][1]][a:b]  # tap (0, 0): shift 0
        for _, phase, shift in taps[1:]:
            numpy.add(w, phases[phase][a + shift:b + shift], out=w)
        numpy.divide(geo.grid(wide, lo, hi)[:, :geo.out[0], :geo.out[1]],
                     divisor, out=y3[lo:hi])
    geo.run(part)
    return y


def backward(x_shape, gy, argmax, ksize, stride, pad, cover_all,
             kind='max'):
    """gx of :func:`forward` from what it returned beside y (``argmax``):
    for max pooling each gy added at its window's argmax, for average
    pooling (``argmax`` then the divisor) gy / divisor added at every tap
    of its window."""
    average = kind == 'average'
    geo = _Geometry(x_shape, ksize, stride, pad, cover_all)
    wide = numpy.zeros(geo.size, gy.dtype)
    grads = numpy.zeros(geo.phases + (geo.size + geo.slack,), gy.dtype)
    gy3 = gy.reshape(geo.planes, *geo.out)
    gx = numpy.zeros(x_shape, gy.dtype)  # rows in no window stay 0
    gx3 = gx.reshape(geo.planes, geo.h, geo.w)
    if not average:
        bits = numpy.dtype('i{}'.format(gy.dtype.itemsize))
        chosen = numpy.empty(geo.size, bool)
        keep = numpy.empty(geo.size, numpy.int8)
        share = numpy.empty(geo.size, gy.dtype)

    def shares(a, b):
        """(phase, shift, what the tap's inputs get) of each tap."""
        for offset, phase, shift in geo.taps():
            if average:
                yield phase, shift, wide[a:b]
                continue
            # share = gy where argmax is this tap, else +0: gy's bits AND
            # a mask of all ones or zeros (no branch, and no inf * 0)
            numpy.equal(argmax[a:b], offset, out=chosen[a:b])
            numpy.negative(chosen[a:b].view(numpy.int8), out=keep[a:b])
            numpy.bitwise_and(wide[a:b].view(bits), keep[a:b],
                              out=share[a:b].view(bits))
            yield phase, shift, share[a:b]

    def part(lo, hi):
        a, b = lo * geo.step, hi * geo.step
        kept = geo.grid(wide, lo, hi)[:, :geo.out[0], :geo.out[1]]
        if average:
            numpy.divide(gy3[lo:hi], argmax, out=kept)
        else:
            kept[...] = gy3[lo:hi]
        for phase, shift, values in shares(a, b):
            # the last plane's last ``shift`` values (slack, gy 0) would
            # reach the next chunk's planes: left out
            tap = grads[phase][a + shift:b]
            numpy.add(tap, values[:b - a - shift], out=tap)
        for phase, (rows, cols), (x_rows, x_cols) in geo.spans():
            gx3[lo:hi, x_rows, x_cols] = geo.grid(grads[phase], lo, hi)[
                :, rows, cols]
    geo.run(part)
    return gx
