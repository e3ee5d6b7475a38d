"""Bad input and numerical stress for the GMM fit and the MN layer."""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from mixnorm import MixtureNormalization, gmm


def forward_backward(x, k=3, em_iter=2, min_weight=0.01):
    mn = MixtureNormalization(x.shape[1], n_components=k, em_iter=em_iter,
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
        model, resp = gmm.fit(x, k, em_iter=2 + 2 * (i % 3))
        assert numpy.isfinite(resp).all(), i
        assert numpy.isfinite(model.weights).all(), i
        assert numpy.isfinite(model.variances).all(), i
        assert (model.variances > 0).all(), i
        numpy.testing.assert_allclose(resp.sum(1), 1, rtol=1e-4)


def test_stress_layer_forward_backward(rng):
    batches = realistic_batches(rng, 200)
    for i, x in enumerate(batches):
        forward_backward(x, k=2 + i % 4)


def test_overflowing_statistics_raise_like_nan(rng):
    model = chainer.Chain()
    with model.init_scope():
        model.norm5 = MixtureNormalization(3)
    x = rng.randn(16, 3, 4, 4).astype(numpy.float32)
    model.norm5(x)
    queue = model.norm5.queue_variances.copy()
    with pytest.raises(ValueError, match='norm5.*NaN or Inf.*overflow'):
        model.norm5(x * numpy.float32(1e20))
    assert model.norm5.n_fits == 1  # the bad fit did not enter the queue
    numpy.testing.assert_array_equal(model.norm5.queue_variances, queue)
    # float64 holds the squares: the same input normalizes as at scale 1
    mn = MixtureNormalization(3, dtype=numpy.float64, n_components=1)
    y = mn(x.astype(numpy.float64) * 1e20).array
    y1 = mn(x.astype(numpy.float64)).array
    numpy.testing.assert_allclose(y, y1, atol=1e-4)  # eps is not scaled


def test_check_finite_off_lets_it_through(rng):
    mn = MixtureNormalization(3, check_finite=False)
    x = rng.randn(16, 3).astype(numpy.float32)
    x[0, 0] = numpy.nan
    mn(x)  # the user's choice: no check, no error
    assert mn.n_fits == 1


def test_seed_repeats_a_fit(rng):
    import mixnorm
    x = rng.randn(500, 4).astype(numpy.float32)
    mixnorm.seed(3)
    a = gmm.fit(x, 3, 2)
    mixnorm.seed(3)
    b = gmm.fit(x, 3, 2)
    mixnorm.seed(4)
    c = gmm.fit(x, 3, 2)
    numpy.testing.assert_array_equal(a[1], b[1])
    assert not numpy.array_equal(a[0].means, c[0].means)


def test_fit_em_iter_alias(rng):
    x = rng.randn(200, 3)
    with pytest.warns(DeprecationWarning, match='gmm.fit: n_iter'):
        old = gmm.fit(x, 2, n_iter=4, rng=numpy.random.RandomState(1))
    new = gmm.fit(x, 2, em_iter=4, rng=numpy.random.RandomState(1))
    numpy.testing.assert_array_equal(old[1], new[1])
