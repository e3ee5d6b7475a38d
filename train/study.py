"""Studies: many runs (configuration, seed, overrides, epochs) trained in one
invocation within a time budget, and one report over them.

    python -m train.study run STUDY.yaml [--budget SECONDS] [--reserve S]
        [--parallel N] [--runs DIR] [--results DIR] [--dry-run]
        [TRAIN ARGS ...]
    python -m train.study report STUDY.yaml [--runs DIR] [--results DIR]
    python -m train.study pack STUDY.yaml FILE.tgz [--runs DIR]

``bash scripts/study.sh STUDY.yaml ...`` is ``run`` in the project's
environment.  TRAIN ARGS go to every ``python -m train`` (``--data``,
``--device``, ``--train-subset``, ``--test-subset``); the study sets
``--config``, ``--out``, ``--seed``, ``--epochs`` and ``--resume`` itself.

A study file (YAML; ``-`` marks optional keys)::

    name: bn2-mn2                # runs/studies/<name>/,
                                 # results/study-<name>.md
    - description: str
    baseline: bn2                # the BN arm: the name of a variant
    - epochs: 25                 # the variants' default (else the config's)
    - seeds: [0, 1, 2]           # the variants' default (else [0])
    variants:                    # one run per variant and seed
      - name: mn2                # letters, digits, . _ -;
                                 # its runs: <name>-s<seed>
        config: configs/table2/cifar10/mn2.yaml   # relative to the current
                                                  # directory
        - seeds: [0, 1]
        - epochs: 25
        - overrides: {norm.em_iter: 4, optimizer.alpha: null}
        - baseline: bn2          # this variant's BN arm (default: the study's)
        - note: str              # e.g. "ablation, not a paper setting"

Overrides are dotted configuration keys: each value replaces the key in the
configuration file as read (sections are created as needed, ``null``
removes the key so that its default applies), before the configuration is
validated; an invalid result is a :class:`StudyError` that names the study
file, the variant and its runs, and the key.  A run trains into
``<runs>/<name>/<variant>-s<seed>/`` (``<runs>`` defaults to
``runs/studies``), which holds the configuration with its overrides
(``config.yaml``), the trainer's output (:mod:`train.runner`) and the
trainer's console output (``output.txt``).

**Order and budget.** Runs start in rounds: every variant's first seed, in
the file's order, then every variant's second seed, and so on, so that a
study cut short still compares the variants. By default they run one at a
time: on an H200, runs sharing the GPU gained nothing in total throughput
while it was busy (issue 10), and a run's curves do not depend on its
neighbours; ``--parallel N`` runs N at a time. With ``--budget SECONDS``
the study stops ``--reserve`` seconds (default 30) before the budget ends,
to leave time for stopping and the report: each running run gets SIGINT
once the snapshot of its newest logged epoch is written (SIGKILL if it has
not ended 30 s later), so that it keeps every finished epoch (the trainer
writes its ``log`` and a snapshot at every epoch end) and resumes from the
last one; the runs not started are *skipped*. Running the study again
resumes each run from its newest snapshot (``--resume``) and passes over
finished ones. What each invocation did, where (device, host, package
versions) and when, goes to ``<runs>/<name>/study.json``.

**Report** (:func:`report`): ``results/study-<name>.md`` and a PNG beside
it, or both in ``<runs>/<name>/`` when a run was trained on a subset
(``--train-subset``, ``--test-subset``: NOT a reproduction).  Per run: the
maximum test accuracy after 25/50/75/100% of the run's epochs, the updates
until test accuracy first reaches the best test accuracy of the BN arm's
run *with the same seed* (runs of a seed start from the same random
state, so each is paired with its own BN run rather than with the mean over
seeds; counted at epoch ends), the difference of the
maximum test accuracy to that BN run over the epochs both reached, and the
final training loss (the mean training loss over the last epoch's
updates).  Per variant: the mean and sample standard deviation over its
seeds, beside the paper's numbers of the configuration's ``paper`` block
(``acc_at`` at the same epoch: its percentages are of the configuration's
epochs, so a 25-epoch study of a 100-epoch configuration meets its 25%
column; Table 3's steps).  The plot shows training loss and test error
against updates, one line per variant: the mean over seeds, shaded by one
standard deviation.
"""
import argparse
import collections
import copy
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time

