"""The GMM primitives of :func:`mixnorm.gmm.fit` over several processes.

:class:`MultiNodePrimitives` wraps one process's primitives
(:mod:`mixnorm._gmm_generic` or :mod:`mixnorm.cuda.gmm`) and a ChainerMN
communicator so that :func:`mixnorm.gmm.fit`, unchanged, fits one GMM to
the union of every process's rows:

* every sufficient statistic (counts, posterior-weighted means and centred
  sums of squares) is combined over the processes exactly, as the blocks
  of one process are (Chan et al., 1979): an all-reduce of the counts and
  weighted sums gives the global means, and a second one of each process's
  sums of squares about those means gives the global ones.  Shards of
  unequal size are therefore right.  Per iteration this sends K (2D + 1)
  values (plus one count), against 2D for synchronised BN;
* k-means++ seeding runs on rank 0 over a subsample gathered from every
  process (each sends at most ``seed_rows // size`` of its rows, drawn
  uniformly), and its centres are broadcast, so every process starts from
  the same centres;
* Section 5.3's pruning uses the mean posterior over all rows.

Every process thus ends with the same GMM; each keeps the posteriors of
its own rows.  The communicator's collectives must be called in the same
order on every process, which the fit procedure guarantees.  Nothing here
imports ChainerMN: only the communicator's ``allreduce``, ``bcast_obj``
and ``gather_obj`` are used.
"""
import numpy

from chainer import backend

from mixnorm import _gmm_generic

#: Rows gathered on rank 0 for k-means++, over all processes.
SEED_ROWS = 8192


def allreduce(comm, *arrays):
    """Sums of the given arrays over the processes, in one collective."""
    xp = backend.get_array_module(arrays[0])
    flat = xp.concatenate([xp.ravel(a) for a in arrays])
    total = comm.allreduce(flat)
    out, start = [], 0
    for a in arrays:
        out.append(total[start:start + a.size].reshape(a.shape))
        start += a.size
    return out


def combine_moments(comm, n, mean, m2):
    """Exact ``(n, mean, m2)`` over the processes from each one's own."""
    xp = backend.get_array_module(mean)
    n_all, s1 = allreduce(comm, n, n[:, None] * mean)
    mean_all = s1 / xp.maximum(n_all, numpy.finfo(mean.dtype).tiny)[:, None]
    m2_all, = allreduce(comm, m2 + n[:, None] * xp.square(mean - mean_all))
    return n_all, mean_all, m2_all


class MultiNodePrimitives(object):
    """The primitives of one process (``local``) made global over ``comm``.

    Args:
        local: :mod:`mixnorm._gmm_generic` or :mod:`mixnorm.cuda.gmm`.
        comm: a ChainerMN communicator.
        seed_rows (int): rows gathered for k-means++ over all processes.
    """

    def __init__(self, local, comm, seed_rows=SEED_ROWS):
        self.local = local
        self.comm = comm
        self.seed_rows = seed_rows
        for name in ('generator', 'rows', 'take', 'subset_rows', 'assign',
                     'responsibilities'):  # per process as they are
            setattr(self, name, getattr(local, name))

    def total(self, count):
        """The number of rows over every process."""
        return int(self.comm.allreduce_obj(int(count)))

    def _moments(self, data, resp):
        return combine_moments(self.comm, *self.local.moments(data, resp))

    def centre(self, x, reg_covar, var_floor_ratio):
        """As the local ``centre``, with the global column means."""
        n, mean, m2 = self._moments(self.local.rows(x), None)
        var_floor = var_floor_ratio * m2[0] / n[0] + reg_covar
        return self.local.shifted(x, mean[0]), mean[0], var_floor

    def kmeans_pp(self, data, n_components, n_local_trials, rng):
        """k-means++ on rank 0 over a gathered subsample, broadcast."""
        m = data.shape[0]
        cap = max(1, -(-self.seed_rows // self.comm.size))
        index = numpy.arange(m) if m <= cap else \
            self.local.subset_rows(m, cap, rng)
        sample = self.local.values(self.local.take(data, index))
        parts = self.comm.gather_obj(backend.CpuDevice().send(sample))
        centers = None
        if self.comm.rank == 0:
            pool = numpy.concatenate(parts)
            xp = backend.get_array_module(sample)
            pool = xp.asarray(pool)
            centers = backend.CpuDevice().send(self.local.kmeans_pp(
                self.local.rows(pool), n_components, n_local_trials, rng))
        centers = self.comm.bcast_obj(centers)
        return backend.get_array_module(sample).asarray(centers)

    def partition_gmm(self, data, onehot, centers, move, reg_covar,
                      var_floor):
        """The GMM of the global hard partition."""
        n, mean, m2 = self._moments(data, onehot)
        return _gmm_generic.gmm_from_partition(
            n, mean, m2, centers, move, self.total(data.shape[0]),
            reg_covar, var_floor)

    def em_step(self, data, gmm, reg_covar, var_floor):
        """One EM iteration with the global M-step sums."""
        xp = backend.get_array_module(gmm.means)
        resp = xp.exp(self.local.log_responsibilities(data, gmm))
        return _gmm_generic.m_step(*self._moments(data, resp), reg_covar,
                                   var_floor)

    def prune(self, data, gmm, min_weight):
        """Section 5.3 with the mean posterior over all rows."""
        xp = backend.get_array_module(gmm.means)
        log_resp = self.local.log_responsibilities(data, gmm)
        mass, = allreduce(self.comm, xp.exp(log_resp).sum(0))
        lam = mass / mass.dtype.type(self.total(data.shape[0]))
        return _gmm_generic.prune_posteriors(log_resp, lam, gmm.weights,
                                             min_weight)
