"""The schema of a classifier configuration and its rules beyond types.

Every key is checked (:mod:`train.config.schema`); ``-`` marks optional
keys, with their defaults::

    name: str                      # run name, e.g. table2-cifar10-mn2
    dataset: cifar10 | cifar100
    model: str                     # a name in models.MODELS
    - model_args: {}               # keyword arguments of the model
    - norm:                        # where BN becomes mixture normalization
        - layers: []               # model layer names; [] means plain BN
        - n_components: 3          # K
        - em_iter: 2               # the paper's "EM iter." (Table 2);
                                   # n_iter: its old name, warns
        - activation: none | relu  # relu: Eq. 40 (the layer's ReLU fused)
        - affine: output | components  # components: Eq. 37 as printed
        - weight_scaling: true     # false drops Eq. 34's 1/sqrt(lambda_k)
        - eps, queue_length, decay, min_weight, fit_fraction, inference,
          check_finite             # other mixnorm.MixtureNormalization args
    epochs: int
    batch_size: int
    optimizer:
        name: rmsprop | rmsprop_tf | nesterov | adam
        lr: float
        - weight_decay: 0.0        # L2 rate, through an optimizer hook
        - alpha: 0.99              # rmsprop only
        - decay: 0.9               # rmsprop_tf only (TensorFlow 1 RMSprop)
        - eps: 1e-8                # rmsprop, adam; rmsprop_tf: 1.0
        - momentum: 0.9            # nesterov, rmsprop_tf
        - betas: [0.9, 0.999]      # adam only
                                   # rmsprop_tf's three defaults are filled
                                   # in; decay in [0, 1], momentum in [0, 1)
    - schedule:                    # learning-rate policy, default none
        name: none | exponential | step
        rate, every_epochs         # exponential: lr * rate ** (epoch // every)
        drops, factor              # step: times factor at each fraction
    - paper:                       # the paper's numbers for this row
        table | figure: int        # exactly one: where the row is printed
        row: str                   # e.g. MN-2
        - group: str               # sub-table heading (default: dataset)
        - acc_at: {25: float, 50: float, 75: float, 100: float}
        - max_acc: float           # max. test accuracy (%) (Table 6)
        - best_error: float        # best test error (%) (Sec. 4.4, Fig. 5)
        - steps:                   # "steps to reach" tables (3, 5, 6)
            table: int
            target: float          # accuracy (%) the steps are counted to
            target_row: str        # the row of the same group whose
                                   # maximum is the target
            value: float | null    # null where the paper prints "-"
    - record:                      # what the trainer saves for the paper's
                                   # figures (train/classifier/records.py);
                                   # changes nothing in training, nor in
                                   # --resume
        - models_at: [float]       # fractions of the iterations, in (0, 1],
                                   # at which to save the model (Fig. 1)
        - fits_at: [float]         # ... and the MN fits of fits_layers
        - fits_layers: [str]       # model layer names or BN addresses of
                                   # MN links, e.g. inc2/0/2/4 (Fig. 8)
        - active_components: false # log each MN link's number of active
                                   # components (Sec. 5.3, Fig. 9)
        - active_every: int        # iterations between those entries (and
                                   # one at each epoch end); default: epochs

``acc_at`` gives the maximum test accuracy after 25/50/75/100% of the
epochs (Tables 2 and 4; its 100% value is also the row's maximum in Tables
3 and 5).  ``max_acc`` and ``best_error`` hold the maximum where the paper
prints it without ``acc_at``; a row has at most one of the three.

:data:`NORM` and :data:`OPTIMIZER` (with :func:`check_optimizer`) serve
GAN configurations too (:mod:`train.config.gan`).
"""
from train.config.schema import ConfigError
from train.config.schema import Field
from train.config.schema import section
from train.data.datasets import DATASETS