import yaml

from train import cli
from train import config as config_module
from train import device as device_module
from train import machine as machine_module
from train import metrics
from train import report as report_module
from train import runner

PERCENTS = config_module.ACC_FRACTIONS
CONFIG_NAME = 'config.yaml'  # the run's configuration, overrides applied
OUTPUT_NAME = 'output.txt'   # the trainer's console output, appended
STATE_NAME = 'study.json'    # the invocations of a study
STOP_GRACE = 30.0            # seconds to wait for a snapshot, for SIGINT
# python -m train options that the study sets for each run
_RUN_OPTIONS = ('--config', '--out', '--seed', '--epochs', '--resume')
_NAME = re.compile(r'^[A-Za-z0-9._-]+$')
_STUDY_KEYS = ('name', 'description', 'baseline', 'epochs', 'seeds',
               'variants')
_VARIANT_KEYS = ('name', 'config', 'seeds', 'epochs', 'overrides',
                 'baseline', 'note')


class StudyError(ValueError):
    """A study file is invalid; the message names the file and the key."""


Variant = collections.namedtuple('Variant', [
    'name', 'config_path', 'seeds', 'epochs', 'overrides', 'baseline',
    'note', 'data', 'cfg'])
Variant.__doc__ = """One arm of a study.

``data`` is the configuration as read with the overrides applied (what
``config.yaml`` holds), ``cfg`` the validated configuration.
"""
RunSpec = collections.namedtuple('RunSpec', ['id', 'variant', 'seed',
                                             'epochs'])
RunSpec.__doc__ = 'One run of a study: a variant (:class:`Variant`), a seed.'


class Study(object):

    """A loaded study file (see the module's docstring).

    Attributes:
        path (str): The file.
        name (str): The study's name.
        description (str): Its description ('' when none).
        baseline (str): The study's BN arm (a variant's name).
        variants (list of Variant): In the file's order.
        runs (list of RunSpec): In the order they start: every variant's
            first seed, then every variant's second seed, and so on.

    """

    def __init__(self, path, name, description, baseline, variants):
        self.path = path
        self.name = name
        self.description = description
        self.baseline = baseline
        self.variants = variants
        rounds = max(len(v.seeds) for v in variants)
        self.runs = [RunSpec('{}-s{}'.format(v.name, v.seeds[j]), v,
                             v.seeds[j], v.epochs)
                     for j in range(rounds) for v in variants
                     if j < len(v.seeds)]

    def variant(self, name):
        return next(v for v in self.variants if v.name == name)


# ---------------------------------------------------------------- loading
def _fail(path, where, message):
    raise StudyError('{}: {}: {}'.format(path, where, message))


def _check_keys(path, data, known, where):
    if not isinstance(data, dict):
        _fail(path, where, 'must be a mapping, got {!r}'.format(data))
    for key in data:
        if key not in known:
            raise StudyError('{}: {}'.format(path, config_module._unknown_key(
                key, known, where)))


def _string(path, data, key, where, required=False, pattern=None):
    if key not in data:
        if required:
            _fail(path, where + key, 'required key is missing')
        return None
    value = data[key]
    if not isinstance(value, str) or not value:
        _fail(path, where + key, 'must be a non-empty string, got {!r}'
              .format(value))
    if pattern is not None and not pattern.match(value):
        _fail(path, where + key, 'must consist of letters, digits, ".", "_" '
              'and "-", got {!r}'.format(value))
    return value


def _positive_int(path, data, key, where):
    value = data.get(key)
    if key in data and (not isinstance(value, int) or
                        isinstance(value, bool) or value <= 0):
        _fail(path, where + key, 'must be a positive integer, got {!r}'
              .format(value))
    return value


