"""Shared pytest setup: mixnorm is imported first so that Chainer imports."""
import mixnorm  # NOQA: F401  (patches NumPy/setuptools for Chainer)
import numpy
import pytest


def pytest_configure(config):
    config.addinivalue_line('markers', 'gpu: needs CUDA and CuPy')
    config.addinivalue_line('markers', 'slow: long-running stress test')


@pytest.fixture
def rng():
    return numpy.random.RandomState(0)


@pytest.fixture
def emulated(monkeypatch):
    """The package's kernels on the CPU emulator
    (tests/support/cuda_emulator.py): NumPy arrays take the kernel path;
    skipped without a C++ compiler."""
    import cuda_emulator
    if cuda_emulator.compiler() is None:
        pytest.skip('no C++ compiler')
    return cuda_emulator.install(monkeypatch)
