"""One classifier run: model, data, optimizer and a Chainer Trainer.

:func:`run` trains one configuration of :mod:`train.config.classifier`
through the trainer skeleton (:mod:`train.common.skeleton`), which owns
the run folder (:mod:`train.common.runfolder`).  Here: the model with
mixture normalization in place, a softmax cross-entropy
:class:`Classifier`, the data (a fixed subset for quick runs) augmented on
the device (:class:`train.data.Preprocess`), the optimizer and learning
rate schedule of the configuration (:mod:`train.common.optim`), an
evaluation of the test set and a log entry at every epoch end, and what
the configuration's ``record`` section asks for
(:mod:`train.classifier.records`).  With a ChainerMN communicator it is one
of several processes that train together
(:mod:`train.classifier.multinode`).

The folder holds ``run.json``, ``log`` (one entry per epoch), ``error.png``
(training and test error in percent against epochs), the newest
epoch-end snapshot and, at the end, ``model.npz``.  A run that is killed
at any moment loses at most the epoch in progress: ``resume=True`` loads
the newest snapshot and continues to the same final iteration with the
same random streams.
"""
import os
import sys

import chainer
import chainer.functions as F
from chainer import training
from chainer.training import extensions

from train.classifier import records
from train.classifier.multinode import Processes
from train.classifier.multinode import SingleProcess
from train.common import optim
from train.common import skeleton
from train.common.runfolder import MODEL
from train.common.runfolder import recorded_settings
from train.common.runfolder import RunError
from train.common.titles import run_title
from train.config.loading import build_model
from train.config.loading import norm_label
from train.data.batches import Preprocess
from train.data.datasets import data_path
from train.data.datasets import load_dataset
from train.data.datasets import subset

# run.json fields that a resumed run must share with the original one
RESUME_KEYS = ('config', 'epochs', 'seed', 'train_subset', 'test_subset',
               'data')
PRINT_KEYS = ['epoch', 'iteration', 'main/loss', 'main/accuracy',
              'validation/main/loss', 'validation/main/accuracy', 'lr',
              'elapsed_time']


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


def settings(cfg, epochs=None, seed=0, data=None, train_subset=None,
             test_subset=None, config_path=None):
    """The settings of a run, as ``run.json`` records them.

    Arguments are those of :func:`run`.  A resumed run must match the
    original one in the keys of :data:`RESUME_KEYS` (the paper's numbers
    in the configuration excepted).
    """
    return recorded_settings(cfg, data, config_path=config_path,
                             epochs=epochs or cfg['epochs'], seed=seed,
                             train_subset=train_subset,
                             test_subset=test_subset)