def _seeds(path, data, key, where):
    value = data.get(key)
    if key in data and (
            not isinstance(value, list) or not value or
            not all(isinstance(s, int) and not isinstance(s, bool) and
                    s >= 0 for s in value) or len(set(value)) < len(value)):
        _fail(path, where + key, 'must be a non-empty list of distinct '
              'integers >= 0, got {!r}'.format(value))
    return value


def apply_overrides(data, overrides):
    """The configuration ``data`` with dotted-key ``overrides`` applied.

    Args:
        data (dict): A configuration as read (not validated; left
            unchanged).
        overrides (dict): ``{'norm.em_iter': 4, ...}``; a ``None`` value
            removes the key.

    Returns:
        dict: A new mapping.

    Raises:
        ConfigError: A key runs through a value that is not a section; the
            message names the key.

    """
    data = copy.deepcopy(data)
    for key, value in overrides.items():
        parts = key.split('.')
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise config_module.ConfigError(
                    '{}: {} is {!r}, not a section'.format(
                        key, '.'.join(parts[:i + 1]), child))
            node = child
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return data


def _variant(path, entry, i, defaults, check_model):
    where = 'variants[{}]'.format(i)
    _check_keys(path, entry, _VARIANT_KEYS, where)
    where += '.'
    name = _string(path, entry, 'name', where, required=True, pattern=_NAME)
    config_path = _string(path, entry, 'config', where, required=True)
    seeds = _seeds(path, entry, 'seeds', where) or defaults['seeds']
    epochs = _positive_int(path, entry, 'epochs', where) or defaults['epochs']
    overrides = entry.get('overrides') or {}
    if not isinstance(overrides, dict) or not all(
            isinstance(k, str) and k and '' not in k.split('.')
            for k in overrides):
        _fail(path, where + 'overrides', 'must map dotted configuration '
              'keys (e.g. norm.em_iter) to values, got {!r}'.format(
                  overrides))
    baseline = (_string(path, entry, 'baseline', where) or
                defaults['baseline'])
    note = _string(path, entry, 'note', where) or ''
    runs = ', '.join('{}-s{}'.format(name, s) for s in seeds)
    context = '{}: variant {} (runs {}), {}'.format(path, name, runs,
                                                    config_path)
    try:
        raw = config_module.read_yaml(config_path)
        data = apply_overrides(raw, overrides) if isinstance(raw, dict) \
            else raw
        cfg = config_module.validate(data, check_model=check_model,
                                     path=config_path)
    except config_module.ConfigError as e:
        raise StudyError('{}{}: {}'.format(
            context, ' with overrides {}'.format(_overrides_text(overrides))
            if overrides else '', e))
    if 'epochs' not in cfg:
        raise StudyError('{}: a study trains classifiers for epochs; this '
                         'configuration has none'.format(context))
    return Variant(name, config_path, seeds, epochs or cfg['epochs'],
                   dict(overrides), baseline, note, data, cfg)


def load_study(path, check_model=True):
    """Reads and checks a study file and the configurations it names.

    Args:
        path (str): The study file.
        check_model (bool): Also build each variant's model
            (:func:`train.config.validate`).

    Returns:
        Study

    Raises:
        StudyError: The message names the file and the key (for a
            configuration: the variant, its runs and the key).

    """
    try:
        data = config_module.read_yaml(path)
    except config_module.ConfigError as e:
        raise StudyError(str(e))
    _check_keys(path, data, _STUDY_KEYS, 'top level')
    name = _string(path, data, 'name', '', required=True, pattern=_NAME)
    description = _string(path, data, 'description', '') or ''
    defaults = {'baseline': _string(path, data, 'baseline', '',
                                    required=True),
                'epochs': _positive_int(path, data, 'epochs', ''),
                'seeds': _seeds(path, data, 'seeds', '') or [0]}
    entries = data.get('variants')
    if not isinstance(entries, list) or not entries:
        _fail(path, 'variants', 'must be a non-empty list of variants, got '
              '{!r}'.format(entries))
    variants = [_variant(path, e, i, defaults, check_model)
                for i, e in enumerate(entries)]
    names = [v.name for v in variants]
    for i, v in enumerate(variants):
        if v.name in names[:i]:
            _fail(path, 'variants[{}].name'.format(i), 'variant {!r} is '
                  'named twice'.format(v.name))
        if v.baseline not in names:
            _fail(path, 'variants[{}].baseline'.format(i) if
                  v.baseline != defaults['baseline'] else 'baseline',
                  'no variant is named {!r} (variants: {})'.format(
                      v.baseline, ', '.join(names)))
    return Study(path, name, description, defaults['baseline'], variants)


