"""mixnorm.Convolution2D: Chainer's link, as GEMMs on the kernels where they
apply.  The kernel path runs on the CPU emulator (tests/cuda_emulator.py,
with NumPy's matmul for cuBLAS) against Chainer's link on NumPy;
tests/test_gpu.py repeats the comparison on a GPU."""
import io

import numpy
import pytest

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import gradient_check

from mixnorm import Convolution2D, Deconvolution2D, cuda
from mixnorm.convolution import Convolution2DFunction, uses_kernels

import cuda_emulator
from cuda_emulator import launched
from kernel_cases import check_convolution

EMULATED = cuda_emulator.backend()
DTYPES = [numpy.float32, numpy.float64]




@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad, nobias', [
    ((2, 3, 8, 8), 4, (5, 5), 1, 2, True),      # the CIFAR CNN's conv1
    ((3, 2, 7, 9), 5, (3, 2), (2, 1), (1, 0), False),
    ((2, 4, 5, 5), 3, (1, 1), 1, 0, False),     # 1x1
    ((1, 2, 4, 4), 2, (3, 3), 2, 3, True),      # padding beyond the kernel
    ((2, 3, 6, 6), 2, (6, 6), 1, 0, False),     # one output position
])
def test_kernels_match_chainer(emulated, dtype, x_shape, out, ksize, stride,
                               pad, nobias):
    check_convolution(EMULATED, dtype, x_shape, out, ksize, stride, pad,
                      nobias)
    assert launched() == ['im2col', 'swap01', 'swap01', 'im2col', 'col2im']


def test_gradient_check_float64(emulated):
    rng = numpy.random.RandomState(0)
    x, W, b = rng.randn(2, 2, 5, 4), rng.randn(3, 2, 3, 2), rng.randn(3)

    def f(x, W, b):
        return Convolution2DFunction((2, 1), (1, 1)).apply((x, W, b))[0]

    y = f(x, W, b)
    gradient_check.check_backward(f, (x, W, b), rng.randn(*y.shape),
                                  eps=1e-3, atol=1e-6, rtol=1e-5)


def test_only_the_needed_gradients(emulated):
    link = Convolution2D(2, 3, 3, pad=1)
    x = numpy.ones((2, 2, 4, 4), numpy.float32)
    y = link(x)  # x is no Variable: no gx, no col2im
    F.sum(y).backward()
    assert launched() == ['im2col', 'swap01', 'swap01', 'im2col']
    assert link.W.grad is not None and link.b.grad is not None


def test_which_calls_take_the_kernels(emulated, monkeypatch):
    x = numpy.ones((2, 3, 6, 6), numpy.float32)
    assert uses_kernels(Convolution2D(3, 4, 3), x)
    assert not uses_kernels(Convolution2D(3, 4, 3), x.astype(numpy.float64))
    assert not uses_kernels(Convolution2D(3, 4, 3, dilate=2), x)
    assert not uses_kernels(Convolution2D(3, 6, 3, groups=3), x)
    assert not uses_kernels(Convolution2D(3, 4, 7), x)  # no output
    monkeypatch.setattr(cuda, 'conv_kernels', False)
    assert not uses_kernels(Convolution2D(3, 4, 3), x)
    monkeypatch.setattr(cuda, 'conv_kernels', True)
    monkeypatch.setattr(chainer.backends.cuda, 'cudnn_enabled', True)
    monkeypatch.setattr(chainer, 'should_use_cudnn',
                        lambda level, lowest_version=0: True)
    assert not uses_kernels(Convolution2D(3, 4, 3), x)


def test_lazy_initialization_and_double_backprop(emulated):
    x = chainer.Variable(numpy.random.RandomState(0).randn(2, 2, 4, 4))
    with chainer.using_config('dtype', numpy.float64):
        link = Convolution2D(None, 3, 3, pad=1)
        y = link(x)
    assert link.W.shape == (3, 2, 3, 3) and 'im2col' in launched()
    gx, = chainer.grad([F.sum(y * y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='MIXNORM_CONV=chainer'):
        F.sum(gx).backward()


def test_npz_round_trip_with_chainers_link():
    a = Convolution2D(2, 3, 3)
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, a)
    buf.seek(0)
    b = L.Convolution2D(2, 3, 3)
    chainer.serializers.load_npz(buf, b)
    numpy.testing.assert_array_equal(a.W.array, b.W.array)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad, nobias', [
    ((2, 6, 4, 4), 3, (4, 4), 2, 1, False),     # the DCGAN generator's
    ((2, 3, 5, 6), 2, (3, 3), 1, 1, True),
    ((1, 2, 3, 2), 4, (3, 2), (2, 3), (0, 1), False),
])
def test_transposed_kernels_match_chainer(emulated, dtype, x_shape, out,
                                          ksize, stride, pad, nobias):
    check_convolution(EMULATED, dtype, x_shape, out, ksize, stride, pad,
                      nobias, transposed=True)
    assert launched() == ['swap01', 'col2im', 'im2col', 'swap01', 'swap01']


def test_transposed_gradient_check_float64(emulated):
    rng = numpy.random.RandomState(0)
    x, W, b = rng.randn(2, 3, 3, 2), rng.randn(3, 2, 3, 2), rng.randn(2)

    def f(x, W, b):
        return Convolution2DFunction((2, 1), (1, 0), True).apply(
            (x, W, b))[0]

    y = f(x, W, b)
    assert y.shape == (2, 2, 5, 3)
    gradient_check.check_backward(f, (x, W, b), rng.randn(*y.shape),
                                  eps=1e-3, atol=1e-6, rtol=1e-5)


def test_transposed_with_another_outsize_is_chainers(emulated):
    x = numpy.ones((2, 3, 4, 4), numpy.float32)
    assert uses_kernels(Deconvolution2D(3, 2, 4, 2, 1), x)
    assert uses_kernels(Deconvolution2D(3, 2, 4, 2, 1, outsize=(8, 8)), x)
    assert not uses_kernels(Deconvolution2D(3, 2, 4, 2, 1, outsize=(9, 9)),
                            x)
