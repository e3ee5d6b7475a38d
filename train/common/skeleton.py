"""The trainer skeleton: the life of one run in its folder, written once
for the classifier (one process or several) and the GAN.

:func:`train` takes a :class:`Job` (what a kind of run adds: its model,
data, updater and own extensions) and does the rest in this order:

1. checks the folder against ``run.json``
   (:func:`train.common.runfolder.open_out`; a finished run returns its
   ``run.json`` at once);
2. takes the device (:func:`train.device.get`) and seeds Python's, NumPy's
   and, on a GPU, CuPy's generators;
3. lets the job build its trainer (:meth:`Job.build`);
4. adds the extensions every run has (:mod:`train.common.extensions`):
   ``CheckFinite``, ``RandomStates`` and the snapshot at the job's snapshot
   trigger, and in the process that writes (rank 0) the LogReport, the
   run's own plot (:class:`train.common.runplot.RunPlot`) and the console
   reports;
5. loads the newest snapshot when resuming, writes ``run.json`` (the
   settings, what the run trains on, and device, machine, package versions
   and date) and trains;
6. saves the final parameters and marks ``run.json`` finished.

Extensions of equal priority run in the order they were added; the job's
own come first, so that (say) an Evaluator writes its values before the
LogReport reads them.
"""
import os
import sys
import time

import numpy

import chainer
from chainer.training import extensions as chainer_extensions

from train import device as device_module
from train.common import runplot
from train.common.console import add_console_reports
from train.common.extensions import CheckFinite
from train.common.extensions import RandomStates
from train.common.extensions import seed_all
from train.common.runfolder import open_out
from train.common.runfolder import RUN_JSON
from train.common.runfolder import SNAPSHOT
from train.output.files import write_json

VERSIONS = ('numpy', 'chainer', 'cupy')  # recorded in run.json


class OneProcess(object):

    """The processes of a run that has one: rank 0 of 1, which writes
    everything (a multi-process run has
    :class:`train.classifier.multinode.Processes`, with the same
    members)."""

    rank = 0
    size = 1
    snapshot_name = SNAPSHOT

    @property
    def lead(self):
        """Whether this process writes ``run.json``, the log and plots."""
        return self.rank == 0

    def snapshot(self, out, newest):
        """The snapshot this process resumes from, given ``out``'s newest."""
        return newest

    def device(self, requested):
        """The device specifier this process uses."""
        return requested

    def seed(self, seed):
        """This process's seed of the run's ``seed``."""
        return seed


class Job(object):

    """What one kind of run adds to the skeleton.

    A subclass sets :attr:`unit` and :attr:`resume_keys` and implements
    :meth:`build`, which sets the attributes the skeleton reads after it.

    Attributes:
        unit (str): ``epochs`` or ``iterations``: the run's length, a key
            of ``run.json``.
        resume_keys (tuple): Settings a resumed run must share with the
            original (:func:`train.common.runfolder.open_out`).
        processes: :class:`OneProcess`, or the processes of a multi-process
            run.
        checked (chainer.Link): The model :class:`CheckFinite` checks.
        snapshot_trigger, log_trigger: When to snapshot (and check, and
            save the random states), and when the LogReport writes.
        final_iteration (int): The iteration the run ends at.
        plot (dict): ``filename`` and the other arguments of
            :class:`~train.common.runplot.RunPlot` but its title.
        plot_trigger: When the plot is redrawn (None: its own trigger).
        print_keys (list): The log keys the console shows.
        extra_extensions: ``(extension, trigger)`` pairs added last.

    """

    unit = None
    resume_keys = ()
    processes = OneProcess()
    checked = None
    snapshot_trigger = log_trigger = (1, 'epoch')
    final_iteration = None
    plot = None
    plot_trigger = None
    print_keys = ()
    extra_extensions = ()

    def build(self, out, device, seed, log):
        """Builds the model, data, updater and trainer (its folder: ``out``)
        on ``device`` (the generators are seeded) with the job's own
        extensions.

        Returns:
            chainer.training.Trainer

        """
        raise NotImplementedError

    def facts(self):
        """What ``run.json`` records of the built run (data, model)."""
        return {}

    def title(self, info):
        """The title of the run's own plot."""
        raise NotImplementedError

    def describe(self, info):
        """The line printed when the run starts."""
        raise NotImplementedError

    def start(self):
        """Called just before training starts."""

    def save(self, out):
        """Saves the final parameters into ``out`` (the writing process)."""
        raise NotImplementedError

    def done(self, trainer):
        """What ``run.json`` records of the finished run."""
        return {}


def train(job, out, info, resume, device=None, seed=0, log=sys.stderr):
    """Trains one run (see the module's docstring).

    Args:
        job (Job): The kind of run, with its settings.
        out (str): Output folder.
        info (dict): The run's settings, as ``run.json`` records them.
        resume (bool): Continue from the newest snapshot in ``out`` (a
            finished run returns at once; no snapshot: start afresh).
        device (str): Chainer device specifier; default
            :func:`train.device.default`.
        seed (int): Seed of Python's, NumPy's and CuPy's generators.
        log: Stream for progress messages.

    Returns:
        dict: The contents of ``run.json`` at the end.

    Raises:
        train.common.runfolder.RunError, train.device.DeviceError, and
        what :meth:`Job.build` raises.

    """
    procs = job.processes
    finished, snapshot = open_out(out, info, resume, job.resume_keys)
    snapshot = procs.snapshot(out, snapshot)
    if finished is not None:
        print('{}: already finished ({} {})'.format(
            out, info[job.unit], job.unit), file=log)
        return finished

    device = device_module.get(procs.device(device))
    seed = procs.seed(seed)
    device.use()
    use_cupy = device.xp is not numpy
    seed_all(seed, use_cupy)
    trainer = job.build(out, device, seed, log)

    at_snapshot = job.snapshot_trigger
    trainer.extend(CheckFinite(job.checked), trigger=at_snapshot)
    trainer.extend(RandomStates(use_cupy, seed), trigger=at_snapshot)
    trainer.extend(chainer_extensions.snapshot(
        filename=procs.snapshot_name, n_retains=1), trigger=at_snapshot)
    info.update(job.facts(), device=str(device),
                machine=device_module.device_name(device),
                versions=device_module.versions(*VERSIONS),
                date=time.strftime('%Y-%m-%d'), finished=False)
    if procs.lead:
        trainer.extend(chainer_extensions.LogReport(
            trigger=job.log_trigger))
        if runplot.available():
            plot = dict(job.plot)
            trainer.extend(runplot.RunPlot(job.title(info),
                                           plot.pop('filename'), **plot),
                           trigger=job.plot_trigger)
        add_console_reports(trainer, job.print_keys, log, info['config'][
            'name'], job.final_iteration, trigger=job.log_trigger)
    for extension, trigger in job.extra_extensions:
        trainer.extend(extension, trigger=trigger)

    os.makedirs(out, exist_ok=True)
    updater = trainer.updater
    if resume and snapshot is not None:
        chainer.serializers.load_npz(snapshot, trainer)
        print('resuming {} from {} ({}iteration {})'.format(
            out, os.path.basename(snapshot),
            'epoch {}, '.format(updater.epoch) if job.unit == 'epochs'
            else '', updater.iteration), file=log)
    if procs.lead:
        write_json(os.path.join(out, RUN_JSON), info)
        print(job.describe(info), file=log)

    job.start()
    trainer.run()

    info.update(job.done(trainer), finished=True,
                wall_time=trainer.elapsed_time)
    if procs.lead:
        job.save(out)
        write_json(os.path.join(out, RUN_JSON), info)
    return info