def _overrides_text(overrides):
    return '{{{}}}'.format(', '.join('{}: {}'.format(
        k, json.dumps(v)) for k, v in overrides.items()))


# ----------------------------------------------------------------- running
def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC')


def study_dir(study, runs_root):
    return os.path.join(runs_root, study.name)


def run_dir(study, runs_root, run):
    return os.path.join(runs_root, study.name, run.id)


def load_state(study, runs_root):
    """``study.json`` of a study: ``{'invocations': [...]}``."""
    path = os.path.join(study_dir(study, runs_root), STATE_NAME)
    if not os.path.exists(path):
        return {'invocations': []}
    with open(path) as f:
        return json.load(f)


def _save_state(study, runs_root, state):
    path = os.path.join(study_dir(study, runs_root), STATE_NAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(path + '.tmp', path)


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
        for option in _RUN_OPTIONS:
            if a == option or a.startswith(option + '='):
                raise StudyError('{} is set for each run by the study file; '
                                 'pass only --data, --device, --train-subset '
                                 'or --test-subset'.format(option))
    return cli.parser().parse_args(['--config', CONFIG_NAME] + list(args))


def machine(device_spec):
    """Where and with what the study runs: device, host CPU, versions."""
    try:
        device = device_module.get(device_spec)
    except device_module.DeviceError as e:
        raise StudyError(str(e))
    return {'device': machine_module.device_name(device),
            'host': machine_module.cpu_name(),
            'versions': machine_module.versions('numpy', 'chainer', 'cupy',
                                                'mixnorm')}


def _finished(out, run, targs):
    """Whether ``out`` holds this run finished, with the same settings."""
    if not os.path.exists(os.path.join(out, 'run.json')):
        return False
    info = runner.settings(run.variant.cfg, run.epochs, run.seed, targs.data,
                           targs.train_subset, targs.test_subset)
    try:  # a run with other settings is left to the trainer to refuse
        return bool(runner._check_resumable(out, info).get('finished'))
    except runner.RunError:
        return False


def _restore_sigint():  # pragma: no cover - runs in the child
    # A child started from a background job inherits SIGINT ignored; with
    # the default action restored, Python turns SIGINT into
    # KeyboardInterrupt and the trainer exits as `python -m train` says.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Job(object):

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
        self.output.write('=== {}: {}\n'.format(_now(), ' '.join(command)))
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
                      e['iteration'], report_module.format_loss(
                          e.get(report_module.LOSS_KEY)),
                      100 * e[metrics.ACC_KEY], self.seconds()),
                  file=self.log)
        self.shown = len(entries)

    def seconds(self):
        return time.monotonic() - self.started

    def _in_epoch_end(self):
        """Whether the newest logged epoch's snapshot is still missing."""
        entries = self.entries()
        snapshot = runner.newest_snapshot(self.out)
        return bool(entries) and (snapshot is None or int(
            snapshot.rsplit('_', 1)[1]) < entries[-1]['iteration'])

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
    record = {'started': _now(), 'ended': None, 'budget': budget,
              'parallel': parallel, 'train_args': list(train_args),
              'outcomes': {}}
    record.update(machine(targs.device))
    state['invocations'].append(record)
    _save_state(study, runs_root, state)
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
        _save_state(study, runs_root, state)

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
                running.append(_Job(run, out, train_args, log))
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
    record['ended'] = _now()
    _save_state(study, runs_root, state)
    counts = collections.Counter(o['status'] for o in outcomes.values())
    print('study {}: {}{}'.format(study.name, ', '.join(
        '{} {}'.format(n, s) for s, n in sorted(counts.items())),
        '; run the same command again to resume' if
        counts['cut'] + counts['skipped'] + counts['interrupted'] +
        counts['not started'] else ''),
        file=log)
    return record


