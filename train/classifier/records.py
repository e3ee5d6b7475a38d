"""Trainer extensions that record what the paper's Figures 1, 8 and 9 show,
and their readers.

A configuration's ``record`` section (:mod:`train.config.classifier`)
switches them
on and :func:`register` adds them to a run's trainer.  They change nothing
in training: they draw no random numbers and only read the model, so a run
ends with the same parameters with or without them (and ``--resume``
ignores the section).  Everything goes to ``<run>/records/``:

* :class:`FractionSnapshots`, at chosen fractions of the run's iterations:
  the model (``record.models_at``; Fig. 1 takes a mini-batch "halfway
  through training" from the one at 50%) as ``model_iter_<N>.npz``, and
  the newest fit of chosen MN links (``record.fits_at`` and
  ``fits_layers``; Fig. 8 shows ``inc2/0/2/4`` at 20/40/60/80/100%) as
  ``fits_iter_<N>.npz``: lambda_k, mu_k and sigma_k^2 of Eq. 35-36, the
  entry that iteration N pushed into the link's queue.
* :class:`ActiveComponents`: the number of active components
  (lambda_k >= ``min_weight``, Sec. 5.3) of every MN link, counted on the
  device at every training step
  (:meth:`mixnorm.MixtureNormalization.pop_active_counts`) and read every
  ``record.active_every`` iterations and at each epoch end into
  ``active_components.jsonl`` (Fig. 9).

Resuming: the iteration of a fraction f of a run of T iterations is
ceil(f T) (at least 1), which a resumed run computes alike; files are
replaced atomically, and one written after the newest snapshot is written
again, identically, by the resumed run.  The component log is cut back to
the snapshot's iteration when the trainer starts, and an entry closes at
every epoch end (where the snapshots are taken), so no step is lost or
counted twice.
"""
import json
import math
import os

import numpy

import mixnorm
import chainer
from chainer import training

from train.common.extensions import mixture_links
from train.config.schema import ConfigError
from train.output.files import replace_file

RECORDS = 'records'
MODEL_FILE = 'model_iter_{}.npz'
FITS_FILE = 'fits_iter_{}.npz'
COMPONENTS_FILE = 'active_components.jsonl'
_FIT_ARRAYS = ('weights', 'means', 'variances')  # mixnorm.GMM's fields


def fraction_iterations(fractions, final_iteration):
    """The iteration at which each fraction of a run is done.

    Args:
        fractions (list of float): Fractions of the iterations, in (0, 1].
        final_iteration (int): The run's last iteration T.

    Returns:
        dict: iteration -> sorted fractions recorded there.  The iteration
        of f is ceil(f T), at least 1; in a short run two fractions may
        share one.

    """
    out = {}
    for f in fractions:
        it = max(1, int(math.ceil(f * final_iteration - 1e-9)))
        out.setdefault(it, []).append(f)
    return {it: sorted(fs) for it, fs in out.items()}


def fit_links(predictor, layers, where=''):
    """The MN links that ``record.fits_layers`` names, as ``(path, link)``.

    Raises:
        ConfigError: A layer is not mixture-normalized; the message starts
            with ``where`` (e.g. the configuration's file).

    """
    mn = dict(mixture_links(predictor))
    out = []
    for layer in layers:
        try:
            paths = predictor.norm_paths([layer])
        except ValueError as e:
            raise ConfigError('{}record.fits_layers: {}'.format(where, e))
        for path in paths:
            if path not in mn:
                raise ConfigError(
                    '{}record.fits_layers: {} ({}) is batch normalization '
                    'in this configuration; mixture normalization is at: {}'
                    .format(where, layer, path, ', '.join(mn) or 'nowhere'))
            out.append((path, mn[path]))
    return out


class FractionSnapshots(training.Extension):

    """Saves the model and MN fits at chosen fractions of training.

    Called after every update; at the end of iteration ``ceil(f T)`` of a
    fraction f it writes ``records/model_iter_<N>.npz`` (the predictor, as
    ``model.npz``) and/or ``records/fits_iter_<N>.npz``: for each link
    ``<path>/weights`` (K,), ``<path>/means`` (K, C), ``<path>/variances``
    (K, C) and ``<path>/eps``, with ``iteration``, ``final_iteration`` and
    ``fractions``.  Reading the fits waits for the device: a handful of
    times per run.

    Args:
        predictor (chainer.Link): The model being trained.
        final_iteration (int): The run's last iteration.
        models_at (list of float): Fractions at which to save the model.
        fits_at (list of float): Fractions at which to save the fits.
        fit_links (list): ``(path, MixtureNormalization)`` pairs.

    """

    trigger = 1, 'iteration'
    priority = training.PRIORITY_WRITER

    def __init__(self, predictor, final_iteration, models_at=(), fits_at=(),
                 fit_links=()):
        self.predictor = predictor
        self.final_iteration = final_iteration
        self.models = fraction_iterations(models_at, final_iteration)
        self.fits = fraction_iterations(fits_at, final_iteration)
        self.fit_links = list(fit_links)

    def __call__(self, trainer):
        it = trainer.updater.iteration
        if it not in self.models and it not in self.fits:
            return
        folder = os.path.join(trainer.out, RECORDS)
        os.makedirs(folder, exist_ok=True)
        if it in self.models:
            replace_file(os.path.join(folder, MODEL_FILE.format(it)),
                     lambda f: chainer.serializers.save_npz(
                         f, self.predictor))
        if it in self.fits:
            arrays = {'iteration': it, 'final_iteration': self.final_iteration,
                      'fractions': numpy.asarray(self.fits[it])}
            cpu = chainer.backend.CpuDevice()
            for path, link in self.fit_links:
                for name, queue in zip(_FIT_ARRAYS, (
                        link.queue_weights, link.queue_means,
                        link.queue_variances)):
                    arrays[path + '/' + name] = cpu.send(queue[-1])
                arrays[path + '/eps'] = link.eps
            replace_file(os.path.join(folder, FITS_FILE.format(it)),
                     lambda f: numpy.savez(f, **arrays))


