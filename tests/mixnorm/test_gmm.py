import math

import numpy
import pytest

from mixnorm import gmm


def blobs(rng, n=600, d=4, k=3, dtype=numpy.float64):
    centers = rng.randn(k, d) * 5
    labels = rng.randint(0, k, n)
    x = centers[labels] + rng.randn(n, d) * rng.uniform(0.5, 2, (k, d))[labels]
    return x.astype(dtype), labels


class CountingRandom(object):
    """A RandomState that records the sizes of its uniform draws."""

    def __init__(self, seed=0):
        self.state = numpy.random.RandomState(seed)
        self.draws = []

    def randint(self, *args, **kwargs):
        return self.state.randint(*args, **kwargs)

    def random_sample(self, size):
        self.draws.append(size)
        return self.state.random_sample(size)

    def permutation(self, n):
        return self.state.permutation(n)


@pytest.mark.parametrize('k, trials', [(1, 2), (2, 2), (3, 3), (5, 3),
                                       (8, 4), (20, 4)])
def test_kmeans_pp_default_trial_count(rng, k, trials):
    assert gmm.default_n_local_trials(k) == 2 + int(math.log(k)) == trials
    x, _ = blobs(rng, n=200, k=3)
    counting = CountingRandom()
    centers = gmm.kmeans_pp(x, k, rng=counting)
    assert centers.shape == (k, x.shape[1])
    assert counting.draws == [trials] * (k - 1)
    # every centre is a data point
    for c in centers:
        assert numpy.min(numpy.abs(x - c).sum(1)) == 0


def test_kmeans_pp_spreads_over_separated_blobs(rng):
    x = numpy.concatenate([rng.randn(100, 2) * 0.1 + off
                           for off in ((0, 0), (50, 0), (0, 50))])
    centers = gmm.kmeans_pp(x, 3, rng=numpy.random.RandomState(1))
    assert len({tuple(numpy.round(c / 50)) for c in centers}) == 3


def test_kmeans_matches_lloyd_and_keeps_empty_cluster(rng):
    x, _ = blobs(rng)
    init = x[:3].copy()
    centers, labels = gmm.kmeans(x, init, 5)
    ref = init.copy()
    for _ in range(5):
        lab = ((x[:, None] - ref[None]) ** 2).sum(-1).argmin(1)
        ref = numpy.stack([x[lab == j].mean(0) for j in range(3)])
    numpy.testing.assert_allclose(centers, ref, rtol=1e-10)
    numpy.testing.assert_array_equal(labels, lab)  # centres = its means
    far = numpy.concatenate([init, [[1e6] * x.shape[1]]])
    centers, labels = gmm.kmeans(x, far, 3)
    assert (labels != 3).all()
    numpy.testing.assert_array_equal(centers[3], far[3])