# ----------------------------------------------------------------- report
def last_outcomes(state):
    """Each run's outcome in the newest invocation that tried it."""
    out = {}
    for inv in state['invocations']:
        out.update(inv['outcomes'])
    return out


def run_status(run, folder, outcome):
    """How a run stands, in words, for the report."""
    done = (folder.log[-1]['epoch'] if folder.log else 0)
    if folder.info and folder.info.get('finished'):
        return 'done'
    status = (outcome or {}).get('status')
    after = ' after epoch {} of {}'.format(done, run.epochs) if done else ''
    if status == 'cut':
        return 'cut by the budget' + after
    if status == 'skipped':
        return 'skipped: budget spent' + after
    if status == 'failed':
        return 'failed (exit {}){}: {}'.format(
            outcome.get('exit'), after, outcome.get('message', ''))
    if status == 'interrupted':
        return 'interrupted' + after
    if status == 'not started':
        return 'not started: the call was interrupted' + after
    return 'stopped' + after if done else 'not run'


class _Row(object):
    """A run of the study with its folder and numbers for the report."""

    def __init__(self, study, runs_root, run, outcome):
        self.run = run
        self.folder = report_module.Run(run_dir(study, runs_root, run))
        self.log = self.folder.log or []
        self.status = run_status(run, self.folder, outcome)
        self.acc_at = (metrics.accuracy_at(self.log, run.epochs, PERCENTS)
                       if self.log else {})
        self.loss = report_module.final_loss(self.log)
        self.wall = (self.log[-1].get('elapsed_time') if self.log else None)
        self.target = self.steps = self.delta = None

    def pair(self, bn):
        """Numbers against the same seed's run of the BN arm (a _Row)."""
        if not (self.log and bn.log):
            return
        self.target = metrics.max_accuracy(bn.log)
        self.steps = metrics.steps_to_reach(self.log, self.target)
        common = min(self.log[-1]['epoch'], bn.log[-1]['epoch'])
        self.delta = (metrics.max_accuracy(self.log, common) -
                      metrics.max_accuracy(bn.log, common))


def _rows(study, runs_root):
    outcomes = last_outcomes(load_state(study, runs_root))
    rows = [_Row(study, runs_root, r, outcomes.get(r.id)) for r in
            study.runs]
    by_key = {(r.run.variant.name, r.run.seed): r for r in rows}
    for r in rows:
        bn = by_key.get((r.run.variant.baseline, r.run.seed))
        if bn is not None:
            r.pair(bn)
    return rows


def _marks(study):
    epochs = {v.epochs for v in study.variants}
    if len(epochs) == 1:
        total = epochs.pop()
        return ['ep {:g}'.format(total * p / 100.0) for p in PERCENTS]
    return ['{}% of the epochs'.format(p) for p in PERCENTS]


def paper_accuracy(variant, percent):
    """The paper's ``acc_at`` at ``percent`` of the variant's epochs.

    ``acc_at`` counts percentages of the configuration's epochs; the value
    is None where ``percent`` of the variant's epochs is none of them.
    """
    paper = variant.cfg.get('paper') or {}
    at = 100.0 * variant.epochs * percent / 100.0 / variant.cfg['epochs']
    for p, value in paper.get('acc_at', {}).items():
        if abs(p - at) < 1e-9:
            return value
    return None


def _pm(values, total, digits=2):
    """``mean ± std`` over the values that are not None; ``(n=k)`` where
    fewer than ``total`` of them are there."""
    mean, std, n = report_module.mean_std(values)
    if mean is None:
        return 'n/a'
    fmt = '{:.%df}' % digits
    text = fmt.format(mean)
    if std is not None:
        text += ' ± ' + fmt.format(std)
    if n < total:
        text += ' (n={})'.format(n)
    return text


def _setting(variant):
    parts = ['{}={}'.format(k, json.dumps(v)) for k, v in
             variant.overrides.items()]
    text = ', '.join(parts) or 'as configured'
    if variant.note:
        text += ' ({})'.format(variant.note)
    return text


