"""NumPy passes on every core the process is given.

BLAS runs a GEMM on all its threads, but NumPy runs a copy or a ufunc on
the calling thread only, so on a 2-core machine the unfoldings and
layout changes of :mod:`mixnorm.cpu.conv` and the passes of
:mod:`mixnorm.cpu.pool` would use half the machine.  NumPy releases the
GIL inside such passes, so :func:`run` splits one into contiguous parts
along its outer axis (batch, planes) and runs them at once on
:data:`threads` threads (the calling one and a pool of the others); the
parts write disjoint memory.  Passes over fewer than :data:`MIN_ELEMENTS`
elements stay on the calling thread.

:func:`over_chunks` goes one step further for work that is best done a
few samples at a time while they are in cache (the unfolded convolution,
the normalizations' sums): each part walks its range in chunks, and the
chunks' results are summed in a fixed order.  While the parts run, BLAS
is held to one thread (threadpoolctl), so that each core runs its own
chunks' GEMMs instead of two callers sharing BLAS's threads.

:data:`threads` is the BLAS's setting: ``OPENBLAS_NUM_THREADS``, else
``OMP_NUM_THREADS``, else the CPUs this process may run on.  Set it (or
assign ``mixnorm.cpu.parallel.threads``) to 1 for one thread.
"""
import functools
import operator
import os
from concurrent.futures import ThreadPoolExecutor, wait

import threadpoolctl


def _default_threads():
    for name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS'):
        value = os.environ.get(name, '').strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Threads for the NumPy passes (see the module docstring).
threads = _default_threads()
#: Passes smaller than this (elements) are not split.
MIN_ELEMENTS = 1 << 18

_pool = _pool_key = None
_blas = None


def _executor():
    """The pool of ``threads - 1`` threads, made again after a fork or a
    change of :data:`threads`."""
    global _pool, _pool_key
    key = (os.getpid(), threads)
    if _pool_key != key:
        if _pool is not None and _pool_key[0] == key[0]:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(threads - 1, thread_name_prefix='mixnorm')
        _pool_key = key
    return _pool


def _parts(n, elements):
    """How many parts :func:`run` splits a pass of ``elements`` over
    ``range(n)`` into."""
    return max(1, min(threads, n, elements // MIN_ELEMENTS))


def run(fn, n, elements):
    """``fn(lo, hi)`` for a split of ``range(n)`` into up to
    :data:`threads` contiguous parts, at once, on the pool; ``elements``
    is the size of the whole pass (below :data:`MIN_ELEMENTS`: one part,
    in the calling thread)."""
    parts = _parts(n, elements)
    if parts == 1:
        fn(0, n)
        return
    bounds = [n * k // parts for k in range(parts + 1)]
    pool = _executor()
    futures = [pool.submit(fn, bounds[k], bounds[k + 1])
               for k in range(1, parts)]
    try:
        fn(bounds[0], bounds[1])
    finally:  # no part may still be writing when this returns or raises
        wait(futures)
    for future in futures:
        future.result()


def _one_blas_thread():
    """A context in which BLAS runs every call on the calling thread."""
    global _blas
    if _blas is None:
        _blas = threadpoolctl.ThreadpoolController()
    return _blas.limit(limits=1, user_api='blas')


def over_chunks(fn, n, per, elements, n_sums=0):
    """``fn(lo, hi)`` over chunks of at most ``per`` items of ``range(n)``,
    the chunks split into contiguous parts on every core as :func:`run`
    splits a pass (``elements``: the size of the whole pass), BLAS on one
    thread per part while more than one part runs.

    With ``n_sums``, ``fn`` returns a tuple of ``n_sums`` arrays and the
    result is their sums over all chunks, each part's added in the order
    of its chunks and the parts in the order of ``range(n)`` (so the same
    for a given split)."""
    per = max(1, int(per))
    totals = {}

    def part(lo, hi):
        total = None
        for a in range(lo, hi, per):
            got = fn(a, min(a + per, hi))
            if n_sums:
                total = list(got) if total is None else [
                    t + g for t, g in zip(total, got)]
        totals[lo] = total

    if _parts(n, elements) == 1:
        part(0, n)
    else:
        with _one_blas_thread():
            run(part, n, elements)
    if n_sums:
        ordered = [totals[k] for k in sorted(totals)]
        return [functools.reduce(operator.add, (p[j] for p in ordered))
                for j in range(n_sums)]


def over_samples(fn, x, chunk, n_sums=0):
    """:func:`over_chunks` over the samples (first axis) of ``x``, in
    chunks of about ``chunk`` elements (at least one sample)."""
    n = len(x)
    return over_chunks(fn, n, chunk // max(1, x.size // max(n, 1)), x.size,
                       n_sums)
