"""Model registry: configuration name -> constructor.

A constructor is called as ``MODELS[name](n_classes, **model_args)`` and
returns a :class:`chainer.Chain` with a ``norm_paths(layers)`` method that
maps the configuration's layer names to the paths of their batch
normalization links (see :func:`mixnorm.replace_bn`).
"""

MODELS = {}


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


# Importing a model module registers it.
from models import cifar_cnn  # noqa: E402,F401

from models import densenet  # noqa: E402,F401
from models import inception_v3  # noqa: E402,F401
