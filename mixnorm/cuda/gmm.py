"""The GMM primitives of :func:`mixnorm.gmm.fit` on the GPU.

The same operations as :mod:`mixnorm._gmm_generic`, with the same names
and arguments, computed by the kernels of ``gmm.cu`` (one compilation per
dtype and K) and ``kmeanspp.cu`` (one per dtype).  Nothing here reads a
device value back: loop bounds are shapes or hyper-parameters, random
numbers come from the device (:mod:`mixnorm.cuda.random`), index choices
(k-means++ candidates, the best trial, the fitted subset) are made and
used on the device, and reductions over blocks of rows end in per-block
partial sums that the next kernel adds up.

The data are centred on the fly: :class:`Rows` pairs the data with a
column shift that every kernel subtracts, so no centred copy is made.
"""
import collections

import numpy

from mixnorm._common import GMM
from mixnorm._gmm_generic import total  # NOQA: F401
from mixnorm.cuda import _compile
from mixnorm.cuda._compile import contiguous
from mixnorm.cuda._compile import cupy
from mixnorm.cuda.random import generator  # NOQA: F401


class Rows(collections.namedtuple('Rows', ['x', 'shift'])):
    """Rows ``x - shift`` of an (m, D) C-contiguous array; shift may be
    None."""

    @property
    def shape(self):
        return self.x.shape

    @property
    def dtype(self):
        return self.x.dtype


def _gmm_kernel(name, dtype, n_components):
    return _compile.kernel('gmm.cu', name, dtype, n_components)


def rows(x):
    """The rows of x as they are."""
    return Rows(cupy.ascontiguousarray(x), None)


def take(data, index):
    """The rows ``index`` of ``data``."""
    return Rows(data.x[index], data.shift)


