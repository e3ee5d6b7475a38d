"""Make Chainer 7.8.1 importable on current Python, NumPy and setuptools.

Chainer 7.8.1 (the last release) touches three things at import time that
newer stacks removed:

* ``numpy.sctypes`` (removed in NumPy 2.0), read by
  ``chainer.functions.array.as_strided`` at import;
* ``numpy.distutils.system_info`` (gone on Python 3.12 and unimportable with
  setuptools >= 74), imported by ``chainer._environment_check``; Chainer only
  calls ``get_info('blas_opt')`` from it, and only on macOS;
* ``pkg_resources`` (removed in setuptools 82), imported by
  ``chainer._environment_check`` and ``chainer.testing`` (which
  ``chainer.gradient_check`` imports).

:func:`patch` fills in exactly what is missing and nothing else: a working
module is never replaced.  It runs when :mod:`mixnorm` is imported and, in
an installed mixnorm, before a process's first ``import chainer`` (the
``mixnorm-chainer-hook.pth`` file and ``_mixnorm_chainer_hook.py``), so
Chainer imports in either order.  That hook loads this module before the
package: it must import nothing from :mod:`mixnorm`.
"""
import importlib
import re
import sys
import types

import numpy

PATCHED = []  # names of the pieces this process had to supply


def _can_import(name):
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        importlib.import_module(name)
    except Exception:  # ImportError, or setuptools' distutils errors
        sys.modules.pop(name, None)
        return False
    return True


def _numpy_sctypes():
    groups = {
        'int': ['int8', 'int16', 'int32', 'int64'],
        'uint': ['uint8', 'uint16', 'uint32', 'uint64'],
        'float': ['float16', 'float32', 'float64', 'longdouble'],
        'complex': ['complex64', 'complex128', 'clongdouble'],
    }
    sctypes = {k: [getattr(numpy, n) for n in v] for k, v in groups.items()}
    sctypes['others'] = [bool, object, bytes, str, numpy.void]
    return sctypes


def _numpy_distutils_module():
    distutils = types.ModuleType('numpy.distutils')
    system_info = types.ModuleType('numpy.distutils.system_info')
    # Chainer asks for BLAS build info only to warn about macOS Accelerate.
    system_info.get_info = lambda name, notfound_action=0: {}
    distutils.system_info = system_info
    distutils.__path__ = []
    return distutils, system_info


# ---------------------------------------------------------------- pkg_resources
def _version_key(text):
    parts = []
    for piece in re.split(r'[.+-]', text):
        m = re.match(r'(\d+)(.*)', piece)
        parts.append((int(m.group(1)), m.group(2)) if m else (-1, piece))
    while parts and parts[-1] == (0, ''):
        parts.pop()
    return parts


_OPS = {
    '>=': lambda a, b: a >= b, '<=': lambda a, b: a <= b,
    '==': lambda a, b: a == b, '!=': lambda a, b: a != b,
    '>': lambda a, b: a > b, '<': lambda a, b: a < b,
}


def _pkg_resources_module():
    from importlib import metadata

    mod = types.ModuleType('pkg_resources')

    class ResolutionError(Exception):
        pass

    class DistributionNotFound(ResolutionError):
        pass

    class VersionConflict(ResolutionError):
        pass

    class Distribution(object):
        def __init__(self, name, version):
            self.project_name, self.version = name, version

    def get_distribution(name):
        try:
            return Distribution(name, metadata.version(name))
        except metadata.PackageNotFoundError:
            raise DistributionNotFound(name)

    def require(*requirements):
        found = []
        for req in requirements:
            m = re.match(r'\s*([A-Za-z0-9_.\-]+)\s*(.*)', req)
            name, spec = m.group(1), m.group(2)
            dist = get_distribution(name)
            have = _version_key(dist.version)
            for clause in filter(None, (c.strip() for c in spec.split(','))):
                op, want = re.match(r'(==|!=|>=|<=|>|<)\s*(\S+)',
                                    clause).groups()
                if not _OPS[op](have, _version_key(want)):
                    raise VersionConflict(dist.project_name, req)
            found.append(dist)
        return found

    class WorkingSet(object):
        def require(self, *requirements):
            return require(*requirements)

    for obj in (ResolutionError, DistributionNotFound, VersionConflict,
                Distribution, get_distribution, require, WorkingSet):
        setattr(mod, obj.__name__, obj)
    return mod


def patch():
    """Supply whatever Chainer 7.8.1 needs at import and this stack lacks.

    Returns:
        list of str: the names supplied in this process (empty on a stack
        that Chainer supports unpatched).
    """
    if not hasattr(numpy, 'sctypes'):
        numpy.sctypes = _numpy_sctypes()
        PATCHED.append('numpy.sctypes')
    if not _can_import('numpy.distutils.system_info'):
        distutils, system_info = _numpy_distutils_module()
        sys.modules['numpy.distutils'] = distutils
        sys.modules['numpy.distutils.system_info'] = system_info
        PATCHED.append('numpy.distutils.system_info')
    if not _can_import('pkg_resources'):
        sys.modules['pkg_resources'] = _pkg_resources_module()
        PATCHED.append('pkg_resources')
    return list(PATCHED)
