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