def _read_entries(path):
    """Entries of a JSON-lines file; a cut-off last line is dropped."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line for line in f.read().split('\n') if line.strip()]
    entries = []
    for i, line in enumerate(lines):
        try:
            entries.append(json.loads(line))
        except ValueError:
            if i < len(lines) - 1:  # only a killed write leaves a bad line
                raise ValueError('{}: line {} is not JSON'.format(path, i + 1))
    return entries


class ActiveComponents(training.Extension):

    """Logs the number of active components of every MN link (Fig. 9).

    Switches on each link's device-side count
    (:attr:`mixnorm.MixtureNormalization.count_active`) and, every ``every``
    iterations and at each epoch end, reads and resets it
    (:meth:`~mixnorm.MixtureNormalization.pop_active_counts`, the only
    synchronisation) into one line of ``records/active_components.jsonl``:
    ``{"iteration": N, "epoch": epoch_detail, "counts": {path: [n_0, ...,
    n_K]}}``, where ``n_j`` is the number of steps since the previous entry
    whose fit had j active components.

    Args:
        links (list): ``(path, MixtureNormalization)`` pairs.
        every (int): Iterations between entries; None: epoch ends only.

    """

    trigger = 1, 'iteration'
    # an entry closes before the epoch-end snapshot (priority -100)
    priority = training.PRIORITY_WRITER

    def __init__(self, links, every=None):
        self.links = list(links)
        self.every = every
        for _, link in self.links:
            link.count_active = True

    @staticmethod
    def path(out):
        return os.path.join(out, RECORDS, COMPONENTS_FILE)

    def initialize(self, trainer):
        """Cuts the log back to the (resumed) iteration and resets counts."""
        it = trainer.updater.iteration
        path = self.path(trainer.out)
        kept = [e for e in _read_entries(path) if e['iteration'] <= it]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        replace_file(path, lambda f: f.write(''.join(
            json.dumps(e, sort_keys=True) + '\n' for e in kept).encode()))
        for _, link in self.links:
            link.pop_active_counts()

    def __call__(self, trainer):
        updater = trainer.updater
        if not (updater.is_new_epoch or
                (self.every and updater.iteration % self.every == 0)):
            return
        entry = {'iteration': updater.iteration,
                 'epoch': updater.epoch_detail,
                 'counts': {path: link.pop_active_counts().tolist()
                            for path, link in self.links}}
        with open(self.path(trainer.out), 'a') as f:
            f.write(json.dumps(entry, sort_keys=True) + '\n')


def register(trainer, cfg, predictor, final_iteration, config_path=None):
    """Adds the extensions that ``cfg['record']`` asks for to a trainer.

    Args:
        trainer (chainer.training.Trainer): The run's trainer (before a
            snapshot is loaded into it).
        cfg (dict): The validated configuration.
        predictor (chainer.Link): The model, with MN in place.
        final_iteration (int): The run's last iteration.
        config_path (str): The configuration's file, named in errors.

    Raises:
        ConfigError: ``record.fits_layers`` names a layer that is not
            mixture-normalized, or ``record.active_components`` is set for
            a model without MN; the message names the file and the key.

    """
    record = cfg.get('record') or {}
    where = config_path + ': ' if config_path else ''
    if record.get('models_at') or record.get('fits_at'):
        trainer.extend(FractionSnapshots(
            predictor, final_iteration, record.get('models_at', ()),
            record.get('fits_at', ()),
            fit_links(predictor, record.get('fits_layers', ()), where)))
    if record.get('active_components'):
        links = mixture_links(predictor)
        if not links:
            raise ConfigError('{}record.active_components: the model has no '
                              'mixture normalization (norm.layers is empty)'
                              .format(where))
        trainer.extend(ActiveComponents(links, record.get('active_every')))


# ------------------------------------------------------------------ readers
def model_files(run):
    """``{iteration: path}`` of the models saved in ``<run>/records``."""
    return _iteration_files(run, MODEL_FILE)


def _iteration_files(run, pattern):
    prefix, suffix = pattern.split('{}')
    folder = os.path.join(run, RECORDS)
    out = {}
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            middle = name[len(prefix):-len(suffix)]
            if (name.startswith(prefix) and name.endswith(suffix) and
                    middle.isdigit()):
                out[int(middle)] = os.path.join(folder, name)
    return out


def read_fits(run):
    """The fits saved in ``<run>/records``, oldest first.

    Returns:
        list of dict: ``iteration``, ``final_iteration``, ``fractions`` and
        ``layers``: path -> ``(mixnorm.GMM, eps)`` with NumPy arrays.

    """
    out = []
    for it, path in sorted(_iteration_files(run, FITS_FILE).items()):
        with numpy.load(path) as z:
            paths = sorted({k.rsplit('/', 1)[0] for k in z.files if '/' in k})
            out.append({
                'iteration': int(z['iteration']),
                'final_iteration': int(z['final_iteration']),
                'fractions': [float(f) for f in z['fractions']],
                'layers': {p: (mixnorm.GMM(*(z[p + '/' + n]
                                             for n in _FIT_ARRAYS)),
                               float(z[p + '/eps'])) for p in paths}})
    return out


def read_components(run):
    """Entries of ``<run>/records/active_components.jsonl`` (none: [])."""
    return _read_entries(ActiveComponents.path(run))
