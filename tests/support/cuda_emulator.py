"""Run the package's CUDA kernels on the CPU, for the tests.

:class:`EmulatedModule` stands in for ``cupy.RawModule``: it compiles the
kernel source with g++ after the prelude ``cuda_emulator.h`` (blocks in
turn, the threads of a block as fibers that switch at barriers and
shuffles) into a shared library, and its functions take CuPy's launch
arguments ``(grid, block, args)`` with NumPy arrays for device arrays.
:func:`fake_cupy` is a stand-in for the ``cupy`` module over NumPy;
:func:`install` patches it into :mod:`mixnorm.cuda` so that NumPy arrays
take the kernel path.

This checks what the kernels compute, their indexing and their launch
arguments, but neither memory safety nor timing, nor races between
threads (a fiber runs until its next barrier).

``MIXNORM_EMULATOR_MODE`` picks an adversarial schedule or build
(:data:`MODES`; ``cuda_emulator.h`` says what each covers and what none
can): blocks and threads reversed or shuffled, shared memory and integer
buffers poisoned, FMA contraction.  Arrays from :func:`device_array` and
the stand-in's ``zeros`` have what :class:`mixnorm.cuda.finite.DeviceFiniteFlag`
reads of a CuPy array (``device``, ``data.ptr``), so the NaN/Inf flag
runs here too.
"""
import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import types

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
PRELUDE = os.path.join(HERE, 'cuda_emulator.h')
_CACHE = os.path.join(tempfile.gettempdir(),
                      'mixnorm-cuda-emulator-{}'.format(os.getuid()))
_libraries = {}

#: mode -> (g++ options, what it does); MIXNORM_EMULATOR_MODE picks one
MODES = {
    'default': ((), 'blocks and threads in order'),
    'reversed': (('-DEMU_ORDER=1',), 'blocks and threads in reverse order'),
    'shuffled': (('-DEMU_ORDER=2', '-DEMU_SEED=7'),
                 'blocks and threads in a random order'),
    'poisoned': (('-DEMU_POISON',), 'shared memory and integer buffers '
                 'from empty() filled with junk'),
    'fma': (('-O2', '-mfma', '-ffp-contract=fast'),
            'a * b + c contracted to FMA'),
}
JUNK = 0xA5  # the byte of poisoned integer buffers


def mode():
    """The emulator mode of this process (``MIXNORM_EMULATOR_MODE``)."""
    name = os.environ.get('MIXNORM_EMULATOR_MODE', 'default')
    if name not in MODES:
        raise ValueError('MIXNORM_EMULATOR_MODE must be one of {}, not '
                         '{!r}'.format(sorted(MODES), name))
    return name


def compiler():
    """The C++ compiler, or None."""
    return shutil.which(os.environ.get('CXX', 'g++'))


def kernel_names(code):
    return re.findall(r'extern "C" __global__ void\s+'
                      r'(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\(', code)


def _library(code, options):
    with open(PRELUDE) as f:
        prelude = f.read()
    launchers = ''.join(
        'extern "C" const char* emulate_{0}(unsigned gx, unsigned gy, '
        'unsigned gz, unsigned bx, unsigned by, unsigned bz, void** args) '
        '{{ return emu::launch({0}, dim3{{gx, gy, gz}}, '
        'dim3{{bx, by, bz}}, args); }}\n'.format(name)
        for name in kernel_names(code))
    text = prelude + '\n' + code + '\n' + launchers
    defines = [o for o in options if o.startswith('-D')]
    # e.g. '-fsanitize=address' (run Python with libasan preloaded)
    flags = list(MODES[mode()][0]) + os.environ.get(
        'MIXNORM_EMULATOR_FLAGS', '').split()
    key = hashlib.sha1('\0'.join([text] + defines + flags).encode()
                       ).hexdigest()
    lib = _libraries.get(key)
    if lib is not None:
        return lib
    os.makedirs(_CACHE, exist_ok=True)
    path = os.path.join(_CACHE, key + '.so')
    if not os.path.exists(path):
        src = os.path.join(_CACHE, key + '.cpp')
        with open(src, 'w') as f:
            f.write(text)
        tmp = path + '.{}.tmp'.format(os.getpid())
        cmd = [compiler(), '-std=c++17', '-O1', '-shared', '-fPIC', '-w',
               '-o', tmp, src] + defines + flags
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError('g++ failed on the kernel source:\n' +
                               done.stderr[-4000:])
        os.replace(tmp, path)
    lib = _libraries[key] = ctypes.CDLL(path)
    if mode() == 'poisoned':
        _register_shared(lib, path)
    return lib


