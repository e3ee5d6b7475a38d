"""Study files: many runs (configuration, seed, overrides, epochs) of one
comparison, checked before anything trains.

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
file, the variant and its runs, and the key.  Runs start in rounds
(:attr:`Study.runs`): every variant's first seed, in the file's order, then
every variant's second seed, and so on, so that a study cut short still
compares the variants.
"""
import collections
import copy
import json
import re

from train.config.loading import validate
from train.config.schema import ConfigError
from train.config.schema import read_yaml
from train.config.schema import unknown_key

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


def _fail(path, where, message):
    raise StudyError('{}: {}: {}'.format(path, where, message))


def _check_keys(path, data, known, where):
    if not isinstance(data, dict):
        _fail(path, where, 'must be a mapping, got {!r}'.format(data))
    for key in data:
        if key not in known:
            raise StudyError('{}: {}'.format(path, unknown_key(key, known,
                                                             where)))


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
                raise ConfigError(
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
        raw = read_yaml(config_path)
        data = apply_overrides(raw, overrides) if isinstance(raw, dict) \
            else raw
        cfg = validate(data, check_model=check_model, path=config_path)
    except ConfigError as e:
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
        data = read_yaml(path)
    except ConfigError as e:
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


def setting_text(variant):
    """A variant's overrides and note, as the report and the plan show
    them."""
    parts = ['{}={}'.format(k, json.dumps(v)) for k, v in
             variant.overrides.items()]
    text = ', '.join(parts) or 'as configured'
    if variant.note:
        text += ' ({})'.format(variant.note)
    return text