ACC_FRACTIONS = (25, 50, 75, 100)  # percent of the epochs (Tables 2, 4)
NORM = {
    'layers': Field('str_list', default=[]),
    'n_components': Field('int', default=3, positive=True),
    'em_iter': Field('int', default=2, positive=True),
    'eps': Field('float', positive=True),
    'queue_length': Field('int', positive=True),
    'decay': Field('float', positive=True),
    'min_weight': Field('float'),
    'fit_fraction': Field('float', positive=True),
    'inference': Field('str'),
    'check_finite': Field('bool'),
    'activation': Field('str', choices=('none', 'relu')),
    'affine': Field('str', choices=('output', 'components')),
    'weight_scaling': Field('bool'),
}
OPTIMIZERS = ('rmsprop', 'rmsprop_tf', 'nesterov', 'adam')
OPTIMIZER = {
    'name': Field('str', required=True, choices=OPTIMIZERS),
    'lr': Field('float', required=True, positive=True),
    'weight_decay': Field('float', default=0.0),
    'alpha': Field('float', only_for=('rmsprop',), positive=True),
    'decay': Field('float', only_for=('rmsprop_tf',)),
    'eps': Field('float', only_for=('rmsprop', 'rmsprop_tf', 'adam'),
                 positive=True),
    'momentum': Field('float', only_for=('nesterov', 'rmsprop_tf')),
    'betas': Field('float_list', only_for=('adam',)),
}
# optimizer name -> defaults filled in by validation (recorded in run.json);
# rmsprop_tf: the TensorFlow Inception recipe (see train.common.optim)
OPTIMIZER_DEFAULTS = {
    'rmsprop_tf': {'decay': 0.9, 'momentum': 0.9, 'eps': 1.0},
}
SCHEDULES = ('none', 'exponential', 'step')
SCHEDULE = {
    'name': Field('str', required=True, choices=SCHEDULES),
    'rate': Field('float', only_for=('exponential',), positive=True),
    'every_epochs': Field('int', only_for=('exponential',), positive=True),
    'drops': Field('float_list', only_for=('step',)),
    'factor': Field('float', only_for=('step',), positive=True),
}
STEPS = {
    'table': Field('int', required=True),
    'target': Field('float', required=True),
    'target_row': Field('str', required=True),
    'value': Field('float_or_null', required=True),
}
PAPER = {
    'table': Field('int', positive=True),
    'figure': Field('int', positive=True),
    'row': Field('str', required=True),
    'group': Field('str'),
    'acc_at': Field('acc_at', keys=ACC_FRACTIONS),
    'max_acc': Field('float', positive=True),
    'best_error': Field('float', positive=True),
    'steps': section(STEPS),
}
RECORD = {
    'models_at': Field('float_list'),
    'fits_at': Field('float_list'),
    'fits_layers': Field('str_list'),
    'active_components': Field('bool'),
    'active_every': Field('int', positive=True),
}
SCHEMA = {
    'name': Field('str', required=True),
    'dataset': Field('str', required=True, choices=tuple(DATASETS)),
    'model': Field('str', required=True),
    'model_args': Field('dict', default={}),
    'norm': section(NORM, default={}),
    'epochs': Field('int', required=True, positive=True),
    'batch_size': Field('int', required=True, positive=True),
    'optimizer': section(OPTIMIZER, required=True),
    'schedule': section(SCHEDULE, default={'name': 'none'}, required_for={
        'exponential': ('rate', 'every_epochs'),
        'step': ('drops', 'factor')}),
    'paper': section(PAPER),
    'record': section(RECORD),
}


def check_optimizer(opt):
    """The ``optimizer`` section's rules beyond types; fills in the
    defaults of :data:`OPTIMIZER_DEFAULTS` (in place)."""
    if 'betas' in opt and len(opt['betas']) != 2:
        raise ConfigError('optimizer.betas: must be two numbers, got {!r}'
                          .format(opt['betas']))
    for key, value in OPTIMIZER_DEFAULTS.get(opt['name'], {}).items():
        opt.setdefault(key, value)
    if not 0 <= opt.get('decay', 0) <= 1:
        raise ConfigError('optimizer.decay: must lie in [0, 1], got {!r}'
                          .format(opt['decay']))
    if not 0 <= opt.get('momentum', 0) < 1:
        raise ConfigError('optimizer.momentum: must lie in [0, 1), got {!r}'
                          .format(opt['momentum']))


def check_schedule(sched):
    """The ``schedule`` section's rules beyond types."""
    for f in sched.get('drops', ()):
        if not 0 < f < 1:
            raise ConfigError('schedule.drops: fractions of the epochs must '
                              'lie in (0, 1), got {!r}'.format(f))


def check_record(record):
    """The ``record`` section's rules beyond types (see the schema)."""
    for key in ('models_at', 'fits_at'):
        for f in record.get(key, ()):
            if not 0 < f <= 1:
                raise ConfigError('record.{}: fractions of the iterations '
                                  'must lie in (0, 1], got {!r}'.format(
                                      key, f))
    if bool(record.get('fits_at')) != bool(record.get('fits_layers')):
        raise ConfigError('record: fits_at and fits_layers go together '
                          '(when to save the fits, and of which layers)')
    if 'active_every' in record and not record.get('active_components'):
        raise ConfigError('record.active_every: applies only with '
                          'record.active_components: true')


def check_paper(paper):
    """The ``paper`` section's rules beyond types."""
    if ('table' in paper) == ('figure' in paper):
        raise ConfigError('paper: give exactly one of table and figure')
    maxima = [k for k in ('acc_at', 'max_acc', 'best_error') if k in paper]
    if len(maxima) > 1:
        raise ConfigError('paper: {} state the same maximum; keep one'
                          .format(' and '.join(maxima)))


def check_rules(cfg):
    """Every rule beyond types of a checked classifier configuration."""
    check_optimizer(cfg['optimizer'])
    check_schedule(cfg['schedule'])
    check_record(cfg.get('record', {}))
    if cfg.get('paper') is not None:
        check_paper(cfg['paper'])