@pytest.mark.parametrize('k, n_iter', [(1, 3), (2, 1), (3, 5), (4, 10)])
def test_em_matches_sklearn(rng, k, n_iter):
    sklearn_mixture = pytest.importorskip('sklearn.mixture')
    x, _ = blobs(rng, n=500, d=5, k=3)
    weights = rng.dirichlet(numpy.ones(k))
    means = x[rng.choice(len(x), k, replace=False)]
    variances = rng.uniform(0.5, 3, (k, 5))
    ours = gmm.em(x, gmm.GMM(weights, means, variances), n_iter)
    ref = sklearn_mixture.GaussianMixture(
        k, covariance_type='diag', weights_init=weights, means_init=means,
        precisions_init=1 / variances, max_iter=n_iter, tol=0,
        reg_covar=1e-6, init_params='random', random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ref.fit(x)
    numpy.testing.assert_allclose(ours.weights, ref.weights_, rtol=1e-4)
    numpy.testing.assert_allclose(ours.means, ref.means_, rtol=1e-4,
                                  atol=1e-8)
    numpy.testing.assert_allclose(ours.variances, ref.covariances_,
                                  rtol=1e-4)
    numpy.testing.assert_allclose(gmm.responsibilities(x, ours),
                                  ref.predict_proba(x), rtol=1e-4,
                                  atol=1e-9)


def test_responsibilities_are_posteriors(rng):
    x, _ = blobs(rng, n=50)
    model = gmm.GMM(numpy.array([0.2, 0.5, 0.3]), x[:3],
                    numpy.ones((3, 4)) * 2)
    dens = numpy.stack([
        numpy.prod(numpy.exp(-(x - model.means[j]) ** 2 / 4)
                   / numpy.sqrt(4 * numpy.pi), axis=1)
        for j in range(3)], axis=1) * model.weights
    numpy.testing.assert_allclose(gmm.responsibilities(x, model),
                                  dens / dens.sum(1, keepdims=True),
                                  rtol=1e-9)


def test_responsibilities_in_log_domain_far_from_all_components():
    x = numpy.array([[1e3, -1e3]], numpy.float32)
    model = gmm.GMM(numpy.array([0.5, 0.5], numpy.float32),
                    numpy.array([[0, 0], [1, 1]], numpy.float32),
                    numpy.full((2, 2), 1e-2, numpy.float32))
    resp = gmm.responsibilities(x, model)
    assert numpy.isfinite(resp).all()
    numpy.testing.assert_allclose(resp.sum(1), 1, rtol=1e-6)


@pytest.mark.parametrize('n_iter, split', [(0, (0, 0)), (1, (0, 1)),
                                           (2, (1, 1)), (3, (1, 2)),
                                           (8, (4, 4))])
def test_split_iterations(n_iter, split):
    assert gmm.split_iterations(n_iter) == split


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_fit_recovers_blobs(rng, dtype):
    x, labels = blobs(rng, n=900, d=3, k=3, dtype=dtype)
    model, resp = gmm.fit(x, 3, em_iter=8, rng=numpy.random.RandomState(0))
    assert model.weights.dtype == dtype and resp.dtype == dtype
    assert resp.shape == (900, 3)
    numpy.testing.assert_allclose(resp.sum(1), 1, rtol=1e-5)
    numpy.testing.assert_allclose(model.weights.sum(), 1, rtol=1e-5)
    # each true blob maps to one component
    purity = sum(numpy.bincount(resp.argmax(1)[labels == j]).max()
                 for j in range(3)) / 900.
    assert purity > 0.95


def test_fit_discards_light_components(rng):
    x = numpy.concatenate([rng.randn(995, 2), rng.randn(5, 2) + 30])
    model, resp = gmm.fit(x, 2, em_iter=4, min_weight=0.01,
                          rng=numpy.random.RandomState(0))
    assert (model.weights > 0).sum() == 1
    assert resp.shape == (1000, 2)
    numpy.testing.assert_allclose(resp.max(1), 1)
    kept = model.weights.argmax()
    assert (resp[:, kept] == 1).all()
    model, resp = gmm.fit(x, 2, em_iter=4, min_weight=0.001,
                          rng=numpy.random.RandomState(0))
    assert (model.weights > 0).sum() == 2


def test_fit_fraction_uses_subset_and_returns_all_resp(rng):
    x, _ = blobs(rng, n=1000)

    class Recorder(CountingRandom):
        def permutation(self, n):
            self.perm = n
            return super(Recorder, self).permutation(n)

    r = Recorder()
    model, resp = gmm.fit(x, 3, fit_fraction=0.25, rng=r)
    assert r.perm == 1000 and resp.shape == (1000, 3)
    numpy.testing.assert_allclose(resp.sum(1), 1, rtol=1e-6)


def test_fit_is_translation_equivariant(rng):
    x, _ = blobs(rng, n=300)
    a, ra = gmm.fit(x, 3, rng=numpy.random.RandomState(3))
    b, rb = gmm.fit(x + 1e3, 3, rng=numpy.random.RandomState(3))
    numpy.testing.assert_allclose(ra, rb, atol=1e-6)
    numpy.testing.assert_allclose(a.means + 1e3, b.means, rtol=1e-9)


def test_em_variances_stay_centred_far_from_the_origin(rng):
    # a tight component 3e3 away: sum r x^2 - n mean^2 would cancel every
    # float32 bit of its variance; the centred recomputation keeps all but
    # the error of the float32 mean (3e3 * 1e-7 against a spread of 1e-2)
    x = numpy.concatenate([rng.randn(5000, 4),
                           3e3 + 1e-2 * rng.randn(1000, 4)])
    x32 = x.astype(numpy.float32)
    start = gmm.GMM(numpy.array([5 / 6., 1 / 6.]), numpy.array(
        [[0.] * 4, [3e3] * 4]), numpy.array([[1.] * 4, [1e-4] * 4]))
    ref = gmm.em(x32.astype(numpy.float64), start, 2)
    out = gmm.em(x32, gmm.GMM(*(a.astype(numpy.float32) for a in start)),
                 2)
    numpy.testing.assert_allclose(out.variances, ref.variances, rtol=5e-3)
    numpy.testing.assert_allclose(out.means, ref.means, atol=1e-3)


@pytest.mark.parametrize('m', [512, 4096])
def test_em_float32_variances_keep_1e4_at_every_offset(rng, m):
    # one component at offset mu: the expanded sum of squares loses about
    # log2(1 + mu^2) bits; below _EXPANSION_LIMIT it is kept, above it the
    # centred recomputation takes over, so the error stays small on both
    # sides of the limit (a limit of 256 gives 2.4e-4 just below it)
    for mu in (0.5, 3.5, 5.0, 6.5, 7.9, 10.0, 15.5, 60.0):
        x = (rng.randn(m, 64) + mu).astype(numpy.float32)
        start = gmm.GMM(numpy.ones(1), x[:1].astype(numpy.float64),
                        numpy.ones((1, 64)))
        ref = gmm.em(x.astype(numpy.float64), start, 1)
        out = gmm.em(x, gmm.GMM(*(a.astype(numpy.float32) for a in start)),
                     1)
        numpy.testing.assert_allclose(out.variances, ref.variances,
                                      rtol=1e-4, err_msg='mu={}'.format(mu))


def test_fit_keeps_float32_over_65536_rows():
    """NumPy 1 promotes float32 / int >= 2^16 to float64: not here."""
    x = numpy.random.RandomState(0).randn(70000, 3).astype(numpy.float32)
    model, resp = gmm.fit(x, 2, 2, rng=numpy.random.RandomState(0))
    assert resp.dtype == numpy.float32
    assert all(a.dtype == numpy.float32 for a in model)