def _register_shared(lib, path):
    """Tell the library where its __shared__ variables are: the
    function-local statics (mangled ``_ZZ``) of its symbol table, but the
    emulator's own."""
    out = subprocess.run(['nm', '-S', '--defined-only', path],
                         capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith('_ZZ') \
                and not parts[3].startswith('_ZZN3emu'):
            found.append((int(parts[0], 16), int(parts[1], 16)))
    n = len(found)
    offsets = (ctypes.c_ulonglong * max(n, 1))(*[o for o, _ in found])
    sizes = (ctypes.c_ulonglong * max(n, 1))(*[z for _, z in found])
    lib.emu_shared_variables(offsets, sizes, n)


class EmulatedModule(object):

    """``cupy.RawModule(code=..., options=...)`` on the CPU."""

    #: (kernel name, grid, block) of every launch, for the tests
    launches = []

    def __init__(self, code, options=()):
        self.names = kernel_names(code)
        self.lib = _library(code, options)

    def get_function(self, name):
        if name not in self.names:
            raise AttributeError('no kernel {!r}'.format(name))
        fn = getattr(self.lib, 'emulate_' + name)
        fn.restype = ctypes.c_char_p
        return EmulatedKernel(name, fn)


def _argument(a):
    """A ctypes value for one launch argument, as CuPy passes it."""
    if a is None:
        return ctypes.c_void_p(None)
    if isinstance(a, numpy.ndarray):
        if not a.flags.c_contiguous:
            raise ValueError('a kernel argument is not C-contiguous')
        return ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, (bool, numpy.bool_)):
        return ctypes.c_bool(bool(a))
    if isinstance(a, int):
        return ctypes.c_longlong(a)
    if isinstance(a, float):
        return ctypes.c_double(a)
    if isinstance(a, numpy.generic):
        return _scalar(a)
    raise TypeError('cannot pass {!r} to a kernel'.format(type(a)))


def _scalar(a):
    kinds = {numpy.dtype(numpy.int32): ctypes.c_int32,
             numpy.dtype(numpy.int64): ctypes.c_int64,
             numpy.dtype(numpy.uint64): ctypes.c_uint64,
             numpy.dtype(numpy.float32): ctypes.c_float,
             numpy.dtype(numpy.float64): ctypes.c_double}
    return kinds[a.dtype](a.item())


class EmulatedKernel(object):

    def __init__(self, name, fn):
        self.name = name  # as cupy.RawKernel
        self.fn = fn

    def __call__(self, grid, block, args):
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        values = [_argument(a) for a in args]
        pointers = (ctypes.c_void_p * max(1, len(values)))(
            *[ctypes.addressof(v) for v in values])
        EmulatedModule.launches.append((self.name, grid, block))
        error = self.fn(*[ctypes.c_uint(int(g)) for g in grid + block],
                        pointers)
        if error:
            raise RuntimeError('{}: {}'.format(self.name, error.decode()))


class _Device(object):
    id = 0

    def __eq__(self, other):
        return isinstance(other, _Device)

    def __ne__(self, other):
        return not self == other

    __hash__ = object.__hash__

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        pass


def _empty(shape, dtype=float):
    """Uninitialised memory: NaN for floats (a kernel that reads what
    it did not write shows), zeros otherwise (junk in poisoned mode)."""
    dtype = numpy.dtype(dtype)
    if dtype.kind == 'f':
        return numpy.full(shape, numpy.nan, dtype)
    out = numpy.zeros(shape, dtype)
    if mode() == 'poisoned':
        out.view(numpy.uint8)[...] = JUNK
    return out


