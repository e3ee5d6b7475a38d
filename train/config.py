"""Experiment configuration files: loading and validation.

A configuration is a YAML mapping.  Every key is checked: an unknown key, a
value of the wrong type, a missing required key or a normalization layer
that the model does not have is a :class:`ConfigError` whose message names
the file and the dotted key.  The schema (``-`` marks optional keys, with
their defaults)::

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
                                   # figures (train/extensions.py); changes
                                   # nothing in training, nor in --resume
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

Plain YAML 1.1 reads ``1e-4`` as a string; this loader reads it as a float,
as YAML 1.2 does.

:func:`build_model` builds a configuration's model (through
:func:`models.build`); validation builds it once to check ``model``,
``model_args`` and ``norm``, and ``python -m train`` skips that check
because its run builds the model first thing anyway.
"""
import collections
import copy
import difflib
import re
import warnings

import yaml

import models

Dataset = collections.namedtuple('Dataset', ['title', 'n_classes'])
# the configuration's ``dataset`` -> its name in reports and messages, and
# its number of classes
DATASETS = {'cifar10': Dataset('CIFAR-10', 10),
            'cifar100': Dataset('CIFAR-100', 100)}
ACC_FRACTIONS = (25, 50, 75, 100)  # percent of the epochs (Tables 2, 4)
# (section, deprecated key, its new name): still read, with a warning
RENAMED = (('norm', 'n_iter', 'em_iter'),)


class ConfigError(ValueError):
    """A configuration file is invalid; the message names file and key."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot (1e-4)."""


_Loader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$'),
    list('-+0123456789'))


# ------------------------------------------------------------------ schema
class _Field(object):
    """One key of the schema.

    Args:
        kind (str): ``int``, ``float``, ``str``, ``bool``, ``dict`` (free
            mapping), ``str_list``, ``float_list`` or ``float_or_null``.
        required (bool): Whether the key must be present.
        default: Value used when an optional key is absent.
        choices (tuple): Allowed values, if restricted.
        only_for (tuple): Values of the section's ``name`` for which the
            key is meaningful (other names reject it).
        positive (bool): Whether a number must be > 0.

    """

    def __init__(self, kind, required=False, default=None, choices=None,
                 only_for=None, positive=False):
        self.kind = kind
        self.required = required
        self.default = default
        self.choices = choices
        self.only_for = only_for
        self.positive = positive


def _section(fields, required=False):
    return ('section', fields, required)


