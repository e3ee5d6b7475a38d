"""Bad input and numerical stress for the GMM fit and the MN layer."""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from mixnorm import MixtureNormalization, gmm


def forward_backward(x, k=3, n_iter=2, min_weight=0.01):
    mn = MixtureNormalization(x.shape[1], n_components=k, n_iter=n_iter,
                              min_weight=min_weight, dtype=x.dtype)
    mn.cleargrads()
    xv = chainer.Variable(x)
    y = mn(xv)
    F.sum(y * y).backward()
    assert numpy.isfinite(y.array).all(), 'non-finite output'
    assert numpy.isfinite(xv.grad).all(), 'non-finite gradient'
    assert numpy.isfinite(mn.gamma.grad).all()
    with chainer.using_config('train', False):
        assert numpy.isfinite(mn(x).array).all(), 'non-finite test output'
    return mn


def test_nan_or_inf_names_the_link(rng):
    model = chainer.Chain()
    with model.init_scope():
        model.norm3 = MixtureNormalization(3)
    for bad in (numpy.nan, numpy.inf, -numpy.inf):
        x = rng.randn(4, 3, 2, 2).astype(numpy.float32)
        x[1, 2, 0, 1] = bad
        with pytest.raises(ValueError, match='norm3.*NaN or Inf'):
            model.norm3(x)


@pytest.mark.parametrize('n', [1, 2])
def test_fewer_samples_than_components(rng, n):
    mn = forward_backward(rng.randn(n, 4).astype(numpy.float32), k=3)
    assert mn.effective_components() <= n


def test_constant_channel(rng):
    x = rng.randn(8, 3, 4, 4).astype(numpy.float32)
    x[:, 1] = 3.5
    mn = forward_backward(x)
    out = mn(x).array
    numpy.testing.assert_allclose(out[:, 1], mn.beta.array[1], atol=1e-3)


def test_dead_relu_all_zero(rng):
    mn = forward_backward(numpy.zeros((8, 5, 4, 4), numpy.float32))
    assert mn.effective_components() == 1


def test_duplicated_points(rng):
    x = numpy.repeat(rng.randn(3, 6).astype(numpy.float32), 40, axis=0)
    forward_backward(x, k=5)


@pytest.mark.parametrize('scale', [1.0, 100.0])
def test_values_around_1e4(rng, scale):
    x = (1e4 + scale * rng.randn(16, 4, 4, 4)).astype(numpy.float32)
    forward_backward(x)


def test_one_point_far_away(rng):
    x = rng.randn(256, 8).astype(numpy.float32)
    x[7] = 1e6
    forward_backward(x, k=4, min_weight=0)


def realistic_batches(rng, n_batches):
    """Activations like the ones MN sees in a CNN, and harder cases."""
    conv1 = L.Convolution2D(3, 16, 3, pad=1)
    conv2 = L.Convolution2D(16, 12, 3, pad=1)
    for i in range(n_batches):
        kind = i % 4
        if kind == 0:   # conv of ReLU of conv of images: the usual case
            img = rng.randn(8, 3, 8, 8).astype(numpy.float32)
            x = conv2(F.relu(conv1(img))).array
            yield x.transpose(0, 2, 3, 1).reshape(-1, 12)
        elif kind == 1:  # ReLU output itself: a spike at zero
            img = rng.randn(8, 3, 8, 8).astype(numpy.float32)
            x = F.relu(conv1(img)).array[:, :12]
            yield x.transpose(0, 2, 3, 1).reshape(-1, 12)
        elif kind == 2:  # heavy tails
            yield (rng.standard_cauchy((512, 12)) *
                   rng.uniform(1e-3, 1e3)).astype(numpy.float32)
        else:            # near-degenerate: few distinct rows, tiny spread
            rows = rng.randn(rng.randint(1, 4), 12)
            x = rows[rng.randint(0, len(rows), 512)] + \
                1e-6 * rng.randn(512, 12)
            yield x.astype(numpy.float32) * rng.uniform(1e-3, 1e4)


def test_stress_thousands_of_fits(rng):
    for i, x in enumerate(realistic_batches(rng, 2000)):
        k = 1 + i % 5
        model, resp = gmm.fit(x, k, n_iter=2 + 2 * (i % 3))
        assert numpy.isfinite(resp).all(), i
        assert numpy.isfinite(model.weights).all(), i
        assert numpy.isfinite(model.variances).all(), i
        assert (model.variances > 0).all(), i
        numpy.testing.assert_allclose(resp.sum(1), 1, rtol=1e-4)


def test_stress_layer_forward_backward(rng):
    batches = realistic_batches(rng, 200)
    for i, x in enumerate(batches):
        forward_backward(x, k=2 + i % 4)
