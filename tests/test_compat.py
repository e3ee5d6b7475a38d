"""The compat layer: Chainer imports on old and new stacks alike."""
import subprocess
import sys

import numpy

from mixnorm import _compat


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


def run_isolated(code):
    """Run code in a fresh interpreter with the given modules blocked."""
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120)


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
sys.modules["pkg_resources"] = None
import chainer
'''
    assert run_isolated(code).returncode != 0


def test_version_key_ordering():
    key = _compat._version_key
    assert key('1.26.4') < key('2.0.0') < key('2.0.1')
    assert key('13.0') == key('13.0.0')
