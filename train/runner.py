"""One training run: model, data, optimizer and a Chainer Trainer.

The output folder of a run holds::

    run.json              settings of the run (checked on --resume)
    log                   LogReport's JSON log, one entry per epoch
    error.png             training and test error (%) against epochs,
                          titled with the run, budget, data, device, seed
    snapshot_iter_<N>     newest epoch-end snapshot (trainer, optimizer,
                          iterator, MN queues, random generator states)
    model.npz             final parameters (written when the run ends)
    records/              what the configuration's ``record`` section asks
                          for (models and MN fits at fractions of training,
                          active-component counts; train/extensions.py)

A run that is killed at any moment loses at most the epoch in progress:
``resume=True`` loads the newest snapshot and continues to the same final
iteration with the same random streams.
"""
import glob
import json
import os
import random
import re
import sys

import numpy

import mixnorm
import chainer
import chainer.functions as F
from chainer import training
from chainer.training import extensions

from train import config as config_module
from train import data as data_module
from train import device as device_module
from train import multinode
from train import extensions as record_extensions
from train import machine
from train import optim
from train import progress
from train import report
from train import runplot

SNAPSHOT = 'snapshot_iter_{.updater.iteration}'
# run.json fields that a resumed run must share with the original one
_RESUME_KEYS = ('config', 'epochs', 'seed', 'train_subset', 'test_subset',
                'data')


