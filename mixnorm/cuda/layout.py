"""Layout changes of activations on the GPU (``layout.cu``): to the GMM
fit's rows, and between the (N, C, L) activations and the (C, N L)
matrices of the GEMM convolution."""
from mixnorm.cuda import _compile
from mixnorm.cuda._compile import cupy

TILE = 32          # the tile side of layout.cu
MAX_SAMPLES = 65535  # N: the grid's third dimension


def to_rows(x):
    """The (N H W, C) rows of (N, C, H, W) x (any trailing dimensions), as
    a new C-contiguous array, in one launch."""
    n, c = x.shape[:2]
    length = x.size // max(n * c, 1)
    x = cupy.ascontiguousarray(x)
    rows = cupy.empty((n * length, c), x.dtype)
    if rows.size:
        fn = _compile.kernel('layout.cu', 'nchw_to_rows', x.dtype,
                             defines=('-DTILE={}'.format(TILE),
                                      _compile.index_type(0)))
        _compile.launch(fn, (-(-length // TILE), -(-c // TILE), n),
                        (x, c, length, rows))
    return rows


def swap01(src, bias=None):
    """(B, A, L) from (A, B, L) ``src``, plus ``bias[a]`` if given, as a
    new C-contiguous array, in one launch."""
    a, b, length = src.shape
    src = cupy.ascontiguousarray(src)
    dst = cupy.empty((b, a, length), src.dtype)
    if dst.size:
        fn = _compile.kernel('layout.cu', 'swap01', src.dtype, defines=(
            '-DTILE={}'.format(TILE), _compile.index_type(dst.size)))
        _compile.launch(fn, _compile.flat_grid(dst.size),
                        (src, a, b, length, bias, dst))
    return dst
