"""mixnorm.max_pooling_2d and average_pooling_2d: Chainer's functions, on
the kernels where they apply; the kernel path runs on the CPU emulator
(tests/support/cuda_emulator.py) against Chainer on NumPy, and on a GPU in
tests/mixnorm/test_gpu.py.  The NumPy path (mixnorm.cpu.pool) is compared
with Chainer's functions at the end."""
import numpy
import pytest

import chainer
import chainer.functions as F
from chainer import gradient_check

import mixnorm
from mixnorm import cpu, cuda
from mixnorm.pooling import Pooling2D, implementation

import cuda_emulator
from cuda_emulator import launched
from kernel_cases import assert_close, check_pooling

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
    def uses_kernels(x):
        return implementation(x, 'max') is cuda.pool

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


# --------------------------------------------------------- the NumPy path
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape, ksize, stride, pad, cover_all, ties', [
    ((2, 3, 9, 9), 3, 2, 0, True, False),       # the CIFAR CNN's pools
    ((2, 3, 8, 8), 3, 2, 0, True, True),        # equal maxima
    ((1, 2, 9, 7), 3, 2, 1, False, False),      # Inception's reductions
    ((2, 2, 5, 6), (2, 3), (1, 2), (1, 1), True, True),
    ((1, 1, 4, 4), 4, 1, 0, True, False),       # one window
    ((2, 3, 10, 11), 2, 3, 0, False, False),    # rows in no window
    ((2, 3, 10, 11), 2, 3, 1, True, True),
    ((1, 2, 7, 7), 3, 3, 2, True, True),        # windows in the padding
    ((2, 2, 6, 6), 1, 1, 0, True, False)])      # 1x1
def test_numpy_max_pooling_equals_chainer(dtype, shape, ksize, stride, pad,
                                          cover_all, ties):
    rng = numpy.random.RandomState(0)
    x = (rng.randint(0, 3, shape) if ties else rng.randn(*shape)).astype(
        dtype)
    got, ref = [], []
    for pool, out in ((mixnorm.max_pooling_2d, got),
                      (F.max_pooling_2d, ref)):
        xv = chainer.Variable(x.copy())
        y = pool(xv, ksize, stride, pad, cover_all)
        y.grad = numpy.random.RandomState(1).randn(*y.shape).astype(dtype)
        y.backward()
        out += [y, xv.grad]
    assert type(got[0].creator) is Pooling2D
    assert got[0].creator.backend is cpu.pool
    # the same maxima, and the same gradients summed in the same order
    numpy.testing.assert_array_equal(got[0].array, ref[0].array)
    assert got[1].dtype == ref[1].dtype
    numpy.testing.assert_array_equal(got[1], ref[1])


def test_numpy_max_pooling_gradient_check_float64():
    rng = numpy.random.RandomState(0)
    x = rng.permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) * 0.1  # distinct

    def f(x):
        return Pooling2D('max', (3, 3), (2, 2), (1, 1), True,
                         cpu.pool).apply((x,))[0]

    y = f(x)
    gradient_check.check_backward(f, (x,), rng.randn(*y.shape), eps=1e-3,
                                  atol=1e-10, rtol=1e-9)


def test_numpy_path_choice(monkeypatch):
    x = numpy.ones((2, 3, 4, 4), numpy.float32)
    assert implementation(x, 'max') is cpu.pool
    assert implementation(x.astype(numpy.float64), 'max') is cpu.pool
    assert implementation(x.astype(numpy.float16), 'max') is None
    assert implementation(x[0], 'max') is None
    assert implementation(x, 'average') is cpu.pool
    monkeypatch.setattr(cuda, 'pool_kernels', False)  # MIXNORM_POOL=chainer
    assert implementation(x, 'max') is None
    assert implementation(x, 'average') is None
    for pool in (mixnorm.max_pooling_2d, mixnorm.average_pooling_2d):
        y = pool(x, 2)
        assert type(y.creator) is not Pooling2D


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape, ksize, stride, pad', [
    ((2, 3, 4, 4), 4, 1, 0),                    # the CIFAR CNN's pool4
    ((2, 3, 8, 8), 2, None, 0),                 # DenseNet's transitions
    ((2, 3, 7, 7), 3, 1, 1),                    # Inception's pool branches
    ((1, 2, 7, 5), 3, 1, 1),                    # padding counts as zeros
    ((1, 2, 6, 7), (2, 3), (2, 1), (0, 1)),
    ((2, 3, 10, 11), 2, 3, 0),                  # rows in no window
    ((1, 2, 7, 7), 3, 3, 2),                    # windows in the padding
    ((2, 2, 6, 6), 1, 1, 0)])                   # 1x1
