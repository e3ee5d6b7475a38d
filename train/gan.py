"""DCGAN training with mixture normalization in the generator (Sec. 4.5).

A configuration whose ``model`` is in :data:`MODELS` (``dcgan``) is a GAN
configuration: :func:`train.config.load` validates it against
:data:`SCHEMA` here, and ``python -m train --config FILE`` trains it with
:func:`run`.  The schema (``-`` marks optional keys, with their defaults)::

    name: str
    dataset: cifar10 | cifar100     # the real images (labels unused)
    model: dcgan                    # models/dcgan.py: the generator
    - generator_args: {}            # n_hidden, bottom_width, ch, wscale
    - discriminator_args: {}        # bottom_width, ch, wscale
    - norm:                         # generator BNs that become MN, as for
        - layers: []                #   classifiers (train/config.py); the
        - n_components, em_iter...  #   layers are l0, dc1, dc2, dc3
    iterations: int                 # generator (= discriminator) updates
    batch_size: int
    optimizer: {...}                # as for classifiers; both networks
    - snapshot_every: 1000          # iterations between snapshots
    - log_every: 100                # iterations between log entries
    fid:
        every: int                  # iterations between FID evaluations
        - n_samples: 10000          # generated images per evaluation
        - batch_size: 100           # of the generator and feature network
        - features: inception       # inception | proxy (train/fid.py)
        - weights: null             # converted Inception weights (.npz);
                                    #   --fid-weights PATH
        - proxy_run: null           # CIFAR CNN run folder; --fid-proxy RUN
        - allow_few_samples: false  # accept < 2,048 images (smoke tests)
    - paper:                        # the paper's numbers (Figure 6)
        figure: int
        row: str                    # DCGAN-BN | DCGAN-MN
        - best_fid: float           # lowest FID
        - best_at: int              # update of the lowest FID, if printed
        - target_row: str           # the row whose best FID is the target
        - steps_to_target: float    # updates to reach that FID

The training step follows the ``dcgan`` updater of
pfnet-research/chainer-gan-lib (``dcgan/updater.py``), which the paper's
"37.7 reported in [46]" points to: one discriminator and one generator
update per iteration on the same fakes, the non-saturating loss
(``softplus(-D(G(z)))`` for the generator; ``softplus(-D(x)) +
softplus(D(G(z)))`` for the discriminator), z from Uniform[-1, 1], real
images scaled to [-1, 1].  The step does not wait for the device: the
training images live on the device and batches are gathered there from a
per-epoch permutation (one transfer per epoch), z is drawn on the device,
and the losses are reported as device arrays that the log averages only
at its trigger.

The output folder holds ``run.json``, ``log`` (one entry every
``log_every`` iterations and at every FID evaluation: ``gen/loss``,
``dis/loss``, ``fid``, ``fid_time``), ``fid.png``,
``samples/iter_<N>.png`` (an 8x8 grid from fixed z at each evaluation),
the newest snapshot and, at the end, ``generator.npz`` and
``discriminator.npz``.  The real images' FID statistics are computed once
for a set of images and features and kept in ``$MIXNORM_CACHE`` (default
``~/.cache/mixnorm``), where the BN and MN runs share them.
``--resume`` continues from the newest snapshot with the random states
restored, as for classifiers (:class:`train.runner.RandomStates`).
"""
import hashlib
import json
import os
import random
import sys
import time

import numpy

import chainer
import chainer.functions as F
from chainer import training
from chainer.training import extensions

import models
from models import dcgan
from train import config as config_module
from train import data as data_module
from train import device as device_module
from train import fid as fid_module
from train import imagefolder
from train import machine
from train import optim
from train import report
from train import runner
from train import runplot
from train.config import ConfigError, _Field, _section

MODELS = ('dcgan',)
FEATURES = ('inception', 'proxy')
_FID = {
    'every': _Field('int', required=True, positive=True),
    'n_samples': _Field('int', default=10000, positive=True),
    'batch_size': _Field('int', default=100, positive=True),
    'features': _Field('str', default='inception', choices=FEATURES),
    'weights': _Field('str'),
    'proxy_run': _Field('str'),
    'allow_few_samples': _Field('bool', default=False),
}
_PAPER = {
    'figure': _Field('int', required=True, positive=True),
    'row': _Field('str', required=True),
    'best_fid': _Field('float', positive=True),
    'best_at': _Field('int', positive=True),
    'target_row': _Field('str'),
    'steps_to_target': _Field('float', positive=True),
}
SCHEMA = {
    'name': _Field('str', required=True),
    'dataset': _Field('str', required=True,
                      choices=tuple(config_module.DATASETS)),
    'model': _Field('str', required=True, choices=MODELS),
    'generator_args': _Field('dict', default={}),
    'discriminator_args': _Field('dict', default={}),
    'norm': _section(config_module._NORM),
    'iterations': _Field('int', required=True, positive=True),
    'batch_size': _Field('int', required=True, positive=True),
    'optimizer': _section(config_module._OPTIMIZER, required=True),
    'snapshot_every': _Field('int', default=1000, positive=True),
    'log_every': _Field('int', default=100, positive=True),
    'fid': _section(_FID, required=True),
    'paper': _section(_PAPER),
}
# run.json fields that a resumed run must share with the original one
_RESUME_KEYS = ('config', 'iterations', 'fid', 'seed', 'train_subset',
                'data')
