"""Multi-process checks of MultiNodeMixtureNormalization; run by
tests/mixnorm/test_multinode.py as
``mpiexec -n 2 python tests/support/mpi_multinode.py``.

Every process takes its shard (uneven: 4 and 6 of 10 samples) of one batch
that all of them build from the same seed, and compares what the
synchronised layer gives on its shard with what one process gives on the
whole batch.  Rank 0 prints ``ok <check> on 2 processes`` per check; any
failure raises.
"""
import sys
import warnings

import mixnorm  # NOQA: F401  (patches the stack before Chainer)
import chainer
import chainer.functions as F
import chainermn
import numpy

from mixnorm import gmm, MixtureNormalization, MultiNodeMixtureNormalization

chainer.disable_experimental_feature_warning = True
warnings.simplefilter('ignore', FutureWarning)
comm = chainermn.create_communicator('naive')
N, C, H, W = 10, 4, 3, 3
SHARDS = [slice(0, 4), slice(4, 10)]  # uneven on purpose
mine = SHARDS[comm.rank]


def blobs(k, seed=0):
    """(N, C, H, W) whose rows fall in k far-apart clusters."""
    rng = numpy.random.RandomState(seed)
    centres = rng.randn(k, C) * 20
    labels = rng.randint(0, k, N * H * W)
    rows = centres[labels] + rng.randn(N * H * W, C)
    return rows.reshape(N, H, W, C).transpose(0, 3, 1, 2).copy()


def run(link, x, wgt):
    """Training forward and backward of sum(y * wgt); (y, gx, ggamma)."""
    link.cleargrads()
    xv = chainer.Variable(x)
    y = link(xv)
    F.sum(y * wgt).backward()
    return y.array, xv.grad, link.gamma.grad


def report(check):
    """Rank 0 prints ``ok CHECK on N processes`` once every one got here."""
    done = comm.gather_obj(True)
    if comm.rank == 0:
        print('ok {} on {} processes'.format(check, len(done)), flush=True)


def close(name, ours, ref, rtol=1e-5, atol=1e-6):
    numpy.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol,
                                  err_msg=name)


def check_layer(k, em_iter, label):
    x = blobs(k)
    wgt = numpy.random.RandomState(1).randn(*x.shape)
    kw = dict(n_components=k, em_iter=em_iter, dtype=numpy.float64)
    sync = MultiNodeMixtureNormalization(C, comm, **kw)
    y, gx, ggamma = run(sync, x[mine], wgt[mine])
    ggamma = comm.allreduce(ggamma)  # each process: its rows' share
    single = MixtureNormalization(C, **kw)
    y1, gx1, ggamma1 = run(single, x, wgt)
    close(label + ' output', y, y1[mine])
    close(label + ' input gradient', gx, gx1[mine])
    close(label + ' gamma gradient', ggamma, ggamma1)
    # the queue: the same on every process, and the whole batch's
    order = numpy.argsort(sync.queue_means[-1][:, 0])
    ref = numpy.argsort(single.queue_means[-1][:, 0])
    for name in ('queue_weights', 'queue_means', 'queue_variances'):
        mine_q = getattr(sync, name)[-1][order]
        close(label + ' ' + name, mine_q, getattr(single, name)[-1][ref])
        gathered = comm.gather_obj(getattr(sync, name))
        if comm.rank == 0:
            assert all(numpy.array_equal(g, gathered[0]) for g in gathered)
    with chainer.using_config('train', False):
        close(label + ' test mode', sync(x[mine]).array,
              single(x).array[mine])
    report(label)
    return y1


def main():
    # K = 1 is batch normalization over the whole batch, exactly
    x = blobs(1)
    wgt = numpy.random.RandomState(1).randn(*x.shape)
    sync = MultiNodeMixtureNormalization(C, comm, n_components=1,
                                         dtype=numpy.float64)
    y, gx, ggamma = run(sync, x[mine], wgt[mine])
    xv, gv = chainer.Variable(x), chainer.Variable(numpy.ones(C))
    ref = F.batch_normalization(xv, gv, numpy.zeros(C), eps=sync.eps)
    F.sum(ref * wgt).backward()
    close('K=1 output', y, ref.array[mine], rtol=1e-10, atol=1e-10)
    close('K=1 input gradient', gx, xv.grad[mine], rtol=1e-8, atol=1e-10)
    close('K=1 gamma gradient', comm.allreduce(ggamma), gv.grad,
          rtol=1e-8)
    report('K=1 is batch normalization')

    y_whole = check_layer(3, 4, 'K=3')
    check_layer(2, 2, 'K=2')

    # control: without synchronisation each shard is normalized alone
    local = MixtureNormalization(C, n_components=3, em_iter=4,
                                 dtype=numpy.float64)
    y_local = local(blobs(3)[mine]).array
    assert not numpy.allclose(y_local, y_whole[mine], atol=1e-3)
    report('control differs')

    # the fit alone: one GMM for the union, identical on every process
    rows = mixnorm.functions.to_rows(blobs(3))
    per = rows.reshape(N, H * W, C)
    model, resp = gmm.fit(per[mine].reshape(-1, C), 3, 4, comm=comm)
    whole, resp1 = gmm.fit(rows, 3, 4)
    order = numpy.argsort(model.means[:, 0])
    ref = numpy.argsort(whole.means[:, 0])
    for a, b in zip(model, whole):
        close('fit', a[order], b[ref])
    close('fit posteriors', resp[:, order],
          resp1.reshape(N, H * W, 3)[mine].reshape(-1, 3)[:, ref])
    report('fit')
    return 0


if __name__ == '__main__':
    sys.exit(main())