def _partial_moments(data, resp, n_components):
    """Per block of rows: weighted counts, means and centred sums of
    squares (``moments_part``); ``resp`` None weighs every row 1.

    Returns:
        ``(parts, n_parts)``: the buffer [n (P, K) | mean (P, K, D) |
        m2 (P, K, D)] of P = n_parts blocks.
    """
    m, d = data.shape
    k = n_components
    tiles = -(-d // _compile.TD)
    n_parts = max(1, min(-(-m // 32), -(-_compile.COL_TARGET // tiles)))
    per_part = -(-m // n_parts)
    n_parts = -(-m // per_part)
    parts = cupy.empty(n_parts * k * (1 + 2 * d), data.dtype)
    _compile.launch(_gmm_kernel('moments_part', data.dtype, k),
                    (tiles, n_parts), (data.x, data.shift, m, d, resp,
                                       per_part, parts))
    return parts, n_parts


def _floor(var_floor, d, dtype):
    if isinstance(var_floor, cupy.ndarray):
        return contiguous(var_floor, dtype)
    return cupy.full(d, var_floor, dtype)


def centre(x, reg_covar, var_floor_ratio):
    """``(rows, shift, var_floor)``: x less its column means ``shift``
    (subtracted on the fly) and the variance floor
    ``var_floor_ratio * var + reg_covar`` per column."""
    x = cupy.ascontiguousarray(x)
    d = x.shape[1]
    parts, n_parts = _partial_moments(rows(x), None, 1)
    shift = cupy.empty(d, x.dtype)
    var_floor = cupy.empty(d, x.dtype)
    _compile.launch(_gmm_kernel('column_stats', x.dtype, 1),
                    _compile.cover(d), (
                        parts, n_parts, d, float(var_floor_ratio),
                        float(reg_covar), shift, var_floor))
    return Rows(x, shift), shift, var_floor


def subset_rows(m, n, rng):
    """n distinct row indices of m, ``(a j + b) mod m`` (``affine_rows``).

    a is a random stride coprime to m and b a random offset, so every row
    is equally likely to be in the subset, and drawing it needs no sort
    (CuPy's permutation sorts, and its sort synchronises).

    Args:
        m (int): number of rows.
        n (int): subset size, at most m.
        rng: generator whose ``random_sample`` is called once.

    Returns:
        cupy.ndarray: (n,) int64.
    """
    index = cupy.empty(n, numpy.int64)
    _compile.launch(_compile.kernel('kmeanspp.cu', 'affine_rows',
                                    numpy.float32),
                    _compile.flat_grid(n), (
                        contiguous(rng.random_sample(2), numpy.float64), m,
                        n, index))
    return index


def kmeans_pp(data, n_components, n_local_trials, rng):
    """k-means++ centres (rows of data) as :func:`mixnorm.gmm.kmeans_pp`.

    Draws ``1 + (K - 1) * n_local_trials`` uniforms at once: the first
    index is ``floor(u_0 * m)``, round r uses the next n_local_trials.
    """
    if n_local_trials > _compile.MAX_TRIALS:
        raise ValueError('the CUDA k-means++ holds at most {} local trials, '
                         'not {}'.format(_compile.MAX_TRIALS,
                                         n_local_trials))
    x, shift = data
    m, d = x.shape
    k, n_trials = n_components, n_local_trials
    u = contiguous(rng.random_sample(1 + (k - 1) * n_trials), numpy.float64)
    pick = _compile.kernel('kmeanspp.cu', 'seed_pick', x.dtype)
    dist_fn = _compile.kernel('kmeanspp.cu', 'seed_dist', x.dtype)
    grid = _compile.row_grid(m)
    closest = cupy.empty(m, x.dtype)
    dist = cupy.empty(m * n_trials, x.dtype)
    part = cupy.empty(grid * n_trials, x.dtype)
    cand = cupy.empty(n_trials, numpy.int64)
    index = cupy.empty(k, numpy.int64)
    centers = cupy.empty((k, d), x.dtype)

    def pick_step(step):
        _compile.launch(pick, 1, (x, shift, m, d, u, step, k, n_trials,
                                  closest, dist, part, grid, cand, index,
                                  centers), threads=_compile.PICK)

    pick_step(0)
    for step in range(1, k + 1):
        if k > 1:  # distances to the candidates of round step - 1
            n_cand = 1 if step == 1 else n_trials
            _compile.launch(dist_fn, grid, (x, shift, m, d, cand, n_cand,
                                            closest, int(step > 1), dist,
                                            part))
        pick_step(step)
    return centers


def assign(data, centers):
    """k-means assignment: ``(onehot (m, K), labels (m,))``."""
    x, shift = data
    m, d = x.shape
    k = centers.shape[0]
    onehot = cupy.empty((m, k), x.dtype)
    labels = cupy.empty(m, numpy.int64)
    _compile.launch(_gmm_kernel('assign', x.dtype, k), _compile.row_grid(m),
                    (x, shift, m, d, contiguous(centers, x.dtype), onehot,
                     labels))
    return onehot, labels


def _merged_gmm(name, data, resp, n_components, *args):
    """The GMM that merge kernel ``name`` writes from the partial moments
    of data under weights resp, given its own ``args``."""
    d = data.shape[1]
    k = n_components
    parts, n_parts = _partial_moments(data, resp, k)
    out = cupy.empty(k * (1 + 2 * d), data.dtype)
    _compile.launch(_gmm_kernel(name, data.dtype, k), _compile.cover(k * d),
                    (parts, n_parts, d) + args + (out,))
    return GMM(out[:k], out[k:k + k * d].reshape(k, d),
               out[k + k * d:].reshape(k, d))


def moments(data, resp):
    """Posterior-weighted ``(n, mean, m2)`` of the rows (``merged_moments``);
    ``resp`` None weighs every row 1 (one component)."""
    return _merged_gmm('merged_moments', data, resp,
                       1 if resp is None else resp.shape[1])


def partition_gmm(data, onehot, centers, move, reg_covar, var_floor):
    """The GMM of a hard partition (``partition_gmm`` kernel)."""
    return _merged_gmm('partition_gmm', data, onehot, centers.shape[0],
                       int(move), contiguous(centers, data.dtype),
                       float(reg_covar),
                       _floor(var_floor, data.shape[1], data.dtype),
                       float(data.shape[0]))


def _e_step(data, gmm, write_log=False):
    """Posteriors (or log posteriors) (m, K) and per-block sums (G, K + 1)."""
    x, shift = data
    m, d = x.shape
    k = gmm.weights.shape[0]
    grid = _compile.row_grid(m)
    out = cupy.empty((m, k), x.dtype)
    part = cupy.empty((grid, k + 1), x.dtype)
    _compile.launch(_gmm_kernel('estep', x.dtype, k), grid, (
        x, shift, m, d, contiguous(gmm.weights, x.dtype),
        contiguous(gmm.means, x.dtype), contiguous(gmm.variances, x.dtype),
        out, part, int(write_log)))
    return out, part


def em_step(data, gmm, reg_covar, var_floor):
    """One EM iteration (``estep``, then ``m_step``)."""
    resp, _ = _e_step(data, gmm)
    return _merged_gmm('m_step', data, resp, gmm.weights.shape[0],
                       float(reg_covar),
                       _floor(var_floor, data.shape[1], data.dtype),
                       10 * float(numpy.finfo(data.dtype).eps))


def responsibilities(x, gmm):
    """Posteriors (m, K) of the rows of x (Eq. 31)."""
    return _e_step(rows(x), gmm)[0]


def log_responsibilities(data, gmm):
    """log nu (m, K) of the rows (Eq. 31)."""
    return _e_step(data, gmm, write_log=True)[0]


def shifted(x, shift):
    """The rows of x less ``shift``, subtracted on the fly."""
    return Rows(cupy.ascontiguousarray(x), shift)


def values(data):
    """The rows' values (x - shift) as an array."""
    return data.x if data.shift is None else data.x - data.shift


def prune(data, gmm, min_weight):
    """Section 5.3's pruning (``prune``): ``(weights, resp)``."""
    m = data.shape[0]
    k = gmm.weights.shape[0]
    log_resp, part = _e_step(data, gmm, write_log=True)
    weights = cupy.empty(k, data.dtype)
    resp = cupy.empty((m, k), data.dtype)
    _compile.launch(_gmm_kernel('prune', data.dtype, k),
                    _compile.flat_grid(m), (
                        log_resp, m, part, part.shape[0], float(min_weight),
                        contiguous(gmm.weights, data.dtype), weights, resp))
    return weights, resp
