"""Experiment configuration files: YAML mappings, every key checked.

* :mod:`train.config.schema`: the engine (:class:`Field`, :func:`section`,
  :func:`check_mapping`, :class:`ConfigError`, :func:`read_yaml`).
* :mod:`train.config.classifier`: the classifier schema (documented there)
  and its rules beyond types.
* :mod:`train.config.gan`: the GAN schema (documented there), its rules and
  :func:`build_models`.
* :mod:`train.config.loading`: :func:`load` and :func:`validate` (either
  schema, old keys renamed by :func:`upgrade`), :func:`build_model`,
  :func:`norm_label`.

:data:`DATASETS`, the values of a configuration's ``dataset``, is
:mod:`train.data.datasets`'s.
"""
from train.config.classifier import ACC_FRACTIONS  # NOQA
from train.config.classifier import OPTIMIZERS  # NOQA
from train.config.classifier import SCHEDULES  # NOQA
from train.data.datasets import DATASETS  # NOQA
from train.config.gan import build_models  # NOQA
from train.config.gan import is_gan  # NOQA
from train.config.loading import build_model  # NOQA
from train.config.loading import load  # NOQA
from train.config.loading import norm_label  # NOQA
from train.config.loading import RENAMED  # NOQA
from train.config.loading import upgrade  # NOQA
from train.config.loading import validate  # NOQA
from train.config.schema import check_mapping  # NOQA
from train.config.schema import ConfigError  # NOQA
from train.config.schema import Field  # NOQA
from train.config.schema import Loader  # NOQA
from train.config.schema import read_yaml  # NOQA
from train.config.schema import section  # NOQA
from train.config.schema import unknown_key  # NOQA
