"""DCGAN training with mixture normalization in the generator (Sec. 4.5).

``python -m train --config FILE`` on a GAN configuration
(:mod:`train.config.gan`) trains it with :func:`run`, through the trainer
skeleton (:mod:`train.common.skeleton`): the generator (with MN where
``norm`` says) and the discriminator, each with the configuration's
optimizer, the step of :class:`train.gan.updater.GANUpdater` on batches
that stay on the device (:class:`train.data.DeviceImages`), and the FID
every ``fid.every`` iterations
(:class:`train.gan.evaluation.FIDEvaluation`).

The output folder holds ``run.json``, ``log`` (one entry every
``log_every`` iterations and at every FID evaluation: ``gen/loss``,
``dis/loss``, ``fid``, ``fid_time``), ``fid.png``,
``samples/iter_<N>.png`` (an 8x8 grid from fixed z at each evaluation),
the newest snapshot and, at the end, ``generator.npz`` and
``discriminator.npz``.  The real images' FID statistics are computed once
for a set of images and features and kept in ``$MIXNORM_CACHE`` (default
``~/.cache/mixnorm``), where the BN and MN runs share them
(:func:`train.fid.statistics.cached_real_statistics`).  ``--resume``
continues from the newest snapshot with the random states restored, as
for classifiers (:class:`train.common.extensions.RandomStates`).
"""
import os
import sys

import chainer
from chainer import training

from train.common import optim
from train.common import skeleton
from train.common.runfolder import DISCRIMINATOR
from train.common.runfolder import GENERATOR
from train.common.runfolder import recorded_settings
from train.common.runfolder import RunError
from train.common.titles import gan_title
from train.config.gan import build_models
from train.config.loading import norm_label
from train.data.batches import DeviceImages
from train.data.datasets import data_path
from train.data.datasets import load_dataset
from train.data.datasets import subset
from train.fid.features import make_features
from train.fid.statistics import cached_real_statistics
from train.gan.evaluation import FIDEvaluation
from train.gan.updater import GANUpdater

# run.json fields that a resumed run must share with the original one
RESUME_KEYS = ('config', 'iterations', 'fid', 'seed', 'train_subset',
               'data')
PRINT_KEYS = ['iteration', 'epoch', 'gen/loss', 'dis/loss', 'fid',
              'elapsed_time']


def fid_settings(cfg, fid_every=None, fid_weights=None, fid_proxy=None,
                 fid_stats=None):
    """The FID settings of a run: the configuration's, with overrides.

    Args:
        cfg (dict): Validated GAN configuration.
        fid_every (int): Iterations between evaluations.
        fid_weights (str): Use the Inception features with these weights.
        fid_proxy (str): Use the proxy features of this CIFAR CNN run.
        fid_stats (str): Precomputed real statistics (``train.fid stats``).

    Returns:
        dict: ``fid`` with absolute paths and ``stats``.

    Raises:
        RunError: Both or none of the features can be had.

    """
    fid = dict(cfg['fid'])
    if fid_weights and fid_proxy:
        raise RunError('give --fid-weights or --fid-proxy, not both')
    if fid_every:
        fid['every'] = fid_every
    if fid_weights:
        fid.update(features='inception', weights=fid_weights)
        fid.pop('proxy_run', None)
    if fid_proxy:
        fid.update(features='proxy', proxy_run=fid_proxy)
        fid.pop('weights', None)
    key = 'weights' if fid['features'] == 'inception' else 'proxy_run'
    if not fid.get(key):
        raise RunError(
            'the FID needs features: pass --fid-weights NPZ (Inception-V3 '
            'weights converted by python -m train.fid convert; the README '
            'says where to get them) or --fid-proxy RUN (the proxy FID of a '
            'CIFAR CNN run, not comparable with the paper)')
    fid[key] = os.path.abspath(os.path.expanduser(fid[key]))
    fid['stats'] = (os.path.abspath(os.path.expanduser(fid_stats))
                    if fid_stats else None)
    return fid


def settings(cfg, iterations=None, fid=None, seed=0, data=None,
             train_subset=None, config_path=None):
    """The settings of a GAN run, as ``run.json`` records them."""
    return recorded_settings(
        cfg, data, kind='gan', config_path=config_path,
        iterations=iterations or cfg['iterations'], fid=fid, seed=seed,
        train_subset=train_subset)


def every(n, final):
    """Trigger: every ``n`` iterations and at iteration ``final``."""
    def trigger(trainer):
        it = trainer.updater.iteration
        return it % n == 0 or it == final
    return trigger


def any_of(*triggers):
    """Trigger: when any of ``triggers`` fires."""
    return lambda trainer: any([t(trainer) for t in triggers])


