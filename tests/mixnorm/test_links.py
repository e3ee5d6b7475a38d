import os

import chainer
import chainer.links as L
import numpy
import pytest
from chainer import serializers

from mixnorm import mixture_normalization, MixtureNormalization
from mixnorm.links import queue_decay_weights


def test_parameters_match_batch_normalization():
    mn, bn = MixtureNormalization(7), L.BatchNormalization(7)
    assert sorted(n for n, _ in mn.namedparams()) == \
        sorted(n for n, _ in bn.namedparams())
    numpy.testing.assert_array_equal(mn.gamma.array, bn.gamma.array)
    numpy.testing.assert_array_equal(mn.beta.array, bn.beta.array)
    assert MixtureNormalization(3, dtype=numpy.float64).gamma.dtype == \
        numpy.float64


def test_decay_weights_equation_39():
    tau = queue_decay_weights(10, 10, 0.9)
    expected = [(1 - 0.9) / (1 - 0.9 ** 10) * 0.9 ** (10 - t - 1)
                for t in range(10)]
    numpy.testing.assert_allclose(tau, expected)
    numpy.testing.assert_allclose(tau.sum(), 1)
    part = queue_decay_weights(3, 10, 0.9)
    numpy.testing.assert_allclose(part, numpy.array(expected[-3:]) /
                                  sum(expected[-3:]))


def test_training_fills_queue_in_order(rng):
    mn = MixtureNormalization(4, n_components=2, queue_length=3)
    batches = [rng.randn(16, 4, 2, 2).astype(numpy.float32) + i
               for i in range(5)]
    for i, x in enumerate(batches):
        mn(x)
        assert mn.n_fits == i + 1
    tau, lam, mean, var = mn.queue()
    assert lam.shape == (3, 2) and mean.shape == (3, 2, 4)
    # oldest first: the means follow the batch offsets 2, 3, 4
    order = (lam[:, :, None] * mean).sum(1).mean(1)
    numpy.testing.assert_allclose(order, [2, 3, 4], atol=0.3)
    numpy.testing.assert_allclose(lam.sum(1), 1, rtol=1e-5)
    fit, resp = mn.last_fit
    assert resp.shape == (64, 2) and fit.means.shape == (2, 4)


def hand_built(rng, T=4, K=3, C=5, n_fits=4, inference='paper'):
    mn = MixtureNormalization(C, n_components=K, queue_length=T,
                              decay=0.8, inference=inference,
                              dtype=numpy.float64)
    mn.gamma.array[...] = rng.uniform(0.5, 2, C)
    mn.beta.array[...] = rng.randn(C)
    mn.queue_weights = rng.dirichlet(numpy.ones(K), T)
    mn.queue_means = rng.randn(T, K, C)
    mn.queue_variances = rng.uniform(0.5, 2, (T, K, C))
    mn.n_fits = n_fits
    return mn


def direct_equation_38(mn, x, paper):
    """Equation 38 evaluated term by term, one sample at a time, with the
    link's variant (Eq. 37's affine, Eq. 40's ReLU, weight scaling)."""
    n = min(mn.n_fits, mn.queue_length)
    tau = numpy.array([(1 - mn.decay) / (1 - mn.decay ** mn.queue_length) *
                       mn.decay ** (mn.queue_length - t - 1)
                       for t in range(mn.queue_length)])[-n:]
    tau = tau / tau.sum()
    lam = mn.queue_weights[-n:]
    mu = mn.queue_means[-n:]
    sigma2 = mn.queue_variances[-n:] + mn.eps
    out = numpy.zeros_like(x)
    for i, xi in enumerate(x):
        dens = numpy.array([[numpy.prod(
            numpy.exp(-(xi - mu[t, k]) ** 2 / (2 * sigma2[t, k])) /
            numpy.sqrt(2 * numpy.pi * sigma2[t, k]))
            for k in range(lam.shape[1])] for t in range(n)])
        joint = tau[:, None] * lam * dens
        post = joint / joint.sum()
        gamma, beta = mn.gamma.array, mn.beta.array
        for t in range(n):
            for k in range(lam.shape[1]):
                scale = lam[t, k] if mn.weight_scaling else 1
                scale = tau[t] * scale if paper else scale
                if mn.affine == 'components':               # Eq. 37
                    z = (xi - mu[t, k] - beta) / numpy.sqrt(
                        mn.queue_variances[-n:][t, k] * gamma + mn.eps)
                else:
                    z = (xi - mu[t, k]) / numpy.sqrt(sigma2[t, k])
                    if mn.activation == 'relu':             # Eq. 40
                        z = gamma * z + beta
                if mn.activation == 'relu':
                    z = numpy.maximum(z, 0)
                out[i] += post[t, k] / numpy.sqrt(scale) * z
    if mn.affine == 'components' or mn.activation == 'relu':
        return out
    return mn.gamma.array * out + mn.beta.array


