"""Training a study's runs within a time budget, and packing them.

Each run is a child ``python -m train`` (:class:`Child`) in
``<runs>/<name>/<variant>-s<seed>/`` (``<runs>`` defaults to
``runs/studies``), which holds the configuration with its overrides
(``config.yaml``), the trainer's output (:mod:`train.common.runfolder`)
and the trainer's console output (``output.txt``).

**Order and budget.** Runs start in rounds
(:attr:`train.study.spec.Study.runs`). By default they run one at a time:
on an H200, runs sharing the GPU gained nothing in total throughput while
it was busy (issue 10), and a run's curves do not depend on its
neighbours; ``parallel`` runs N at a time. With a ``budget`` the study
stops ``reserve`` seconds (default 30) before the budget ends, to leave
time for stopping and the report: each running run gets SIGINT once the
snapshot of its newest logged epoch is written (SIGKILL if it has not
ended 30 s later), so that it keeps every finished epoch (the trainer
writes its ``log`` and a snapshot at every epoch end) and resumes from the
last one; the runs not started are *skipped*. Running the study again
resumes each run from its newest snapshot (``--resume``) and passes over
finished ones. What each invocation did, where and when, goes to
``study.json`` (:mod:`train.study.state`).
"""
import collections
import os
import signal
import subprocess
import sys
import tarfile
import time

import yaml

from train import cli
from train.classifier.runner import RESUME_KEYS
from train.classifier.runner import settings
from train.common.runfolder import check_resumable
from train.common.runfolder import newest_snapshot
from train.common.runfolder import read_info
from train.common.runfolder import RUN_JSON
from train.common.runfolder import RunError
from train.common.runfolder import snapshot_iteration
from train.metrics import accuracy as metrics
from train.report.markdown import format_loss
from train.study.spec import StudyError
from train.study.state import load_state
from train.study.state import machine
from train.study.state import now
from train.study.state import run_dir
from train.study.state import save_state
from train.study.state import study_dir
from train.study.state import STATE_NAME

CONFIG_NAME = 'config.yaml'  # the run's configuration, overrides applied
OUTPUT_NAME = 'output.txt'   # the trainer's console output, appended
STOP_GRACE = 30.0            # seconds to wait for a snapshot, for SIGINT
# python -m train options that the study sets for each run
RUN_OPTIONS = ('--config', '--out', '--seed', '--epochs', '--resume')


def parse_train_args(args):
    """Checks the arguments for ``python -m train`` (TRAIN ARGS).

    Returns:
        argparse.Namespace: As :mod:`train.cli` parses them.

    Raises:
        StudyError: One of the options the study sets per run.
        SystemExit: Arguments that ``python -m train`` rejects (its usage
            message is printed).

    """
    for a in args:
        for option in RUN_OPTIONS:
            if a == option or a.startswith(option + '='):
                raise StudyError('{} is set for each run by the study file; '
                                 'pass only --data, --device, --train-subset '
                                 'or --test-subset'.format(option))
    return cli.parser().parse_args(['--config', CONFIG_NAME] + list(args))


def _finished(out, run, targs):
    """Whether ``out`` holds this run finished, with the same settings."""
    if not os.path.exists(os.path.join(out, RUN_JSON)):
        return False
    info = settings(run.variant.cfg, run.epochs, run.seed, targs.data,
                    targs.train_subset, targs.test_subset)
    try:  # a run with other settings is left to the trainer to refuse
        return bool(check_resumable(out, info, RESUME_KEYS).get('finished'))
    except RunError:
        return False