class _PlainText(object):
    """Stream wrapper that drops the terminal escape PrintReport writes."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        self._stream.write(text.replace('\033[J', ''))

    def flush(self):
        self._stream.flush()


class LogProgress(training.Extension):

    """A line every ``interval`` seconds of training, for logs that are not
    a terminal (a terminal has Chainer's ProgressBar):
    ``training NAME: I of N iterations (P%), S s``.

    Args:
        name (str): The run's name.
        final_iteration (int): The iteration the run ends at.
        log: The stream.
        interval (float): Seconds between lines.

    """

    trigger = 1, 'iteration'
    priority = training.PRIORITY_READER

    def __init__(self, name, final_iteration, log, interval=30.0):
        self.progress = progress.Progress('training ' + name,
                                          final_iteration, 'iterations',
                                          stream=log, interval=interval)

    def __call__(self, trainer):
        self.progress.update(trainer.updater.iteration)


def extend_printing(trainer, keys, log, name, final_iteration,
                    trigger=(1, 'epoch')):
    """Prints the log's ``keys`` at ``trigger`` to ``log``, and progress
    between: Chainer's ProgressBar on a terminal, else
    :class:`LogProgress` (the log stays plain text)."""
    tty = progress.is_tty(log)
    trainer.extend(extensions.PrintReport(
        keys, out=log if tty else _PlainText(log)), trigger=trigger)
    if tty:
        trainer.extend(extensions.ProgressBar(update_interval=10, out=log))
    else:
        trainer.extend(LogProgress(name, final_iteration, log))


class RunError(Exception):
    """The run cannot start as asked; the message says why."""


def default_device():
    """``@cupy:0`` when CuPy is usable and a GPU exists, else ``@numpy``
    (:func:`train.device.default`)."""
    return device_module.default()


class Classifier(chainer.Chain):

    """Softmax cross-entropy classifier reporting loss, accuracy and error.

    Values are reported with the batch size as weight, so that an
    evaluation over a test set whose last batch is short averages exactly.

    Args:
        predictor (chainer.Link): Maps images to class scores.

    """

    def __init__(self, predictor):
        super(Classifier, self).__init__()
        with self.init_scope():
            self.predictor = predictor

    def forward(self, x, t):
        y = self.predictor(x)
        loss = F.softmax_cross_entropy(y, t)
        acc = F.accuracy(y, t).array
        n = len(t)
        chainer.report({'loss': (loss.array, n), 'accuracy': (acc, n),
                        'error': (1 - acc, n)}, self)
        return loss


def seed_gpu(seed):
    """Seed CuPy's generator and the kernel path's (mixnorm.cuda.seed)."""
    mixnorm.cuda.seed(seed)


def mixture_links(model):
    """The :class:`mixnorm.MixtureNormalization` links of ``model``."""
    return [link for _, link in model.namedlinks()
            if isinstance(link, mixnorm.MixtureNormalization)]


class CheckFinite(training.Extension):

    """Reports at each epoch end a NaN or Inf that MN or BN saw on a GPU.

    On a GPU a training call of :class:`mixnorm.MixtureNormalization` or
    :class:`mixnorm.BatchNormalization` reports a non-finite input one or
    more calls late (it does not wait for the device), so one in the last
    steps of a run would go unreported.  This calls
    :meth:`~mixnorm.MixtureNormalization.check_finite_now` on every such
    link, which waits for the device and raises the link's
    ``ValueError``: the run stops before the epoch is evaluated, logged or
    snapshotted.  On the CPU every call already raises at once, and the
    check costs nothing.

    Args:
        model (chainer.Link): The model being trained.

    """

    trigger = 1, 'epoch'
    # before the Evaluator and LogReport (writers) and the snapshot (-100)
    priority = training.PRIORITY_WRITER + 1

    def __init__(self, model):
        self.links = [link for _, link in model.namedlinks()
                      if hasattr(link, 'check_finite_now')]

    def __call__(self, trainer):
        for link in self.links:
            link.check_finite_now()


class RandomStates(training.Extension):

    """Keeps the random generators' state in snapshots.

    Saves and restores NumPy's global generator (which draws the data
    order, the augmentation and, on the CPU, mixture normalization's
    seeding) and Python's :mod:`random`.  CuPy cannot export its
    generator's state, so on a GPU it and the kernel path's generator
    (:func:`mixnorm.cuda.seed`) are reseeded at every epoch end from
    NumPy's generator, and the seed is what the snapshot keeps.

    Args:
        use_cupy (bool): Whether the run is on a GPU.
        cupy_seed (int): Seed CuPy was given at the start.

    """

    trigger = 1, 'epoch'
    priority = -60  # after the schedule, before the snapshot (-100)

    def __init__(self, use_cupy, cupy_seed):
        self.use_cupy = use_cupy
        self.cupy_seed = cupy_seed

    def __call__(self, trainer):
        if self.use_cupy:
            self.cupy_seed = int(numpy.random.randint(2 ** 31 - 1))
            seed_gpu(self.cupy_seed)

    def serialize(self, serializer):
        if isinstance(serializer, chainer.serializer.Serializer):
            _, keys, pos, has_gauss, gauss = numpy.random.get_state()
            version, py_state, py_gauss = random.getstate()
            serializer('numpy_keys', keys)
            serializer('numpy_pos', numpy.int64(pos))
            serializer('numpy_gauss', numpy.array(
                [has_gauss, gauss], numpy.float64))
            serializer('python_state', numpy.asarray(py_state, numpy.int64))
            serializer('python_gauss', numpy.float64(
                numpy.nan if py_gauss is None else py_gauss))
            serializer('cupy_seed', numpy.int64(self.cupy_seed))
            return
        keys = serializer('numpy_keys', None)
        pos = serializer('numpy_pos', None)
        has_gauss, gauss = serializer('numpy_gauss', None)
        numpy.random.set_state(('MT19937', numpy.asarray(keys, numpy.uint32),
                                int(pos), int(has_gauss), float(gauss)))
        py_state = serializer('python_state', None)
        py_gauss = float(serializer('python_gauss', None))
        random.setstate((3, tuple(int(v) for v in py_state),
                         None if numpy.isnan(py_gauss) else py_gauss))
        self.cupy_seed = int(serializer('cupy_seed', None))
        if self.use_cupy:
            seed_gpu(self.cupy_seed)


def newest_snapshot(out):
    """Path of the snapshot with the highest iteration in ``out``, or None."""
    best, best_iter = None, -1
    for path in glob.glob(os.path.join(out, 'snapshot_iter_*')):
        m = re.match(r'snapshot_iter_(\d+)$', os.path.basename(path))
        if m and int(m.group(1)) > best_iter:
            best, best_iter = path, int(m.group(1))
    return best


def _json_roundtrip(value):
    return json.loads(json.dumps(value, sort_keys=True))


def _write_json(path, value):
    tmp = path + '.tmp'
    with open(path + '.tmp', 'w') as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _check_resumable(out, info, keys=_RESUME_KEYS):
    with open(os.path.join(out, 'run.json')) as f:
        old = json.load(f)
    for key in keys:
        mine, theirs = info[key], old.get(key)
        if key == 'config':  # the paper's numbers and what is recorded
            # for the figures do not affect training
            theirs = config_module.upgrade(theirs, warn=False)  # old keys
            mine, theirs = (dict(c or {}, paper=None, record=None)
                            for c in (mine, theirs))
        if theirs != mine:
            raise RunError(
                '{} holds a run with a different {} ({!r} there, {!r} now); '
                'use another --out or the same settings'.format(
                    out, key, theirs, mine))
    return old


def open_out(out, info, resume, keys=_RESUME_KEYS):
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
    if os.path.exists(os.path.join(out, 'run.json')):
        if not resume:
            raise RunError('{} already holds a run: pass --resume to '
                           'continue it, or choose another --out'.format(out))
        old = _check_resumable(out, info, keys)
        return (old if old.get('finished') else None), snapshot
    if snapshot is not None:
        raise RunError('{} holds snapshots but no run.json; choose another '
                       '--out'.format(out))
    return None, None


def settings(cfg, epochs=None, seed=0, data=None, train_subset=None,
             test_subset=None, config_path=None):
    """The settings of a run, as ``run.json`` records them.

    Arguments are those of :func:`run`.  A resumed run must match the
    original one in the keys of ``_RESUME_KEYS`` (the paper's numbers in
    the configuration excepted).
    """
    return recorded_settings(cfg, data, config_path=config_path,
                             epochs=epochs or cfg['epochs'], seed=seed,
                             train_subset=train_subset,
                             test_subset=test_subset)


def recorded_settings(cfg, data, **fields):
    """``run.json``'s settings of any trainer: the configuration, its path,
    the data (an absolute path, or the dataset's name) and ``fields``."""
    source = data_module.data_path(data)
    return _json_roundtrip(dict(
        fields, config=cfg,
        data=os.path.abspath(os.path.expanduser(source)) if source
        else cfg['dataset']))


def run(cfg, out, device=None, epochs=None, seed=0, resume=False,
        data=None, train_subset=None, test_subset=None, config_path=None,
        log=sys.stderr, comm=None, local_bn=False):
    """Trains one configuration.

    Args:
        cfg (dict): Validated configuration (:func:`train.config.load`;
            ``check_model=False`` suffices: the run builds the model before
            it loads the data, and a bad ``model``, ``model_args`` or
            ``norm`` is a ConfigError then).
        out (str): Output folder.
        device (str): Chainer device specifier; default
            :func:`default_device`.
        epochs (int): Overrides ``cfg['epochs']``.
        seed (int): Seed of NumPy's, Python's and CuPy's generators.
        resume (bool): Continue from the newest snapshot in ``out`` (a
            finished run returns at once; no snapshot: start afresh).
        data (str): Image folder or .zip (default ``$MIXNORM_DATA``, else
            chainer.datasets).
        train_subset (int): Train on a fixed random subset of this size.
        test_subset (int): Evaluate on a fixed random subset of this size.
        config_path (str): Recorded in ``run.json``.
        log: Stream for progress messages.
        comm: A ChainerMN communicator: this process is one of
            ``comm.size`` that train together (:mod:`train.multinode`).
        local_bn (bool): With ``comm``, keep the batch normalization layers
            per process instead of synchronising them.

    Returns:
        dict: The contents of ``run.json`` at the end.

    Raises:
        RunError, train.config.ConfigError, train.imagefolder.DataError,
        train.device.DeviceError

    """
    epochs = epochs or cfg['epochs']
    source = data_module.data_path(data)
    info = settings(cfg, epochs, seed, source, train_subset, test_subset,
                    config_path)
    run_json = os.path.join(out, 'run.json')
    lead = comm is None or comm.rank == 0  # writes run.json, logs, model
    finished, snapshot = open_out(out, info, resume)
    if comm is not None:  # every process resumes from its own snapshot
        snapshot = multinode.newest_common_snapshot(out, comm)
        comm.mpi_comm.barrier()  # all have read out before rank 0 writes
    if finished is not None:
        print('{}: already finished ({} epochs)'.format(out, epochs),
              file=log)
        return finished

    if comm is None:
        device = device_module.get(device)
    else:
        device = device_module.get(multinode.device(comm, device,
                                                    default_device()))
        seed += 1000003 * comm.rank  # data order and augmentation
    device.use()
    use_cupy = device.xp is not numpy
    random.seed(seed)
    numpy.random.seed(seed)
    if use_cupy:
        seed_gpu(seed)
    # The run's one build of the model, before the data (nothing there
    # draws from the seeded generators), so that a bad model key fails fast.
    predictor, mn_paths = config_module.build_model(cfg, config_path, comm)
    if comm is not None and not local_bn:
        multinode.sync_batch_normalizations(predictor, comm)

    if comm is not None and not lead:  # rank 0 decodes and caches first
        comm.mpi_comm.barrier()
    dataset = data_module.load_dataset(cfg['dataset'], source)
    if comm is not None and lead:
        comm.mpi_comm.barrier()
    train_x, train_y = data_module.subset(
        dataset['train_x'], dataset['train_y'], train_subset, seed=0)
    test_x, test_y = data_module.subset(
        dataset['test_x'], dataset['test_y'], test_subset, seed=1)
    n_classes = len(dataset['classes'])
    batch = cfg['batch_size']
    if len(train_x) < batch:
        raise RunError('the training set ({} images) is smaller than one '
                       'batch ({})'.format(len(train_x), batch))
    train_set = chainer.datasets.TupleDataset(train_x, train_y)
    test_set = chainer.datasets.TupleDataset(test_x, test_y)
    step_batch = batch
    if comm is not None:  # a share of the data and of each batch
        try:
            step_batch = multinode.per_process_batch(batch, comm)
        except ValueError as e:
            raise RunError(str(e))
        train_set = multinode.scatter(train_set, comm, seed=0)
        test_set = multinode.scatter(test_set, comm, seed=1)

    model = Classifier(predictor)
    model.to_device(device)
    optimizer, lr_attr = optim.make_optimizer(cfg['optimizer'])
    if comm is not None:
        optimizer = multinode.optimizer(optimizer, comm)
    optimizer.setup(model)
    optim.add_hooks(optimizer, cfg['optimizer'])

    train_iter = chainer.iterators.SerialIterator(train_set, step_batch)
    test_iter = chainer.iterators.SerialIterator(test_set, step_batch,
                                                 repeat=False, shuffle=False)
    mean, std = dataset['mean'], dataset['std']
    updater = training.updaters.StandardUpdater(
        train_iter, optimizer, device=device,
        converter=data_module.Preprocess(mean, std, augment=True))
    trainer = training.Trainer(updater, (epochs, 'epoch'), out=out)

    evaluator = extensions.Evaluator(
        test_iter, model, device=device,
        converter=data_module.Preprocess(mean, std, augment=False))
    if comm is not None:  # metrics averaged over the processes
        evaluator = multinode.evaluator(evaluator, comm)
    trainer.extend(evaluator)
    if lead:  # the process that writes the log
        trainer.extend(extensions.observe_value(
            'lr', lambda t: getattr(optimizer, lr_attr)))
        trainer.extend(extensions.LogReport())
    trainer.extend(optim.LRSchedule(cfg['schedule'], cfg['optimizer']['lr'],
                                    lr_attr, epochs))
    trainer.extend(RandomStates(use_cupy, seed))
    trainer.extend(CheckFinite(predictor))
    final_iteration = -(-epochs * len(train_x) // batch)
    if lead:
        record_extensions.register(trainer, cfg, predictor, final_iteration,
                                   config_path)
    trainer.extend(extensions.snapshot(
        filename=SNAPSHOT if comm is None else multinode.snapshot_name(comm),
        n_retains=1), trigger=(1, 'epoch'))
    info.update(data_source=dataset['source'],
                classes=dataset['classes'], n_train=len(train_x),
                n_test=len(test_x), device=str(device),
                machine=machine.device_name(device), mn_paths=mn_paths,
                iterations_per_epoch=len(train_x) / float(batch),
                final_iteration=final_iteration,
                processes=1 if comm is None else comm.size,
                finished=False)
    if lead:
        _extend_reports(trainer, log, report.run_title(info), cfg['name'],
                        final_iteration)

    os.makedirs(out, exist_ok=True)
    if resume and snapshot is not None:
        chainer.serializers.load_npz(snapshot, trainer)
        print('resuming {} from {} (epoch {}, iteration {})'.format(
            out, os.path.basename(snapshot), updater.epoch,
            updater.iteration), file=log)
    if lead:
        _write_json(run_json, info)
        print('{}: {} on {} ({} train / {} test images, {} classes), '
              'device {}{}, normalization: {}'.format(
                  cfg['name'], cfg['model'], dataset['source'],
                  len(train_x), len(test_x), n_classes, device,
                  '' if comm is None else ' ({} processes)'.format(
                      comm.size), config_module.norm_label(mn_paths)),
              file=log)

    if comm is not None:
        multinode.synchronise(optimizer, model, comm)
    trainer.run()

    info.update(finished=True, wall_time=trainer.elapsed_time,
                iterations=updater.iteration)
    if lead:
        chainer.serializers.save_npz(os.path.join(out, 'model.npz'),
                                     predictor)
        _write_json(run_json, info)
    return info


def _extend_reports(trainer, log, title, name, final_iteration):
    """The plot (titled ``title``) and the printed log with progress (of
    the process that writes)."""
    if runplot.available():
        trainer.extend(runplot.RunPlot(title, 'error.png'))
    extend_printing(
        trainer, ['epoch', 'iteration', 'main/loss', 'main/accuracy',
                  'validation/main/loss', 'validation/main/accuracy', 'lr',
                  'elapsed_time'], log, name, final_iteration)
