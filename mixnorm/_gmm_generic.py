"""The GMM primitives of :func:`mixnorm.gmm.fit` in array-generic code.

The reference: NumPy arrays always run it, and so do CuPy arrays when the
kernel path is off (:mod:`mixnorm.cuda`), which then synchronise where a
loop needs a host value (:func:`_moments`).  :mod:`mixnorm.cuda.gmm` has
the same functions with the same arguments.  ``data`` is an (m, D) array
of rows, centred by :func:`centre` where the caller wants them centred.
"""
import math

import numpy

from chainer import backend

from mixnorm._common import GMM

_LOG_2PI = math.log(2.0 * math.pi)

# Rows per block of the EM pass: a block of about this many elements
# stays in the CPU cache for its E-step and its M-step sums.
_BLOCK_ELEMENTS = 1 << 17
# Largest sum_i r x^2 / m2 for which m2 is taken from matrix products
# (about 6 bits lost; float32 variances stay within 1e-4, see the tests).
_EXPANSION_LIMIT = 64


def generator(rng, x):
    """``rng``, or the global generator of x's array module when None."""
    return backend.get_array_module(x).random if rng is None else rng


def rows(x):
    """The rows of x as they are."""
    return x


def take(data, index):
    """The rows ``index`` of ``data``."""
    return data[index]


def centre(x, reg_covar, var_floor_ratio):
    """``(rows, shift, var_floor)``: x less its column means ``shift`` and
    the variance floor ``var_floor_ratio * var + reg_covar`` per column."""
    shift = x.mean(0)
    xc = shifted(x, shift)
    return xc, shift, var_floor_ratio * (xc * xc).mean(0) + reg_covar


def subset_rows(m, n, rng):
    """n distinct row indices of m, a random permutation's first n."""
    return rng.permutation(m)[:n]


def _sq_distances(x, xx, centers):
    """Squared Euclidean distances (m, K) from rows of x to the centres."""
    xp = backend.get_array_module(x)
    d2 = xx[:, None] - 2.0 * (x @ centers.T) + (centers * centers).sum(1)
    return xp.maximum(d2, 0)


def kmeans_pp(data, n_components, n_local_trials, rng):
    """Greedy k-means++ centres (rows of data), see
    :func:`mixnorm.gmm.kmeans_pp`; the first index is ``rng.randint``."""
    xp = backend.get_array_module(data)
    m = data.shape[0]
    xx = (data * data).sum(1)
    first = rng.randint(0, m, size=(1,))
    centers = [data[first]]
    closest = _sq_distances(data, xx, centers[0])[:, 0]
    for _ in range(1, n_components):
        cumulative = xp.cumsum(closest)
        draws = rng.random_sample(n_local_trials).astype(data.dtype)
        candidates = xp.searchsorted(cumulative, draws * cumulative[-1])
        candidates = xp.minimum(candidates, m - 1)
        dist = xp.minimum(closest[:, None],
                          _sq_distances(data, xx, data[candidates]))
        best = xp.argmin(dist.sum(0))
        centers.append(data[candidates[best][None]])
        closest = dist[:, best]
    return xp.concatenate(centers, axis=0)


def assign(data, centers):
    """k-means assignment: ``(onehot (m, K), labels (m,))``."""
    xp = backend.get_array_module(data)
    labels = xp.argmin(_sq_distances(data, (data * data).sum(1), centers),
                       axis=1)
    k = centers.shape[0]
    onehot = (labels[:, None] == xp.arange(k)[None, :]).astype(data.dtype)
    return onehot, labels


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
    every result keeps all but the last 6 or so bits (Eq. 35).  Finding
    those components reads a device value back on CuPy.

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
    for rows_b in blocks:
        xb = x[rows_b]
        xx = xp.multiply(xb, xb, out=sq[:len(xb)])
        parts.append(_moments(xb, weights_of(rows_b, xb, xx), xx,
                              buf[:len(xb)]))
    if len(parts) == 1:
        return parts[0]
    pn, pmean, pm2 = (xp.stack(p) for p in zip(*parts))
    n = pn.sum(0)
    mean = (pn[:, :, None] * pmean).sum(0) \
        / xp.maximum(n, numpy.finfo(x.dtype).tiny)[:, None]
    m2 = (pm2 + pn[:, :, None] * xp.square(pmean - mean)).sum(0)
    return n, mean, m2


def moments(data, resp):
    """Posterior-weighted ``(n, mean, m2)`` of the rows (:func:`_moments`);
    ``resp`` None weighs every row 1 (one component)."""
    if resp is None:
        resp = backend.get_array_module(data).ones((data.shape[0], 1),
                                                   data.dtype)
    return _blockwise_moments(data, lambda rows_b, xb, xx: resp[rows_b])


def gmm_from_partition(counts, mean, m2, centers, move, n_rows, reg_covar,
                       var_floor):
    """The GMM of a hard partition from its moments: weights the cluster
    fractions, means the cluster means (``move``; an empty cluster keeps its
    centre) or the given centres, variances the within-cluster ones about
    those means plus ``reg_covar``, at least ``var_floor``."""
    xp = backend.get_array_module(mean)
    if move:
        centers = xp.where(counts[:, None] > 0, mean, centers)
    # sum_i (x_i - centre)^2 / count, from the moments about the mean
    variances = (m2 + counts[:, None] * xp.square(mean - centers)) \
        / xp.maximum(counts, 1)[:, None]
    # a NumPy 1 scalar >= 2^16 would promote float32 counts to float64
    return GMM(counts / counts.dtype.type(n_rows), centers,
               xp.maximum(variances + reg_covar, var_floor))


