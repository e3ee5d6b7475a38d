import chainer
import chainer.functions as F
import numpy
import pytest
from chainer import gradient_check

from mixnorm import mixture_normalization
from mixnorm.functions import component_statistics
from mixnorm.functions import MixtureNormalizationFunction


def make_inputs(rng, shape, k, dtype=numpy.float32):
    x = (rng.randn(*shape) * 2 + 1).astype(dtype)
    c = shape[1]
    m = x.size // c
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.randn(c).astype(dtype)
    logits = rng.randn(m, k) * 2
    resp = numpy.exp(logits) / numpy.exp(logits).sum(1, keepdims=True)
    return x, gamma, beta, resp.astype(dtype)


def rows(x):
    return x.transpose((0,) + tuple(range(2, x.ndim)) + (1,)).reshape(
        -1, x.shape[1])


@pytest.mark.parametrize('shape', [(16, 5), (4, 3, 5, 6)])
def test_single_component_is_batch_normalization(rng, shape):
    x, gamma, beta, _ = make_inputs(rng, shape, 1)
    resp = numpy.ones((x.size // shape[1], 1), numpy.float32)
    y = mixture_normalization(x, gamma, beta, resp, eps=2e-5)
    ref = F.batch_normalization(x, gamma, beta, eps=2e-5)
    numpy.testing.assert_allclose(y.array, ref.array, atol=1e-5, rtol=1e-5)
    gy = rng.randn(*shape).astype(numpy.float32)
    xv, xr = chainer.Variable(x), chainer.Variable(x)
    gv, gr = chainer.Variable(gamma), chainer.Variable(gamma)
    y = mixture_normalization(xv, gv, beta, resp)
    r = F.batch_normalization(xr, gr, beta)
    y.grad, r.grad = gy, gy
    y.backward()
    r.backward()
    numpy.testing.assert_allclose(xv.grad, xr.grad, atol=1e-4, rtol=1e-4)
    numpy.testing.assert_allclose(gv.grad, gr.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('shape', [(12, 3), (3, 2, 3, 4)])
@pytest.mark.parametrize('k', [1, 2, 3, 4])
def test_gradient_check(rng, shape, k):
    x, gamma, beta, resp = make_inputs(rng, shape, k, numpy.float64)
    gy = rng.randn(*shape)

    def f(x, gamma, beta):
        return mixture_normalization(x, gamma, beta, resp, eps=1e-3)

    gradient_check.check_backward(f, (x, gamma, beta), gy, dtype=numpy.float64,
                                  atol=1e-5, rtol=1e-4)


def test_matches_equations_34_to_36(rng):
    x, gamma, beta, resp = make_inputs(rng, (6, 3, 2, 2), 3,
                                       numpy.float64)
    eps = 1e-3
    xr = rows(x)
    lam = resp.mean(0)
    out = numpy.zeros_like(xr)
    for k in range(3):
        w = resp[:, k] / resp[:, k].sum()                     # Eq. 36
        mu = (w[:, None] * xr).sum(0)                         # Eq. 35
        v = xr - mu
        xk = v / numpy.sqrt((w[:, None] * v ** 2).sum(0) + eps)
        out += resp[:, [k]] / numpy.sqrt(lam[k]) * xk         # Eq. 34
    expected = gamma * out + beta
    y = mixture_normalization(x, gamma, beta, resp, eps=eps)
    numpy.testing.assert_allclose(rows(y.array), expected, rtol=1e-10)


def test_no_gradient_into_resp(rng):
    x, gamma, beta, resp = make_inputs(rng, (8, 3), 2)
    r = chainer.Variable(resp)
    y = mixture_normalization(x, gamma, beta, r)
    F.sum(y * y).backward()
    assert r.grad is None


def test_absent_component_contributes_nothing(rng):
    x, gamma, beta, resp = make_inputs(rng, (10, 4), 2, numpy.float64)
    padded = numpy.concatenate([resp, numpy.zeros((10, 1))], axis=1)
    xv = chainer.Variable(x)
    y = mixture_normalization(xv, gamma, beta, padded)
    ref = mixture_normalization(x, gamma, beta, resp)
    numpy.testing.assert_allclose(y.array, ref.array, rtol=1e-12)
    F.sum(y).backward()
    assert numpy.isfinite(xv.grad).all()


def test_component_statistics_weights(rng):
    x, _, _, resp = make_inputs(rng, (12, 2), 3, numpy.float64)
    lam, w, mean, var = component_statistics(x, resp)
    numpy.testing.assert_allclose(lam, resp.mean(0))
    numpy.testing.assert_allclose(w.sum(0), 1)
    numpy.testing.assert_allclose(mean, w.T @ x)


def test_double_backprop_raises(rng):
    x, gamma, beta, resp = make_inputs(rng, (4, 3, 2, 2), 2, numpy.float64)
    xv = chainer.Variable(x)
    y = mixture_normalization(xv, gamma, beta, resp)
    gx, = chainer.grad([F.sum(y * y * y)], [xv], enable_double_backprop=True)
    assert numpy.isfinite(gx.array).all()
    with pytest.raises(NotImplementedError, match='double backprop'):
        chainer.grad([F.sum(gx * gx)], [xv])
    # first-order gradients stay plain arrays without the option
    y = mixture_normalization(xv, gamma, beta, resp)
    gx_once, = chainer.grad([F.sum(y * y * y)], [xv])
    numpy.testing.assert_allclose(gx_once.array, gx.array)


def test_float16_input_with_float32_parameters(rng):
    x, gamma, beta, resp = make_inputs(rng, (8, 3, 4, 4), 2)
    x16 = x.astype(numpy.float16)
    xv = chainer.Variable(x16)
    y = mixture_normalization(xv, gamma, beta, resp)
    assert y.dtype == numpy.float16
    ref = mixture_normalization(x16.astype(numpy.float32), gamma, beta, resp)
    numpy.testing.assert_allclose(y.array.astype(numpy.float32), ref.array,
                                  atol=2e-3, rtol=2e-3)
    F.sum(y).backward()
    assert xv.grad.dtype == numpy.float16
    assert numpy.isfinite(xv.grad).all()
    with pytest.raises(chainer.utils.type_check.InvalidType):
        mixture_normalization(x.astype(numpy.float64), gamma, beta, resp)


VARIANTS = [dict(activation=a, affine=f, weight_scaling=w)
            for a in (None, 'relu') for f in ('output', 'components')
            for w in (True, False)]


def direct_variant(x, gamma, beta, resp, eps, activation, affine,
                   weight_scaling):
    """Eq. 34-36 with Eq. 37 / Eq. 40 / no 1/sqrt(lambda), term by term."""
    xr = rows(x)
    lam = resp.mean(0)
    out = numpy.zeros_like(xr)
    for k in range(resp.shape[1]):
        w = resp[:, k] / resp[:, k].sum()                     # Eq. 36
        mu = (w[:, None] * xr).sum(0)                         # Eq. 35
        var = (w[:, None] * (xr - mu) ** 2).sum(0)
        if affine == 'components':                            # Eq. 37
            z = (xr - (mu + beta)) / numpy.sqrt(var * gamma + eps)
        else:
            z = (xr - mu) / numpy.sqrt(var + eps)
        a = resp[:, [k]] / (numpy.sqrt(lam[k]) if weight_scaling else 1)
        if activation == 'relu':                              # Eq. 40
            if affine == 'output':
                z = gamma * z + beta
            z = numpy.maximum(z, 0)
        out += a * z                                          # Eq. 34
    if affine == 'output' and activation is None:
        out = gamma * out + beta
    return out


@pytest.mark.parametrize('variant', VARIANTS)
def test_variants_match_their_equations(rng, variant):
    x, gamma, beta, resp = make_inputs(rng, (6, 3, 2, 2), 3, numpy.float64)
    y = mixture_normalization(x, gamma, beta, resp, eps=1e-3, **variant)
    numpy.testing.assert_allclose(
        rows(y.array), direct_variant(x, gamma, beta, resp, 1e-3, **variant),
        rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('fixed', [False, True])
def test_variants_gradient_check(rng, variant, fixed):
    x, gamma, beta, resp = make_inputs(rng, (3, 2, 3, 4), 3, numpy.float64)
    gy = rng.randn(*x.shape)
    stats = (rng.randn(3, 2), rng.uniform(0.5, 2, (3, 2))) if fixed \
        else None

    def f(x, gamma, beta):
        node = MixtureNormalizationFunction(1e-3, fixed=stats, **variant)
        return node.apply((x, gamma, beta, resp))[0]

    gradient_check.check_backward(f, (x, gamma, beta), gy, eps=1e-6,
                                  dtype=numpy.float64, atol=1e-5, rtol=1e-4)


def test_components_affine_clips_gamma_at_zero(rng):
    x, gamma, beta, resp = make_inputs(rng, (8, 3), 2, numpy.float64)
    gamma[1] = -0.5
    gv = chainer.Variable(gamma)
    y = mixture_normalization(x, gv, beta, resp, affine='components')
    assert numpy.isfinite(y.array).all()
    F.sum(y * y).backward()
    assert gv.grad[1] == 0 and gv.grad[0] != 0
