"""The run folder: its files, ``run.json``, resuming, and its readers.

A run of ``python -m train`` writes one folder::

    run.json              the settings of the run (checked on --resume),
                          what it trained on, where (device, machine,
                          package versions, date) and how far it got
    log                   Chainer's JSON LogReport log: one entry per epoch
                          (classifiers), or every log_every iterations and
                          at every FID evaluation (GANs)
    error.png | fid.png   the run's own plot (train.common.runplot)
    snapshot_iter_<N>     the newest snapshot (trainer, optimizers,
                          iterators, MN queues, random generator states);
                          snapshot_iter_<N>.<rank> per process of a
                          multi-process run
    model.npz             final parameters of a classifier; a GAN writes
                          generator.npz and discriminator.npz
    records/              what a classifier configuration's ``record``
                          section asks for (train.classifier.records)
    samples/              a GAN's sample grids (iter_<N>.png)

A run that is killed at any moment loses at most the steps since its
newest snapshot: with ``resume`` it continues from that snapshot, to the
same final iteration with the same random streams, provided its settings
match ``run.json``'s in the trainer's resume keys (:func:`open_out`).

A run is *reduced* (:func:`is_reduced`) when it is short of the paper's
protocol; reports, figures and plots say so ("NOT a reproduction").
:class:`Run` and :class:`GANRun` read a classifier's and a GAN's folder;
:func:`load_predictor` builds a finished classifier run's model with its
trained weights.
"""
import glob
import json
import os
import re

import numpy

import chainer

from train.config.loading import build_model
from train.config.loading import upgrade
from train.data.datasets import data_path
from train.metrics.accuracy import load_log
from train.metrics.fid import best_fid

RUN_JSON = 'run.json'
LOG = 'log'
MODEL = 'model.npz'
GENERATOR = 'generator.npz'
DISCRIMINATOR = 'discriminator.npz'
SAMPLES = 'samples'  # a GAN's sample grids
SNAPSHOT = 'snapshot_iter_{.updater.iteration}'  # Chainer's snapshot name
# a snapshot's key prefix of the classifier's model (Classifier.predictor)
SNAPSHOT_PREDICTOR = 'updater/model:main/predictor/'


class RunError(Exception):
    """The run cannot start as asked; the message says why."""


# ------------------------------------------------------------------ writing
def recorded_settings(cfg, data, **fields):
    """``run.json``'s settings of any trainer: the configuration, the data
    (an absolute path, or the dataset's name) and ``fields``, as JSON reads
    them back."""
    source = data_path(data)
    return json.loads(json.dumps(dict(
        fields, config=cfg,
        data=os.path.abspath(os.path.expanduser(source)) if source
        else cfg['dataset']), sort_keys=True))


def sample_path(out, iteration):
    """The sample grid of the GAN run ``out`` at ``iteration``."""
    return os.path.join(out, SAMPLES, 'iter_{:07d}.png'.format(iteration))


# ----------------------------------------------------------------- resuming
def snapshot_iteration(path):
    """N of ``snapshot_iter_N`` (or of ``model_iter_N.npz``), else None."""
    stem = os.path.basename(path).split('.')[0]
    tail = stem.rsplit('_', 1)[-1]
    return int(tail) if '_iter_' in stem and tail.isdigit() else None


def newest_snapshot(out):
    """Path of the snapshot with the highest iteration in ``out``, or None."""
    best, best_iter = None, -1
    for path in glob.glob(os.path.join(out, 'snapshot_iter_*')):
        m = re.match(r'snapshot_iter_(\d+)$', os.path.basename(path))
        if m and int(m.group(1)) > best_iter:
            best, best_iter = path, int(m.group(1))
    return best


def read_info(out):
    """``run.json`` of the folder ``out``, or None when it has none."""
    path = os.path.join(out, RUN_JSON)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def check_resumable(out, info, keys):
    """``run.json`` of ``out``, checked against a run's settings.

    Args:
        out (str): A folder that holds ``run.json``.
        info (dict): The settings of the run to resume.
        keys (tuple): Settings a resumed run must share with the original;
            in ``config``, the paper's numbers and what is recorded for the
            figures do not count (they do not affect training), and old
            keys are renamed first.

    Returns:
        dict: The recorded ``run.json``.

    Raises:
        RunError: A setting differs; the message names it.

    """
    old = read_info(out)
    for key in keys:
        mine, theirs = info[key], old.get(key)
        if key == 'config':
            theirs = upgrade(theirs, warn=False)
            mine, theirs = (dict(c or {}, paper=None, record=None)
                            for c in (mine, theirs))
        if theirs != mine:
            raise RunError(
                '{} holds a run with a different {} ({!r} there, {!r} now); '
                'use another --out or the same settings'.format(
                    out, key, theirs, mine))
    return old


def open_out(out, info, resume, keys):
    """Checks an output folder before a run starts in it.

    Args:
        out (str): The folder.
        info (dict): The run's settings (as ``run.json`` records them).
        resume (bool): Whether the run may continue one in ``out``.
        keys (tuple): Settings a resumed run must share with the original.

    Returns:
        tuple: ``(finished, snapshot)``: the recorded settings when ``out``
        holds a finished run (else None), and the newest snapshot to
        resume from (or None).

    Raises:
        RunError: ``out`` holds a run and ``resume`` is false, a run with
            other settings, or snapshots without ``run.json``.

    """
    snapshot = newest_snapshot(out) if os.path.isdir(out) else None
    if os.path.exists(os.path.join(out, RUN_JSON)):
        if not resume:
            raise RunError('{} already holds a run: pass --resume to '
                           'continue it, or choose another --out'.format(out))
        old = check_resumable(out, info, keys)
        return (old if old.get('finished') else None), snapshot
    if snapshot is not None:
        raise RunError('{} holds snapshots but no run.json; choose another '
                       '--out'.format(out))
    return None, None


