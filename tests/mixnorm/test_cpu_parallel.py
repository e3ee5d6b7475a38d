"""mixnorm.cpu.parallel: NumPy passes split into parts on threads."""
import threading

import pytest

from mixnorm.cpu import parallel


@pytest.mark.parametrize('threads, n, elements, parts', [
    (1, 10, 1 << 30, 1), (3, 10, 1 << 30, 3), (3, 2, 1 << 30, 2),
    (3, 10, 100, 1),  # too small to split
    (4, 10, 2 * parallel.MIN_ELEMENTS, 2)])
def test_parts_cover_the_range_once(monkeypatch, threads, n, elements,
                                    parts):
    monkeypatch.setattr(parallel, 'threads', threads)
    seen, lock = [], threading.Lock()

    def fn(lo, hi):
        with lock:
            seen.append((lo, hi, threading.current_thread().name))
    parallel.run(fn, n, elements)
    bounds = sorted(s[:2] for s in seen)
    assert len(bounds) == parts
    assert [b for a in bounds for b in a] == sorted(
        b for a in bounds for b in a)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    first = [s for s in seen if s[0] == 0][0]
    assert first[2] == threading.current_thread().name  # the caller's part


def test_an_error_in_a_part_is_raised_after_every_part_ends(monkeypatch):
    monkeypatch.setattr(parallel, 'threads', 3)
    done = []

    def fn(lo, hi):
        if lo > 0:
            raise ValueError('part {}'.format(lo))
        done.append(lo)
    with pytest.raises(ValueError, match='part'):
        parallel.run(fn, 9, 1 << 30)
    assert done == [0]


def test_default_follows_the_blas_settings(monkeypatch):
    monkeypatch.setenv('OPENBLAS_NUM_THREADS', '3')
    monkeypatch.setenv('OMP_NUM_THREADS', '5')
    assert parallel._default_threads() == 3
    monkeypatch.delenv('OPENBLAS_NUM_THREADS')
    assert parallel._default_threads() == 5
    monkeypatch.delenv('OMP_NUM_THREADS')
    assert parallel._default_threads() >= 1


@pytest.mark.parametrize('threads, n, per, elements', [
    (1, 10, 3, 1 << 30), (3, 10, 3, 1 << 30), (3, 10, 1, 1 << 30),
    (3, 10, 4, 100), (2, 5, 10, 1 << 30)])
def test_chunks_cover_the_range_once_and_sum_in_order(monkeypatch, threads,
                                                      n, per, elements):
    import numpy
    monkeypatch.setattr(parallel, 'threads', threads)
    seen, lock = [], threading.Lock()

    def fn(lo, hi):
        with lock:
            seen.append((lo, hi))
        # a value of its own per chunk, and its length
        return numpy.float32(2.0 ** (24 - lo)), numpy.array([hi - lo])
    total, count = parallel.over_chunks(fn, n, per, elements, 2)
    chunks = sorted(seen)
    assert chunks[0][0] == 0 and chunks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert all(0 < hi - lo <= per for lo, hi in chunks)
    assert count[0] == n
    expected = numpy.float32(0)
    for lo, _ in chunks:
        expected = expected + numpy.float32(2.0 ** (24 - lo))
    assert total == expected


def test_blas_runs_on_one_thread_while_parts_run(monkeypatch):
    threadpoolctl = pytest.importorskip('threadpoolctl')
    monkeypatch.setattr(parallel, 'threads', 2)
    seen = []

    def blas_threads(lo, hi):
        seen.append([lib['num_threads'] for lib in
                     threadpoolctl.threadpool_info()
                     if lib['user_api'] == 'blas'])
    parallel.over_chunks(blas_threads, 4, 1, 1 << 30)
    assert seen and all(t and set(t) == {1} for t in seen)
    before = [lib['num_threads'] for lib in threadpoolctl.threadpool_info()
              if lib['user_api'] == 'blas']
    parallel.over_chunks(blas_threads, 4, 1, 1)  # one part: BLAS as set
    assert seen[-1] == before