VARIANTS = [dict(activation=a, affine=f, weight_scaling=w)
            for a in (None, 'relu') for f in ('output', 'components')
            for w in (True, False)]


@pytest.mark.parametrize('inference', ['paper', 'consistent'])
@pytest.mark.parametrize('n_fits', [2, 4, 9])
@pytest.mark.parametrize('variant', [VARIANTS[0], VARIANTS[-1]])
def test_inference_equals_direct_equation_38(rng, inference, n_fits,
                                             variant):
    mn = hand_built(rng, n_fits=n_fits, inference=inference)
    for key, value in variant.items():
        setattr(mn, key, value)
    x = rng.randn(7, 5) * 1.5
    with chainer.using_config('train', False):
        y = mn(x).array
    numpy.testing.assert_allclose(
        y, direct_equation_38(mn, x, inference == 'paper'), rtol=1e-9)


def test_inference_4d_matches_rows(rng):
    mn = hand_built(rng)
    x = rng.randn(2, 5, 3, 4)
    with chainer.using_config('train', False):
        y = mn(x).array
        rows = mn(x.transpose(0, 2, 3, 1).reshape(-1, 5)).array
    numpy.testing.assert_allclose(
        y.transpose(0, 2, 3, 1).reshape(-1, 5), rows, rtol=1e-12)


def test_consistent_inference_is_invariant_to_copies(rng):
    """T copies of one fit give the output of that fit held once."""
    x = rng.randn(32, 4, 3, 3)
    mn = MixtureNormalization(4, n_components=3, queue_length=10,
                              dtype=numpy.float64)
    mn(x)
    one = MixtureNormalization(4, n_components=3, queue_length=1,
                               dtype=numpy.float64)
    one.queue_weights, one.queue_means, one.queue_variances = (
        mn.queue_weights[-1:], mn.queue_means[-1:], mn.queue_variances[-1:])
    one.n_fits = 1
    full = MixtureNormalization(4, n_components=3, queue_length=10,
                                dtype=numpy.float64)
    full.queue_weights = numpy.repeat(mn.queue_weights[-1:], 10, 0)
    full.queue_means = numpy.repeat(mn.queue_means[-1:], 10, 0)
    full.queue_variances = numpy.repeat(mn.queue_variances[-1:], 10, 0)
    full.n_fits = 10
    paper = full.copy(mode='copy')
    paper.inference = 'paper'
    with chainer.using_config('train', False):
        y_one, y_full, y_paper = one(x).array, full(x).array, paper(x).array
    numpy.testing.assert_allclose(y_full, y_one, rtol=1e-10, atol=1e-12)
    # Eq. 38 as printed inflates the output by sum_t sqrt(tau^t)
    inflation = numpy.sqrt(queue_decay_weights(10, 10, 0.9)).sum()
    assert abs(inflation - 3.13) < 0.01
    numpy.testing.assert_allclose(y_paper, inflation * y_one, rtol=1e-9)


def test_consistent_inference_matches_training_on_same_batch(rng):
    """A queue of one fit reproduces training mode up to the posteriors."""
    x = numpy.concatenate([rng.randn(200, 3) - 6, rng.randn(200, 3) + 6])
    mn = MixtureNormalization(3, n_components=2, queue_length=1,
                              dtype=numpy.float64)
    y_train = mn(x).array
    with chainer.using_config('train', False):
        y_test = mn(x).array
    numpy.testing.assert_allclose(y_test, y_train, atol=1e-6)