SAMPLES = 'samples'  # folder of the sample grids
GRID = 8  # the grids are GRID x GRID images


def is_gan(data):
    """Whether parsed YAML is a GAN configuration (its ``model``)."""
    return isinstance(data, dict) and data.get('model') in MODELS


# ------------------------------------------------------------ configuration
def build_models(cfg, path=None):
    """The generator (with MN where ``norm`` says) and the discriminator.

    Returns:
        tuple: ``(generator, discriminator, mn_paths)``.

    Raises:
        ConfigError: Names the key at fault (and the file, if given).

    """
    where = path + ': ' if path else ''
    try:
        gen, paths = models.build(cfg['model'], None, cfg['generator_args'],
                                  cfg['norm'])
    except models.BuildError as e:
        key = 'generator_args' if e.key == 'model_args' else e.key
        raise ConfigError('{}{}: {}'.format(where, key, e))
    try:
        dis = dcgan.Discriminator(**cfg['discriminator_args'])
    except (TypeError, ValueError) as e:
        raise ConfigError('{}discriminator_args: {}'.format(where, e))
    return gen, dis, paths


def validate(data, check_model=True, path=None):
    """Validates a GAN configuration (see the module's schema).

    Called by :func:`train.config.validate` for configurations whose
    ``model`` is in :data:`MODELS`; arguments and result as there.
    """
    cfg = config_module._check_mapping(
        SCHEMA, config_module.upgrade(data, path), '')
    # the optimizer's rules beyond types, shared with classifiers
    config_module._check_semantics(
        {'optimizer': cfg['optimizer'], 'schedule': {}, 'paper': None})
    fid = cfg['fid']
    if fid['n_samples'] < fid_module.MIN_SAMPLES and \
            not fid['allow_few_samples']:
        raise ConfigError(
            'fid.n_samples: {} generated images give a biased FID (at least '
            '{}); set fid.allow_few_samples: true for smoke tests only'
            .format(fid['n_samples'], fid_module.MIN_SAMPLES))
    other = {'inception': 'proxy_run', 'proxy': 'weights'}[fid['features']]
    if fid.get(other) is not None:
        raise ConfigError('fid.{}: does not apply to fid.features {!r}'
                          .format(other, fid['features']))
    paper = cfg.get('paper')
    if paper and ('target_row' in paper) != ('steps_to_target' in paper):
        raise ConfigError('paper: target_row and steps_to_target go '
                          'together')
    if check_model:
        build_models(cfg)
    return cfg


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
        runner.RunError: Both or none of the features can be had.

    """
    fid = dict(cfg['fid'])
    if fid_weights and fid_proxy:
        raise runner.RunError('give --fid-weights or --fid-proxy, not both')
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
        raise runner.RunError(
            'the FID needs features: pass --fid-weights NPZ (Inception-V3 '
            'weights converted by python -m train.fid_convert; the README '
            'says where to get them) or --fid-proxy RUN (the proxy FID of a '
            'CIFAR CNN run, not comparable with the paper)')
    fid[key] = os.path.abspath(os.path.expanduser(fid[key]))
    fid['stats'] = (os.path.abspath(os.path.expanduser(fid_stats))
                    if fid_stats else None)
    return fid


def reduced(info):
    """Whether a run is short of the paper's protocol: trained on a subset,
    for other than the configured iterations, with other FID evaluations,
    or from a configuration without the paper's numbers."""
    cfg = info['config']
    fid = info['fid']
    return bool(info.get('train_subset') or not cfg.get('paper') or
                info['iterations'] != cfg['iterations'] or
                fid['every'] != cfg['fid']['every'] or
                fid['n_samples'] != cfg['fid']['n_samples'])