def _restore_sigint():  # pragma: no cover - runs in the child
    # A child started from a background job inherits SIGINT ignored; with
    # the default action restored, Python turns SIGINT into
    # KeyboardInterrupt and the trainer exits as `python -m train` says.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child(object):

    """One run in a child ``python -m train``, its output in a file."""

    def __init__(self, run, out, train_args, log):
        self.run = run
        self.out = out
        self.log = log
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, CONFIG_NAME), 'w') as f:
            f.write('# {} of a study; the configuration as read with the '
                    'overrides applied.\n'.format(run.id))
            yaml.safe_dump(run.variant.data, f, sort_keys=False)
        command = [sys.executable, '-m', 'train', '--config',
                   os.path.join(out, CONFIG_NAME), '--out', out, '--seed',
                   str(run.seed), '--epochs', str(run.epochs),
                   '--resume'] + list(train_args)
        self.output = open(os.path.join(out, OUTPUT_NAME), 'a')
        self.output.write('=== {}: {}\n'.format(now(), ' '.join(command)))
        self.output.flush()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(command, stdout=self.output,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=_restore_sigint)
        self.shown = None  # log entries already printed
        print('study: {} started: {}'.format(run.id, ' '.join(command)),
              file=log)

    def entries(self):
        try:
            return metrics.load_log(self.out)
        except (OSError, ValueError):  # no epoch yet
            return []

    def progress(self):
        """Prints the epochs logged since the last call."""
        entries = self.entries()
        if self.shown is None:  # a resumed run: its earlier epochs
            self.shown = len(entries)
            if entries:
                print('study: {} resumed after epoch {}'.format(
                    self.run.id, entries[-1]['epoch']), file=self.log)
            return
        for e in entries[self.shown:]:
            print('study: {} epoch {}/{}, iteration {}, training loss {}, '
                  'test accuracy {:.2f}%, {:.0f} s'.format(
                      self.run.id, e['epoch'], self.run.epochs,
                      e['iteration'], format_loss(e.get(metrics.LOSS_KEY)),
                      100 * e[metrics.ACC_KEY], self.seconds()),
                  file=self.log)
        self.shown = len(entries)

    def seconds(self):
        return time.monotonic() - self.started

    def _in_epoch_end(self):
        """Whether the newest logged epoch's snapshot is still missing."""
        entries = self.entries()
        snapshot = newest_snapshot(self.out)
        return bool(entries) and (snapshot is None or snapshot_iteration(
            snapshot) < entries[-1]['iteration'])

    def stop(self):
        """SIGINT once the newest epoch's snapshot is written (at most
        :data:`STOP_GRACE` seconds later), then SIGKILL after
        :data:`STOP_GRACE` seconds more."""
        waited = time.monotonic() + STOP_GRACE
        while (self.proc.poll() is None and self._in_epoch_end() and
               time.monotonic() < waited):
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def outcome(self, status):
        """The outcome record of the finished child, and closes it."""
        self.output.close()
        entries = self.entries()
        out = {'status': status, 'exit': self.proc.returncode,
               'seconds': round(self.seconds(), 1),
               'epochs_logged': entries[-1]['epoch'] if entries else 0}
        if status == 'failed':
            with open(os.path.join(self.out, OUTPUT_NAME)) as f:
                tail = [line.rstrip() for line in f if line.strip()][-15:]
            out['message'] = tail[-1] if tail else ''
            print('study: {} failed (exit {}); the end of {}:\n{}'.format(
                self.run.id, self.proc.returncode,
                os.path.join(self.out, OUTPUT_NAME), '\n'.join(tail)),
                file=self.log)
        else:
            print('study: {} {} after epoch {} of {} ({:.0f} s)'.format(
                self.run.id, status, out['epochs_logged'], self.run.epochs,
                out['seconds']), file=self.log)
        return out


