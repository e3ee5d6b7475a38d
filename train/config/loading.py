"""Loading a configuration file: read, rename old keys, check, build.

:func:`load` reads a YAML file (:func:`train.config.schema.read_yaml`),
renames deprecated keys (:func:`upgrade`, with a warning) and checks it
(:func:`validate`) against the classifier schema
(:mod:`train.config.classifier`) or, when its ``model`` is a GAN's, the GAN
schema (:mod:`train.config.gan`).  An unknown key (with a "did you mean"
hint), a value of the wrong type, a missing required key or a
normalization layer that the model does not have is a :class:`ConfigError`
whose message names the file and the dotted key.

:func:`build_model` builds a configuration's model (through
:func:`models.build`); validation builds it once to check ``model``,
``model_args`` and ``norm``, and ``python -m train`` skips that check
because its run builds the model first thing anyway.
"""
import warnings

import models
from train.config import classifier
from train.config import gan
from train.config.schema import check_mapping
from train.config.schema import ConfigError
from train.config.schema import read_yaml
from train.data.datasets import DATASETS

# (section, deprecated key, its new name): still read, with a warning
RENAMED = (('norm', 'n_iter', 'em_iter'),)


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
        check_model (bool): Also build the model (:func:`build_model`, or
            :func:`train.config.gan.build_models`) to check ``model``,
            ``model_args`` and ``norm``.
        path (str): The file, named in warnings (:func:`upgrade`).

    Returns:
        dict: A new mapping with defaults filled in and numbers made float
        where the schema says so.

    Raises:
        ConfigError: The message names the offending key (no file name).

    """
    data = upgrade(data, path)
    if gan.is_gan(data):
        return gan.check(data, check_model=check_model)
    cfg = check_mapping(classifier.SCHEMA, data)
    classifier.check_rules(cfg)
    if check_model:
        build_model(cfg)
    return cfg


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
