"""The device and the machine a run or benchmark uses.

* :mod:`train.device.choice`: :func:`get`, the Chainer device a ``--device``
  names, checked (:class:`DeviceError`: one line that says why not and what
  to pass instead); :func:`default`, the GPU when CuPy finds one, else
  ``@numpy``; :func:`main`, ``python -m train.device [SPEC]``, prints it.
* :mod:`train.device.machine`: the CPU or GPU and the package versions, for
  ``run.json`` and result files.

This package imports nothing else from :mod:`train`.
"""
from train.device.choice import CPU  # NOQA
from train.device.choice import default  # NOQA
from train.device.choice import DeviceError  # NOQA
from train.device.choice import get  # NOQA
from train.device.choice import get_or_exit  # NOQA
from train.device.choice import GPU  # NOQA
from train.device.choice import gpu_count  # NOQA
from train.device.choice import main  # NOQA
from train.device.choice import problem  # NOQA
from train.device.machine import cpu_name  # NOQA
from train.device.machine import device_name  # NOQA
from train.device.machine import versions  # NOQA
