"""The Chainer device of a run or benchmark, checked before it is used.

:func:`get` is what the trainers and benchmarks call: a device that is not
usable (``@cupy:0`` without CuPy, without a CUDA driver or GPU; a ChainerX
name such as ``cpu`` in a Chainer built without ChainerX; a string that is
no device specifier) is a :class:`DeviceError` whose message is one line
that names the device, says why and what to pass instead.
``python -m train.device [SPEC]`` prints the device that ``SPEC`` (default:
:func:`default`) names, or that line with exit status 2
(``scripts/main.sh`` chooses its budget from it).
"""
import importlib.util
import re
import sys

import mixnorm  # noqa: F401  (patches NumPy/setuptools before Chainer)
import chainer

CPU = '@numpy'
GPU = '@cupy:0'
_CUPY = re.compile(r'@cupy:(\d+)$')


class DeviceError(Exception):
    """The device asked for is not usable here; the message says why and
    what to pass instead."""


def default():
    """``@cupy:0`` when CuPy is usable and a GPU exists, else ``@numpy``."""
    return GPU if gpu_count() > 0 else CPU


def gpu_count():
    """GPUs that CuPy sees here (0 without CuPy, driver or device)."""
    try:
        return _cuda_count()
    except DeviceError:
        return 0


def _cuda_count():
    """The number of CUDA devices; DeviceError when CuPy cannot tell."""
    if importlib.util.find_spec('cupy') is None:
        raise DeviceError('CuPy is not installed in {}'.format(
            sys.executable))
    try:
        import cupy
    except Exception as e:  # an ImportError, or a CUDA library missing
        raise DeviceError('CuPy does not import ({})'.format(_first_line(e)))
    if not chainer.backends.cuda.available:
        raise DeviceError('Chainer cannot use CuPy {} here'.format(
            getattr(cupy, '__version__', '?')))
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, driver too old
        raise DeviceError('no usable CUDA driver or GPU ({})'.format(
            _first_line(e)))


def _first_line(error):
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _gpu_problem(index):
    """Why GPU ``index`` cannot be used, or None."""
    try:
        count = _cuda_count()
    except DeviceError as e:
        return str(e)
    if count == 0:
        return 'CuPy sees no GPU (no CUDA device)'
    if index >= count:
        return 'CuPy sees {} GPU{} here (@cupy:0{})'.format(
            count, '' if count == 1 else 's',
            '' if count == 1 else ' to @cupy:{}'.format(count - 1))
    return None


def _gpu_index(spec):
    """N of ``@cupy:N`` (or of Chainer's ``N`` >= 0), else None."""
    m = _CUPY.match(spec) or re.match(r'(\d+)$', spec)
    return int(m.group(1)) if m else None


def _fix(spec):
    """What to pass instead of ``spec``, a device that is not usable."""
    if _gpu_index(spec) is None:
        return 'pass --device @numpy for the CPU, or @cupy:N for GPU N'
    if gpu_count() > 0:
        return 'pass --device @cupy:0, or @numpy for the CPU'
    return ('pass --device @numpy to run on the CPU (a GPU needs an NVIDIA '
            'driver and CuPy: pip install -e ".[cuda12]" or ".[cuda13]")')


def problem(spec):
    """Why the device ``spec`` is not usable here, or None when it is."""
    text = str(spec).strip()
    if text == CPU or re.match(r'-\d+$', text):  # -1: Chainer's CPU
        return None
    if _gpu_index(text) is not None:
        return _gpu_problem(_gpu_index(text))
    if text == '@intel64' and importlib.util.find_spec('ideep4py') is None:
        return 'iDeep (ideep4py) is not installed'
    if not text.startswith('@'):
        try:
            import chainerx
            has_chainerx = chainerx.is_available()
        except ImportError:
            has_chainerx = False
        if not has_chainerx:
            return ('a name without "@" is a ChainerX device, and this '
                    'Chainer is built without ChainerX')
    try:
        chainer.get_device(text)
    except Exception:  # ValueError, RuntimeError: not a specifier
        return 'not a Chainer device specifier'
    return None


def get(spec=None):
    """The Chainer device ``spec`` names (default: :func:`default`).

    Raises:
        DeviceError: It is not usable here; the one-line message names
            the device, why, and what to pass instead.

    """
    spec = str(spec).strip() if spec not in (None, '') else default()
    why = problem(spec)
    if why is not None:
        raise DeviceError('--device {}: not usable here: {}; {}'.format(
            spec, why, _fix(spec)))
    return chainer.get_device(spec)


def get_or_exit(spec, prog):
    """:func:`get`, or the error as one line ``PROG: error: ...`` on
    stderr and exit status 2."""
    try:
        return get(spec)
    except DeviceError as e:
        print('{}: error: {}'.format(prog, e), file=sys.stderr)
        raise SystemExit(2)


def main(argv=None):
    """Prints the usable device ``argv[0]`` names; exit status 2 if none."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or argv[:1] in (['-h'], ['--help']):
        print('usage: python -m train.device [SPEC]', file=sys.stderr)
        return 0 if argv[:1] in (['-h'], ['--help']) else 2
    try:
        device = get(argv[0] if argv else None)
    except DeviceError as e:
        print('train.device: error: {}'.format(e), file=sys.stderr)
        return 2
    print(device)
    return 0