_NORM = {
    'layers': _Field('str_list', default=[]),
    'n_components': _Field('int', default=3, positive=True),
    'em_iter': _Field('int', default=2, positive=True),
    'eps': _Field('float', positive=True),
    'queue_length': _Field('int', positive=True),
    'decay': _Field('float', positive=True),
    'min_weight': _Field('float'),
    'fit_fraction': _Field('float', positive=True),
    'inference': _Field('str'),
    'check_finite': _Field('bool'),
    'activation': _Field('str', choices=('none', 'relu')),
    'affine': _Field('str', choices=('output', 'components')),
    'weight_scaling': _Field('bool'),
}
OPTIMIZERS = ('rmsprop', 'rmsprop_tf', 'nesterov', 'adam')
_OPTIMIZER = {
    'name': _Field('str', required=True, choices=OPTIMIZERS),
    'lr': _Field('float', required=True, positive=True),
    'weight_decay': _Field('float', default=0.0),
    'alpha': _Field('float', only_for=('rmsprop',), positive=True),
    'decay': _Field('float', only_for=('rmsprop_tf',)),
    'eps': _Field('float', only_for=('rmsprop', 'rmsprop_tf', 'adam'),
                  positive=True),
    'momentum': _Field('float', only_for=('nesterov', 'rmsprop_tf')),
    'betas': _Field('float_list', only_for=('adam',)),
}
# optimizer name -> defaults filled in by validation (recorded in run.json);
# rmsprop_tf: the TensorFlow Inception recipe (see train.optim.RMSpropTF)
_OPTIMIZER_DEFAULTS = {
    'rmsprop_tf': {'decay': 0.9, 'momentum': 0.9, 'eps': 1.0},
}
SCHEDULES = ('none', 'exponential', 'step')
_SCHEDULE = {
    'name': _Field('str', required=True, choices=SCHEDULES),
    'rate': _Field('float', only_for=('exponential',), positive=True),
    'every_epochs': _Field('int', only_for=('exponential',), positive=True),
    'drops': _Field('float_list', only_for=('step',)),
    'factor': _Field('float', only_for=('step',), positive=True),
}
_REQUIRED_FOR = {  # section name value -> keys it needs
    ('schedule', 'exponential'): ('rate', 'every_epochs'),
    ('schedule', 'step'): ('drops', 'factor'),
}
_STEPS = {
    'table': _Field('int', required=True),
    'target': _Field('float', required=True),
    'target_row': _Field('str', required=True),
    'value': _Field('float_or_null', required=True),
}
_PAPER = {
    'table': _Field('int', positive=True),
    'figure': _Field('int', positive=True),
    'row': _Field('str', required=True),
    'group': _Field('str'),
    'acc_at': _Field('acc_at'),
    'max_acc': _Field('float', positive=True),
    'best_error': _Field('float', positive=True),
    'steps': _section(_STEPS),
}
_RECORD = {
    'models_at': _Field('float_list'),
    'fits_at': _Field('float_list'),
    'fits_layers': _Field('str_list'),
    'active_components': _Field('bool'),
    'active_every': _Field('int', positive=True),
}
SCHEMA = {
    'name': _Field('str', required=True),
    'dataset': _Field('str', required=True, choices=tuple(DATASETS)),
    'model': _Field('str', required=True),
    'model_args': _Field('dict', default={}),
    'norm': _section(_NORM),
    'epochs': _Field('int', required=True, positive=True),
    'batch_size': _Field('int', required=True, positive=True),
    'optimizer': _section(_OPTIMIZER, required=True),
    'schedule': _section(_SCHEDULE),
    'paper': _section(_PAPER),
    'record': _section(_RECORD),
}
_SECTION_DEFAULTS = {'norm': {}, 'schedule': {'name': 'none'}}


def _type_name(value):
    return type(value).__name__


def _check_value(field, value, where):
    """Returns the value in canonical form or raises ConfigError."""
    kind = field.kind

    def fail(expected):
        raise ConfigError('{}: must be {}, got {} {!r}'.format(
            where, expected, _type_name(value), value))

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if kind == 'int':
        if not isinstance(value, int) or isinstance(value, bool):
            fail('an integer')
    elif kind == 'float':
        if not number(value):
            fail('a number')
        value = float(value)
    elif kind == 'float_or_null':
        if value is None:
            return None
        if not number(value):
            fail('a number or null')
        value = float(value)
    elif kind == 'str':
        if not isinstance(value, str):
            fail('a string')
    elif kind == 'bool':
        if not isinstance(value, bool):
            fail('true or false')
    elif kind == 'dict':
        if not isinstance(value, dict):
            fail('a mapping')
        value = copy.deepcopy(value)
    elif kind == 'str_list':
        if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value):
            fail('a list of strings')
        value = list(value)
    elif kind == 'float_list':
        if not isinstance(value, list) or not all(number(v) for v in value):
            fail('a list of numbers')
        value = [float(v) for v in value]
    elif kind == 'acc_at':
        if not isinstance(value, dict):
            fail('a mapping from epoch percentages to accuracies')
        out = {}
        for k, v in value.items():
            if k not in ACC_FRACTIONS:
                raise ConfigError('{}: unknown key {!r} (known: {})'.format(
                    where, k, ', '.join(map(str, ACC_FRACTIONS))))
            out[k] = _check_value(_Field('float'), v,
                                  '{}.{}'.format(where, k))
        return out
    else:  # pragma: no cover - schema typo
        raise AssertionError(kind)
    if field.choices is not None and value not in field.choices:
        raise ConfigError('{}: must be one of {}, got {!r}'.format(
            where, ', '.join(field.choices), value))
    if field.positive and value <= 0:
        raise ConfigError('{}: must be > 0, got {!r}'.format(where, value))
    return value


