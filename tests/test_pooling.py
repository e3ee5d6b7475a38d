"""mixnorm.max_pooling_2d and average_pooling_2d: Chainer's functions, on
the kernels where they apply; the kernel path runs on the CPU emulator
(tests/cuda_emulator.py) against Chainer on NumPy, and on a GPU in
tests/test_gpu.py."""
import numpy
import pytest

import chainer
import chainer.functions as F

import mixnorm
from mixnorm import cuda
from mixnorm.pooling import uses_kernels

import cuda_emulator
from cuda_emulator import launched
from kernel_cases import check_pooling

EMULATED = cuda_emulator.backend()
DTYPES = [numpy.float32, numpy.float64]




@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape, ksize, stride, pad, cover_all, ties', [
    ((2, 3, 9, 9), 3, 2, 0, True, False),       # the CIFAR CNN's pools
    ((2, 3, 8, 8), 3, 2, 0, True, True),        # equal maxima
    ((1, 2, 9, 7), 3, 2, 1, False, False),      # Inception's reductions
    ((2, 2, 5, 6), (2, 3), (1, 2), (1, 1), True, True),
    ((1, 1, 4, 4), 4, 1, 0, True, False)])      # one window
def test_max_pooling_matches_chainer(emulated, dtype, shape, ksize, stride,
                                     pad, cover_all, ties):
    check_pooling(EMULATED, dtype, shape, 'max', ksize, stride, pad,
                  cover_all, ties)
    assert launched() == ['max_pool', 'max_pool_grad']


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape, ksize, stride, pad', [
    ((2, 3, 4, 4), 4, 1, 0),                    # the CIFAR CNN's pool4
    ((2, 3, 8, 8), 2, None, 0),                 # DenseNet's transitions
    ((1, 2, 7, 5), 3, 1, 1),                    # padding counts as zeros
    ((1, 2, 6, 7), (2, 3), (2, 1), (0, 1))])
def test_average_pooling_matches_chainer(emulated, dtype, shape, ksize,
                                         stride, pad):
    check_pooling(EMULATED, dtype, shape, 'average', ksize, stride, pad)
    assert launched() == ['average_pool', 'average_pool_grad']


def test_which_calls_take_the_kernels(emulated, monkeypatch):
    x = numpy.ones((2, 3, 4, 4), numpy.float32)
    assert uses_kernels(x) and not uses_kernels(x[0])
    assert not uses_kernels(x.astype(numpy.float16))
    monkeypatch.setattr(cuda, 'pool_kernels', False)
    assert not uses_kernels(x)
    monkeypatch.setattr(cuda, 'pool_kernels', True)
    monkeypatch.setattr(chainer.backends.cuda, 'cudnn_enabled', True)
    monkeypatch.setattr(chainer, 'should_use_cudnn',
                        lambda level, lowest_version=0: True)
    assert not uses_kernels(x)


def test_double_backprop_raises(emulated):
    x = chainer.Variable(numpy.random.RandomState(0).randn(1, 1, 4, 4))
    y = mixnorm.max_pooling_2d(x, 2)
    gx, = chainer.grad([F.sum(y * y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='MIXNORM_POOL=chainer'):
        F.sum(gx).backward()


def test_on_numpy_it_is_chainers_function():
    x = numpy.random.RandomState(0).randn(2, 3, 7, 7).astype(numpy.float32)
    numpy.testing.assert_array_equal(
        mixnorm.max_pooling_2d(x, 3, 2).array,
        F.max_pooling_2d(x, 3, 2).array)
    numpy.testing.assert_array_equal(
        mixnorm.average_pooling_2d(x, 2).array,
        F.average_pooling_2d(x, 2).array)
