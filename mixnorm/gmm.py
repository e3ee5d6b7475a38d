"""Diagonal Gaussian mixture fitting for Mixture Normalization.

Every function takes NumPy or CuPy arrays and returns arrays of the same
module, in the dtype of ``x`` (float32 or float64).

The paper's procedure (Section 3.2, "Effect of parameters" in Section 4.2,
Section 5.3), written once in :func:`fit`: k-means++ seeding with
``2 + log(K)`` local trials, a few k-means iterations, a GMM initialised
from that partition, a few EM iterations, and components whose weight ends
below 0.01 discarded with their points merged into the remaining ones.

The steps run on one of two sets of primitives with the same functions,
chosen per array as Chainer chooses a BatchNormalization implementation:
:mod:`mixnorm.cuda.gmm` (raw CUDA kernels, no host-device synchronisation)
for float32/float64 CuPy arrays while :data:`mixnorm.cuda.enabled`, and
:mod:`mixnorm._gmm_generic` (array-generic NumPy/CuPy code, the reference)
otherwise; with a communicator, either one wrapped by
:class:`mixnorm._gmm_multinode.MultiNodePrimitives`.
"""
import math

from chainer import backend

from mixnorm import _gmm_generic
from mixnorm import cuda
from mixnorm._common import default_n_local_trials  # NOQA: F401
from mixnorm._common import GMM
from mixnorm._common import resolve_em_iter
from mixnorm._common import split_iterations
from mixnorm._gmm_multinode import MultiNodePrimitives


def _primitives(x, comm=None):
    ops = cuda.gmm if cuda.supports(x) else _gmm_generic
    return ops if comm is None else MultiNodePrimitives(ops, comm)


def log_gaussian(x, means, variances):
    """Diagonal Gaussian log-densities log p_k(x_i) (Eq. 27), shape (m, K).

    The quadratic form is expanded into matrix products; pass data centred
    near the component means so that the expansion loses no precision.
    """
    return _gmm_generic.log_density(
        x, _gmm_generic.gaussian_terms(means, variances))


def kmeans_pp(x, n_components, rng=None, n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, 2007).

    Each new centre is the best, by the resulting potential, of
    ``n_local_trials`` candidates drawn with probability proportional to the
    squared distance to the nearest centre chosen so far.

    Args:
        x: (m, D) data.
        n_components (int): number of centres K.
        rng: ``numpy.random.RandomState``/``cupy.random.RandomState`` or None
            for the default generator (NumPy's or CuPy's global one, or
            :data:`mixnorm.cuda.random.uniforms` on the kernel path).
        n_local_trials (int): candidates per centre; default ``2 + ln K``.

    Returns:
        (K, D) array of centres, each one a row of ``x``.
    """
    ops = _primitives(x)
    if n_local_trials is None:
        n_local_trials = default_n_local_trials(n_components)
    return ops.kmeans_pp(ops.rows(x), n_components, n_local_trials,
                         ops.generator(rng, x))


def _lloyd(ops, data, centers, n_iter, reg_covar, var_floor):
    """``n_iter`` Lloyd iterations, and the GMM of the last partition.

    Returns:
        ``(gmm, labels)``: the GMM's means are the final centres (the
        starting ones when ``n_iter`` is 0), its weights the cluster
        fractions and its variances the within-cluster variances of the
        last assignment ``labels``.
    """
    onehot, labels = ops.assign(data, centers)
    gmm = ops.partition_gmm(data, onehot, centers, n_iter > 0, reg_covar,
                            var_floor)
    for _ in range(1, n_iter):
        onehot, labels = ops.assign(data, gmm.means)
        gmm = ops.partition_gmm(data, onehot, gmm.means, True, reg_covar,
                                var_floor)
    return gmm, labels


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
    ops = _primitives(x)
    gmm, labels = _lloyd(ops, ops.rows(x), centers, n_iter, 0.0, 0.0)
    return gmm.means, labels


def responsibilities(x, gmm):
    """Posteriors nu_k(x_i) (Eq. 31), shape (m, K), computed in log domain.

    Args:
        x: (m, D) data.
        gmm (GMM): the mixture; components of weight 0 get posterior 0.
    """
    return _primitives(x).responsibilities(x, gmm)


def em(x, gmm, n_iter, reg_covar=1e-6, var_floor=0.0):
    """EM iterations for a diagonal-covariance GMM.

    Each iteration is an E-step (log-domain posteriors) and an M-step with
    centred second moments; the M-step adds ``reg_covar`` to every variance
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
    ops = _primitives(x)
    data = ops.rows(x)
    for _ in range(n_iter):
        gmm = ops.em_step(data, gmm, reg_covar, var_floor)
    return gmm