def test_serialization_round_trip(rng, tmp_path):
    mn = MixtureNormalization(4, n_components=2, queue_length=3)
    for i in range(4):
        mn(rng.randn(8, 4, 2, 2).astype(numpy.float32))
    path = os.path.join(str(tmp_path), 'mn.npz')
    serializers.save_npz(path, mn)
    other = MixtureNormalization(4, n_components=2, queue_length=3)
    serializers.load_npz(path, other)
    assert other.n_fits == 4
    for name in ('queue_weights', 'queue_means', 'queue_variances'):
        numpy.testing.assert_array_equal(getattr(other, name),
                                         getattr(mn, name))
    x = rng.randn(4, 4, 2, 2).astype(numpy.float32)
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(mn(x).array, other(x).array)


def test_to_device_moves_queue():
    mn = MixtureNormalization(3)
    mn.to_device('@numpy')
    assert isinstance(mn.queue_means, numpy.ndarray)
    assert 'queue_means' in mn._persistent


def test_test_mode_without_fit_is_an_error():
    mn = MixtureNormalization(3)
    with chainer.using_config('train', False):
        with pytest.raises(RuntimeError, match='no training fit'):
            mn(numpy.zeros((2, 3), numpy.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match='inference'):
        MixtureNormalization(3, inference='eq38')
    with pytest.raises(ValueError):
        MixtureNormalization(3, fit_fraction=0)


def test_batch_inference_fits_the_test_batch_and_leaves_queue(rng):
    x = numpy.concatenate([rng.randn(100, 3) - 5, rng.randn(100, 3) + 5])
    mn = MixtureNormalization(3, n_components=2, dtype=numpy.float64)
    numpy.random.seed(0)
    y_train = mn(x).array
    queue = mn.queue_means.copy()
    mn.inference = 'batch'
    numpy.random.seed(0)
    with chainer.using_config('train', False):
        y_test = mn(x * 3).array
    assert mn.n_fits == 1
    numpy.testing.assert_array_equal(mn.queue_means, queue)
    # normalized with the batch's own statistics: the scale is gone (up to
    # eps, which is not scaled)
    numpy.testing.assert_allclose(y_test, y_train, atol=1e-4)


def test_decay_one_is_the_limit_of_equation_39():
    numpy.testing.assert_allclose(queue_decay_weights(10, 10, 1.0),
                                  numpy.full(10, 0.1))
    numpy.testing.assert_allclose(queue_decay_weights(10, 10, 1 - 1e-9),
                                  numpy.full(10, 0.1), rtol=1e-6)
    numpy.testing.assert_allclose(queue_decay_weights(4, 10, 1.0),
                                  numpy.full(4, 0.25))
    mn = MixtureNormalization(3, decay=1.0, queue_length=4)
    x = numpy.random.RandomState(0).randn(32, 3).astype(numpy.float32)
    for _ in range(5):
        mn(x)
    with chainer.using_config('train', False):
        assert numpy.isfinite(mn(x).array).all()


@pytest.mark.parametrize('kwargs, match', [
    (dict(decay=1.5), 'decay'), (dict(decay=-0.1), 'decay'),
    (dict(eps=0), 'eps'), (dict(eps=-1e-5), 'eps'),
    (dict(queue_length=0), 'queue_length'),
    (dict(n_components=0), 'n_components')])
def test_constructor_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixtureNormalization(3, **kwargs)


def test_em_iter_and_its_deprecated_alias():
    assert MixtureNormalization(3).em_iter == 2
    assert MixtureNormalization(3, em_iter=4).em_iter == 4
    with pytest.warns(DeprecationWarning, match='n_iter.*em_iter'):
        assert MixtureNormalization(3, n_iter=6).em_iter == 6
    with pytest.raises(TypeError, match='em_iter only'):
        MixtureNormalization(3, em_iter=2, n_iter=2)


def test_forward_keywords_follow_batch_normalization(rng):
    mn = MixtureNormalization(3)
    x = rng.randn(16, 3).astype(numpy.float32)
    mn(x, finetune=False)
    with pytest.raises(NotImplementedError, match='finetune'):
        mn(x, finetune=True)
    with pytest.raises(TypeError, match='unexpected keyword'):
        mn(x, decay=0.5)
    with pytest.raises(ValueError, match='using_config'):
        mn(x, test=True)
    assert mn.n_fits == 1


def test_recomputing_reuses_the_fit_and_records_nothing(rng):
    x = numpy.concatenate([rng.randn(64, 3) - 4, rng.randn(64, 3) + 4])
    x = x.reshape(8, 4, 4, 3).transpose(0, 3, 1, 2).astype(numpy.float32)
    gy = rng.randn(*x.shape).astype(numpy.float32)
    mn = MixtureNormalization(3, n_components=2)
    mn.cleargrads()
    xv = chainer.Variable(x)
    y = chainer.functions.forget(mn, xv)  # recomputed in backward
    y.grad = gy
    y.backward()
    assert mn.n_fits == 1
    fit, resp = mn.last_fit
    queue = mn.queue_means.copy()
    # the same gradient as one forward with that fit
    xr = chainer.Variable(x)
    gamma = chainer.Variable(mn.gamma.array.copy())
    yr = mixture_normalization(xr, gamma, mn.beta.array, resp)
    yr.grad = gy
    yr.backward()
    numpy.testing.assert_allclose(y.array, yr.array, rtol=1e-6)
    numpy.testing.assert_allclose(xv.grad, xr.grad, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(mn.gamma.grad, gamma.grad, rtol=1e-5)
    numpy.testing.assert_array_equal(mn.queue_means, queue)
    with chainer.using_config('in_recomputing', True):
        with pytest.raises(RuntimeError, match='F.forget'):
            mn(x[:4])


def test_float16_input(rng):
    x = rng.randn(8, 3, 4, 4).astype(numpy.float16)
    mn = MixtureNormalization(3)
    xv = chainer.Variable(x)
    numpy.random.seed(0)
    y = mn(xv)
    assert y.dtype == numpy.float16 and mn.gamma.dtype == numpy.float32
    y.grad = numpy.ones_like(y.array)
    y.backward()
    assert xv.grad.dtype == numpy.float16 and numpy.isfinite(xv.grad).all()
    ref = MixtureNormalization(3)
    numpy.random.seed(0)
    y32 = ref(x.astype(numpy.float32))
    numpy.testing.assert_allclose(y.array.astype(numpy.float32), y32.array,
                                  atol=5e-3, rtol=5e-3)
    with chainer.using_config('train', False):
        yt = mn(x)
        assert yt.dtype == numpy.float16
        numpy.testing.assert_allclose(
            yt.array.astype(numpy.float32),
            ref(x.astype(numpy.float32)).array, atol=5e-3, rtol=5e-3)


@pytest.mark.parametrize('variant', VARIANTS)
def test_variants_in_test_mode_equal_equation_38(rng, variant):
    mn = hand_built(rng, inference='consistent')
    for key, value in variant.items():
        setattr(mn, key, value)
    x = chainer.Variable(rng.randn(6, 5) * 1.5)
    with chainer.using_config('train', False):
        y = mn(x)
    expected = direct_equation_38(mn, x.array, False)
    numpy.testing.assert_allclose(y.array, expected, rtol=1e-9, atol=1e-12)
    y.grad = rng.randn(*y.shape)
    mn.cleargrads()
    y.backward()  # test mode keeps gradients for x, gamma and beta
    assert all(numpy.isfinite(a).all()
               for a in (x.grad, mn.gamma.grad, mn.beta.grad))


def test_variant_arguments():
    mn = MixtureNormalization(3, activation='relu', affine='components',
                              weight_scaling=False)
    assert mn.fuses_relu and mn.affine == 'components'
    assert MixtureNormalization(3, activation='none').activation is None
    assert not MixtureNormalization(3).fuses_relu
    with pytest.raises(ValueError, match='activation'):
        MixtureNormalization(3, activation='tanh')
    with pytest.raises(ValueError, match='affine'):
        MixtureNormalization(3, affine='both')


def test_relu_variant_output_is_its_own_activation(rng):
    x = rng.randn(16, 4, 3, 3).astype(numpy.float32)
    mn = MixtureNormalization(4, activation='relu')
    mn.beta.array[...] = -0.5
    y = mn(x).array
    assert (y >= 0).all() and (y == 0).any()
    with chainer.using_config('train', False):
        assert (mn(x).array >= 0).all()