def _unknown_key(key, known, where):
    hint = difflib.get_close_matches(str(key), list(known), n=1)
    return ConfigError('{}: unknown key {!r}{} (known: {})'.format(
        where, key, '; did you mean {!r}?'.format(hint[0]) if hint else '',
        ', '.join(known)))


def _check_mapping(schema, data, prefix, section_name=None):
    """Validates ``data`` against ``schema``; returns it with defaults."""
    where = prefix.rstrip('.') or 'top level'
    if not isinstance(data, dict):
        raise ConfigError('{}: must be a mapping, got {} {!r}'.format(
            where, _type_name(data), data))
    for key in data:
        if key not in schema:
            raise _unknown_key(key, schema, where)
    name = data.get('name') if section_name is not None else None
    out = {}
    for key, spec in schema.items():
        dotted = prefix + str(key)
        if isinstance(spec, tuple):  # nested section
            _, fields, required = spec
            if key in data:
                out[key] = _check_mapping(fields, data[key], dotted + '.',
                                          section_name=key)
            elif required:
                raise ConfigError('{}: required key is missing'.format(dotted))
            elif key in _SECTION_DEFAULTS:
                out[key] = _check_mapping(fields, _SECTION_DEFAULTS[key],
                                          dotted + '.', section_name=key)
            continue
        if key not in data:
            if spec.required:
                raise ConfigError('{}: required key is missing'.format(dotted))
            if spec.default is not None and spec.only_for is None:
                out[key] = copy.deepcopy(spec.default)
            continue
        if spec.only_for is not None and name not in spec.only_for:
            raise ConfigError('{}: does not apply to {} {!r} (only to {})'
                              .format(dotted, section_name, name,
                                      ', '.join(spec.only_for)))
        out[key] = _check_value(spec, data[key], dotted)
    for needed in _REQUIRED_FOR.get((section_name, name), ()):
        if needed not in out:
            raise ConfigError('{}{}: required for {} {!r}'.format(
                prefix, needed, section_name, name))
    return out


def _check_record(record):
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


def _check_semantics(cfg):
    opt = cfg['optimizer']
    if 'betas' in opt and len(opt['betas']) != 2:
        raise ConfigError('optimizer.betas: must be two numbers, got {!r}'
                          .format(opt['betas']))
    for key, value in _OPTIMIZER_DEFAULTS.get(opt['name'], {}).items():
        opt.setdefault(key, value)
    if not 0 <= opt.get('decay', 0) <= 1:
        raise ConfigError('optimizer.decay: must lie in [0, 1], got {!r}'
                          .format(opt['decay']))
    if not 0 <= opt.get('momentum', 0) < 1:
        raise ConfigError('optimizer.momentum: must lie in [0, 1), got {!r}'
                          .format(opt['momentum']))
    sched = cfg['schedule']
    for f in sched.get('drops', ()):
        if not 0 < f < 1:
            raise ConfigError('schedule.drops: fractions of the epochs must '
                              'lie in (0, 1), got {!r}'.format(f))
    _check_record(cfg.get('record', {}))
    paper = cfg.get('paper')
    if paper is None:
        return
    if ('table' in paper) == ('figure' in paper):
        raise ConfigError('paper: give exactly one of table and figure')
    maxima = [k for k in ('acc_at', 'max_acc', 'best_error') if k in paper]
    if len(maxima) > 1:
        raise ConfigError('paper: {} state the same maximum; keep one'
                          .format(' and '.join(maxima)))