def _pad(gmm, n_components):
    """gmm with absent components (weight 0, mean 0, variance 1) appended
    up to ``n_components``."""
    pad = n_components - gmm.weights.shape[0]
    if pad == 0:
        return gmm
    xp = backend.get_array_module(gmm.means)
    d, dtype = gmm.means.shape[1], gmm.means.dtype
    return GMM(xp.concatenate([gmm.weights, xp.zeros(pad, dtype)]),
               xp.concatenate([gmm.means, xp.zeros((pad, d), dtype)]),
               xp.concatenate([gmm.variances, xp.ones((pad, d), dtype)]))


def fit(x, n_components, em_iter=None, fit_fraction=1.0, min_weight=0.01,
        rng=None, reg_covar=1e-6, var_floor_ratio=1e-3, comm=None,
        n_iter=None):
    """Fit a diagonal GMM to a mini-batch and return it with posteriors.

    k-means++ seeding, ``em_iter`` iterations split between k-means and EM
    (:func:`split_iterations`), the GMM initialised from the k-means
    partition (cluster fractions, centroids, within-cluster variances), then
    components whose mean posterior is below ``min_weight`` discarded and
    their points re-assigned to the rest (Section 5.3).  At least one
    component survives.  Fewer points than components fits only as many
    components as there are points.  The fit runs on data centred by their
    column means, to which it is equivariant.

    Args:
        x: (m, D) data, float32 or float64 (m = N*H*W samples, D = C).
        n_components (int): K.
        em_iter (int): the paper's "EM iter." (k-means + EM iterations),
            default 2.
        fit_fraction (float): fraction of the points the GMM is fitted on
            (Section 5.1); posteriors are computed for all points.
        min_weight (float): components below this weight are discarded.
        rng: random generator or None for the default one (see
            :func:`kmeans_pp`).
        reg_covar (float): added to every variance in the M-step.
        var_floor_ratio (float): variances are kept above this fraction of
            each dimension's variance over the mini-batch (plus
            ``reg_covar``), so that no component collapses onto a spike.
        comm: a ChainerMN communicator, or None.  With one, every process
            calls ``fit`` on its own rows and all of them fit one GMM to
            the union (:mod:`mixnorm._gmm_multinode`); ``fit_fraction``
            applies to each process's rows.
        n_iter (int): deprecated alias of ``em_iter``; warns.

    Returns:
        ``(GMM, resp)`` with ``resp`` the (m, K) posteriors (Eq. 31) of
        this process's rows.
    """
    em_iter = resolve_em_iter(em_iter, n_iter, 'gmm.fit')
    ops = _primitives(x, comm)
    m = x.shape[0]
    data, shift, var_floor = ops.centre(x, reg_covar, var_floor_ratio)
    n_fit = min(m, max(n_components, int(math.ceil(fit_fraction * m))))
    k_fit = min(n_components, ops.total(n_fit))
    rng = ops.generator(rng, x)
    fitted = data if n_fit == m else ops.take(data,
                                              ops.subset_rows(m, n_fit, rng))
    n_kmeans, n_em = split_iterations(em_iter)

    centers = ops.kmeans_pp(fitted, k_fit, default_n_local_trials(k_fit),
                            rng)
    gmm, _ = _lloyd(ops, fitted, centers, n_kmeans, reg_covar, var_floor)
    for _ in range(n_em):
        gmm = ops.em_step(fitted, gmm, reg_covar, var_floor)
    gmm = _pad(gmm, n_components)
    weights, resp = ops.prune(data, gmm, min_weight)  # Section 5.3
    return GMM(weights, gmm.means + shift, gmm.variances), resp
