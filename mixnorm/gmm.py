"""Diagonal Gaussian mixture fitting for Mixture Normalization.

Every function takes NumPy or CuPy arrays and returns arrays of the same
module, in the dtype of ``x`` (float32 or float64).  Nothing here reads a
device value back to the host, so on a GPU a whole fit is queued without a
synchronisation: randomness comes from the array module's own generator,
index choices stay on the device, and components are masked (weight 0)
rather than removed, so every shape is known on the host.

The paper's procedure (Section 3.2, "Effect of parameters" in Section 4.2,
Section 5.3): k-means++ seeding with ``2 + log(K)`` local trials, a few
k-means iterations, a GMM initialised from that partition, a few EM
iterations, and components whose weight ends below 0.01 discarded with
their points merged into the remaining ones.

NumPy is the reference.  CuPy arrays of float32/float64 are dispatched at
the top of :func:`kmeans_pp`, :func:`kmeans`, :func:`responsibilities`,
:func:`em` and :func:`fit` to :mod:`mixnorm.kernels`, fused raw kernels that
compute the same quantities with a handful of launches.
"""
import collections
import math

import numpy

from chainer import backend

from mixnorm import kernels

GMM = collections.namedtuple('GMM', ['weights', 'means', 'variances'])
GMM.__doc__ = """Diagonal GMM: ``weights`` (K,), ``means`` (K, D),
``variances`` (K, D).  A component of weight 0 is absent."""

_LOG_2PI = math.log(2.0 * math.pi)

# Rows per block of the NumPy EM pass: a block of about this many elements
# stays in the CPU cache for its E-step and its M-step sums.
_BLOCK_ELEMENTS = 1 << 17
# Largest sum_i r x^2 / m2 for which m2 is taken from matrix products
# (about 6 bits lost; float32 variances stay within 1e-4, see the tests).
_EXPANSION_LIMIT = 64


def _random(xp, rng):
    return xp.random if rng is None else rng


def default_n_local_trials(n_components):
    """The paper's ``2 + log(K)`` k-means++ trials, as ``2 + floor(ln K)``."""
    return 2 + int(math.log(n_components))


def _sq_distances(x, xx, centers):
    """Squared Euclidean distances (m, K) from rows of x to the centres."""
    xp = backend.get_array_module(x)
    d2 = xx[:, None] - 2.0 * (x @ centers.T) + (centers * centers).sum(1)
    return xp.maximum(d2, 0)


