"""2-D convolution and its transpose as one GEMM per direction, for GPUs
without cuDNN (``conv.cu``).

The input is unfolded into the column matrix col (C KH KW, N OH OW)
(``im2col``), so that, with gy seen as the (out, N OH OW) matrix gy2:

    y2   = W2 col          (W2: W as (out, C KH KW))
    gW2  = gy2 col^T
    gcol = W2^T gy2        (folded back into gx by ``col2im``)

are three single cuBLAS GEMMs through ``cupy.matmul`` (float32 GEMMs
use TF32 only when CuPy is told to, ``CUPY_TF32=1``).  Besides the GEMMs
only y and gy change layout, (out, N, L) <-> (N, out, L) (one
``layout.swap01`` launch each, the bias added on the way), which is the
size of the activations, not of col.  col is built again in the backward
pass instead of being kept, so memory peaks as with Chainer's own
convolution.
The transposed convolution (``deconv_*``) is the same three GEMMs with the
roles of x and y exchanged.
"""
from mixnorm.cuda import _compile
from mixnorm.cuda import layout
from mixnorm.cuda._compile import cupy

MAX_TAPS = 65535  # C KH KW: the rows of col, one grid row each


def out_size(size, k, s, p):
    """Output length of a convolution without ``cover_all``."""
    return (size + 2 * p - k) // s + 1


def _geometry(x_shape, w_shape, stride, pad):
    n, c, h, w = x_shape
    kh, kw = w_shape[2:]
    (sy, sx), (ph, pw) = stride, pad
    return (n, c, h, w, kh, kw, sy, sx, ph, pw, out_size(h, kh, sy, ph),
            out_size(w, kw, sx, pw))


def _kernel(name, dtype, size):
    return _compile.kernel('conv.cu', name, dtype, defines=(
        _compile.index_type(size),))


def im2col(x, w_shape, stride, pad):
    """The column matrix (C KH KW, N OH OW) of x for filters of w_shape."""
    x = cupy.ascontiguousarray(x)
    geo = _geometry(x.shape, w_shape, stride, pad)
    n, c, _, _, kh, kw = geo[:6]
    taps, positions = c * kh * kw, n * geo[10] * geo[11]
    col = cupy.empty((taps, positions), x.dtype)
    blocks = max(1, min(_compile.cover(positions),
                        -(-_compile.FLAT_BLOCKS // taps)))
    _compile.launch(_kernel('im2col', x.dtype, max(x.size, positions)),
                    (blocks, taps), (x,) + geo + (col,))
    return col


def col2im(gcol, x_shape, w_shape, stride, pad):
    """gx of shape x_shape from the column-matrix gradient gcol."""
    geo = _geometry(x_shape, w_shape, stride, pad)
    gx = cupy.empty(x_shape, gcol.dtype)
    _compile.launch(_kernel('col2im', gcol.dtype, gx.size),
                    _compile.flat_grid(gx.size), (gcol,) + geo + (gx,))
    return gx


def _matrix(a):
    """(N, C, H, W) as the (C, N H W) matrix of the GEMMs."""
    n, c = a.shape[:2]
    return layout.swap01(a.reshape(n, c, -1)).reshape(c, -1)


def _from_matrix(a2, n, h, w, bias=None):
    """The inverse of :func:`_matrix` (plus ``bias`` per channel)."""
    c = a2.shape[0]
    return layout.swap01(a2.reshape(c, n, h * w), bias).reshape(n, c, h, w)


def forward(x, W, b, stride, pad):
    """y = conv(x, W) + b on (N, C, H, W) input (``b`` may be None)."""
    n, _, h, w = x.shape
    out = W.shape[0]
    oh, ow = (out_size(h, W.shape[2], stride[0], pad[0]),
              out_size(w, W.shape[3], stride[1], pad[1]))
    y2 = cupy.matmul(W.reshape(out, -1), im2col(x, W.shape, stride, pad))
    return _from_matrix(y2, n, oh, ow, b)


def backward(x, W, gy, stride, pad, need_x=True, need_w=True):
    """``(gx, gW, gb)`` of :func:`forward` (None where not needed)."""
    out = gy.shape[1]
    gy2 = _matrix(gy)
    gx = gW = None
    if need_w:
        gW = cupy.matmul(gy2, im2col(x, W.shape, stride, pad).T).reshape(
            W.shape)
    if need_x:
        gcol = cupy.matmul(W.reshape(out, -1).T, gy2)
        gx = col2im(gcol, x.shape, W.shape, stride, pad)
    return gx, gW, gy2.sum(axis=1)


def deconv_size(size, k, s, p):
    """Output length of a transposed convolution without ``cover_all``."""
    return s * (size - 1) + k - 2 * p


def deconv_forward(x, W, b, stride, pad):
    """The transposed convolution (Chainer's deconvolution) of x with W of
    shape (in, out, KH, KW): the adjoint of a convolution of its output,
    y = col2im(W2^T x2) (+ b)."""
    n, _, h, w = x.shape
    oh, ow = (deconv_size(h, W.shape[2], stride[0], pad[0]),
              deconv_size(w, W.shape[3], stride[1], pad[1]))
    gcol = cupy.matmul(W.reshape(W.shape[0], -1).T, _matrix(x))
    y = col2im(gcol, (n, W.shape[1], oh, ow), W.shape, stride, pad)
    if b is not None:
        y += b[None, :, None, None]
    return y


def deconv_backward(x, W, gy, stride, pad, need_x=True, need_w=True):
    """``(gx, gW, gb)`` of :func:`deconv_forward`: with col = im2col(gy),
    gx2 = W2 col and gW2 = x2 col^T."""
    col = im2col(gy, W.shape, stride, pad)
    gx = gW = None
    if need_x:
        gx = _from_matrix(cupy.matmul(W.reshape(W.shape[0], -1), col),
                          *((x.shape[0],) + x.shape[2:]))
    if need_w:
        gW = cupy.matmul(_matrix(x), col.T).reshape(W.shape)
    return gx, gW, gy.sum(axis=(0, 2, 3))
