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
