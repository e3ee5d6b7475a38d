"""mixnorm.BatchNormalization: Chainer's link, on mixnorm's own code where
it applies.  The kernel path runs on the CPU emulator
(tests/support/cuda_emulator.py) against Chainer's link on NumPy;
tests/mixnorm/test_gpu.py repeats the comparison against Chainer's CuPy
code on a GPU.  The NumPy path (mixnorm.cpu.bn) is compared with Chainer's
link in float64 by the same check."""
import io
import warnings

import numpy
import pytest

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import gradient_check

import mixnorm
from mixnorm import BatchNormalization, cpu, cuda
from mixnorm.batch_normalization import (BatchNormalizationFunction,
                                         implementation)

import cuda_emulator
from cuda_emulator import launched
from kernel_cases import Backend, check_batch_normalization

EMULATED = cuda_emulator.backend()
NUMPY = Backend(numpy, numpy.asarray, numpy.asarray)
DTYPES = [numpy.float32, numpy.float64]
SHAPES = [(5, 3), (6, 4, 1, 1), (5, 3, 4, 4), (8, 2, 40, 40)]


def uses_kernels(link, x):
    return implementation(link, x) is cuda.bn


# ------------------------------------------------------------ NumPy path
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape', SHAPES + [(3, 5, 130, 7)])  # > 1 chunk
def test_numpy_path_matches_chainer(dtype, shape):
    link = check_batch_normalization(NUMPY, dtype, shape)
    x = numpy.ones(shape, dtype)
    assert implementation(link, x) is cpu.bn
    y = link(chainer.Variable(x * numpy.arange(shape[0]).reshape(
        (-1,) + (1,) * (len(shape) - 1)).astype(dtype)))
    assert type(y.creator) is BatchNormalizationFunction
    assert y.creator.backend is cpu.bn


def test_numpy_path_split_over_threads(monkeypatch):
    """The same numbers with every pass split into parts on threads."""
    from mixnorm.cpu import parallel
    ref = check_batch_normalization(NUMPY, numpy.float64, (7, 3, 5, 5))
    monkeypatch.setattr(parallel, 'MIN_ELEMENTS', 1)
    monkeypatch.setattr(parallel, 'threads', 3)
    monkeypatch.setattr(cpu.bn, 'CHUNK', 50)  # two samples a chunk
    got = check_batch_normalization(NUMPY, numpy.float64, (7, 3, 5, 5))
    for name in ('avg_mean', 'avg_var'):
        numpy.testing.assert_allclose(getattr(got, name),
                                      getattr(ref, name), rtol=1e-14)


def test_numpy_gradient_check_float64():
    rng = numpy.random.RandomState(0)
    x = rng.randn(4, 3, 2, 3) * 3 + 5
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.randn(3)

    def f(x, gamma, beta):
        return BatchNormalizationFunction(2e-5, None, None, 0.9, None,
                                          cpu.bn).apply((x, gamma, beta))[0]

    gradient_check.check_backward(f, (x, gamma, beta), rng.randn(*x.shape),
                                  eps=1e-3, atol=1e-7, rtol=1e-6)


def test_numpy_path_choice(monkeypatch):
    link = BatchNormalization(3)
    x = numpy.ones((4, 3, 2, 2), numpy.float32)
    assert implementation(link, x) is cpu.bn
    assert implementation(link, x.astype(numpy.float64)) is None  # dtype
    assert implementation(link, x.astype(numpy.float16)) is None
    assert implementation(link, x[:1, :, :1, :1]) is None
    assert implementation(BatchNormalization(axis=(0, 2, 3)), x) is None
    monkeypatch.setattr(cuda, 'bn_kernels', False)  # MIXNORM_BN=chainer
    assert implementation(link, x) is None
    assert type(link(x).creator).__module__.startswith('chainer.')
    monkeypatch.setattr(cuda, 'bn_kernels', True)
    monkeypatch.setattr(chainer.backends.intel64, 'should_use_ideep',
                        lambda level: True)
    assert implementation(link, x) is None


@pytest.mark.parametrize('bad', [numpy.nan, numpy.inf, 'overflow'])
def test_numpy_path_raises_at_once_and_keeps_the_averages(bad):
    link = BatchNormalization(2)
    link.name = 'bn1'
    x = numpy.random.RandomState(0).randn(4, 2, 6).astype(numpy.float32)
    link(x)
    before = link.avg_mean.copy(), link.avg_var.copy()
    x = x * numpy.float32(1e30) if bad == 'overflow' else numpy.where(
        x > 1, numpy.float32(bad), x)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        with pytest.raises(ValueError, match="'bn1'.*this training step"):
            link(x)
    numpy.testing.assert_array_equal(link.avg_mean, before[0])
    numpy.testing.assert_array_equal(link.avg_var, before[1])
    BatchNormalization(2, check_finite=False)(x)  # unchecked: no error


@pytest.mark.parametrize('source, target', [
    (BatchNormalization, L.BatchNormalization),
    (L.BatchNormalization, BatchNormalization)])
def test_npz_round_trip_with_chainers_link(source, target):
    a = source(5)
    a(numpy.random.RandomState(0).randn(8, 5).astype(numpy.float32) * 3)
    a.gamma.array[...] = numpy.arange(5)
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, a)
    buf.seek(0)
    b = target(5)
    chainer.serializers.load_npz(buf, b)
    for name in ('gamma', 'beta', 'avg_mean', 'avg_var', 'N'):
        numpy.testing.assert_array_equal(
            getattr(getattr(b, name), 'array', getattr(b, name)),
            getattr(getattr(a, name), 'array', getattr(a, name)))