def test_numpy_average_pooling_equals_chainer(dtype, shape, ksize, stride,
                                              pad):
    rng = numpy.random.RandomState(0)
    x = rng.randn(*shape).astype(dtype)
    got, ref = [], []
    for pool, out in ((mixnorm.average_pooling_2d, got),
                      (F.average_pooling_2d, ref)):
        xv = chainer.Variable(x.copy())
        y = pool(xv, ksize, stride, pad)
        y.grad = numpy.random.RandomState(1).randn(*y.shape).astype(dtype)
        y.backward()
        out += [y, xv.grad]
    assert type(got[0].creator) is Pooling2D
    assert got[0].creator.backend is cpu.pool
    assert_close(got[0].array, ref[0].array, dtype, 'y')
    assert got[1].dtype == ref[1].dtype
    assert_close(got[1], ref[1], dtype, 'gx')


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape, ksize, stride, pad', [
    ((2, 3, 7, 7), 3, 1, 1),                    # Inception's pool branches
    ((1, 2, 7, 5), (3, 2), (2, 1), (1, 1)),
    ((1, 2, 7, 7), 3, 3, 2),                    # windows mostly padding
    ((2, 2, 6, 6), 2, 2, 0)])                   # no padding
def test_numpy_average_pooling_without_the_padding(dtype, shape, ksize,
                                                   stride, pad):
    """pad_value=None: each window's sum over its pixels of x divided by
    their count, as Chainer's average_pooling_nd(..., pad_value=None)."""
    x = numpy.random.RandomState(0).randn(*shape).astype(dtype)
    got, ref = [], []
    for pool, out in (
            (lambda v: mixnorm.average_pooling_2d(v, ksize, stride, pad,
                                                  pad_value=None), got),
            (lambda v: F.average_pooling_nd(v, ksize, stride, pad,
                                            pad_value=None), ref)):
        xv = chainer.Variable(x.copy())
        y = pool(xv)
        y.grad = numpy.random.RandomState(1).randn(*y.shape).astype(dtype)
        y.backward()
        out += [y, xv.grad]
    assert got[0].creator.backend is cpu.pool
    assert_close(got[0].array, ref[0].array, dtype, 'y')
    assert_close(got[1], ref[1], dtype, 'gx')


def test_average_pooling_without_the_padding_is_chainers_on_the_kernels(
        emulated):
    """The kernels count the padding: pad_value=None on CuPy is Chainer's
    average_pooling_nd."""
    x = numpy.random.RandomState(0).randn(2, 3, 5, 5).astype(numpy.float32)
    assert implementation(EMULATED.asarray(x), 'average') is cuda.pool
    assert implementation(EMULATED.asarray(x), 'average', None) is None
    with pytest.raises(ValueError, match='pad_value'):
        cuda.pool.forward(EMULATED.asarray(x), (3, 3), (1, 1), (1, 1),
                          False, 'average', None)


def test_numpy_average_pooling_gradient_check_float64():
    rng = numpy.random.RandomState(0)
    x = rng.randn(2, 3, 7, 8)

    for pad_value in (0, None):
        def f(x):
            return Pooling2D('average', (3, 3), (1, 1), (1, 1), False,
                             cpu.pool, pad_value).apply((x,))[0]

        y = f(x)
        gradient_check.check_backward(f, (x,), rng.randn(*y.shape),
                                      eps=1e-3, atol=1e-10, rtol=1e-9)


def test_numpy_double_backprop_raises():
    x = chainer.Variable(numpy.random.RandomState(0).randn(1, 1, 4, 4))
    y = mixnorm.max_pooling_2d(x, 2)
    gx, = chainer.grad([F.sum(y * y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='MIXNORM_POOL=chainer'):
        F.sum(gx).backward()


@pytest.mark.parametrize('kind', ['max', 'average'])
@pytest.mark.parametrize('chunk', [1, 40, 1 << 18])
@pytest.mark.parametrize('shape, ksize, stride, pad, cover_all', [
    ((2, 3, 9, 9), 3, 2, 0, True), ((3, 2, 10, 11), 2, 3, 1, True),
    ((1, 5, 7, 7), 3, 3, 2, True), ((2, 3, 7, 7), 3, 1, 1, False)])
def test_numpy_pooling_split_over_threads(monkeypatch, shape, ksize, stride,
                                          pad, cover_all, chunk, kind):
    """Every pass split into parts of planes on threads, each part in
    chunks of one plane, of a few planes, or whole: the same y and gx (a
    plane's taps stay in its own chunk)."""
    from mixnorm import cpu
    from mixnorm.cpu import parallel
    monkeypatch.setattr(parallel, 'MIN_ELEMENTS', 1)
    monkeypatch.setattr(parallel, 'threads', 4)
    monkeypatch.setattr(cpu.pool, 'CHUNK', chunk)
    rng = numpy.random.RandomState(0)
    x = rng.randn(*shape)
    args = (ksize, stride, pad) + ((cover_all,) if kind == 'max' else ())
    out = []
    for module in (mixnorm, F):
        xv = chainer.Variable(x.copy())
        y = getattr(module, kind + '_pooling_2d')(xv, *args)
        y.grad = numpy.random.RandomState(1).randn(*y.shape)
        y.backward()
        out.append((y.array, xv.grad))
    if kind == 'max':  # windows in the padding: y is -inf
        numpy.testing.assert_array_equal(out[0][0], out[1][0])
        numpy.testing.assert_array_equal(out[0][1], out[1][1])
    else:
        assert_close(out[0][0], out[1][0], numpy.float64, 'y')
        assert_close(out[0][1], out[1][1], numpy.float64, 'gx')