class GANJob(skeleton.Job):

    """A GAN run for the trainer skeleton (arguments of :func:`run`)."""

    unit = 'iterations'
    resume_keys = RESUME_KEYS
    print_keys = PRINT_KEYS

    def __init__(self, cfg, iterations, fid, source, train_subset,
                 config_path, extra_extensions=()):
        self.cfg = cfg
        self.iterations = iterations
        self.fid = fid
        self.source = source
        self.train_subset = train_subset
        self.config_path = config_path
        self.extra_extensions = extra_extensions

    def build(self, out, device, seed, log):
        cfg, fid, iterations = self.cfg, self.fid, self.iterations
        gen, dis, mn_paths = build_models(cfg, self.config_path)
        dataset = load_dataset(cfg['dataset'], self.source)
        images, _ = subset(dataset['train_x'], dataset['train_y'],
                           self.train_subset, seed=0)
        if len(images) < cfg['batch_size']:
            raise RunError('the training set ({} images) is smaller than '
                           'one batch ({})'.format(len(images),
                                                   cfg['batch_size']))
        features = make_features(
            fid.get('weights'), fid.get('proxy_run'), dataset['mean'],
            dataset['std']).to_device(device)
        os.makedirs(out, exist_ok=True)
        real = cached_real_statistics(fid, features, images, device, log)

        gen.to_device(device)
        dis.to_device(device)
        opts = []
        for net in (gen, dis):
            opt, _ = optim.make_optimizer(cfg['optimizer'])
            opt.setup(net)
            optim.add_hooks(opt, cfg['optimizer'])
            opts.append(opt)
        updater = GANUpdater(DeviceImages(images, cfg['batch_size'], device),
                             *opts)
        trainer = training.Trainer(updater, (iterations, 'iteration'),
                                   out=out)
        at_fid = every(fid['every'], iterations)
        trainer.extend(FIDEvaluation(gen, features, real, fid, device, out,
                                     seed), trigger=at_fid)
        self.log_trigger = any_of(every(cfg['log_every'], iterations),
                                  at_fid)
        self.snapshot_trigger = every(cfg['snapshot_every'], iterations)
        self.plot_trigger = at_fid
        self.plot = {'filename': 'fid.png',
                     'curves': (('fid', features.label),),
                     'x_key': 'iteration', 'ylabel': features.label,
                     'scale': 1.0}
        self.final_iteration = iterations
        self.checked = gen
        self.gen, self.dis = gen, dis
        self._facts = dict(
            data_source=dataset['source'], n_train=len(images),
            mn_paths=mn_paths, features=features.name,
            fid_label=features.label, proxy=features.proxy)
        return trainer

    def facts(self):
        return self._facts

    def title(self, info):
        return gan_title(info)

    def describe(self, info):
        return ('{}: DCGAN on {} ({} images), device {}, generator '
                'normalization: {}; {} every {} iterations'.format(
                    self.cfg['name'], info['data_source'], info['n_train'],
                    info['device'], norm_label(info['mn_paths']),
                    info['fid_label'], self.fid['every']))

    def save(self, out):
        chainer.serializers.save_npz(os.path.join(out, GENERATOR), self.gen)
        chainer.serializers.save_npz(os.path.join(out, DISCRIMINATOR),
                                     self.dis)

    def done(self, trainer):
        return {'iterations_done': trainer.updater.iteration}


def run(cfg, out, device=None, iterations=None, seed=0, resume=False,
        data=None, train_subset=None, fid_every=None, fid_weights=None,
        fid_proxy=None, fid_stats=None, config_path=None, log=sys.stderr,
        extra_extensions=()):
    """Trains one GAN configuration.

    Args:
        cfg (dict): Validated GAN configuration.
        out (str): Output folder.
        device (str): Chainer device specifier (default: the GPU if any).
        iterations (int): Overrides ``cfg['iterations']``.
        seed (int): Seed of NumPy's, Python's and CuPy's generators.
        resume (bool): Continue from the newest snapshot in ``out``.
        data (str): Image folder or .zip (default ``$MIXNORM_DATA``).
        train_subset (int): Train on a fixed random subset of the images
            (the real FID statistics then come from that subset).
        fid_every, fid_weights, fid_proxy, fid_stats: See
            :func:`fid_settings`.
        config_path (str): Recorded in ``run.json``.
        log: Stream for progress messages.
        extra_extensions: ``(extension, trigger)`` pairs added to the
            trainer (tests).

    Returns:
        dict: The contents of ``run.json`` at the end.

    Raises:
        RunError, train.config.ConfigError, train.data.DataError,
        train.metrics.FIDError, train.device.DeviceError

    """
    fid = fid_settings(cfg, fid_every, fid_weights, fid_proxy, fid_stats)
    source = data_path(data)
    info = settings(cfg, iterations, fid, seed, source, train_subset,
                    config_path)
    job = GANJob(cfg, info['iterations'], fid, source, train_subset,
                 config_path, extra_extensions)
    return skeleton.train(job, out, info, resume, device, seed, log)
