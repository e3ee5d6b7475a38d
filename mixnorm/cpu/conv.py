"""2-D convolution and its transpose on NumPy as one GEMM per direction.

The same three GEMMs as :mod:`mixnorm.cuda.conv`, through NumPy's
``matmul`` (the BLAS NumPy is built with), with the column matrix in the
layout that BLAS multiplies fastest here: one row per output position,

    col[(n, p, q), (i, j, c)] = xpad[n, c, SY p + i, SX q + j]

(N OH OW, KH KW C), xpad being x zero-padded by (PH, PW) (:func:`im2col`).
With W2 the filters as an (out, KH KW C) matrix (W's taps ordered as col's
columns, a copy of the filters' size) and gyT = gy as (N OH OW, out),

    yT   = col W2^T          (N OH OW, out)
    gW2  = (col^T gyT)^T
    gcol = gyT W2            (folded back into gx by :func:`col2im`)

Every GEMM has col, or its gradient, as its left operand, row-major or
transposed, which OpenBLAS runs at up to twice the rate of the other
order (col on the right: ``W2 col^T``); no operand is copied for BLAS.

The rows of col are independent but for the sum over them in gW2, so the
batch is done a few samples at a time (a chunk's col about :data:`CHUNK`
elements, a few MB, which stays in the core's cache between being written
and being multiplied): per chunk, x's samples are moved channel-last and
padded, col written, the GEMMs run, and y (or gx) written back
channel-first, each core taking its own chunks with BLAS on one thread
(:func:`mixnorm.cpu.parallel.over_chunks`); gW2 (and gb) are summed over
the chunks.  The whole column matrix, 420 MB for the CIFAR CNN at batch
256, is never in memory, and no pass over a whole activation is made
besides reading x and gy and writing y and gx.

col is written per kernel row i, one strided copy each: with x
channel-last (s, H, W, C), the KW C values (j, c) of position (n, p, q)
and row i are contiguous, so each copy moves runs of KW C values (a view
of x with overlapping windows, ``as_strided``), not the runs of OW values
of a channel-first unfolding.  col2im, the adjoint, adds gcol into the
channel-last gradient in runs of KW C values too, then moves it back to
(s, C, H, W).  col is built again in the backward pass rather than kept,
as Chainer does, and gcol is written over it.  The chunks' arrays live in
buffers per thread, kept between calls.

The transposed convolution (Chainer's deconvolution, W of shape (in, out,
KH, KW)) is the adjoint of the convolution of its output y by W: the same
GEMMs with the roles of x and y exchanged.  With xT = x as (N H W, in), W2
= W as (in, KH KW out) and col = im2col(gy),

    y   = col2im(xT W2) (+ b)
    gxT = col W2^T
    gW2 = (col^T xT)^T

The functions take and return the arrays of :mod:`mixnorm.cuda.conv`'s
functions of the same names (:mod:`mixnorm.convolution` runs either).
``cover_all`` is False (Chainer's links never set it).
"""
import threading

import numpy
from numpy.lib.stride_tricks import as_strided

from chainer.utils import conv as chainer_conv

from mixnorm.cpu import parallel

CHUNK = 1 << 21  # elements of col a chunk holds (8 MB in float32)


def out_size(size, k, s, p):
    """Output length of a convolution without ``cover_all``."""
    return chainer_conv.get_conv_outsize(size, k, s, p)


def deconv_size(size, k, s, p):
    """Output length of a transposed convolution without ``cover_all``."""
    return chainer_conv.get_deconv_outsize(size, k, s, p)


_scratch = threading.local()