def upgrade(data, path=None, warn=True):
    """Renames the deprecated keys of :data:`RENAMED` in a configuration.

    Args:
        data: The parsed YAML (left unchanged), or a configuration that an
            older version recorded in ``run.json``.
        path (str): The file, named in the warning.
        warn (bool): Warn (``FutureWarning``, which Python prints by
            default) for each deprecated key found.

    Returns:
        A shallow copy of ``data`` with those keys renamed (``data`` itself
        when it is not a mapping: validation reports that).

    Raises:
        ConfigError: A section holds both a key and its deprecated name.

    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for section, old, new in RENAMED:
        block = data.get(section)
        if not isinstance(block, dict) or old not in block:
            continue
        if new in block:
            raise ConfigError('{0}.{1}: give only {0}.{2} ({1} is its '
                              'deprecated name)'.format(section, old, new))
        if warn:
            warnings.warn('{}{}.{}: deprecated key, read as {}.{}; rename '
                          'it'.format(path + ': ' if path else '', section,
                                      old, section, new), FutureWarning)
        data[section] = {new if k == old else k: v for k, v in block.items()}
    return data


def build_model(cfg, path=None, comm=None):
    """Builds a configuration's model with mixture normalization in place.

    Args:
        cfg (dict): Validated configuration.
        path (str): The configuration's file, named in errors.
        comm: a ChainerMN communicator for multi-process training, or None
            (see :func:`models.build`).

    Returns:
        tuple: ``(predictor, paths)`` from :func:`models.build`.

    Raises:
        ConfigError: A bad ``model``, ``model_args``, ``norm.layers`` or
            ``norm``; the message names the key (and the file, if given).

    """
    try:
        return models.build(cfg['model'],
                            DATASETS[cfg['dataset']].n_classes,
                            cfg['model_args'], cfg['norm'], comm=comm)
    except models.BuildError as e:
        raise ConfigError('{}{}: {}'.format(path + ': ' if path else '',
                                            e.key, e))


def norm_label(paths):
    """How logs and reports name a model's normalization.

    Args:
        paths (list of str or None): The links replaced by mixture
            normalization (from :func:`build_model`, or ``mn_paths`` in
            ``run.json``).

    Returns:
        str: ``'BN'``, or ``'MN at '`` and the paths.

    """
    return 'MN at ' + ', '.join(paths) if paths else 'BN'


def validate(data, check_model=True, path=None):
    """Validates a configuration mapping.

    Args:
        data (dict): The parsed YAML.
        check_model (bool): Also build the model (:func:`build_model`) to
            check ``model``, ``model_args`` and ``norm``.
        path (str): The file, named in warnings (:func:`upgrade`).

    Returns:
        dict: A new mapping with defaults filled in and numbers made float
        where the schema says so.

    Raises:
        ConfigError: The message names the offending key (no file name).

    A configuration whose ``model`` is a GAN's (``dcgan``) has its own
    schema, checked by :func:`train.gan.validate`.
    """
    from train import gan  # imports this module
    if gan.is_gan(data):
        return gan.validate(data, check_model=check_model, path=path)
    cfg = _check_mapping(SCHEMA, upgrade(data, path), '')
    _check_semantics(cfg)
    if check_model:
        build_model(cfg)
    return cfg


def read_yaml(path):
    """Reads a YAML file as this module's loader does, without validation.

    Args:
        path (str): The file (a configuration, or a study of
            :mod:`train.study`).

    Returns:
        The parsed YAML (``1e-4`` read as a float).

    Raises:
        ConfigError: Unreadable file or bad YAML; the message starts with
            the file name.

    """
    try:
        with open(path) as f:
            return yaml.load(f, Loader=_Loader)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError('{}: {}'.format(path, e))


def load(path, check_model=True):
    """Reads and validates a YAML configuration file.

    Args:
        path (str): The file.
        check_model (bool): See :func:`validate`.

    Returns:
        dict: The validated configuration (see :func:`validate`).

    Raises:
        ConfigError: Unreadable file, bad YAML or invalid content; the
            message starts with the file name.

    """
    data = read_yaml(path)
    try:
        return validate(data, check_model=check_model, path=path)
    except ConfigError as e:
        raise ConfigError('{}: {}'.format(path, e))
