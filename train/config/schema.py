"""The schema engine of configuration files: fields, sections, checks.

A schema maps each key to a :class:`Field` (a value: its kind, whether it
is required, its default, its choices) or a :func:`section` (a nested
mapping with its own schema).  :func:`check_mapping` checks a parsed YAML
mapping against a schema: an unknown key (with a "did you mean" hint from
:func:`unknown_key`), a value of the wrong type, a missing required key or
a key that does not apply to the section's ``name`` is a
:class:`ConfigError` whose message names the dotted key.  It returns a new
mapping with the defaults filled in and numbers made float where the
schema says so.  :func:`read_yaml` reads a file as YAML 1.2 reads numbers:
plain YAML 1.1 reads ``1e-4`` as a string; this loader reads it as a float.

The schemas themselves are :mod:`train.config.classifier`'s and
:mod:`train.config.gan`'s.
"""
import collections
import copy
import difflib
import re

import yaml


class ConfigError(ValueError):
    """A configuration file is invalid; the message names file and key."""


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot (1e-4)."""


Loader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$'),
    list('-+0123456789'))


class Field(object):
    """One key of the schema.

    Args:
        kind (str): ``int``, ``float``, ``str``, ``bool``, ``dict`` (free
            mapping), ``str_list``, ``float_list``, ``float_or_null`` or
            ``acc_at`` (a mapping from the numbers in ``keys`` to floats).
        required (bool): Whether the key must be present.
        default: Value used when an optional key is absent.
        choices (tuple): Allowed values, if restricted.
        only_for (tuple): Values of the section's ``name`` for which the
            key is meaningful (other names reject it).
        positive (bool): Whether a number must be > 0.
        keys (tuple): The keys an ``acc_at`` mapping may have.

    """

    def __init__(self, kind, required=False, default=None, choices=None,
                 only_for=None, positive=False, keys=()):
        self.kind = kind
        self.required = required
        self.default = default
        self.choices = choices
        self.only_for = only_for
        self.positive = positive
        self.keys = keys


Section = collections.namedtuple('Section', ['fields', 'required', 'default',
                                             'required_for'])
Section.__doc__ = """A nested mapping of the schema; see :func:`section`."""


def section(fields, required=False, default=None, required_for=None):
    """A nested mapping of the schema.

    Args:
        fields (dict): Its schema.
        required (bool): Whether the section must be present.
        default (dict): When absent, the section is checked as if it were
            this mapping (defaults filled in); None: left out.
        required_for (dict): Value of the section's ``name`` -> the keys
            that value needs.

    """
    return Section(fields, required, default, required_for or {})


def _type_name(value):
    return type(value).__name__


def check_value(field, value, where):
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
            if k not in field.keys:
                raise ConfigError('{}: unknown key {!r} (known: {})'.format(
                    where, k, ', '.join(map(str, field.keys))))
            out[k] = check_value(Field('float'), v, '{}.{}'.format(where, k))
        return out
    else:  # pragma: no cover - schema typo
        raise AssertionError(kind)
    if field.choices is not None and value not in field.choices:
        raise ConfigError('{}: must be one of {}, got {!r}'.format(
            where, ', '.join(field.choices), value))
    if field.positive and value <= 0:
        raise ConfigError('{}: must be > 0, got {!r}'.format(where, value))
    return value


def unknown_key(key, known, where):
    """The ConfigError for ``key`` at ``where``, naming the ``known`` keys
    and the closest of them ("did you mean ...?")."""
    hint = difflib.get_close_matches(str(key), list(known), n=1)
    return ConfigError('{}: unknown key {!r}{} (known: {})'.format(
        where, key, '; did you mean {!r}?'.format(hint[0]) if hint else '',
        ', '.join(known)))


def check_mapping(schema, data, prefix='', section_name=None,
                  required_for=None):
    """Validates ``data`` against ``schema``; returns it with defaults.

    Args:
        schema (dict): Key -> :class:`Field` or :func:`section`.
        data: The parsed YAML of the mapping.
        prefix (str): Its dotted path with a trailing dot (``''`` at the
            top level), named in errors.
        section_name (str): The mapping's key in its parent, for a section.
        required_for (dict): The section's ``required_for``.

    Raises:
        ConfigError: The message names the offending key.

    """
    where = prefix.rstrip('.') or 'top level'
    if not isinstance(data, dict):
        raise ConfigError('{}: must be a mapping, got {} {!r}'.format(
            where, _type_name(data), data))
    for key in data:
        if key not in schema:
            raise unknown_key(key, schema, where)
    name = data.get('name') if section_name is not None else None
    out = {}
    for key, spec in schema.items():
        dotted = prefix + str(key)
        if isinstance(spec, Section):
            if key in data:
                value = data[key]
            elif spec.required:
                raise ConfigError('{}: required key is missing'.format(dotted))
            elif spec.default is not None:
                value = spec.default
            else:
                continue
            out[key] = check_mapping(spec.fields, value, dotted + '.',
                                     section_name=key,
                                     required_for=spec.required_for)
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
        out[key] = check_value(spec, data[key], dotted)
    for needed in (required_for or {}).get(name, ()):
        if needed not in out:
            raise ConfigError('{}{}: required for {} {!r}'.format(
                prefix, needed, section_name, name))
    return out


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
            return yaml.load(f, Loader=Loader)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError('{}: {}'.format(path, e))