def test_switch_from_the_environment(monkeypatch):
    for value, want in (('kernels', True), ('chainer', False)):
        monkeypatch.setenv('MIXNORM_BN', value)
        assert cuda._switch('MIXNORM_BN') is want
    monkeypatch.setenv('MIXNORM_BN', 'cudnn')
    with pytest.raises(ValueError, match='MIXNORM_BN'):
        cuda._switch('MIXNORM_BN')


def test_replace_bn_finds_it():
    chain = chainer.Chain()
    with chain.init_scope():
        chain.bn = BatchNormalization(4)
    assert mixnorm.batch_normalizations(chain) == ['bn']
    mixnorm.replace_bn(chain, ['bn'])
    assert isinstance(chain.bn, mixnorm.MixtureNormalization)


# ------------------------------------------------------------ kernel path
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape', SHAPES)
def test_kernels_match_chainer(emulated, dtype, shape):
    check_batch_normalization(EMULATED, dtype, shape, check_finite=False)
    assert len(launched('bn_stats')) == 2 and len(launched('bn_grad_x')) == 2
    if shape[0] * numpy.prod(shape[2:]) > cuda._compile.SLICE:  # slices
        assert all(g[0] > 1 for g in launched('bn_stats'))


def test_which_calls_take_the_kernels(emulated, monkeypatch):
    link = BatchNormalization(3)
    x = numpy.ones((4, 3, 2, 2), numpy.float32)
    assert uses_kernels(link, x)
    assert not uses_kernels(link, x.astype(numpy.float64))  # dtype
    assert not uses_kernels(link, x.astype(numpy.float16))
    assert not uses_kernels(link, x[:1, :, :1, :1])  # one value each
    assert not uses_kernels(link, x[:, :2])  # wrong channels
    assert not uses_kernels(BatchNormalization(axis=(0, 2, 3)), x)
    monkeypatch.setattr(cuda, 'bn_kernels', False)
    assert not uses_kernels(link, x)
    monkeypatch.setattr(cuda, 'bn_kernels', True)
    monkeypatch.setattr(chainer.backends.cuda, 'cudnn_enabled', True)
    for cudnn in (True, False):  # Chainer would (not) use cuDNN here
        monkeypatch.setattr(chainer, 'should_use_cudnn',
                            lambda level, lowest_version=0: cudnn)
        assert uses_kernels(link, x) is not cudnn


def test_test_mode_and_finetune_are_chainers(emulated):
    link = BatchNormalization(3, check_finite=False)
    x = numpy.random.RandomState(0).randn(4, 3, 2, 2).astype(numpy.float32)
    with chainer.using_config('train', False):
        link(x)
    link(x, finetune=True)
    assert not launched('bn_stats') and link.N == 1
    with pytest.raises(TypeError):
        link(x, bogus=True)


def test_a_batch_of_one_warns_as_chainer(emulated):
    link = BatchNormalization(3, check_finite=False)
    with pytest.warns(UserWarning, match='no more than one sample'):
        y = link(numpy.ones((1, 3), numpy.float32))
    numpy.testing.assert_array_equal(y.array, 0)
    assert not launched('bn_stats')


def test_gradient_check_float64(emulated):
    rng = numpy.random.RandomState(0)
    x = rng.randn(4, 3, 2, 3)
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.randn(3)

    def f(x, gamma, beta):
        return BatchNormalizationFunction(2e-5, None, None, 0.9, None,
                                          cuda.bn).apply((x, gamma, beta))[0]

    gradient_check.check_backward(f, (x, gamma, beta), rng.randn(*x.shape),
                                  eps=1e-3, atol=1e-5, rtol=1e-4)
    assert launched('bn_grad_stats')


def test_double_backprop_raises(emulated):
    link = BatchNormalization(3, dtype=numpy.float64, check_finite=False)
    x = chainer.Variable(numpy.random.RandomState(0).randn(4, 3))
    y = link(x)
    gx, = chainer.grad([F.sum(y * y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='MIXNORM_BN=chainer'):
        F.sum(gx).backward()


def test_recomputed_forward_updates_the_averages_once(emulated):
    x = numpy.random.RandomState(0).randn(6, 3, 2, 2).astype(numpy.float32)
    avg = []
    for forget in (False, True):
        link = BatchNormalization(3, check_finite=False)
        xv = chainer.Variable(x)
        y = F.forget(link, xv) if forget else link(xv)
        F.sum(y * y).backward()
        avg.append((link.avg_mean.copy(), link.avg_var.copy(), xv.grad))
    for a, b in zip(*avg):
        numpy.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize('dtype', DTYPES)
def test_the_statistics_kernel_flags_nonfinite_input(emulated, dtype):
    x = numpy.random.RandomState(0).randn(4, 2, 6).astype(dtype)
    gamma, beta = numpy.ones(2, dtype), numpy.zeros(2, dtype)
    cases = [(x, 0), (numpy.where(x > 2, numpy.nan, x), 1),
             (numpy.where(x > 2, numpy.inf, x), 1)]
    if dtype == numpy.float32:  # the variance overflows float32
        cases.append((x * numpy.float32(1e30), 1))
    for a, want in cases:
        flag = numpy.zeros(1, numpy.int32)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            cuda.bn.forward(a, gamma, beta, 2e-5, flag=flag)
        assert flag[0] == want
