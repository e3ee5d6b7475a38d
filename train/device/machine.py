"""Where a run or benchmark ran: the CPU or GPU and the package versions,
for result files: run.json, a study's invocations, the benchmarks."""
import os
import platform


def cpu_name():
    """The CPU model from /proc/cpuinfo (or platform), with the core count."""
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return 'CPU: {} ({} cores)'.format(name, os.cpu_count() or 0)


def device_name(device):
    """``cpu_name()`` for a NumPy device, else the GPU's name and cuDNN use.

    Args:
        device (chainer.backend.Device): the device the run or benchmark
            used.
    """
    if device.xp.__name__ == 'numpy':
        return cpu_name()
    import cupy
    import chainer
    name = cupy.cuda.runtime.getDeviceProperties(device.device.id)['name']
    if isinstance(name, bytes):
        name = name.decode()
    return 'GPU {}: {} (cuDNN {})'.format(
        device.device.id, name,
        'enabled' if chainer.backends.cuda.cudnn_enabled else 'not used')


def versions(*modules):
    """Python's version and those of the named modules that import.

    Args:
        modules (str): module names, e.g. ``'numpy', 'chainer', 'cupy'``.
    """
    import importlib
    out = {'python': platform.python_version()}
    for name in modules:
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            pass
    return out