class ClassifierJob(skeleton.Job):

    """A classifier run for the trainer skeleton (arguments of :func:`run`;
    ``processes``: :class:`~train.classifier.multinode.SingleProcess` or
    :class:`~train.classifier.multinode.Processes`)."""

    unit = 'epochs'
    resume_keys = RESUME_KEYS
    print_keys = PRINT_KEYS
    plot = {'filename': 'error.png'}

    def __init__(self, cfg, epochs, source, train_subset, test_subset,
                 config_path, processes):
        self.cfg = cfg
        self.epochs = epochs
        self.source = source
        self.train_subset = train_subset
        self.test_subset = test_subset
        self.config_path = config_path
        self.processes = processes

    def build(self, out, device, seed, log):
        cfg, procs = self.cfg, self.processes
        # The run's one build of the model, before the data (nothing there
        # draws from the seeded generators), so that a bad model key fails
        # fast.
        predictor, mn_paths = build_model(cfg, self.config_path, procs.comm)
        procs.sync_batch_normalizations(predictor)
        dataset = procs.lead_first(  # rank 0 decodes and caches first
            lambda: load_dataset(cfg['dataset'], self.source))
        train_x, train_y = subset(dataset['train_x'], dataset['train_y'],
                                  self.train_subset, seed=0)
        test_x, test_y = subset(dataset['test_x'], dataset['test_y'],
                                self.test_subset, seed=1)
        batch = cfg['batch_size']
        if len(train_x) < batch:
            raise RunError('the training set ({} images) is smaller than one '
                           'batch ({})'.format(len(train_x), batch))
        try:  # a share of each batch and of the data per process
            step_batch = procs.batch(batch)
        except ValueError as e:
            raise RunError(str(e))
        train_set = procs.scatter(
            chainer.datasets.TupleDataset(train_x, train_y), seed=0)
        test_set = procs.scatter(
            chainer.datasets.TupleDataset(test_x, test_y), seed=1)

        model = Classifier(predictor)
        model.to_device(device)
        optimizer, lr_attr = optim.make_optimizer(cfg['optimizer'])
        optimizer = procs.optimizer(optimizer)
        optimizer.setup(model)
        optim.add_hooks(optimizer, cfg['optimizer'])

        train_iter = chainer.iterators.SerialIterator(train_set, step_batch)
        test_iter = chainer.iterators.SerialIterator(
            test_set, step_batch, repeat=False, shuffle=False)
        mean, std = dataset['mean'], dataset['std']
        updater = training.updaters.StandardUpdater(
            train_iter, optimizer, device=device,
            converter=Preprocess(mean, std, augment=True))
        trainer = training.Trainer(updater, (self.epochs, 'epoch'), out=out)
        trainer.extend(procs.evaluator(extensions.Evaluator(
            test_iter, model, device=device,
            converter=Preprocess(mean, std, augment=False))))
        if procs.lead:  # the process that writes the log
            trainer.extend(extensions.observe_value(
                'lr', lambda t: getattr(optimizer, lr_attr)))
        trainer.extend(optim.LRSchedule(cfg['schedule'],
                                        cfg['optimizer']['lr'], lr_attr,
                                        self.epochs))
        self.final_iteration = -(-self.epochs * len(train_x) // batch)
        if procs.lead:
            records.register(trainer, cfg, predictor, self.final_iteration,
                             self.config_path)
        self.checked = predictor
        self.model, self.optimizer = model, optimizer
        self._facts = dict(
            data_source=dataset['source'], classes=dataset['classes'],
            n_train=len(train_x), n_test=len(test_x), mn_paths=mn_paths,
            iterations_per_epoch=len(train_x) / float(batch),
            final_iteration=self.final_iteration, processes=procs.size)
        return trainer

    def facts(self):
        return self._facts

    def title(self, info):
        return run_title(info)

    def describe(self, info):
        cfg = self.cfg
        return ('{}: {} on {} ({} train / {} test images, {} classes), '
                'device {}{}, normalization: {}'.format(
                    cfg['name'], cfg['model'], info['data_source'],
                    info['n_train'], info['n_test'], len(info['classes']),
                    info['device'], '' if self.processes.comm is None else
                    ' ({} processes)'.format(self.processes.size),
                    norm_label(info['mn_paths'])))

    def start(self):
        self.processes.start(self.optimizer, self.model)

    def save(self, out):
        chainer.serializers.save_npz(os.path.join(out, MODEL),
                                     self.model.predictor)

    def done(self, trainer):
        return {'iterations': trainer.updater.iteration}


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
            :func:`train.device.default`.
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
            ``comm.size`` that train together
            (:mod:`train.classifier.multinode`).
        local_bn (bool): With ``comm``, keep the batch normalization layers
            per process instead of synchronising them.

    Returns:
        dict: The contents of ``run.json`` at the end.

    Raises:
        RunError, train.config.ConfigError, train.data.DataError,
        train.device.DeviceError

    """
    epochs = epochs or cfg['epochs']
    source = data_path(data)
    info = settings(cfg, epochs, seed, source, train_subset, test_subset,
                    config_path)
    procs = (SingleProcess() if comm is None else
             Processes(comm, local_bn=local_bn))
    job = ClassifierJob(cfg, epochs, source, train_subset, test_subset,
                        config_path, procs)
    return skeleton.train(job, out, info, resume, device, seed, log)
