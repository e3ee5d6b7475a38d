"""Data-parallel training over ChainerMN processes.

    mpiexec -n N python -m train --config FILE --out DIR --comm NAME

Every process trains on its share of the data (``scatter_dataset``) with
``batch_size / N`` images per step, so that a step still sees the
configuration's batch; gradients are averaged by ChainerMN's multi-node
optimizer, the test set is shared out and its metrics averaged by the
multi-node evaluator, mixture normalization layers are
:class:`mixnorm.MultiNodeMixtureNormalization` (one GMM for the whole
batch) and the remaining batch normalization layers ChainerMN's
``MultiNodeBatchNormalization`` (``local_bn=True`` keeps them per process).
Rank 0 alone writes ``run.json``, the log, the plots and ``model.npz``;
every process writes its own snapshot (``snapshot_iter_N.RANK``: its data
order and random state), and ``--resume`` continues from the newest
iteration every process has.  ``pure_nccl`` needs GPUs and NCCL; each
process then uses the GPU of its rank on its machine.
"""
import glob
import os
import re

import chainer

import mixnorm

COMMUNICATORS = ('naive', 'flat', 'pure_nccl')


def create_communicator(name):
    """A ChainerMN communicator; a clear error without mpi4py or MPI."""
    if name not in COMMUNICATORS:
        raise ValueError('--comm must be one of {}, not {!r}'.format(
            ', '.join(COMMUNICATORS), name))
    try:
        import chainermn
        chainer.disable_experimental_feature_warning = True
        return chainermn.create_communicator(name)
    except ImportError as e:
        raise RuntimeError(
            'multi-process training needs mpi4py and an MPI ({}); install '
            "the multinode extra: pip install -e '.[multinode]'".format(e))


def device(comm, requested=None, default=None):
    """This process's device: the GPU of its rank on its machine when the
    default (or requested) device is a GPU, else the CPU."""
    spec = requested or default
    if spec is not None and spec.startswith('@cupy'):
        return '@cupy:{}'.format(comm.intra_rank)
    return spec or '@numpy'


def sync_batch_normalizations(model, comm):
    """Replace the remaining BatchNormalization links by ChainerMN's
    MultiNodeBatchNormalization (statistics of the whole batch)."""
    from chainermn.links import MultiNodeBatchNormalization

    def make(bn):
        mnbn = MultiNodeBatchNormalization(
            bn.avg_mean.shape, comm, decay=bn.decay, eps=bn.eps,
            dtype=bn.avg_mean.dtype)
        mnbn.copyparams(bn)
        for name in ('avg_mean', 'avg_var', 'N'):
            setattr(mnbn, name, getattr(bn, name))
        return mnbn

    return mixnorm.replace.replace_links(
        model, mixnorm.batch_normalizations(model), make)


def per_process_batch(batch_size, comm):
    """The batch of one process; the configuration's must divide evenly."""
    if batch_size % comm.size:
        raise ValueError('batch_size {} does not divide among {} processes'
                         .format(batch_size, comm.size))
    return batch_size // comm.size


def scatter(dataset, comm, seed):
    """This process's share of a dataset (equal lengths, shuffled once)."""
    import chainermn
    return chainermn.scatter_dataset(dataset, comm, shuffle=True, seed=seed)


def optimizer(actual, comm):
    """ChainerMN's multi-node optimizer around ``actual``."""
    import chainermn
    return chainermn.create_multi_node_optimizer(actual, comm)


def synchronise(optimizer, model, comm):
    """Broadcast rank 0's parameters now, before the first update.

    ChainerMN's multi-node optimizer otherwise spends its first update of
    each process's life on that broadcast and drops the step's gradients:
    one step lost at the start, and another at every resume, which made a
    resumed run differ from an uninterrupted one.
    """
    comm.bcast_data(model)
    optimizer.is_changed(model)  # records the parameters as broadcast


def evaluator(actual, comm):
    """ChainerMN's multi-node evaluator around ``actual``."""
    import chainermn
    return chainermn.create_multi_node_evaluator(actual, comm)


def snapshot_name(comm):
    """The snapshot file name format of this process."""
    return 'snapshot_iter_{.updater.iteration}.' + str(comm.rank)


def newest_common_snapshot(out, comm):
    """This process's snapshot of the newest iteration that every process
    has saved, or None."""
    pattern = re.compile(r'snapshot_iter_(\d+)\.{}$'.format(comm.rank))
    mine = {}
    for path in glob.glob(os.path.join(out, 'snapshot_iter_*')):
        m = pattern.match(os.path.basename(path))
        if m:
            mine[int(m.group(1))] = path
    every = comm.mpi_comm.allgather(sorted(mine))
    common = set(every[0]).intersection(*every[1:])
    return mine[max(common)] if common else None