def partition_gmm(data, onehot, centers, move, reg_covar, var_floor):
    """The GMM of a hard partition (:func:`gmm_from_partition`)."""
    return gmm_from_partition(*moments(data, onehot), centers, move,
                              data.shape[0], reg_covar, var_floor)


def _log_weights(weights):
    xp = backend.get_array_module(weights)
    tiny = numpy.finfo(weights.dtype).tiny
    return xp.where(weights > 0, xp.log(xp.maximum(weights, tiny)), -xp.inf)


def gaussian_terms(means, variances):
    """Per-component factors of :func:`log_density`, computed once a GMM:
    ``(1/var^T, -2 mu/var^T, sum mu^2/var, log-normaliser)``."""
    xp = backend.get_array_module(means)
    prec = 1.0 / variances
    return (xp.ascontiguousarray(prec.T),
            xp.ascontiguousarray((-2.0 * means * prec).T),
            (means * means * prec).sum(1),
            -0.5 * (means.shape[1] * _LOG_2PI + xp.log(variances).sum(1)))


def _joint_terms(gmm):
    """:func:`gaussian_terms` with log w_k in the constant: log w_k p_k."""
    prec_t, cross_t, quad, const = gaussian_terms(gmm.means, gmm.variances)
    return prec_t, cross_t, quad, const + _log_weights(gmm.weights)


def log_density(x, terms, xx=None):
    """Diagonal Gaussian log-densities (Eq. 27) from :func:`gaussian_terms`;
    the quadratic form is expanded into matrix products, so x should be
    centred near the component means."""
    xp = backend.get_array_module(x)
    prec_t, cross_t, quad, const = terms
    if xx is None:
        xx = x * x
    maha = xx @ prec_t + x @ cross_t + quad  # sum_d (x - mu)^2 / var
    return const - 0.5 * xp.maximum(maha, 0)


def _posteriors(log_prob):
    """exp(log_prob) normalised per row, the row maximum subtracted first."""
    xp = backend.get_array_module(log_prob)
    prob = xp.exp(log_prob - log_prob.max(1, keepdims=True))
    return prob / prob.sum(1, keepdims=True)


def _log_resp(x, gmm):
    """log nu (m, K) by log-sum-exp, the row maximum subtracted first."""
    xp = backend.get_array_module(x)
    log_prob = log_density(x, _joint_terms(gmm))
    shifted = log_prob - log_prob.max(1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(1, keepdims=True))


def m_step(n, mean, m2, reg_covar, var_floor):
    """The EM M-step from posterior-weighted moments, as scikit-learn's:
    ``10 * eps`` added to every count and ``reg_covar`` to every variance,
    the variances kept at least ``var_floor``."""
    xp = backend.get_array_module(mean)
    nk = n + 10 * numpy.finfo(mean.dtype).eps
    means = mean * (n / nk)[:, None]  # sum_i r_ik x_i / nk
    # sum_i r_ik (x_i - means_k)^2 / nk, from the moments about mean_k
    variances = (m2 + n[:, None] * xp.square(mean - means)) \
        / nk[:, None] + reg_covar
    return GMM(nk / nk.sum(), means, xp.maximum(variances, var_floor))


def em_step(data, gmm, reg_covar, var_floor):
    """One EM iteration, block by block of rows (one read of the data): the
    E-step's log-domain posteriors, then :func:`m_step`."""
    terms = _joint_terms(gmm)
    return m_step(*_blockwise_moments(  # E-step, then M-step sums
        data, lambda rows_b, xb, xx: _posteriors(log_density(xb, terms, xx))),
        reg_covar, var_floor)


def responsibilities(x, gmm):
    """Posteriors (m, K) of the rows of x (Eq. 31), about the mixture mean."""
    xp = backend.get_array_module(x)
    ref = gmm.weights @ gmm.means
    return xp.exp(_log_resp(x - ref, gmm._replace(means=gmm.means - ref)))


def log_responsibilities(data, gmm):
    """log nu (m, K) of the rows (Eq. 31)."""
    return _log_resp(data, gmm)


def prune_posteriors(log_resp, lam, weights, min_weight):
    """Section 5.3 from the log posteriors and their means ``lam``:
    components whose mean posterior is below ``min_weight`` are dropped,
    unless heaviest.  Returns ``(weights, resp)``: the kept weights
    renormalised and the posteriors under them (the kept components' log
    posteriors renormalised among themselves).  A NaN mean posterior
    (statistics that overflowed) is kept, so that NaN reaches the
    posteriors instead of every component being dropped."""
    xp = backend.get_array_module(log_resp)
    keep = ~(lam < min_weight) | (lam == lam.max())
    weights = xp.where(keep, weights, 0)
    log_resp = xp.where(keep, log_resp, -xp.inf)
    resp = xp.exp(log_resp - log_resp.max(1, keepdims=True))
    resp /= resp.sum(1, keepdims=True)
    return weights / weights.sum(), resp


def prune(data, gmm, min_weight):
    """Section 5.3's pruning (:func:`prune_posteriors`) of gmm on data."""
    xp = backend.get_array_module(data)
    log_resp = _log_resp(data, gmm)
    return prune_posteriors(log_resp, xp.exp(log_resp).mean(0), gmm.weights,
                            min_weight)


def shifted(x, shift):
    """The rows of x less ``shift``."""
    return x - shift


def values(data):
    """The rows' values as an array."""
    return data


def total(count):
    """The number of rows over every process: here, the count itself."""
    return count