def kmeans_pp(x, n_components, rng=None, n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, 2007).

    Each new centre is the best, by the resulting potential, of
    ``n_local_trials`` candidates drawn with probability proportional to the
    squared distance to the nearest centre chosen so far.

    Args:
        x: (m, D) data.
        n_components (int): number of centres K.
        rng: ``numpy.random.RandomState``/``cupy.random.RandomState`` or None
            for the array module's global generator.
        n_local_trials (int): candidates per centre; default ``2 + ln K``.

    Returns:
        (K, D) array of centres, each one a row of ``x``.
    """
    if n_local_trials is None:
        n_local_trials = default_n_local_trials(n_components)
    if kernels.supports(x):
        return kernels.kmeans_pp(x, n_components, rng, n_local_trials)
    xp = backend.get_array_module(x)
    rng = _random(xp, rng)
    m = x.shape[0]
    xx = (x * x).sum(1)
    first = rng.randint(0, m, size=(1,))
    centers = [x[first]]
    closest = _sq_distances(x, xx, centers[0])[:, 0]
    for _ in range(1, n_components):
        cumulative = xp.cumsum(closest)
        draws = rng.random_sample(n_local_trials).astype(x.dtype)
        candidates = xp.searchsorted(cumulative, draws * cumulative[-1])
        candidates = xp.minimum(candidates, m - 1)
        dist = xp.minimum(closest[:, None],
                          _sq_distances(x, xx, x[candidates]))
        best = xp.argmin(dist.sum(0))
        centers.append(x[candidates[best][None]])
        closest = dist[:, best]
    return xp.concatenate(centers, axis=0)


def kmeans(x, centers, n_iter):
    """Lloyd iterations from the given centres.

    Args:
        x: (m, D) data.
        centers: (K, D) initial centres.
        n_iter (int): number of assignment + update steps (may be 0).

    Returns:
        ``(centers, labels)``: ``labels`` (m,) is the last assignment and
        ``centers`` the means of that assignment; a cluster that received no
        point keeps its previous centre.
    """
    if kernels.supports(x):
        return kernels.kmeans(x, centers, n_iter)
    xp = backend.get_array_module(x)
    xx = (x * x).sum(1)
    labels = xp.argmin(_sq_distances(x, xx, centers), axis=1)
    for it in range(n_iter):
        onehot = _one_hot(labels, centers.shape[0], x.dtype)
        counts = onehot.sum(0)
        centers = xp.where(counts[:, None] > 0,
                           (onehot.T @ x) / xp.maximum(counts, 1)[:, None],
                           centers)
        if it < n_iter - 1:
            labels = xp.argmin(_sq_distances(x, xx, centers), axis=1)
    return centers, labels


def _one_hot(labels, n_components, dtype):
    xp = backend.get_array_module(labels)
    return (labels[:, None] == xp.arange(n_components)[None, :]).astype(dtype)


def _row_blocks(x):
    """Slices of about ``_BLOCK_ELEMENTS`` elements covering the rows of x."""
    step = max(1, _BLOCK_ELEMENTS // max(x.shape[1], 1))
    return [slice(i, i + step) for i in range(0, max(x.shape[0], 1), step)]


def _moments(x, resp, xx, buf):
    """Weighted count, mean and centred sum of squares of some rows.

    The sums of squares come from matrix products, m2 = sum_i r_i x_i^2 -
    n mean^2, which in floating point loses about log2(sum_i r_i x_i^2 /
    m2) bits.  Where that ratio exceeds ``_EXPANSION_LIMIT`` (a component
    far from the origin relative to its spread: a spike, an outlier), the
    component's sums are recomputed centred, sum_i r_i (x_i - mean)^2, so
    every result keeps all but the last 6 or so bits (Eq. 35).

    Args:
        x: (m, D) rows.
        resp: (m, K) non-negative weights.
        xx: ``x * x``.
        buf: (m, D) scratch array.

    Returns:
        ``(n, mean, m2)``: n_k = sum_i r_ik (K,), mean_k = sum_i r_ik x_i /
        n_k (0 where n_k = 0) and m2_k = sum_i r_ik (x_i - mean_k)^2 (K, D).
    """
    xp = backend.get_array_module(x)
    weights = resp.T
    n = resp.sum(0)
    s1 = weights @ x
    mean = s1 / xp.maximum(n, numpy.finfo(x.dtype).tiny)[:, None]
    s2 = weights @ xx
    m2 = s2 - s1 * mean
    lossy = s2 > _EXPANSION_LIMIT * m2
    for k in xp.flatnonzero(lossy.any(1)).tolist():
        cols = xp.flatnonzero(lossy[k])
        dev = xp.subtract(x[:, cols], mean[k, cols], out=buf[:, :len(cols)])
        m2[k, cols] = weights[k] @ (dev * dev)
    return n, mean, m2


def _blockwise_moments(x, weights_of):
    """:func:`_moments` of all rows of x, one cache-sized block at a time.

    Args:
        x: (m, D) rows.
        weights_of: function of (slice of rows, those rows, their squares)
            giving the (rows, K) weights.

    The blocks are combined exactly (Chan et al., 1979): each block's sum
    of squares is about its own mean and the spread of the block means is
    added as sum_b n_b (mean_b - mean)^2.
    """
    xp = backend.get_array_module(x)
    blocks = _row_blocks(x)
    size = (blocks[0].stop - blocks[0].start, x.shape[1])
    buf, sq = xp.empty(size, x.dtype), xp.empty(size, x.dtype)
    parts = []
    for rows in blocks:
        xb = x[rows]
        xx = xp.multiply(xb, xb, out=sq[:len(xb)])
        parts.append(_moments(xb, weights_of(rows, xb, xx), xx,
                              buf[:len(xb)]))
    if len(parts) == 1:
        return parts[0]
    pn, pmean, pm2 = (xp.stack(p) for p in zip(*parts))
    n = pn.sum(0)
    mean = (pn[:, :, None] * pmean).sum(0) \
        / xp.maximum(n, numpy.finfo(x.dtype).tiny)[:, None]
    m2 = (pm2 + pn[:, :, None] * xp.square(pmean - mean)).sum(0)
    return n, mean, m2


def _log_weights(weights):
    xp = backend.get_array_module(weights)
    tiny = numpy.finfo(weights.dtype).tiny
    return xp.where(weights > 0, xp.log(xp.maximum(weights, tiny)), -xp.inf)


def _gaussian_terms(means, variances):
    """Per-component factors of :func:`log_gaussian`, computed once a GMM."""
    xp = backend.get_array_module(means)
    prec = 1.0 / variances
    return (xp.ascontiguousarray(prec.T),
            xp.ascontiguousarray((-2.0 * means * prec).T),
            (means * means * prec).sum(1),
            -0.5 * (means.shape[1] * _LOG_2PI + xp.log(variances).sum(1)))


def _joint_terms(gmm):
    """:func:`_gaussian_terms` with log w_k in the constant: log w_k p_k."""
    prec_t, cross_t, quad, const = _gaussian_terms(gmm.means, gmm.variances)
    return prec_t, cross_t, quad, const + _log_weights(gmm.weights)


def _log_density(x, terms, xx=None):
    xp = backend.get_array_module(x)
    prec_t, cross_t, quad, const = terms
    if xx is None:
        xx = x * x
    maha = xx @ prec_t + x @ cross_t + quad  # sum_d (x - mu)^2 / var
    return const - 0.5 * xp.maximum(maha, 0)


def log_gaussian(x, means, variances, xx=None):
    """Diagonal Gaussian log-densities log p_k(x_i) (Eq. 27), shape (m, K).

    The quadratic form is expanded into matrix products; callers should pass
    data centred near the component means (as :func:`responsibilities` and
    :func:`fit` do) so that the expansion loses no precision.
    """
    return _log_density(x, _gaussian_terms(means, variances), xx)


def _posteriors(log_prob):
    """exp(log_prob) normalised per row, the row maximum subtracted first."""
    xp = backend.get_array_module(log_prob)
    prob = xp.exp(log_prob - log_prob.max(1, keepdims=True))
    return prob / prob.sum(1, keepdims=True)


def _log_resp(x, gmm, xx=None, terms=None):
    """log nu (m, K); ``terms``: :func:`_gaussian_terms` of gmm with the log
    weights added to the constant, if the caller has them."""
    xp = backend.get_array_module(x)
    if terms is None:
        terms = _joint_terms(gmm)
    log_prob = _log_density(x, terms, xx)
    shifted = log_prob - log_prob.max(1, keepdims=True)
    # log-sum-exp normalisation; subtracting the max first keeps float32
    # precision when the log-densities are large
    return shifted - xp.log(xp.exp(shifted).sum(1, keepdims=True))


def responsibilities(x, gmm):
    """Posteriors nu_k(x_i) (Eq. 31), shape (m, K), computed in log domain.

    Args:
        x: (m, D) data.
        gmm (GMM): the mixture; components of weight 0 get posterior 0.
    """
    if kernels.supports(x):
        return kernels.responsibilities(x, gmm)
    ref = gmm.weights @ gmm.means
    gmm = gmm._replace(means=gmm.means - ref)
    xp = backend.get_array_module(x)
    return xp.exp(_log_resp(x - ref, gmm))


def em(x, gmm, n_iter, reg_covar=1e-6, var_floor=0.0):
    """EM iterations for a diagonal-covariance GMM.

    Each iteration is an E-step (log-domain posteriors) and an M-step with
    centered second moments; the M-step adds ``reg_covar`` to every variance
    and ``10 * eps`` to every count, as scikit-learn's GaussianMixture does,
    so both give the same result from the same initial parameters.  Both
    steps run block by block of rows (:func:`_row_blocks`), so one iteration
    reads x from memory once.

    Args:
        x: (m, D) data.
        gmm (GMM): initial parameters.
        n_iter (int): number of EM iterations.
        reg_covar (float): added to every variance in the M-step.
        var_floor: scalar or (D,) lower bound applied to the variances after
            the M-step (0 disables it).

    Returns:
        GMM: the updated parameters.
    """
    if kernels.supports(x):
        return kernels.em(x, gmm, n_iter, reg_covar, var_floor)
    xp = backend.get_array_module(x)
    eps10 = 10 * numpy.finfo(x.dtype).eps
    for _ in range(n_iter):
        terms = _joint_terms(gmm)
        n, mean, m2 = _blockwise_moments(  # E-step, then M-step sums
            x, lambda rows, xb, xx: _posteriors(_log_density(xb, terms, xx)))
        nk = n + eps10
        means = mean * (n / nk)[:, None]  # sum_i r_ik x_i / nk
        # sum_i r_ik (x_i - means_k)^2 / nk, from the moments about mean_k
        variances = (m2 + n[:, None] * xp.square(mean - means)) \
            / nk[:, None] + reg_covar
        variances = xp.maximum(variances, var_floor)
        gmm = GMM(nk / nk.sum(), means, variances)
    return gmm


def split_iterations(n_iter):
    """Split the paper's "EM iter." into (k-means, EM) iterations.

    Section 4.2 uses the same number at both phases and reports their sum;
    an odd total gives the extra iteration to EM (1 -> 0 + 1, 3 -> 1 + 2).
    """
    n_kmeans = n_iter // 2
    return n_kmeans, n_iter - n_kmeans


def fit(x, n_components, n_iter=2, fit_fraction=1.0, min_weight=0.01,
        rng=None, reg_covar=1e-6, var_floor_ratio=1e-3):
    """Fit a diagonal GMM to a mini-batch and return it with posteriors.

    k-means++ seeding, ``n_iter`` iterations split between k-means and EM
    (:func:`split_iterations`), the GMM initialised from the k-means
    partition (cluster fractions, centroids, within-cluster variances), then
    components whose mean posterior is below ``min_weight`` discarded and
    their points re-assigned to the rest (Section 5.3).  At least one
    component survives.  Fewer points than components fits only as many
    components as there are points.

    Args:
        x: (m, D) data, float32 or float64 (m = N*H*W samples, D = C).
        n_components (int): K.
        n_iter (int): the paper's "EM iter." (k-means + EM iterations).
        fit_fraction (float): fraction of the points the GMM is fitted on
            (Section 5.1); posteriors are computed for all points.
        min_weight (float): components below this weight are discarded.
        rng: random generator or None for the array module's global one.
        reg_covar (float): added to every variance in the M-step.
        var_floor_ratio (float): variances are kept above this fraction of
            each dimension's variance over the mini-batch (plus
            ``reg_covar``), so that no component collapses onto a spike.

    Returns:
        ``(GMM, resp)`` with ``resp`` the (m, K) posteriors (Eq. 31).
    """
    if kernels.supports(x):
        return kernels.fit(x, n_components, n_iter, fit_fraction, min_weight,
                           rng, reg_covar, var_floor_ratio)
    xp = backend.get_array_module(x)
    m = x.shape[0]
    shift = x.mean(0)
    xc = x - shift  # translation-equivariant fit on centred data
    xx = xc * xc
    var_floor = var_floor_ratio * xx.mean(0) + reg_covar
    n_fit = min(m, max(n_components, int(math.ceil(fit_fraction * m))))
    xs = xc if n_fit == m else xc[_random(xp, rng).permutation(m)[:n_fit]]
    k_fit = min(n_components, n_fit)
    n_kmeans, n_em = split_iterations(n_iter)

    centers = kmeans_pp(xs, k_fit, rng)
    centers, labels = kmeans(xs, centers, n_kmeans)
    onehot = _one_hot(labels, k_fit, x.dtype)
    counts, mean, m2 = _blockwise_moments(xs,
                                          lambda rows, xb, xx: onehot[rows])
    # within-cluster sum_i (x_i - centre)^2 / count, centred
    variances = (m2 + counts[:, None] * xp.square(mean - centers)) \
        / xp.maximum(counts, 1)[:, None]
    gmm = GMM(counts / n_fit, centers, xp.maximum(variances + reg_covar,
                                                  var_floor))
    gmm = em(xs, gmm, n_em, reg_covar, var_floor)

    if k_fit < n_components:  # pad with absent components
        pad = n_components - k_fit
        gmm = GMM(xp.concatenate([gmm.weights, xp.zeros(pad, x.dtype)]),
                  xp.concatenate([gmm.means, xp.zeros((pad, x.shape[1]),
                                                      x.dtype)]),
                  xp.concatenate([gmm.variances,
                                  xp.ones((pad, x.shape[1]), x.dtype)]))
    log_resp = _log_resp(xc, gmm, xx)
    lam = xp.exp(log_resp).mean(0)
    keep = (lam >= min_weight) | (lam == lam.max())  # Section 5.3
    weights = xp.where(keep, gmm.weights, 0)
    gmm = gmm._replace(weights=weights / weights.sum())
    # posteriors under the pruned weights: the kept components' log
    # posteriors renormalised among themselves (w_k / sum_keep w cancels)
    log_resp = xp.where(keep, log_resp, -xp.inf)
    top = log_resp.max(1, keepdims=True)
    resp = xp.exp(log_resp - top)
    resp /= resp.sum(1, keepdims=True)
    return gmm._replace(means=gmm.means + shift), resp
