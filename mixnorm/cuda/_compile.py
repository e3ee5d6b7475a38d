"""The compile cache and the launch geometry of the CUDA kernels.

The ``.cu`` files of this package are compiled by NVRTC (``cupy.RawModule``)
with the geometry below passed as ``-D`` options, so Python and CUDA read
one definition.  ``#include "common.cuh"`` is inlined here before
compiling, so that CuPy's kernel cache, which is keyed on the source text,
sees a change of the header.
"""
import contextlib
import os

import numpy

try:
    import cupy
except ImportError:  # CPU-only install
    cupy = None

WARPS = 8               # warps per block
THREADS = 32 * WARPS    # threads per block of every kernel but seed_pick
TD = 8                  # dimensions per block of the column kernels
MAX_TRIALS = 16         # k-means++ candidates per round the kernels hold
PICK = 1024             # threads of the seed_pick block
ROW_BLOCKS = 512        # most blocks of a row kernel (grid-stride beyond)
FLAT_BLOCKS = 4096      # most blocks of an elementwise kernel
COL_TARGET = 1024       # blocks aimed at by moments_part and the channel
                        # sums of bn.cu and mn.cu
SLICE = 4096            # values of a channel one block sums, at least
MAX_CHANNELS = 65535    # channels of the channel kernels: the grid-y limit

GEOMETRY = ('-DWARPS={}'.format(WARPS), '-DTD={}'.format(TD),
            '-DMAXT={}'.format(MAX_TRIALS), '-DPICK={}'.format(PICK))

_DIR = os.path.dirname(os.path.abspath(__file__))
_INCLUDE = '#include "common.cuh"'
_sources = {}
_modules = {}
_functions = {}  # (filename, name, dtype, K, defines) -> kernel function
_counters = {}  # device id -> MAX_CHANNELS arrival counters (common.cuh)


def source(filename):
    """The text of ``filename`` (in this package), header inlined."""
    text = _sources.get(filename)
    if text is None:
        with open(os.path.join(_DIR, filename)) as f:
            text = f.read()
        if _INCLUDE in text:
            with open(os.path.join(_DIR, 'common.cuh')) as f:
                text = text.replace(_INCLUDE, f.read())
        _sources[filename] = text
    return text


def options(dtype=None, n_components=None, defines=()):
    """NVRTC options: the geometry, ``real_t`` for a dtype, ``NK`` for K."""
    opts = list(GEOMETRY)
    if dtype is not None:
        real = {numpy.dtype(numpy.float32): 'float',
                numpy.dtype(numpy.float64): 'double'}[numpy.dtype(dtype)]
        opts.append('-Dreal_t=' + real)
    if n_components is not None:
        opts.append('-DNK={}'.format(int(n_components)))
    return tuple(opts) + tuple(defines)


def kernel(filename, name, dtype=None, n_components=None, defines=()):
    """Kernel ``name`` of ``filename`` compiled for the options (cached).

    A file is compiled once per distinct set of options: per dtype, per K
    where its kernels use ``NK``, per ``defines``.  The function itself is
    cached on the arguments, since this runs at every launch.
    """
    key = (filename, name, dtype, n_components, defines)
    fn = _functions.get(key)
    if fn is None:
        fn = _functions[key] = _module(filename, options(
            dtype, n_components, defines)).get_function(name)
    return fn


def _module(filename, opts):
    module = _modules.get((filename, opts))
    if module is None:
        module = _modules[(filename, opts)] = cupy.RawModule(
            code=source(filename), options=opts)
    return module


def row_grid(m):
    """Blocks of a row kernel (one warp per row) over m rows."""
    return max(1, min(ROW_BLOCKS, -(-m // WARPS)))


def flat_grid(size):
    """Blocks of an elementwise kernel over ``size`` elements."""
    return max(1, min(FLAT_BLOCKS, -(-size // THREADS)))


def cover(size):
    """Blocks of one thread per element, for kernels without a grid
    stride."""
    return max(1, -(-size // THREADS))


def launch(fn, grid, args, threads=THREADS):
    """Queue ``fn`` on the current stream; ``grid`` an int or a tuple."""
    grid = grid if isinstance(grid, tuple) else (grid,)
    if _timings is None:
        fn(grid, (threads,), args)
        return
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    fn(grid, (threads,), args)
    end.record()
    _timings.append((getattr(fn, 'name', '?'), start, end))


_timings = None  # (kernel name, start, end event) of each launch, or None


@contextlib.contextmanager
def timed_launches(totals):
    """Record every launch inside the block between two CUDA events and,
    at its end (one synchronisation), add each kernel's milliseconds to
    ``totals`` ({name: [ms, launches]}).  For benchmarks: the events cost
    host time of their own."""
    global _timings
    _timings = records = []
    try:
        yield totals
    finally:
        _timings = None
        if records:
            records[-1][2].synchronize()
        for name, start, end in records:
            entry = totals.setdefault(name, [0.0, 0])
            entry[0] += cupy.cuda.get_elapsed_time(start, end)
            entry[1] += 1


def contiguous(a, dtype):
    """``a`` as a C-contiguous CuPy array of ``dtype``."""
    return cupy.ascontiguousarray(cupy.asarray(a), dtype=dtype)


def index_type(size):
    """``-Dindex_t=`` for kernels that index ``size`` elements: 32-bit
    where they fit (cheaper division)."""
    return '-Dindex_t=' + ('unsigned int' if size < 2 ** 31
                           else 'long long')


def channel_grid(n, c, length):
    """(S, C) blocks of the channel sums over (n, c, length): about
    COL_TARGET blocks, each summing SLICE values or more; C at most
    MAX_CHANNELS (callers check :func:`fits_channel_grid`)."""
    if not fits_channel_grid(c):
        raise ValueError('{} channels: the channel kernels take at most '
                         '{}'.format(c, MAX_CHANNELS))
    return max(1, min(-(-n * length // SLICE), COL_TARGET // c)), c


def fits_channel_grid(c):
    """Whether c channels fit the channel kernels' grid (C on grid y)."""
    return 1 <= c <= MAX_CHANNELS


def channel_counters():
    """The arrival counters of ``channel_done`` on the current device.

    MAX_CHANNELS zeros, made once per device by its first channel launch
    and never replaced, so a captured CUDA graph keeps valid counters.
    The last block of a channel resets its count, so they are zero between
    launches, and one set serves every channel launch of the device that
    runs after the previous one: channel kernels (bn.cu, mn.cu) of one
    device must run on one stream at a time, or on streams ordered by
    events.  The first channel launch on a device must not be captured
    (the zeros would be a node of the graph, not set at once): it raises.
    """
    device = cupy.cuda.Device().id
    counter = _counters.get(device)
    if counter is None:
        if _capturing():
            raise RuntimeError(
                'mixnorm.cuda: the first batch or mixture normalization on '
                'device {} is inside a CUDA graph capture; run one call '
                'before capturing, so that its arrival counters are made '
                'outside the graph'.format(device))
        counter = _counters[device] = cupy.zeros(MAX_CHANNELS, numpy.uint32)
    return counter


def _capturing():
    """Whether the current stream is capturing a CUDA graph (a query that
    CUDA refuses during a capture counts as capturing)."""
    try:
        return bool(cupy.cuda.get_current_stream().is_capturing())
    except Exception:  # cudaErrorStreamCaptureImplicit and the like
        return True
