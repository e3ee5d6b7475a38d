"""NaN/Inf detection on the GPU without host-device synchronisation."""
import numpy

from mixnorm.cuda import _compile
from mixnorm.cuda._compile import cupy

# unsigned type of each width and its exponent mask (finite.cu)
_BITS = {2: ('unsigned short', '0x7C00u'),
         4: ('unsigned int', '0x7F800000u'),
         8: ('unsigned long long', '0x7FF0000000000000ull')}


def flag_nonfinite(x, flag):
    """Set the int32 device scalar ``flag`` to 1 if x has a NaN or an Inf.

    The flag is never cleared here, so it records every call since it was
    last reset; nothing is read back.
    """
    bits, mask = _BITS[x.dtype.itemsize]
    x = cupy.ascontiguousarray(x)
    fn = _compile.kernel('finite.cu', 'nonfinite',
                         defines=('-Dbits_t=' + bits, '-DEXP_MASK=' + mask))
    _compile.launch(fn, _compile.flat_grid(x.size), (x, x.size, flag))


class DeviceFiniteFlag(object):
    """A sticky NaN/Inf flag on the device, read on the host without waiting.

    :meth:`check` sets a device int32 flag for any NaN or Inf of an array
    (:func:`flag_nonfinite`) and queues a ``cudaMemcpyAsync`` of the flag
    into pinned host memory on the current stream.  :meth:`seen` reads that
    host memory, which is no CUDA call and never waits: it sees the flag as
    of the last copy that has landed, so a bad array is reported one or
    more checks later, never missed (the flag only goes from 0 to 1 until
    :meth:`reset`).
    """

    def __init__(self):
        self._flag = self._pinned = self._host = None

    def array(self, x):
        """The int32 device flag on ``x``'s device, for a kernel to set."""
        if self._flag is None or self._flag.device != x.device:
            with x.device:
                self._flag = cupy.zeros(1, numpy.int32)
            self._pinned = cupy.cuda.alloc_pinned_memory(4)
            self._host = numpy.frombuffer(self._pinned, numpy.int32, 1)
            self._host[0] = 0
        return self._flag

    def publish(self):
        """Queue the copy of the flag to the host on the current stream."""
        cupy.cuda.runtime.memcpyAsync(
            self._host.ctypes.data, self._flag.data.ptr, 4,
            cupy.cuda.runtime.memcpyDeviceToHost,
            cupy.cuda.get_current_stream().ptr)

    def check(self, x):
        """Queue the check of array ``x``; returns at once."""
        flag_nonfinite(x, self.array(x))
        self.publish()

    def seen(self, wait=False):
        """Whether a checked array had NaN/Inf (``wait``: sync first)."""
        if self._host is None:
            return False
        if wait:
            self._flag.device.synchronize()
        return bool(self._host[0])

    def reset(self):
        """Clear the flag; synchronises (called on the error path only)."""
        self._flag.device.synchronize()
        self._flag.fill(0)
        self._host[0] = 0

    def __deepcopy__(self, memo):
        return DeviceFiniteFlag()

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()
