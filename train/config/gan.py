"""The schema of a GAN configuration (Section 4.5), and its models.

A configuration whose ``model`` is in :data:`MODELS` (``dcgan``) is a GAN
configuration: :func:`train.config.load` checks it against :data:`SCHEMA`
(``-`` marks optional keys, with their defaults)::

    name: str
    dataset: cifar10 | cifar100     # the real images (labels unused)
    model: dcgan                    # models/dcgan.py: the generator
    - generator_args: {}            # n_hidden, bottom_width, ch, wscale
    - discriminator_args: {}        # bottom_width, ch, wscale
    - norm:                         # generator BNs that become MN, as for
        - layers: []                #   classifiers (train/config/
        - n_components, em_iter...  #   classifier.py); the layers are
                                    #   l0, dc1, dc2, dc3
    iterations: int                 # generator (= discriminator) updates
    batch_size: int
    optimizer: {...}                # as for classifiers; both networks
    - snapshot_every: 1000          # iterations between snapshots
    - log_every: 100                # iterations between log entries
    fid:
        every: int                  # iterations between FID evaluations
        - n_samples: 10000          # generated images per evaluation
        - batch_size: 100           # of the generator and feature network
        - features: inception       # inception | proxy (train/fid/)
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

``fid.n_samples`` below :data:`train.metrics.fid.MIN_SAMPLES` is an error
unless ``fid.allow_few_samples``: the FID of fewer images is biased.  The
trainer is :mod:`train.gan`.
"""
import models
from models import dcgan
from train.config.classifier import check_optimizer
from train.config.classifier import NORM
from train.config.classifier import OPTIMIZER
from train.config.schema import check_mapping
from train.config.schema import ConfigError
from train.config.schema import Field
from train.config.schema import section
from train.data.datasets import DATASETS
from train.metrics.fid import MIN_SAMPLES

MODELS = ('dcgan',)
FEATURES = ('inception', 'proxy')
FID = {
    'every': Field('int', required=True, positive=True),
    'n_samples': Field('int', default=10000, positive=True),
    'batch_size': Field('int', default=100, positive=True),
    'features': Field('str', default='inception', choices=FEATURES),
    'weights': Field('str'),
    'proxy_run': Field('str'),
    'allow_few_samples': Field('bool', default=False),
}
PAPER = {
    'figure': Field('int', required=True, positive=True),
    'row': Field('str', required=True),
    'best_fid': Field('float', positive=True),
    'best_at': Field('int', positive=True),
    'target_row': Field('str'),
    'steps_to_target': Field('float', positive=True),
}
SCHEMA = {
    'name': Field('str', required=True),
    'dataset': Field('str', required=True, choices=tuple(DATASETS)),
    'model': Field('str', required=True, choices=MODELS),
    'generator_args': Field('dict', default={}),
    'discriminator_args': Field('dict', default={}),
    'norm': section(NORM, default={}),
    'iterations': Field('int', required=True, positive=True),
    'batch_size': Field('int', required=True, positive=True),
    'optimizer': section(OPTIMIZER, required=True),
    'snapshot_every': Field('int', default=1000, positive=True),
    'log_every': Field('int', default=100, positive=True),
    'fid': section(FID, required=True),
    'paper': section(PAPER),
}


def is_gan(data):
    """Whether parsed YAML is a GAN configuration (its ``model``)."""
    return isinstance(data, dict) and data.get('model') in MODELS


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


def check(data, check_model=True):
    """Checks a GAN configuration (deprecated keys already renamed).

    Args:
        data (dict): The parsed YAML.
        check_model (bool): Also build the networks (:func:`build_models`).

    Returns:
        dict: A new mapping with the defaults filled in.

    Raises:
        ConfigError: The message names the offending key.

    """
    cfg = check_mapping(SCHEMA, data)
    check_optimizer(cfg['optimizer'])  # the rules shared with classifiers
    fid = cfg['fid']
    if fid['n_samples'] < MIN_SAMPLES and not fid['allow_few_samples']:
        raise ConfigError(
            'fid.n_samples: {} generated images give a biased FID (at least '
            '{}); set fid.allow_few_samples: true for smoke tests only'
            .format(fid['n_samples'], MIN_SAMPLES))
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
