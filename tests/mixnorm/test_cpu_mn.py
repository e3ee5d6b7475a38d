"""The NumPy path of the mixture normalizing transform (mixnorm.cpu.mn)
against the array-generic reference of mixnorm.functions, which
``mixnorm.cuda.enabled = False`` (MIXNORM_KERNELS=0) selects."""
import chainer
import numpy
import pytest
from chainer import gradient_check

from mixnorm import cpu, cuda
from mixnorm.functions import MixtureNormalizationFunction

from kernel_cases import assert_close

SHAPES = [(7, 3), (6, 4, 1, 1), (4, 3, 5, 6), (16, 32, 8, 8),
          (3, 5, 130, 7)]  # the last: several chunks, 1 sample each


def inputs(shape, k, dtype, seed=0, centre=1.0, spread=2.0):
    rng = numpy.random.RandomState(seed)
    x = (rng.randn(*shape) * spread + centre).astype(dtype)
    c, m = shape[1], x.size // shape[1]
    logits = rng.randn(m, k) * 2
    resp = numpy.exp(logits) / numpy.exp(logits).sum(1, keepdims=True)
    return (x, rng.uniform(0.5, 1.5, c).astype(dtype),
            rng.randn(c).astype(dtype), resp.astype(dtype),
            rng.randn(*shape).astype(dtype))


def both(monkeypatch, x, gamma, beta, resp, gy):
    """(reference, NumPy path): y, gx, ggamma, gbeta, lam, mean, var; and
    the NumPy path's node."""
    out = []
    for enabled in (False, True):
        monkeypatch.setattr(cuda, 'enabled', enabled)
        xv, gv, bv = (chainer.Variable(a.copy()) for a in (x, gamma, beta))
        node = MixtureNormalizationFunction()
        y, = node.apply((xv, gv, bv, resp))
        y.grad = gy
        y.backward()
        out.append([y.array, xv.grad, gv.grad, bv.grad]
                   + list(node.statistics))
    return out[0], out[1], node


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('k', [1, 3])
def test_numpy_path_equals_the_reference(monkeypatch, dtype, shape, k):
    ref, got, node = both(monkeypatch, *inputs(shape, k, dtype))
    assert node.backend is cpu.mn
    for i, (a, g) in enumerate(zip(ref, got)):
        assert_close(g, a, dtype, 'output {}'.format(i))


def test_far_from_the_origin(monkeypatch):
    """Sums about a sample of each channel: data at 1e6 with unit spread
    keep float32's precision (float64 sums about 0 would keep 13 bits)."""
    ref, got, _ = both(monkeypatch, *inputs((8, 4, 6, 6), 3,
                                            numpy.float32, centre=1e6,
                                            spread=1.0))
    for i, (a, g) in enumerate(zip(ref, got)):
        assert_close(g, a, numpy.float32, 'output {}'.format(i))


def test_split_over_threads_and_chunks(monkeypatch):
    from mixnorm.cpu import parallel
    args = inputs((7, 3, 5, 5), 3, numpy.float64)
    _, one, _ = both(monkeypatch, *args)
    monkeypatch.setattr(parallel, 'MIN_ELEMENTS', 1)
    monkeypatch.setattr(parallel, 'threads', 3)
    monkeypatch.setattr(cpu.mn, 'CHUNK', 50)  # two samples a chunk
    _, split, _ = both(monkeypatch, *args)
    for i, (a, g) in enumerate(zip(one, split)):
        assert_close(g, a, numpy.float64, 'output {}'.format(i))


def test_gradient_check_float64():
    x, gamma, beta, resp, gy = inputs((4, 3, 2, 3), 3, numpy.float64)

    def f(x, gamma, beta):
        node = MixtureNormalizationFunction()
        y, = node.apply((x, gamma, beta, resp))
        assert node.backend is cpu.mn
        return y

    gradient_check.check_backward(f, (x, gamma, beta), gy, eps=1e-3,
                                  atol=1e-7, rtol=1e-6)


def test_which_calls_take_it(monkeypatch):
    x = numpy.ones((2, 3, 2, 2), numpy.float32)

    def backend(**kwargs):
        return MixtureNormalizationFunction(**kwargs)._backend(x)
    assert backend() is cpu.mn
    assert backend(activation='relu') is None
    assert backend(affine='components') is None
    assert backend(weight_scaling=False) is None
    assert backend(fixed=(numpy.zeros((1, 3)), numpy.ones((1, 3)))) is None
    assert MixtureNormalizationFunction()._backend(
        x.astype(numpy.float16)) is None
    monkeypatch.setattr(cuda, 'enabled', False)  # MIXNORM_KERNELS=0
    assert backend() is None


def test_nonfinite_statistics_reach_the_link(monkeypatch):
    """On NumPy the link checks the variances it gets back; the NumPy
    path must hand NaN on, not hide it."""
    x, gamma, beta, resp, gy = inputs((4, 3, 2, 2), 2, numpy.float32)
    x[1, 2, 0, 1] = numpy.nan
    node = MixtureNormalizationFunction()
    with numpy.errstate(invalid='ignore'):
        node.apply((x, gamma, beta, resp))
    assert node.backend is cpu.mn
    assert not numpy.isfinite(node.statistics[2][:, 2]).any()
    assert numpy.isfinite(node.statistics[2][:, :2]).all()
