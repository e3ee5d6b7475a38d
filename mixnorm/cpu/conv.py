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

col is written per kernel row i, one strided copy each: with x channel-last
(N, H, W, C) (one copy of x), the KW C values (j, c) of position (n, p, q)
and row i are contiguous in x, so each copy moves runs of KW C values (a
view of x with overlapping windows, ``as_strided``), not the runs of OW
values of a channel-first unfolding.  col2im, the adjoint, adds gcol into
the channel-last gradient in runs of KW C values too, then moves it back
to (N, C, H, W).  Besides col, only the activations change layout (x, y,
gy, gx: one pass each, the size of one activation against col's KH KW
times the input; the bias is added in y's).  These passes are split over
the batch on every core (:mod:`mixnorm.cpu.parallel`).

col is built again in the backward pass rather than kept, as Chainer does,
and gcol is written over it.  Both live in a scratch buffer per thread,
kept between calls (as large as the largest col so far: 420 MB for the
CIFAR CNN at batch 256): fresh memory of that size costs the kernel's
zeroing of every page on first touch, about as long as writing col.

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


def out_size(size, k, s, p):
    """Output length of a convolution without ``cover_all``."""
    return chainer_conv.get_conv_outsize(size, k, s, p)


def deconv_size(size, k, s, p):
    """Output length of a transposed convolution without ``cover_all``."""
    return chainer_conv.get_deconv_outsize(size, k, s, p)


_scratch = threading.local()


def _workspace(shape, dtype):
    """An uninitialised array in this thread's scratch buffer, kept and
    grown between calls: col and gcol, the largest arrays here, then take
    no fresh memory (whose pages the kernel zeroes on first touch)."""
    nbytes = int(numpy.prod(shape)) * numpy.dtype(dtype).itemsize
    buf = getattr(_scratch, 'buf', None)
    if buf is None or buf.size < nbytes:
        _scratch.buf = buf = None  # free the old one first
        _scratch.buf = buf = numpy.empty(nbytes, numpy.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def _out(shape, ksize, stride, pad):
    return tuple(out_size(shape[2 + a], ksize[a], stride[a], pad[a])
                 for a in (0, 1))


def _channel_last(x, ph=0, pw=0):
    """(N, C, H, W) x as (N, H + 2 PH, W + 2 PW, C), zero-padded (one
    copy)."""
    n, c, h, w = x.shape
    shape = (n, h + 2 * ph, w + 2 * pw, c)
    out = numpy.zeros(shape, x.dtype) if ph or pw else numpy.empty(
        shape, x.dtype)

    def part(lo, hi):
        out[lo:hi, ph:ph + h, pw:pw + w] = x[lo:hi].transpose(0, 2, 3, 1)
    parallel.run(part, n, x.size)
    return out


def _rows(a):
    """(N, C, H, W) as the (N H W, C) matrix of the GEMMs (one copy)."""
    return _channel_last(a).reshape(-1, a.shape[1])


def _channel_first(rows, n, h, w, bias=None):
    """The (N, C, H, W) array of a (N H W, C) matrix (plus ``bias`` per
    channel), in one pass."""
    c = rows.shape[1]
    src = rows.reshape(n, h * w, c).transpose(0, 2, 1)
    a = numpy.empty((n, c, h * w), rows.dtype)

    def part(lo, hi):
        if bias is None:
            a[lo:hi] = src[lo:hi]
        else:
            numpy.add(src[lo:hi], bias[:, None], out=a[lo:hi])
    parallel.run(part, n, a.size)
    return a.reshape(n, c, h, w)


def _taps_last(W):
    """(A, B, KH, KW) filters as the (A, KH KW B) matrix of col's column
    order (a copy)."""
    return W.transpose(0, 2, 3, 1).reshape(W.shape[0], -1)


def _taps_first(W2, shape):
    """The inverse of :func:`_taps_last`, to ``shape``."""
    a, b, kh, kw = shape
    return numpy.ascontiguousarray(
        W2.reshape(a, kh, kw, b).transpose(0, 3, 1, 2))


def im2col(x, w_shape, stride, pad):
    """The column matrix (N OH OW, KH KW C) of (N, C, H, W) x for filters
    of w_shape (only its KH, KW count), in this thread's scratch buffer
    (valid until the next call here)."""
    n, c = x.shape[:2]
    kh, kw = w_shape[2:]
    oh, ow = _out(x.shape, (kh, kw), stride, pad)
    xh = _channel_last(x, *pad)
    sn, sh, sw, sc = xh.strides
    col = _workspace((n, oh, ow, kh, kw * c), x.dtype)

    def part(lo, hi):
        for i in range(kh):  # rows SY p + i; (j, c) contiguous at SX q
            col[lo:hi, :, :, i] = as_strided(
                xh[lo:hi, i:], (hi - lo, oh, ow, kw * c),
                (sn, stride[0] * sh, stride[1] * sw, sc), writeable=False)
    parallel.run(part, n, col.size)
    return col.reshape(n * oh * ow, kh * kw * c)


def col2im(gcol, x_shape, w_shape, stride, pad, bias=None):
    """(N, C, H, W) gx from the column-matrix gradient gcol (the adjoint
    of :func:`im2col`), plus ``bias`` per channel if given.

    gcol's (j, c) values of position (n, p, q) and kernel row i go to KW C
    contiguous values of the channel-last gradient, at column SX q; those
    of the outputs q = r, r + m, r + 2 m, ... (m = ceil(KW / SX)) do not
    overlap, so each (i, r) is one strided addition in runs of KW C."""
    n, c, h, w = x_shape
    kh, kw = w_shape[2:]
    (sy, sx), (ph, pw) = stride, pad
    oh, ow = _out(x_shape, (kh, kw), stride, pad)
    gcol = gcol.reshape(n, oh, ow, kh, kw * c)
    acc = numpy.zeros((n, h + 2 * ph, w + 2 * pw, c), gcol.dtype)
    sn, sh, sw, sc = acc.strides
    m = -(-kw // sx)
    gx = numpy.empty(x_shape, gcol.dtype)

    def part(lo, hi):
        for i in range(kh):
            for r in range(min(m, ow)):
                src = gcol[lo:hi, :, r::m, i]
                dest = as_strided(acc[lo:hi, i:, sx * r:], src.shape,
                                  (sn, sy * sh, m * sx * sw, sc))
                dest += src
        inner = acc[lo:hi, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
        if bias is None:
            gx[lo:hi] = inner
        else:
            numpy.add(inner, bias[:, None, None], out=gx[lo:hi])
    parallel.run(part, n, gcol.size)
    return gx


def forward(x, W, b, stride, pad):
    """y = conv(x, W) + b on (N, C, H, W) input (``b`` may be None)."""
    oh, ow = _out(x.shape, W.shape[2:], stride, pad)
    col = im2col(x, W.shape, stride, pad)
    return _channel_first(numpy.matmul(col, _taps_last(W).T),
                          x.shape[0], oh, ow, b)


def backward(x, W, gy, stride, pad, need_x=True, need_w=True):
    """``(gx, gW, gb)`` of :func:`forward` (None where not needed)."""
    gyT = _rows(gy)
    gx = gW = None
    if need_w:
        col = im2col(x, W.shape, stride, pad)
        gW = _taps_first(numpy.matmul(col.T, gyT).T, W.shape)
    if need_x:  # col is no longer needed: its buffer takes gcol
        W2 = _taps_last(W)
        gcol = numpy.matmul(gyT, W2, out=_workspace(
            (gyT.shape[0], W2.shape[1]), gy.dtype))
        gx = col2im(gcol, x.shape, W.shape, stride, pad)
    return gx, gW, gy.sum(axis=(0, 2, 3))


def deconv_forward(x, W, b, stride, pad):
    """The transposed convolution of x with W of shape (in, out, KH, KW):
    y = col2im(xT W2) (+ b, added in col2im's last pass)."""
    n, _, h, w = x.shape
    oh, ow = (deconv_size(h, W.shape[2], stride[0], pad[0]),
              deconv_size(w, W.shape[3], stride[1], pad[1]))
    xT, W2 = _rows(x), _taps_last(W)
    gcol = numpy.matmul(xT, W2, out=_workspace(
        (xT.shape[0], W2.shape[1]), x.dtype))
    return col2im(gcol, (n, W.shape[1], oh, ow), W.shape, stride, pad, b)


def deconv_backward(x, W, gy, stride, pad, need_x=True, need_w=True):
    """``(gx, gW, gb)`` of :func:`deconv_forward`: with col = im2col(gy),
    gxT = col W2^T and gW2 = (col^T xT)^T."""
    col = im2col(gy, W.shape, stride, pad)
    gx = gW = None
    if need_x:
        gx = _channel_first(numpy.matmul(col, _taps_last(W).T),
                            x.shape[0], *x.shape[2:])
    if need_w:
        gW = _taps_first(numpy.matmul(col.T, _rows(x)).T, W.shape)
    return gx, gW, gy.sum(axis=(0, 2, 3))
