"""Patch the stack for Chainer 7.8.1 before the first ``import chainer``.

Installed with mixnorm beside ``mixnorm-chainer-hook.pth`` in site-packages;
the .pth line calls :func:`install` at interpreter start.  That only puts a
finder first on ``sys.meta_path``: nothing else is imported until some code
imports ``chainer``.  Then the finder takes itself off, runs
``mixnorm._compat.patch()`` and lets the import go on as usual, so
``import chainer`` works before (or without) ``import mixnorm``.

``mixnorm._compat`` is loaded on its own, without ``mixnorm/__init__.py``:
the package imports Chainer, which is what is being imported.
"""
import sys


class ChainerFinder(object):
    """Meta path finder that patches the stack when ``chainer`` is looked up.

    It finds nothing itself (``find_spec`` returns None), so the import
    proceeds through the other finders.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'chainer':
            uninstall()
            patch()
        return None


def install():
    """Put the finder first on ``sys.meta_path`` (once)."""
    if 'chainer' not in sys.modules and not installed():
        sys.meta_path.insert(0, ChainerFinder())


def uninstall():
    """Take the finder off ``sys.meta_path``."""
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, ChainerFinder)]


def installed():
    return any(isinstance(f, ChainerFinder) for f in sys.meta_path)


def patch():
    """Run ``mixnorm._compat.patch()`` without importing the package.

    Returns:
        list of str or None: what ``patch`` supplied, or None when mixnorm
        cannot be found (e.g. a .pth left behind by an uninstall).
    """
    compat = sys.modules.get('mixnorm._compat')
    if compat is None:
        from importlib import machinery, util
        package = util.find_spec('mixnorm')
        if package is None or not package.submodule_search_locations:
            return None
        spec = machinery.PathFinder.find_spec(
            'mixnorm._compat', package.submodule_search_locations)
        if spec is None:
            return None
        compat = util.module_from_spec(spec)
        # mixnorm/__init__.py's `from mixnorm import _compat` reuses it
        sys.modules[spec.name] = compat
        try:
            spec.loader.exec_module(compat)
        except BaseException:
            del sys.modules[spec.name]
            raise
    return compat.patch()