def _steps_cell(steps, target):
    if target is None:
        return 'n/a'
    return metrics.format_steps(steps)


def _accuracy_table(study, rows, marks):
    head = ['variant', 'paper row', 'setting', 'runs']
    for mark in marks:
        head += ['{}: ours'.format(mark), 'paper']
    body = []
    for v in study.variants:
        mine = [r for r in rows if r.run.variant is v]
        logged = [r for r in mine if r.log]
        cells = [v.name, (v.cfg.get('paper') or {}).get('row', '-'),
                 _setting(v), '{} of {}'.format(len(logged), len(mine))]
        for p in PERCENTS:
            cells += [_pm([r.acc_at.get(p) for r in logged], len(mine)),
                      report_module.format_value(paper_accuracy(v, p))]
        body.append(cells)
    return report_module.table_lines(head, body)


def _speed_table(study, rows):
    head = ['variant', 'BN arm', 'max acc. - BN arm (same seed)',
            "updates to the BN arm's best (same seed)", 'reached',
            "paper: updates to BN-2's max (Table 3)", 'final training loss']
    body = []
    for v in study.variants:
        mine = [r for r in rows if r.run.variant is v]
        paired = [r for r in mine if r.target is not None]
        reached = [r.steps for r in paired if r.steps is not None]
        steps = (v.cfg.get('paper') or {}).get('steps') or {}
        paper_steps = ('{} (to {:.2f}%)'.format(
            metrics.format_steps(steps['value']), steps['target'])
            if steps else 'n/a')
        body.append([v.name, v.baseline,
                     _pm([r.delta for r in paired], len(mine)),
                     _pm(reached, len(mine), digits=0),
                     '{} of {}'.format(len(reached), len(paired)),
                     paper_steps,
                     _pm([r.loss for r in mine], len(mine), digits=4)])
    return report_module.table_lines(head, body)


def _run_table(rows, marks):
    head = (['run', 'status', 'epochs', 'iterations'] +
            ['max acc. by {}'.format(m) for m in marks] +
            ["BN arm's best", 'updates to it', 'max acc. - BN arm',
             'final training loss', 'wall time (s)'])
    body = []
    for r in rows:
        last = r.log[-1] if r.log else {}
        body.append(
            [r.run.id, r.status,
             '{}/{}'.format(last.get('epoch', 0), r.run.epochs),
             str(last.get('iteration', 0))] +
            [report_module.format_value(r.acc_at.get(p)) for p in PERCENTS] +
            [report_module.format_value(r.target),
             _steps_cell(r.steps, r.target),
             report_module.format_value(r.delta, signed=True),
             report_module.format_loss(r.loss),
             '{:.0f}'.format(r.wall) if r.wall is not None else 'n/a'])
    return report_module.table_lines(head, body)


def _invocation_table(state):
    head = ['started', 'ended', 'device', 'host', 'versions', 'budget (s)',
            'at a time', 'outcomes']
    body = []
    for inv in state['invocations']:
        counts = collections.Counter(o['status'] for o in
                                     inv['outcomes'].values())
        body.append([inv['started'], inv['ended'] or 'did not end',
                     inv['device'], inv['host'], ', '.join(
                         '{} {}'.format(k, v)
                         for k, v in inv['versions'].items()),
                     '{:g}'.format(inv['budget']) if inv['budget'] else
                     'none', str(inv['parallel']),
                     ', '.join('{} {}'.format(n, s) for s, n in
                               sorted(counts.items())) or 'none'])
    return report_module.table_lines(head, body)


