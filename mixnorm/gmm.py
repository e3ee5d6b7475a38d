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
"""
import collections
import math

import numpy

from chainer import backend

GMM = collections.namedtuple('GMM', ['weights', 'means', 'variances'])
GMM.__doc__ = """Diagonal GMM: ``weights`` (K,), ``means`` (K, D),
``variances`` (K, D).  A component of weight 0 is absent."""

_LOG_2PI = math.log(2.0 * math.pi)


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
    xp = backend.get_array_module(x)
    rng = _random(xp, rng)
    m = x.shape[0]
    if n_local_trials is None:
        n_local_trials = default_n_local_trials(n_components)
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


def _weighted_variances(x, resp, means, nk):
    """Centered second moments sum_i r_ik (x_i - mu_k)^2 / n_k (Eq. 35)."""
    xp = backend.get_array_module(x)
    return xp.stack([resp[:, k] @ ((x - means[k]) ** 2)
                     for k in range(means.shape[0])]) / nk[:, None]


def _log_weights(weights):
    xp = backend.get_array_module(weights)
    tiny = numpy.finfo(weights.dtype).tiny
    return xp.where(weights > 0, xp.log(xp.maximum(weights, tiny)), -xp.inf)


def log_gaussian(x, means, variances, xx=None):
    """Diagonal Gaussian log-densities log p_k(x_i) (Eq. 27), shape (m, K).

    The quadratic form is expanded into matrix products; callers should pass
    data centred near the component means (as :func:`responsibilities` and
    :func:`fit` do) so that the expansion loses no precision.
    """
    xp = backend.get_array_module(x)
    prec = 1.0 / variances
    if xx is None:
        xx = x * x
    maha = xx @ prec.T - 2.0 * (x @ (means * prec).T) \
        + (means * means * prec).sum(1)
    maha = xp.maximum(maha, 0)
    return -0.5 * (x.shape[1] * _LOG_2PI + xp.log(variances).sum(1) + maha)


def _log_resp(x, gmm, xx=None):
    xp = backend.get_array_module(x)
    log_prob = log_gaussian(x, gmm.means, gmm.variances, xx) \
        + _log_weights(gmm.weights)
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
    ref = gmm.weights @ gmm.means
    gmm = gmm._replace(means=gmm.means - ref)
    xp = backend.get_array_module(x)
    return xp.exp(_log_resp(x - ref, gmm))


def em(x, gmm, n_iter, reg_covar=1e-6, var_floor=0.0):
    """EM iterations for a diagonal-covariance GMM.

    Each iteration is an E-step (log-domain posteriors) and an M-step with
    centered second moments; the M-step adds ``reg_covar`` to every variance
    and ``10 * eps`` to every count, as scikit-learn's GaussianMixture does,
    so both give the same result from the same initial parameters.

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
    xp = backend.get_array_module(x)
    xx = x * x
    eps10 = 10 * numpy.finfo(x.dtype).eps
    for _ in range(n_iter):
        resp = xp.exp(_log_resp(x, gmm, xx))
        nk = resp.sum(0) + eps10
        means = (resp.T @ x) / nk[:, None]
        variances = _weighted_variances(x, resp, means, nk) + reg_covar
        variances = xp.maximum(variances, var_floor)
        weights = nk / nk.sum()
        gmm = GMM(weights, means, variances)
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
    xp = backend.get_array_module(x)
    m = x.shape[0]
    shift = x.mean(0)
    xc = x - shift  # translation-equivariant fit on centred data
    var_floor = var_floor_ratio * (xc * xc).mean(0) + reg_covar
    n_fit = min(m, max(n_components, int(math.ceil(fit_fraction * m))))
    xs = xc if n_fit == m else xc[_random(xp, rng).permutation(m)[:n_fit]]
    k_fit = min(n_components, n_fit)
    n_kmeans, n_em = split_iterations(n_iter)

    centers = kmeans_pp(xs, k_fit, rng)
    centers, labels = kmeans(xs, centers, n_kmeans)
    onehot = _one_hot(labels, k_fit, x.dtype)
    counts = onehot.sum(0)
    variances = _weighted_variances(xs, onehot, centers,
                                    xp.maximum(counts, 1))
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
    xx = xc * xc
    resp = xp.exp(_log_resp(xc, gmm, xx))
    lam = resp.mean(0)
    keep = (lam >= min_weight) | (lam == lam.max())  # Section 5.3
    weights = xp.where(keep, gmm.weights, 0)
    gmm = gmm._replace(weights=weights / weights.sum())
    resp = xp.exp(_log_resp(xc, gmm, xx))
    return gmm._replace(means=gmm.means + shift), resp
