"""Model registry and the one model builder.

A constructor is called as ``MODELS[name](n_classes, **model_args)`` and
returns a :class:`chainer.Chain` with a class attribute ``layer_names``
(the layer names its configurations use) and a ``norm_paths(layers)``
method that maps such names to the paths of their batch normalization
links (see :func:`mixnorm.replace_bn`).  :func:`build` puts the two
together with mixture normalization; the trainer, its configuration check,
``train.evaluate`` and ``benchmarks/throughput.py`` build their models
through it.

Importing this package imports :mod:`mixnorm` first, which makes Chainer
importable on current stacks; the model modules need nothing more.
"""
import mixnorm

MODELS = {}


class BuildError(ValueError):

    """:func:`build` cannot build the model as asked.

    Attributes:
        key (str): The argument at fault, named as in a configuration:
            ``'model'``, ``'model_args'``, ``'norm.layers'`` or ``'norm'``.

    """

    def __init__(self, key, message):
        super(BuildError, self).__init__(message)
        self.key = key


def register(name):
    """Class decorator that registers a model constructor under ``name``.

    Args:
        name (str): The ``model`` value that configuration files use.

    """
    def decorator(constructor):
        if name in MODELS:
            raise ValueError('model {!r} is registered twice'.format(name))
        MODELS[name] = constructor
        return constructor
    return decorator


def get_model(name):
    """Returns the constructor registered as ``name``.

    Raises:
        KeyError: No model has that name; the message lists the known ones.

    """
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError('unknown model {!r} (known: {})'.format(
            name, ', '.join(sorted(MODELS))))


def build(name, n_classes, model_args=None, norm=None, comm=None):
    """Builds a registered model with mixture normalization in place.

    Args:
        name (str): A name in :data:`MODELS`.
        n_classes (int): Number of output classes.
        model_args (dict): Keyword arguments of the constructor.
        norm (dict): Where BN becomes mixture normalization: ``layers``
            (names for the model's ``norm_paths``; absent or empty: plain
            BN everywhere) and any other keys as keyword arguments of
            :class:`mixnorm.MixtureNormalization` (e.g. ``n_components``,
            ``em_iter``).
        comm: a ChainerMN communicator, or None: with one the MN layers are
            :class:`mixnorm.MultiNodeMixtureNormalization`.

    Returns:
        tuple: ``(predictor, paths)``: the model and the paths of the
        normalization links replaced by mixture normalization (``[]`` for
        plain BN).

    Raises:
        BuildError: Its ``key`` names the argument at fault.

    """
    try:
        constructor = get_model(name)
    except KeyError as e:
        raise BuildError('model', e.args[0])
    try:
        model = constructor(n_classes, **(model_args or {}))
    except (TypeError, ValueError) as e:
        raise BuildError('model_args', str(e))
    norm = dict(norm or {})
    layers = norm.pop('layers', None)
    if not layers:
        return model, []
    try:
        paths = model.norm_paths(layers)
    except ValueError as e:
        raise BuildError('norm.layers', str(e))
    try:
        # Section 3.2: MN replaces BN in the named layers only.
        mixnorm.replace_bn(model, paths, comm=comm, **norm)
    except (TypeError, ValueError) as e:
        raise BuildError('norm', str(e))
    return model, paths


# Importing a model module registers it.
from models import cifar_cnn  # noqa: E402,F401

from models import dcgan  # noqa: E402,F401
from models import densenet  # noqa: E402,F401
from models import inception_v3  # noqa: E402,F401