def _workspace(name, shape, dtype):
    """An uninitialised array in this thread's buffer ``name``, kept and
    grown between calls."""
    nbytes = int(numpy.prod(shape)) * numpy.dtype(dtype).itemsize
    bufs = getattr(_scratch, 'bufs', None)
    if bufs is None:
        bufs = _scratch.bufs = {}
    buf = bufs.get(name)
    if buf is None or buf.size < nbytes:
        bufs[name] = buf = numpy.empty(nbytes, numpy.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def _out(shape, ksize, stride, pad):
    return tuple(out_size(shape[2 + a], ksize[a], stride[a], pad[a])
                 for a in (0, 1))


def _split(fn, n, col_per_sample, n_sums=0):
    """``fn(lo, hi)`` over chunks of samples whose col holds about
    :data:`CHUNK` elements, on every core (``col_per_sample``: col's
    elements per sample)."""
    col_per_sample = max(1, col_per_sample)
    return parallel.over_chunks(fn, n, CHUNK // col_per_sample,
                                n * col_per_sample, n_sums)


def _padded(x, lo, hi, ph, pw):
    """Samples lo..hi of (N, C, H, W) x as (s, H + 2 PH, W + 2 PW, C),
    zero-padded, in this thread's buffer."""
    _, c, h, w = x.shape
    xh = _workspace('x', (hi - lo, h + 2 * ph, w + 2 * pw, c), x.dtype)
    xh[:, :ph] = xh[:, ph + h:] = 0
    xh[:, :, :pw] = xh[:, :, pw + w:] = 0
    xh[:, ph:ph + h, pw:pw + w] = x[lo:hi].transpose(0, 2, 3, 1)
    return xh


def _rows(a, lo, hi):
    """Samples lo..hi of (N, C, H, W) a as the (s H W, C) matrix of the
    GEMMs, in this thread's buffer."""
    s, c = hi - lo, a.shape[1]
    rows = _workspace('rows', (s, a[0, 0].size, c), a.dtype)
    rows[...] = a[lo:hi].reshape(s, c, -1).transpose(0, 2, 1)
    return rows.reshape(-1, c)


def _channel_first(rows, out, bias=None):
    """Writes the (s H W, C) matrix ``rows`` into ``out`` (s, C, H, W), a
    contiguous block, plus ``bias`` per channel."""
    s, c = out.shape[:2]
    src = rows.reshape(s, -1, c).transpose(0, 2, 1)
    dest = out.reshape(s, c, -1)
    if bias is None:
        dest[...] = src
    else:
        numpy.add(src, bias[:, None], out=dest)


def _taps_last(W):
    """(A, B, KH, KW) filters as the (A, KH KW B) matrix of col's column
    order (a copy)."""
    return W.transpose(0, 2, 3, 1).reshape(W.shape[0], -1)


def _taps_first(W2, shape):
    """The inverse of :func:`_taps_last`, to ``shape``."""
    a, b, kh, kw = shape
    return numpy.ascontiguousarray(
        W2.reshape(a, kh, kw, b).transpose(0, 3, 1, 2))


def im2col(x, lo, hi, ksize, stride, pad):
    """The column matrix (s OH OW, KH KW C) of samples lo..hi of (N, C, H,
    W) x for a (KH, KW) kernel, in this thread's buffer (valid until its
    next use there)."""
    c = x.shape[1]
    kh, kw = ksize
    oh, ow = _out(x.shape, ksize, stride, pad)
    xh = _padded(x, lo, hi, *pad)
    sn, sh, sw, sc = xh.strides
    s = hi - lo
    col = _workspace('col', (s, oh, ow, kh, kw * c), x.dtype)
    for i in range(kh):  # rows SY p + i; (j, c) contiguous at SX q
        col[:, :, :, i] = as_strided(
            xh[:, i:], (s, oh, ow, kw * c),
            (sn, stride[0] * sh, stride[1] * sw, sc), writeable=False)
    return col.reshape(s * oh * ow, kh * kw * c)


def col2im(gcol, out, x_shape, ksize, stride, pad, bias=None):
    """Writes into ``out`` (s, C, H, W) the gradient of those samples from
    their column-matrix gradient gcol (the adjoint of :func:`im2col`),
    plus ``bias`` per channel if given; x_shape is the whole input's.

    gcol's (j, c) values of position (n, p, q) and kernel row i go to KW C
    contiguous values of the channel-last gradient, at column SX q; those
    of the outputs q = r, r + m, r + 2 m, ... (m = ceil(KW / SX)) do not
    overlap, so each (i, r) is one strided addition in runs of KW C."""
    _, c, h, w = x_shape
    kh, kw = ksize
    (sy, sx), (ph, pw) = stride, pad
    oh, ow = _out(x_shape, ksize, stride, pad)
    s = len(out)
    gcol = gcol.reshape(s, oh, ow, kh, kw * c)
    acc = _workspace('acc', (s, h + 2 * ph, w + 2 * pw, c), gcol.dtype)
    acc[...] = 0
    sn, sh, sw, sc = acc.strides
    m = -(-kw // sx)
    for i in range(kh):
        for r in range(min(m, ow)):
            src = gcol[:, :, r::m, i]
            dest = as_strided(acc[:, i:, sx * r:], src.shape,
                              (sn, sy * sh, m * sx * sw, sc))
            dest += src
    inner = acc[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
    if bias is None:
        out[...] = inner
    else:
        numpy.add(inner, bias[:, None, None], out=out)


def forward(x, W, b, stride, pad):
    """y = conv(x, W) + b on (N, C, H, W) input (``b`` may be None)."""
    n, out = len(x), W.shape[0]
    oh, ow = _out(x.shape, W.shape[2:], stride, pad)
    W2T = _taps_last(W).T
    y = numpy.empty((n, out, oh, ow), x.dtype)

    def chunk(lo, hi):
        col = im2col(x, lo, hi, W.shape[2:], stride, pad)
        yT = numpy.matmul(col, W2T, out=_workspace(
            'rows', (len(col), out), x.dtype))
        _channel_first(yT, y[lo:hi], b)

    _split(chunk, n, oh * ow * W2T.shape[0])
    return y


def backward(x, W, gy, stride, pad, need_x=True, need_w=True):
    """``(gx, gW, gb)`` of :func:`forward` (None where not needed)."""
    n = len(x)
    oh, ow = gy.shape[2:]
    W2 = _taps_last(W)
    gx = numpy.empty_like(x) if need_x else None

    def chunk(lo, hi):
        gyT = _rows(gy, lo, hi)
        sums = [gyT.sum(0)]
        if need_w:
            col = im2col(x, lo, hi, W.shape[2:], stride, pad)
            sums.append(numpy.matmul(col.T, gyT))
        if need_x:  # col is no longer needed: its buffer takes gcol
            gcol = numpy.matmul(gyT, W2, out=_workspace(
                'col', (len(gyT), W2.shape[1]), gy.dtype))
            col2im(gcol, gx[lo:hi], x.shape, W.shape[2:], stride, pad)
        return sums

    sums = _split(chunk, n, oh * ow * W2.shape[1], 1 + need_w)
    gW = _taps_first(sums[1].T, W.shape) if need_w else None
    return gx, gW, sums[0]


def deconv_forward(x, W, b, stride, pad):
    """The transposed convolution of x with W of shape (in, out, KH, KW):
    y = col2im(xT W2) (+ b, added in col2im's last pass)."""
    n, _, h, w = x.shape
    oh, ow = (deconv_size(h, W.shape[2], stride[0], pad[0]),
              deconv_size(w, W.shape[3], stride[1], pad[1]))
    W2 = _taps_last(W)
    y = numpy.empty((n, W.shape[1], oh, ow), x.dtype)

    def chunk(lo, hi):
        xT = _rows(x, lo, hi)
        gcol = numpy.matmul(xT, W2, out=_workspace(
            'col', (len(xT), W2.shape[1]), x.dtype))
        col2im(gcol, y[lo:hi], y.shape, W.shape[2:], stride, pad, b)

    _split(chunk, n, h * w * W2.shape[1])
    return y


def deconv_backward(x, W, gy, stride, pad, need_x=True, need_w=True):
    """``(gx, gW, gb)`` of :func:`deconv_forward`: with col = im2col(gy),
    gxT = col W2^T and gW2 = (col^T xT)^T."""
    n, _, h, w = x.shape
    W2 = _taps_last(W)
    gx = numpy.empty_like(x) if need_x else None

    def chunk(lo, hi):
        col = im2col(gy, lo, hi, W.shape[2:], stride, pad)
        sums = [gy[lo:hi].sum(axis=(0, 2, 3))]
        if need_x:
            gxT = numpy.matmul(col, W2.T, out=_workspace(
                'rows', (len(col), W2.shape[0]), x.dtype))
            _channel_first(gxT, gx[lo:hi])
        if need_w:
            sums.append(numpy.matmul(col.T, _rows(x, lo, hi)))
        return sums

    sums = _split(chunk, n, h * w * W2.shape[1], 1 + need_w)
    gW = _taps_first(sums[1].T, W.shape) if need_w else None
    return gx, gW, sums[0]