def build_report(study, runs_root, plot_name=None):
    """Markdown of a study's report (see the module's docstring).

    Args:
        study (Study): From :func:`load_study`.
        runs_root (str): Where the runs are (``<runs_root>/<name>/``).
        plot_name (str): File name of the PNG to link, if any.

    Returns:
        tuple: ``(markdown, rows)``; ``rows`` are the runs with their
        numbers (for the plot).

    """
    rows = _rows(study, runs_root)
    infos = [r.folder.info for r in rows if r.folder.info]
    marks = _marks(study)
    reduced = any(i.get('train_subset') or i.get('test_subset')
                  for i in infos)
    lines = ['# Study {}{}'.format(study.name, ': ' + study.description
                                   if study.description else ''), '']
    if reduced:
        lines += ['**Runs on training or test subsets: NOT a reproduction '
                  'of the paper.**', '']
    lines += ['Study file `{}`; runs in `{}/<run>/`, {} of {} with at '
              'least one epoch.'.format(
                  study.path, study_dir(study, runs_root),
                  sum(1 for r in rows if r.log), len(rows)), '',
              'Runs: {}.'.format(report_module.budget_text(infos) or
                                 'none yet')]
    if any('chainer.datasets' not in report_module.data_name(i)
           for i in infos):
        lines.append(report_module.DATA_CAVEAT)
    lines += ['', '## Invocations', '',
              'Each call of the study: when (UTC), where, with what, and '
              'what became of its runs.', ''] + \
        _invocation_table(load_state(study, runs_root))
    lines += [
        '', '## Definitions', '',
        '- *BN arm*: the variant a variant is compared with (its '
        '`baseline`, default the study\'s: `{}`), run with the same seed. '
        '*BN arm\'s best*: the maximum test accuracy of that run over all '
        'the epochs it logged.'.format(study.baseline),
        '- *max acc. by ep e*: the maximum of the per-epoch test accuracies '
        '(%) up to epoch e, at 25/50/75/100% of the epochs of the run; n/a '
        'where the run has not reached epoch e.',
        '- *updates to the BN arm\'s best*: gradient updates (iterations) '
        'until test accuracy first reaches the BN arm\'s best, counted at '
        'epoch ends (test accuracy is measured once per epoch); "-": never '
        'reached. *max acc. - BN arm*: the run\'s maximum test accuracy '
        'minus the BN arm\'s, both over the epochs that both runs reached.',
        '- *final training loss*: the mean training cross-entropy over the '
        'updates of the last epoch logged.',
        '- Per variant: mean ± sample standard deviation (n - 1) over its '
        'seeds; "(n=k)": only k runs have the value. "updates to the BN '
        'arm\'s best" averages the runs that reached it.',
        '- *paper*: the configuration\'s `paper` block. Its `acc_at` '
        'percentages are of the configuration\'s epochs, so a value stands '
        'only where the column\'s epoch is one of them (a 25-epoch study of '
        'a 100-epoch configuration meets its 25% column); Table 3 counts '
        'updates to the paper\'s BN-2 maximum over 100 epochs.']
    lines += ['', '## Maximum test accuracy (%) per variant', ''] + \
        _accuracy_table(study, rows, marks)
    lines += ['', '## Training speed per variant', ''] + \
        _speed_table(study, rows)
    lines += ['', '## Runs', '', 'In the order they start (every variant\'s '
              'first seed, then every variant\'s second seed, ...).',
              ''] + _run_table(rows, marks)
    if plot_name:
        lines += ['', '## Curves', '', 'Training loss and test error against '
                  'gradient updates, one line per variant (dashed: batch '
                  'normalization only): the mean over its seeds at each '
                  'epoch, shaded by one sample standard deviation where two '
                  'or more seeds reached that epoch.', '',
                  '![study {0}]({1})'.format(study.name, plot_name)]
    return '\n'.join(lines) + '\n', rows


