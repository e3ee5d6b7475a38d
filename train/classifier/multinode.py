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

The classifier trainer (:mod:`train.classifier.runner`) talks to the
processes through :class:`Processes` (N processes) or
:class:`SingleProcess` (one: rank 0 of 1, every step as without ChainerMN),
which have the same members.
"""
import glob
import os
import re

import chainer

import mixnorm
from train import device as device_module
from train.common.skeleton import OneProcess

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


class SingleProcess(OneProcess):

    """One process trains alone: every member is the identity."""

    comm = None

    def sync_batch_normalizations(self, model):
        """The model's BatchNormalization links, left as they are."""

    def lead_first(self, load):
        """``load()``."""
        return load()

    def batch(self, batch_size):
        """The batch of one step."""
        return batch_size

    def scatter(self, dataset, seed):
        """The whole dataset."""
        return dataset

    def optimizer(self, actual):
        return actual

    def evaluator(self, actual):
        return actual

    def start(self, optimizer, model):
        """Nothing to synchronise."""


class Processes(OneProcess):

    """The ChainerMN processes that train one run together.

    Args:
        comm: This process's ChainerMN communicator.
        local_bn (bool): Keep batch normalization per process instead of
            synchronising it.

    """

    def __init__(self, comm, local_bn=False):
        self.comm = comm
        self.rank = comm.rank
        self.size = comm.size
        self.local_bn = local_bn
        self.snapshot_name = ('snapshot_iter_{.updater.iteration}.' +
                              str(comm.rank))

    def snapshot(self, out, newest):
        """This process's snapshot of the newest iteration that every
        process has saved, or None; then waits for every process (all have
        read ``out`` before rank 0 writes)."""
        pattern = re.compile(r'snapshot_iter_(\d+)\.{}$'.format(
            self.comm.rank))
        mine = {}
        for path in glob.glob(os.path.join(out, 'snapshot_iter_*')):
            m = pattern.match(os.path.basename(path))
            if m:
                mine[int(m.group(1))] = path
        every = self.comm.mpi_comm.allgather(sorted(mine))
        common = set(every[0]).intersection(*every[1:])
        self.comm.mpi_comm.barrier()
        return mine[max(common)] if common else None

    def device(self, requested):
        """The GPU of this process's rank on its machine when the requested
        (or default) device is a GPU, else the CPU."""
        spec = requested or device_module.default()
        if spec is not None and spec.startswith('@cupy'):
            return '@cupy:{}'.format(self.comm.intra_rank)
        return spec or '@numpy'

    def seed(self, seed):
        """A seed per process: data order and augmentation differ."""
        return seed + 1000003 * self.comm.rank

    def sync_batch_normalizations(self, model):
        """Replace the remaining BatchNormalization links by ChainerMN's
        MultiNodeBatchNormalization (statistics of the whole batch), unless
        ``local_bn``."""
        if self.local_bn:
            return
        from chainermn.links import MultiNodeBatchNormalization

        def make(bn):
            mnbn = MultiNodeBatchNormalization(
                bn.avg_mean.shape, self.comm, decay=bn.decay, eps=bn.eps,
                dtype=bn.avg_mean.dtype)
            mnbn.copyparams(bn)
            for name in ('avg_mean', 'avg_var', 'N'):
                setattr(mnbn, name, getattr(bn, name))
            return mnbn

        mixnorm.replace.replace_links(
            model, mixnorm.batch_normalizations(model), make)

    def lead_first(self, load):
        """``load()``, in rank 0 first (it decodes and caches the data)."""
        if not self.lead:
            self.comm.mpi_comm.barrier()
        out = load()
        if self.lead:
            self.comm.mpi_comm.barrier()
        return out

    def batch(self, batch_size):
        """The batch of one process; the configuration's must divide
        evenly (ValueError)."""
        if batch_size % self.size:
            raise ValueError('batch_size {} does not divide among {} '
                             'processes'.format(batch_size, self.size))
        return batch_size // self.size

    def scatter(self, dataset, seed):
        """This process's share of a dataset (equal lengths, shuffled
        once)."""
        import chainermn
        return chainermn.scatter_dataset(dataset, self.comm, shuffle=True,
                                         seed=seed)

    def optimizer(self, actual):
        """ChainerMN's multi-node optimizer around ``actual``."""
        import chainermn
        return chainermn.create_multi_node_optimizer(actual, self.comm)

    def evaluator(self, actual):
        """ChainerMN's multi-node evaluator around ``actual``: metrics
        averaged over the processes."""
        import chainermn
        return chainermn.create_multi_node_evaluator(actual, self.comm)

    def start(self, optimizer, model):
        """Broadcast rank 0's parameters now, before the first update.

        ChainerMN's multi-node optimizer otherwise spends its first update
        of each process's life on that broadcast and drops the step's
        gradients: one step lost at the start, and another at every
        resume, which made a resumed run differ from an uninterrupted one.
        """
        self.comm.bcast_data(model)
        optimizer.is_changed(model)  # records the parameters as broadcast