def run_study(study, runs_root, train_args=(), budget=None, reserve=30.0,
              parallel=1, poll=0.5, log=sys.stderr, clock=time.monotonic):
    """Trains a study's runs (see the module's docstring).

    Args:
        study (Study): From :func:`load_study`.
        runs_root (str): The runs go to ``<runs_root>/<study name>/``.
        train_args (list): More arguments of every ``python -m train``.
        budget (float): Seconds for the whole invocation; None: no limit.
        reserve (float): Seconds of the budget kept for stopping runs and
            writing the report.
        parallel (int): Runs at a time.
        poll (float): Seconds between looks at the runs.
        log: Stream for progress messages.
        clock: The clock the budget is measured by (seconds).

    Returns:
        dict: The invocation's record (also appended to ``study.json``):
        ``outcomes`` maps run ids to ``{'status': 'done' | 'finished
        earlier' | 'cut' | 'skipped' | 'failed' | 'interrupted' | 'not
        started', ...}`` (``cut`` and ``skipped``: by the budget;
        ``interrupted`` and ``not started``: by SIGINT or SIGTERM, after
        which the record's ``interrupted`` is True).

    Raises:
        StudyError: Bad TRAIN ARGS, or a budget not above the reserve.

    """
    targs = parse_train_args(train_args)
    if budget is not None and budget <= reserve:
        raise StudyError('--budget ({:g} s) must exceed --reserve ({:g} s)'
                         .format(budget, reserve))
    deadline = None if budget is None else clock() + budget - reserve
    state = load_state(study, runs_root)
    record = {'started': now(), 'ended': None, 'budget': budget,
              'parallel': parallel, 'train_args': list(train_args),
              'outcomes': {}}
    record.update(machine(targs.device))
    state['invocations'].append(record)
    save_state(study, runs_root, state)
    print('study {}: {} runs, {} at a time, budget {}; device {}'.format(
        study.name, len(study.runs), parallel,
        '{:g} s'.format(budget) if budget else 'none', record['device']),
        file=log)

    outcomes = record['outcomes']
    pending = list(study.runs)
    running = []

    def settle(job, status):
        outcomes[job.run.id] = job.outcome(status)
        running.remove(job)
        save_state(study, runs_root, state)

    def stop_all(status, unstarted):
        for job in list(running):
            job.stop()
            job.progress()
            settle(job, status)
        for run in pending:
            outcomes[run.id] = {'status': unstarted}
        del pending[:]

    def interrupt(signum, frame):  # SIGTERM (e.g. `timeout`) as SIGINT
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        while pending or running:
            if deadline is not None and clock() >= deadline:
                print('study: the budget is spent', file=log)
                stop_all('cut', 'skipped')
                break
            while pending and len(running) < parallel:
                run = pending.pop(0)
                out = run_dir(study, runs_root, run)
                if _finished(out, run, targs):
                    outcomes[run.id] = {'status': 'finished earlier'}
                    print('study: {} finished earlier'.format(run.id),
                          file=log)
                    continue
                running.append(Child(run, out, train_args, log))
            for job in list(running):
                job.progress()
                code = job.proc.poll()
                if code is not None:
                    job.progress()
                    settle(job, 'done' if code == 0 else 'failed')
            if running:
                wait = poll if deadline is None else max(
                    0.0, min(poll, deadline - clock()))
                time.sleep(wait)
    except KeyboardInterrupt:
        print('study: interrupted', file=log)
        stop_all('interrupted', 'not started')
        record['interrupted'] = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    record['ended'] = now()
    save_state(study, runs_root, state)
    counts = collections.Counter(o['status'] for o in outcomes.values())
    print('study {}: {}{}'.format(study.name, ', '.join(
        '{} {}'.format(n, s) for s, n in sorted(counts.items())),
        '; run the same command again to resume' if
        counts['cut'] + counts['skipped'] + counts['interrupted'] +
        counts['not started'] else ''),
        file=log)
    return record


def pack(study, runs_root, path):
    """Writes a .tgz of what a later invocation needs to continue a study.

    That is the study's folder (``study.json``, each run's folder) without
    ``model.npz`` and without the snapshots of finished runs: a finished
    run is recognised by its ``run.json`` and reported from its ``log``,
    and a cut run resumes from its snapshot.  Members are named
    ``<name>/...``: unpack the file into the runs folder (``tar xzf FILE
    -C runs/studies``).

    Returns:
        list of str: The members' names.

    """
    folder = study_dir(study, runs_root)
    names = []
    with tarfile.open(path, 'w:gz') as tar:
        def add(full):
            name = os.path.relpath(full, runs_root)
            tar.add(full, arcname=name)
            names.append(name)
        if os.path.exists(os.path.join(folder, STATE_NAME)):
            add(os.path.join(folder, STATE_NAME))
        for run in study.runs:
            out = run_dir(study, runs_root, run)
            if not os.path.isdir(out):
                continue
            finished = (read_info(out) or {}).get('finished')
            for name in sorted(os.listdir(out)):
                full = os.path.join(out, name)
                if (name == 'model.npz' or not os.path.isfile(full) or
                        finished and name.startswith('snapshot_iter_')):
                    continue
                add(full)
    return names