def report(study, runs_root, results_dir, log=sys.stderr):
    """Writes a study's report and plot (see the module's docstring).

    Returns:
        tuple: The markdown's and the PNG's paths (the PNG's is None when
        no run has logged an epoch).

    """
    rows = _rows(study, runs_root)
    reduced = any(r.folder.info and (r.folder.info.get('train_subset') or
                                     r.folder.info.get('test_subset'))
                  for r in rows)
    folder = study_dir(study, runs_root) if reduced else results_dir
    md = os.path.join(folder, 'study-{}.md'.format(study.name))
    png = os.path.splitext(md)[0] + '.png'
    if not any(r.log for r in rows):
        png = None
    text, rows = build_report(study, runs_root,
                              png and os.path.basename(png))
    os.makedirs(folder, exist_ok=True)
    with open(md, 'w') as f:
        f.write(text)
    if png:
        infos = [r.folder.info for r in rows if r.folder.info]
        groups = [(v.name, [r.log for r in rows if r.run.variant is v and
                            r.log], not v.cfg['norm']['layers'])
                  for v in study.variants]
        report_module.plot_loss_and_error(
            [g for g in groups if g[1]], png, report_module.reduced_title(
                'Study {}: mean over seeds, shaded ± 1 std; {}'.format(
                    study.name, report_module.budget_text(infos)), reduced))
    print('wrote {}{}{}'.format(md, ' and ' + png if png else '',
                                ' (runs on subsets)' if reduced else ''),
          file=log)
    return md, png


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
            finished = (report_module.Run(out).info or {}).get('finished')
            for name in sorted(os.listdir(out)):
                full = os.path.join(out, name)
                if (name == 'model.npz' or not os.path.isfile(full) or
                        finished and name.startswith('snapshot_iter_')):
                    continue
                add(full)
    return names


# -------------------------------------------------------------------- CLI
def _plan(study, runs_root, train_args, log):
    for run in study.runs:
        v = run.variant
        print('{}: {} seed {}, {} epochs, {} -> {}'.format(
            run.id, v.config_path, run.seed, run.epochs, _setting(v),
            run_dir(study, runs_root, run)), file=log)
    print('TRAIN ARGS: {}'.format(' '.join(train_args) or 'none'), file=log)


def main(argv=None):
    """Entry point; returns the process exit status."""
    p = argparse.ArgumentParser(prog='python -m train.study',
                                allow_abbrev=False)
    sub = p.add_subparsers(dest='command', required=True)
    for name, text in (('run', 'train a study\'s runs (resuming them), '
                               'then report'),
                       ('report', 'write the report of a study\'s runs'),
                       ('pack', 'a .tgz of what resuming the study needs')):
        s = sub.add_parser(name, help=text, allow_abbrev=False)
        s.add_argument('study', help='study file (YAML)')
        s.add_argument('--runs', default=os.path.join('runs', 'studies'),
                       help='runs folder (default runs/studies)')
        if name != 'pack':
            s.add_argument('--results', default='results',
                           help='folder of the report (default results; '
                                'runs on subsets: the study\'s runs folder)')
    sub.choices['pack'].add_argument('tgz', help='the file to write')
    s = sub.choices['run']
    s.add_argument('--budget', type=float, default=None, metavar='SECONDS',
                   help='time for the whole invocation (default: none)')
    s.add_argument('--reserve', type=float, default=30.0, metavar='SECONDS',
                   help='seconds of the budget kept for stopping runs and '
                        'the report (default 30)')
    s.add_argument('--parallel', type=int, default=1, metavar='N',
                   help='runs at a time (default 1: sequential)')
    s.add_argument('--dry-run', action='store_true',
                   help='print the runs and exit')
    args, train_args = p.parse_known_args(argv)
    if args.command != 'run' and train_args:
        p.error('unrecognized arguments: {}'.format(' '.join(train_args)))
    if args.command == 'run' and args.parallel < 1:
        p.error('--parallel must be at least 1')
    try:
        study = load_study(args.study)
        if args.command == 'pack':
            names = pack(study, args.runs, args.tgz)
            print('wrote {} ({} files)'.format(args.tgz, len(names)),
                  file=sys.stderr)
            return 0
        if args.command == 'run' and args.dry_run:
            parse_train_args(train_args)
            _plan(study, args.runs, train_args, sys.stdout)
            return 0
        status = 0
        if args.command == 'run':
            record = run_study(study, args.runs, train_args, args.budget,
                               args.reserve, args.parallel)
            statuses = {o['status'] for o in record['outcomes'].values()}
            status = (130 if record.get('interrupted') else
                      1 if 'failed' in statuses else 0)
        report(study, args.runs, args.results)
    except StudyError as e:
        print('train.study: error: {}'.format(e), file=sys.stderr)
        return 2
    return status


if __name__ == '__main__':
    sys.exit(main())
