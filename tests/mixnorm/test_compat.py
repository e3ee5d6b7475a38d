"""The compat layer: Chainer imports on old and new stacks alike, and in
either order with mixnorm once mixnorm is installed (the .pth hook)."""
import os
import shutil
import site
import subprocess
import sys
import sysconfig

import numpy
import pytest

from mixnorm import _compat
from tinydata import ROOT

PTH = 'mixnorm-chainer-hook.pth'
NUMPY2 = numpy.lib.NumpyVersion(numpy.__version__) >= '2.0.0'


def test_chainer_imports_and_runs_here():
    import chainer
    import chainer.functions as F
    from chainer import gradient_check  # needs pkg_resources via testing
    assert chainer.__version__ == '7.8.1'
    assert hasattr(numpy, 'sctypes')
    x = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    y = F.as_strided(x, (2, 2), (3, 1))  # reads numpy.sctypes
    assert y.shape == (2, 2)
    assert gradient_check is not None


def test_patches_only_what_is_missing():
    if numpy.lib.NumpyVersion(numpy.__version__) >= '2.0.0':
        assert 'numpy.sctypes' in _compat.PATCHED
    else:
        assert 'numpy.sctypes' not in _compat.PATCHED
    import pkg_resources
    if 'pkg_resources' not in _compat.PATCHED:
        assert getattr(pkg_resources, '__file__', None)  # the real one


def run_isolated(code, cwd=ROOT, flags=()):
    """Run code in a fresh interpreter of this environment."""
    return subprocess.run([sys.executable] + list(flags) + ['-c', code],
                          cwd=str(cwd), capture_output=True, text=True,
                          timeout=120)


def test_missing_distutils_and_pkg_resources_are_supplied():
    code = '''
import sys
for name in ("pkg_resources", "numpy.distutils",
             "numpy.distutils.system_info"):
    sys.modules[name] = None  # as on Python 3.12 / setuptools >= 82
import mixnorm
from mixnorm import _compat
import chainer, chainer.testing, chainer.gradient_check
assert "pkg_resources" in _compat.PATCHED
assert "numpy.distutils.system_info" in _compat.PATCHED
import pkg_resources
pkg_resources.require("numpy>=1.0")
try:
    pkg_resources.require("numpy<1.0")
except pkg_resources.VersionConflict:
    pass
else:
    raise SystemExit("no conflict raised")
try:
    pkg_resources.get_distribution("no-such-package-xyz")
except pkg_resources.DistributionNotFound:
    pass
print("ok", chainer.__version__)
'''
    out = run_isolated(code)
    assert out.returncode == 0, out.stderr
    assert 'ok 7.8.1' in out.stdout


def test_chainer_without_mixnorm_fails_where_a_patch_is_needed():
    """Proves the patches matter: unpatched Chainer breaks in this stack."""
    code = '''
import sys
sys.meta_path[:] = [f for f in sys.meta_path  # the installed hook, if any
                    if type(f).__name__ != "ChainerFinder"]
sys.modules["pkg_resources"] = None
import chainer
'''
    assert run_isolated(code).returncode != 0


def test_version_key_ordering():
    key = _compat._version_key
    assert key('1.26.4') < key('2.0.0') < key('2.0.1')
    assert key('13.0') == key('13.0.0')


# ------------------------------------------- import chainer before mixnorm
def test_hook_patches_before_the_first_chainer_import():
    code = '''
import sys
import _mixnorm_chainer_hook as hook
hook.install()
assert hook.installed()
assert "numpy" not in sys.modules and "mixnorm" not in sys.modules
import chainer
import chainer.functions  # reads numpy.sctypes
assert not hook.installed()
assert "mixnorm._compat" in sys.modules and "mixnorm" not in sys.modules
import mixnorm
assert mixnorm._compat is sys.modules["mixnorm._compat"]
print("ok", chainer.__version__, *mixnorm._compat.PATCHED)
'''
    out = run_isolated(code)  # the hook module from the source tree
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('ok 7.8.1')
    assert ('numpy.sctypes' in out.stdout) == NUMPY2