def plot_title(info, n_train, source, device):
    """The title of a run's ``fid.png``: the configuration, iterations,
    images and data, device and seed, and "reduced: NOT a reproduction"
    when :func:`reduced`."""
    cfg = info['config']
    text = '{}: {:,} iterations{}, {:,} training images, {}; device {}; ' \
        'seed {}'.format(
            cfg['name'], info['iterations'],
            '' if info['iterations'] == cfg['iterations'] else
            ' (of {:,})'.format(cfg['iterations']), n_train,
            os.path.basename(os.path.normpath(source)), device, info['seed'])
    return report.reduced_title(text, reduced(info))


# --------------------------------------------------------------- training
class DeviceImages(chainer.dataset.Iterator):

    """Shuffled batches of images that stay on the device.

    The uint8 images are sent to the device once.  Each epoch draws a
    permutation from NumPy's global generator and sends it once; a batch is
    gathered on the device and scaled to float32 in [-1, 1].  A batch that
    crosses an epoch's end takes the rest of the old order and the start of
    the new one (as Chainer's SerialIterator).

    Args:
        images (numpy.ndarray): uint8 ``(N, C, H, W)``.
        batch_size (int): Images per batch (at most N).
        device: Chainer device.

    """

    def __init__(self, images, batch_size, device):
        if len(images) < batch_size:
            raise ValueError('{} images are fewer than one batch ({})'
                             .format(len(images), batch_size))
        self.device = device
        self.batch_size = batch_size
        self._n = len(images)
        self._images = device.send(numpy.ascontiguousarray(images))
        self.epoch = 0
        self.current_position = 0
        self.is_new_epoch = False
        self._order = None  # host permutation of the current epoch
        self._order_device = None

    @property
    def epoch_detail(self):
        return self.epoch + self.current_position / float(self._n)

    def _indices(self):
        if self._order is None:
            self._order = numpy.random.permutation(self._n)
        if self._order_device is None:
            self._order_device = self.device.send(self._order)
        i, b = self.current_position, self.batch_size
        if i + b < self._n:
            self.current_position = i + b
            self.is_new_epoch = False
            return self._order_device[i:i + b]
        rest = self._order[i:]
        self._order = numpy.random.permutation(self._n)
        self._order_device = None
        take = b - len(rest)
        self.current_position = take
        self.epoch += 1
        self.is_new_epoch = True
        return self.device.send(numpy.concatenate([rest,
                                                   self._order[:take]]))

    def __next__(self):
        x = self._images[self._indices()]
        return x.astype(numpy.float32) * (1 / 127.5) - 1

    next = __next__

    def serialize(self, serializer):
        self.current_position = serializer('current_position',
                                           self.current_position)
        self.epoch = serializer('epoch', self.epoch)
        self.is_new_epoch = serializer('is_new_epoch', self.is_new_epoch)
        if isinstance(serializer, chainer.serializer.Serializer):
            serializer('order', numpy.asarray(
                self._order if self._order is not None else [], numpy.int64))
            return
        order = serializer('order', None)
        self._order = numpy.asarray(order) if len(order) else None
        self._order_device = None


class GANUpdater(training.StandardUpdater):

    """One discriminator and one generator update per iteration.

    Args:
        iterator: Yields batches of real images on the device
            (:class:`DeviceImages`).
        gen_optimizer, dis_optimizer: Set-up optimizers of the generator
            and the discriminator.

    """

    def __init__(self, iterator, gen_optimizer, dis_optimizer):
        super(GANUpdater, self).__init__(
            iterator, {'gen': gen_optimizer, 'dis': dis_optimizer})

    def update_core(self):
        opt_gen = self.get_optimizer('gen')
        opt_dis = self.get_optimizer('dis')
        gen, dis = opt_gen.target, opt_dis.target
        x_real = self.get_iterator('main').next()
        n = len(x_real)
        x_fake = gen(gen.make_hidden(n, gen.xp))
        y_real, y_fake = dis(x_real), dis(x_fake)
        loss_gen = F.sum(F.softplus(-y_fake)) / n  # non-saturating
        loss_dis = (F.sum(F.softplus(-y_real)) +
                    F.sum(F.softplus(y_fake))) / n
        gen.cleargrads()
        loss_gen.backward()
        opt_gen.update()
        x_fake.unchain_backward()  # the discriminator's loss stops at x_fake
        dis.cleargrads()
        loss_dis.backward()
        opt_dis.update()
        chainer.report({'gen/loss': loss_gen.array,
                        'dis/loss': loss_dis.array})


def _every(n, final):
    """Trigger: every ``n`` iterations and at iteration ``final``."""
    def trigger(trainer):
        it = trainer.updater.iteration
        return it % n == 0 or it == final
    return trigger


def _any(*triggers):
    return lambda trainer: any([t(trainer) for t in triggers])


