"""Uniform random numbers drawn on the device from a device-held state.

CuPy's generator calls cuRAND, which cannot be called while a stream is
captured into a CUDA graph; this one is a single kernel (``random.cu``)
that reads and advances its own (key, counter) state in device memory, so
a draw needs no host value and each graph replay draws new numbers.
"""
import numpy

from mixnorm.cuda import _compile
from mixnorm.cuda._compile import cupy


class DeviceUniforms(object):
    """Uniform [0, 1) doubles from a counter-based generator (splitmix64).

    The generator of the kernel path when no ``rng`` is given.  One state
    per device; the key comes from :meth:`seed` or, on first use, from
    NumPy's global generator.
    """

    def __init__(self):
        self._states = {}

    def seed(self, seed=None):
        """Reset the current device's state to ``seed`` (None: from NumPy's
        global generator)."""
        if seed is None:
            seed = numpy.random.randint(2 ** 62)
        key = (int(seed) * 0xd1342543de82ef95 + 0x632be59bd9b4e019) \
            % 2 ** 64
        self._states[cupy.cuda.Device().id] = cupy.asarray(
            numpy.array([key, 0], numpy.uint64))

    def random_sample(self, size):
        """(size,) float64 uniforms on the current device."""
        state = self._states.get(cupy.cuda.Device().id)
        if state is None:
            self.seed()
            state = self._states[cupy.cuda.Device().id]
        out = cupy.empty(size, numpy.float64)
        _compile.launch(_compile.kernel('random.cu', 'uniforms'), 1,
                        (state, size, out), threads=128)
        return out


#: The kernel path's default generator (see :class:`DeviceUniforms`).
uniforms = DeviceUniforms()


def generator(rng, x=None):
    """``rng``, or :data:`uniforms` when it is None (x: unused, as in
    :func:`mixnorm._gmm_generic.generator`)."""
    return uniforms if rng is None else rng