class _Pointer(object):
    def __init__(self, ptr):
        self.ptr = ptr


class DeviceArray(numpy.ndarray):
    """A NumPy array with the attributes of a CuPy array that
    :class:`mixnorm.cuda.finite.DeviceFiniteFlag` reads: ``device`` (the
    stand-in's one device) and ``data.ptr``."""

    @property
    def device(self):
        return _Device()

    @property
    def data(self):
        return _Pointer(self.ctypes.data)


def device_array(a):
    """``a`` as a C-contiguous :class:`DeviceArray` (a view where it can
    be)."""
    return numpy.ascontiguousarray(a).view(DeviceArray)


def fake_cupy(module_class=EmulatedModule):
    """A stand-in for the ``cupy`` module: NumPy arrays, kernels of
    ``module_class``, a stream that runs everything at once."""
    fake = types.SimpleNamespace()
    for name in ('empty', 'zeros', 'ones', 'full', 'asarray',
                 'ascontiguousarray', 'concatenate', 'ndarray', 'empty_like',
                 'zeros_like', 'matmul'):
        setattr(fake, name, getattr(numpy, name))
    fake.empty = _empty
    fake.empty_like = lambda a, dtype=None: _empty(a.shape, dtype or a.dtype)
    fake.zeros = lambda *a, **k: device_array(numpy.zeros(*a, **k))
    fake.RawModule = module_class
    fake.random = types.SimpleNamespace(seed=lambda v=None: None)
    stream = types.SimpleNamespace(ptr=0, is_capturing=lambda: False)
    fake.cuda = types.SimpleNamespace(
        Device=lambda *a: _Device(),
        get_current_stream=lambda: stream,
        alloc_pinned_memory=lambda n: bytearray(n),
        runtime=types.SimpleNamespace(
            memcpyDeviceToHost=2,
            memcpyAsync=lambda dst, src, n, kind, s: ctypes.memmove(
                dst, src, n)))
    return fake


def install(monkeypatch, module_class=EmulatedModule):
    """Patch the stand-in ``cupy`` into every module of :mod:`mixnorm.cuda`
    that has one, with the kernel path on; returns the stand-in."""
    import sys
    import mixnorm.cuda
    fake = fake_cupy(module_class)
    for name, module in list(sys.modules.items()):
        if (name == 'mixnorm.cuda' or name.startswith('mixnorm.cuda.')) \
                and hasattr(module, 'cupy'):
            monkeypatch.setattr(module, 'cupy', fake)
    monkeypatch.setattr(mixnorm.cuda, 'enabled', True)
    monkeypatch.setattr(mixnorm.cuda._compile, '_modules', {})
    monkeypatch.setattr(mixnorm.cuda._compile, '_functions', {})
    monkeypatch.setattr(mixnorm.cuda._compile, '_counters', {})
    monkeypatch.setattr(mixnorm.cuda.random, 'uniforms',
                        mixnorm.cuda.random.DeviceUniforms())
    EmulatedModule.launches = []
    return fake


@contextlib.contextmanager
def kernels_off():
    """The NumPy reference path for NumPy arrays while emulating."""
    import mixnorm.cuda
    saved, mixnorm.cuda.enabled = mixnorm.cuda.enabled, False
    try:
        yield
    finally:
        mixnorm.cuda.enabled = saved


def launched(name=None):
    """The kernels launched since :func:`install`, in order (names), or
    the grids of the launches of kernel ``name``."""
    if name is None:
        return [n for n, _, _ in EmulatedModule.launches]
    return [g for n, g, _ in EmulatedModule.launches if n == name]


def backend():
    """The :class:`kernel_cases.Backend` of the emulator."""
    from kernel_cases import Backend
    return Backend(numpy, numpy.ascontiguousarray, numpy.asarray,
                   reference=kernels_off)