def tile(images, rows=GRID):
    """uint8 ``(rows * H, cols * W, C)`` grid of ``(N, C, H, W)`` images in
    [-1, 1], row by row."""
    x = numpy.clip(numpy.rint((numpy.asarray(images) + 1) * 127.5), 0, 255)
    n, c, h, w = x.shape
    cols = -(-n // rows)
    x = numpy.concatenate([x, numpy.zeros((rows * cols - n, c, h, w))])
    x = x.reshape(rows, cols, c, h, w).transpose(0, 3, 1, 4, 2)
    return x.reshape(rows * h, cols * w, c).astype(numpy.uint8)


def fid_curve(out):
    """``(iterations, FIDs)`` of the evaluations in a run folder's log."""
    path = os.path.join(out, 'log')
    if not os.path.exists(path):
        return [], []
    with open(path) as f:
        entries = [e for e in json.load(f) if 'fid' in e]
    return [e['iteration'] for e in entries], [e['fid'] for e in entries]


def best_fid(out):
    """``(iteration, FID)`` of a run's lowest evaluated FID, or None."""
    its, fids = fid_curve(out)
    if not fids:
        return None
    i = min(range(len(fids)), key=fids.__getitem__)
    return its[i], fids[i]


def sample_path(out, iteration):
    """The sample grid of ``out`` at ``iteration``."""
    return os.path.join(out, SAMPLES, 'iter_{:07d}.png'.format(iteration))


class FIDEvaluation(training.Extension):

    """Reports the FID of the generator (test mode) and saves samples.

    Each evaluation generates ``n_samples`` images from z drawn by its own
    fixed-seed generator (the same z each time, and the training streams
    untouched), compares their features' statistics with the real ones,
    reports ``fid`` and ``fid_time`` (seconds), and writes an 8x8 grid from
    64 fixed z to ``samples/iter_<N>.png``.

    Args:
        generator: The generator.
        features (train.fid.Features): On the generator's device.
        real (tuple): ``(mu, sigma)`` of the real images.
        fid (dict): The run's FID settings (:func:`fid_settings`).
        device: The generator's device.
        out (str): Run folder.
        seed (int): The run's seed.

    """

    priority = training.PRIORITY_WRITER

    def __init__(self, generator, features, real, fid, device, out, seed):
        self.generator = generator
        self.features = features
        self.real = real
        self.fid = fid
        self.device = device
        self.out = out
        self.seed = seed

    def _generate(self, z):
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            return self.generator(self.device.send(z)).array

    def _z(self, stream, n):
        rng = numpy.random.RandomState([self.seed, stream])
        return rng.uniform(-1, 1, (n, self.generator.n_hidden)).astype(
            numpy.float32)

    def evaluate(self):
        """The FID of the generator as it is now."""
        n, batch = self.fid['n_samples'], self.fid['batch_size']
        z = self._z(1, n)
        feats = fid_module.activations(
            self.features, (self._generate(z[i:i + batch])
                            for i in range(0, n, batch)))
        mu, sigma = fid_module.statistics(
            feats, allow_few=self.fid['allow_few_samples'])
        return fid_module.frechet_distance(mu, sigma, *self.real)

    def samples(self):
        """uint8 grid of GRID x GRID images from fixed z."""
        x = self._generate(self._z(2, GRID * GRID))
        return tile(chainer.backend.CpuDevice().send(x))

    def __call__(self, trainer):
        from PIL import Image

        start = time.time()
        value = self.evaluate()
        path = sample_path(self.out, trainer.updater.iteration)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(self.samples()).save(path)
        chainer.report({'fid': value, 'fid_time': time.time() - start})


def _real_statistics(fid, features, images, device, log):
    """``(mu, sigma)`` of the training images: from ``--fid-stats``, else
    from the statistics cache that runs share (``$MIXNORM_CACHE``, keyed by
    the features' name and the images' bytes), else computed and cached."""
    if fid['stats']:
        return fid_module.load_statistics(fid['stats'], features)[:2]
    key = hashlib.sha256(features.name.encode('utf-8') +
                         numpy.ascontiguousarray(images).tobytes())
    cached = os.path.join(imagefolder.cache_dir(),
                          'fid-{}.npz'.format(key.hexdigest()[:20]))
    if os.path.exists(cached):
        return fid_module.load_statistics(cached, features)[:2]
    start = time.time()
    mu, sigma = fid_module.real_statistics(
        features, images, device, fid['batch_size'],
        allow_few=fid['allow_few_samples'])
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    fid_module.save_statistics(cached, mu, sigma, len(images), features)
    print('FID statistics of {} training images: {:.0f} s (cached in {})'
          .format(len(images), time.time() - start, cached), file=log)
    return mu, sigma


def settings(cfg, iterations=None, fid=None, seed=0, data=None,
             train_subset=None, config_path=None):
    """The settings of a GAN run, as ``run.json`` records them."""
    return runner.recorded_settings(
        cfg, data, kind='gan', config_path=config_path,
        iterations=iterations or cfg['iterations'], fid=fid, seed=seed,
        train_subset=train_subset)


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
        runner.RunError, ConfigError, train.imagefolder.DataError,
        train.fid.FIDError, train.device.DeviceError

    """
    fid = fid_settings(cfg, fid_every, fid_weights, fid_proxy, fid_stats)
    source = data_module.data_path(data)
    info = settings(cfg, iterations, fid, seed, source, train_subset,
                    config_path)
    iterations = info['iterations']
    finished, snapshot = runner.open_out(out, info, resume, _RESUME_KEYS)
    if finished is not None:
        print('{}: already finished ({} iterations)'.format(out, iterations),
              file=log)
        return finished

    device = device_module.get(device)
    device.use()
    use_cupy = device.xp is not numpy
    numpy.random.seed(seed)
    random.seed(seed)
    if use_cupy:
        runner.seed_gpu(seed)
    gen, dis, mn_paths = build_models(cfg, config_path)
    dataset = data_module.load_dataset(cfg['dataset'], source)
    images, _ = data_module.subset(dataset['train_x'], dataset['train_y'],
                                   train_subset, seed=0)
    if len(images) < cfg['batch_size']:
        raise runner.RunError('the training set ({} images) is smaller than '
                              'one batch ({})'.format(len(images),
                                                      cfg['batch_size']))
    features = fid_module.make_features(
        fid.get('weights'), fid.get('proxy_run'), dataset['mean'],
        dataset['std']).to_device(device)
    os.makedirs(out, exist_ok=True)
    real = _real_statistics(fid, features, images, device, log)

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
    trainer = training.Trainer(updater, (iterations, 'iteration'), out=out)

    at_fid = _every(fid['every'], iterations)
    at_log = _any(_every(cfg['log_every'], iterations), at_fid)
    at_snapshot = _every(cfg['snapshot_every'], iterations)
    trainer.extend(runner.CheckFinite(gen), trigger=at_snapshot)
    trainer.extend(FIDEvaluation(gen, features, real, fid, device, out,
                                 seed), trigger=at_fid)
    trainer.extend(extensions.LogReport(trigger=at_log))
    trainer.extend(runner.RandomStates(use_cupy, seed), trigger=at_snapshot)
    trainer.extend(extensions.snapshot(filename=runner.SNAPSHOT,
                                       n_retains=1), trigger=at_snapshot)
    if runplot.available():
        trainer.extend(runplot.RunPlot(
            plot_title(info, len(images), dataset['source'], device),
            'fid.png', curves=(('fid', features.label),), x_key='iteration',
            ylabel=features.label, scale=1.0), trigger=at_fid)
    runner.extend_printing(
        trainer, ['iteration', 'epoch', 'gen/loss', 'dis/loss', 'fid',
                  'elapsed_time'], log, cfg['name'], iterations,
        trigger=at_log)
    for extension, trigger in extra_extensions:
        trainer.extend(extension, trigger=trigger)

    info.update(data_source=dataset['source'], n_train=len(images),
                device=str(device), machine=machine.device_name(device),
                versions=machine.versions('numpy', 'chainer', 'cupy'),
                date=time.strftime('%Y-%m-%d'), mn_paths=mn_paths,
                features=features.name, fid_label=features.label,
                proxy=features.proxy, finished=False)
    if snapshot is not None:
        chainer.serializers.load_npz(snapshot, trainer)
        print('resuming {} from {} (iteration {})'.format(
            out, os.path.basename(snapshot), updater.iteration), file=log)
    runner._write_json(os.path.join(out, 'run.json'), info)
    print('{}: DCGAN on {} ({} images), device {}, generator '
          'normalization: {}; {} every {} iterations'.format(
              cfg['name'], dataset['source'], len(images), device,
              config_module.norm_label(mn_paths), features.label,
              fid['every']), file=log)

    trainer.run()

    chainer.serializers.save_npz(os.path.join(out, 'generator.npz'), gen)
    chainer.serializers.save_npz(os.path.join(out, 'discriminator.npz'), dis)
    info.update(finished=True, wall_time=trainer.elapsed_time,
                iterations_done=updater.iteration)
    runner._write_json(os.path.join(out, 'run.json'), info)
    return info