# ------------------------------------------------------------------ reduced
def on_subset(info):
    """Whether a run (its ``run.json``) trained or tested on a subset."""
    return bool(info.get('train_subset') or info.get('test_subset'))


def is_reduced(info):
    """Whether a run (its ``run.json``) is short of the paper's protocol.

    A classifier run is when it trained or tested on a subset or for other
    than the configured epochs; a GAN run when it trained on a subset, for
    other than the configured iterations, with other FID evaluations, or
    from a configuration without the paper's numbers.
    """
    cfg = info['config']
    if info.get('kind') != 'gan':
        return on_subset(info) or info['epochs'] != cfg['epochs']
    fid = info['fid']
    return bool(info.get('train_subset') or not cfg.get('paper') or
                info['iterations'] != cfg['iterations'] or
                fid['every'] != cfg['fid']['every'] or
                fid['n_samples'] != cfg['fid']['n_samples'])


# ------------------------------------------------------------------ readers
class RunFolder(object):

    """A run folder as reports read it: ``run.json`` (None if missing).

    Args:
        path (str): The folder (may not exist yet).

    """

    def __init__(self, path):
        self.path = path
        self.info = read_info(path)

    @property
    def reduced(self):
        """Short of the paper's protocol (:func:`is_reduced`)."""
        return bool(self.info) and is_reduced(self.info)

    @property
    def label(self):
        """The paper's row (e.g. BN-2), else the configuration's name."""
        cfg = self.info['config']
        return (cfg.get('paper') or {}).get('row') or cfg['name']


class Run(RunFolder):

    """A classifier's run folder: ``run.json`` and the test entries of its
    ``log`` (:func:`train.metrics.accuracy.load_log`; None if missing)."""

    def __init__(self, path):
        super(Run, self).__init__(path)
        self.log = None
        if os.path.exists(os.path.join(path, LOG)):
            self.log = load_log(path)

    @property
    def exists(self):
        return self.info is not None and bool(self.log)

    def status(self):
        if not self.exists:
            return 'not run'
        i = self.info
        done = self.log[-1]['epoch']
        text = '{}/{} ep'.format(done, i['epochs'])
        if i.get('finished'):
            text = 'done, {} ep, {:.0f} s'.format(i['epochs'],
                                                  i.get('wall_time', 0))
        if self.reduced:
            text += ', reduced ({} train / {} test images)'.format(
                i['n_train'], i['n_test'])
        return text


class GANRun(RunFolder):

    """A GAN's run folder: ``run.json``, the log and its FID curve."""

    def __init__(self, path):
        super(GANRun, self).__init__(path)
        self.log = []
        if os.path.exists(os.path.join(path, LOG)):
            with open(os.path.join(path, LOG)) as f:
                self.log = json.load(f)
        entries = [e for e in self.log if 'fid' in e]
        self.iterations = [e['iteration'] for e in entries]
        self.fids = [e['fid'] for e in entries]

    @property
    def exists(self):
        return self.info is not None and bool(self.fids)

    @property
    def proxy(self):
        """Whether its FIDs are the proxy FID (train.fid.features)."""
        return bool(self.info and self.info.get('proxy'))

    def best(self):
        """``(iteration, FID)`` of the lowest evaluation, or None."""
        return best_fid(self.iterations, self.fids)

    def train_speed(self):
        """Training iterations per second, FID evaluations excluded."""
        if not self.log:
            return None
        last = self.log[-1]
        busy = last.get('elapsed_time', 0) - sum(
            e.get('fid_time', 0) for e in self.log)
        return last['iteration'] / busy if busy > 0 else None

    def status(self):
        if not self.exists:
            return 'not run'
        i = self.info
        done = self.log[-1]['iteration'] if self.log else 0
        text = ('done, {:,} it, {:.0f} s'.format(i['iterations'],
                                                 i.get('wall_time', 0))
                if i.get('finished') else '{:,}/{:,} it'.format(
                    done, i['iterations']))
        if self.reduced:
            text += ', reduced ({:,} training images, FID of {:,} every '\
                '{:,})'.format(i['n_train'], i['fid']['n_samples'],
                               i['fid']['every'])
        return text


def load_weights(path, predictor):
    """Loads ``model.npz``, a ``records/model_iter_<N>.npz`` or a trainer
    snapshot of a classifier run into ``predictor``."""
    with numpy.load(path) as z:
        in_snapshot = any(k.startswith(SNAPSHOT_PREDICTOR) for k in z.files)
    chainer.serializers.load_npz(
        path, predictor, path=SNAPSHOT_PREDICTOR if in_snapshot else '')


def load_predictor(run, weights=None):
    """The model of a classifier run with its trained weights.

    Args:
        run (str): The run folder (``run.json`` names the configuration).
        weights (str): The file to load (:func:`load_weights`); default
            the run's ``model.npz``.

    Returns:
        tuple: ``(predictor, mn_paths, cfg)``: the model on the CPU, the
        links that are mixture normalization, and the configuration (old
        keys renamed).

    Raises:
        RunError: No ``run.json``.
        train.config.ConfigError: The recorded configuration does not
            build.

    """
    info = read_info(run)
    if info is None:
        raise RunError('{}: no {}: not the folder of a run of python -m '
                       'train'.format(run, RUN_JSON))
    cfg = upgrade(info['config'], warn=False)
    predictor, paths = build_model(cfg, os.path.join(run, RUN_JSON))
    load_weights(weights or os.path.join(run, MODEL), predictor)
    return predictor, paths, cfg