def installed_pth():
    dirs = site.getsitepackages() + [site.getusersitepackages()]
    return [d for d in dirs if os.path.exists(os.path.join(d, PTH))]


@pytest.mark.parametrize('order', ['chainer, mixnorm', 'mixnorm, chainer'])
def test_either_order_in_this_environment(order, tmp_path):
    if not installed_pth():
        pytest.skip(PTH + ' is not installed in this environment (built '
                    'before it); rebuild it with scripts/setup_env.sh')
    code = '''
import sys
import {}
import chainer.functions
assert "mixnorm._compat" in sys.modules  # patched first, by either route
print("ok")
'''.format(order)
    out = run_isolated(code, cwd=tmp_path)  # not the source tree
    assert out.returncode == 0, out.stderr
    assert out.stdout == 'ok\n'


def install(tmp_path, how):
    """pip-install a copy of the project into tmp_path/installed, no deps."""
    src = tmp_path / 'src'
    src.mkdir()
    shutil.copy(os.path.join(ROOT, 'setup.py'), str(src))
    shutil.copy(os.path.join(ROOT, '_mixnorm_chainer_hook.py'), str(src))
    for package in ('mixnorm', 'models', 'train'):
        shutil.copytree(os.path.join(ROOT, package), str(src / package),
                        ignore=shutil.ignore_patterns('__pycache__'))
    target = tmp_path / 'installed'

    def pip(*args):
        done = subprocess.run(
            [sys.executable, '-m', 'pip', '-q', '--disable-pip-version-check']
            + list(args), cwd=str(tmp_path), capture_output=True, text=True,
            timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr

    if how == 'wheel':  # what `pip install .` installs
        pip('wheel', '--no-deps', '--no-build-isolation', '-w',
            str(tmp_path / 'dist'), str(src))
        wheel, = (tmp_path / 'dist').glob('mixnorm-*.whl')
        pip('install', '--no-deps', '--target', str(target), str(wheel))
    else:  # PEP 660, with this environment's setuptools
        pip('install', '--no-deps', '--no-build-isolation', '--use-pep517',
            '--target', str(target), '-e', str(src))
    return target


IN_NEW_SITE = '''
import site, sys
site.addsitedir({site!r})  # as Python does with site-packages at start
assert "numpy" not in sys.modules and "mixnorm" not in sys.modules
sys.path.append({env!r})  # Chainer and NumPy, without their .pth files
import chainer
import chainer.functions  # reads numpy.sctypes
assert "mixnorm._compat" in sys.modules
import mixnorm
assert mixnorm.__file__.startswith({root!r}), mixnorm.__file__
print("ok", chainer.__version__)
'''


@pytest.mark.parametrize('how', ['wheel', 'editable'])
def test_installed_pth_lets_chainer_come_first(how, tmp_path):
    target = install(tmp_path, how)
    with open(str(target / PTH)) as f:
        assert '_mixnorm_chainer_hook' in f.read()
    root = str(tmp_path / ('installed' if how == 'wheel' else 'src'))
    code = IN_NEW_SITE.format(site=str(target), root=root,
                              env=sysconfig.get_paths()['purelib'])
    # -S: no site-packages but the new one, so that no other install of
    # mixnorm (this environment's own) takes part
    out = run_isolated(code, cwd=tmp_path, flags=['-S'])
    assert out.returncode == 0, out.stderr
    assert out.stdout == 'ok 7.8.1\n'
    if how == 'wheel':  # a .pth left without its module stays quiet
        os.remove(str(target / '_mixnorm_chainer_hook.py'))
        quiet = 'import site; site.addsitedir({!r})'.format(str(target))
        out = run_isolated(quiet, cwd=tmp_path, flags=['-S'])
        assert out.returncode == 0 and out.stderr == '', out.stderr
