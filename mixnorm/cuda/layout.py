"""Layout changes of activations on the GPU (``layout.cu``)."""
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
                             defines=('-DTILE={}'.format(TILE),))
        _compile.launch(fn, (-(-length // TILE), -(-c // TILE), n),
                        (x, c, length, rows))
    return rows
