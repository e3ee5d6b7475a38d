"""The CUDA package on a machine without a GPU.

* Every ``.cu`` file compiles with NVRTC, for each set of options Python
  passes plus those CuPy 14 adds for a RawModule, to an sm_90 CUBIN
  through ptxas, without warnings; ptxas's resource report (``-Xptxas
  -v``) shows that every kernel can launch with the block size the package
  gives it (registers x threads <= 65,536, static shared memory <= 48 KiB).
  Needs libnvrtc (the ``nvidia-cuda-nvrtc`` wheel or ``$MIXNORM_NVRTC``);
  skipped without it.
* Every launch matches its kernel's parameter list: the GPU path runs
  against a stand-in for CuPy whose kernels record their arguments, which
  are checked against the signatures parsed from the sources (count,
  pointer or scalar, element type of each pointer, block size).
* The launch geometry is defined once, in Python.

The kernels' numbers are tested on a GPU by tests/mixnorm/test_gpu.py.
"""
import ctypes
import glob
import os
import re
import sys
import types

import numpy
import pytest

import chainer

from mixnorm import cuda
from mixnorm import gmm
from mixnorm import MixtureNormalization
from mixnorm.cuda import _compile

import cuda_emulator

CU_FILES = sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(_compile._DIR, '*.cu')))
FINITE_DEFINES = ('-Dbits_t=unsigned int', '-DEXP_MASK=0x7F800000u')


def _variants(filename):
    """(dtype, K, defines) the package compiles ``filename`` with."""
    if filename == 'gmm.cu':
        return [(dt, k, ()) for dt in (numpy.float32, numpy.float64)
                for k in (1, 5)]
    if filename in ('bn.cu', 'conv.cu', 'mn.cu', 'pool.cu'):
        return [(dt, k, ('-Dindex_t=' + index,))
                for dt in (numpy.float32, numpy.float64)
                for k in ((1, 5) if filename == 'mn.cu' else (None,))
                for index in ('unsigned int', 'long long')]
    if filename == 'layout.cu':
        return [(dt, None, ('-DTILE=32', '-Dindex_t=' + index))
                for dt in (numpy.float32, numpy.float64)
                for index in ('unsigned int', 'long long')]
    if filename == 'kmeanspp.cu':
        return [(dt, None, ()) for dt in (numpy.float32, numpy.float64)]
    if filename == 'finite.cu':
        return [(None, None, FINITE_DEFINES)]
    return [(None, None, ())]


def test_every_source_is_tested():
    assert CU_FILES == ['bn.cu', 'conv.cu', 'finite.cu', 'gmm.cu',
                        'kmeanspp.cu', 'layout.cu', 'mn.cu', 'pool.cu',
                        'random.cu']


# ------------------------------------------------------------ NVRTC
# Options CuPy 14 adds to a RawModule's (its -I paths aside):
# assemble_cupy_compiler_options (cupy/_core/core.pyx) and
# _compile_with_cache_cuda, _compile_using_nvrtc (cupy/cuda/compiler.py).
# A real architecture (-arch=sm_*) makes NVRTC run ptxas, as CuPy does.
CUPY_OPTIONS = ('--std=c++17', '-ftz=true',
                '--device-as-default-execution-space')
ARCH = '-arch=sm_90'
BLOCK_REGISTERS = 65536          # 32-bit registers of a block (sm_90)
STATIC_SHARED = 48 * 1024        # bytes of static shared memory of a block
KERNEL = re.compile(r'extern "C" __global__ void\s+'
                    r'(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\((.*?)\)\s*\{',
                    re.S)


def block_threads(name):
    """Threads per block the package launches kernel ``name`` with."""
    return {'seed_pick': _compile.PICK, 'uniforms': 128}.get(
        name, _compile.THREADS)


def _nvrtc():
    candidates = [os.environ.get('MIXNORM_NVRTC', '')]
    for entry in sys.path:
        candidates += glob.glob(os.path.join(
            entry, 'nvidia', 'cu1*', 'lib', 'libnvrtc.so.1*'))
        candidates += glob.glob(os.path.join(
            entry, 'nvidia', 'cuda_nvrtc', 'lib', 'libnvrtc.so.1*'))
    for path in filter(None, candidates):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


@pytest.fixture(scope='module')
def nvrtc():
    lib = _nvrtc()
    if lib is None:
        pytest.skip('libnvrtc not found (pip install nvidia-cuda-nvrtc)')
    return lib


def nvrtc_compile(lib, text, opts):
    """(status, log, CUBIN bytes) of ``text`` built with ``opts``, CuPy's
    options and ptxas's resource report, for sm_90."""
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), text.encode(),
                                  b'kernel.cu', 0, None, None) == 0
    args = [o.encode() for o in tuple(opts) + CUPY_OPTIONS +
            (ARCH, '-Xptxas', '-v')]
    status = lib.nvrtcCompileProgram(
        prog, len(args), (ctypes.c_char_p * len(args))(*args))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    cubin = ctypes.c_size_t()
    if status == 0:
        assert lib.nvrtcGetCUBINSize(prog, ctypes.byref(cubin)) == 0
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return status, log.value.decode(errors='replace'), cubin.value


def ptxas_resources(log):
    """{kernel: {'registers', 'smem', 'stack', 'spill_stores',
    'spill_loads'}} from ptxas's ``-v`` report (absent numbers are 0)."""
    out, entry, props = {}, None, None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            entry = out.setdefault(m.group(1), {})
            continue
        m = re.search(r'Function properties for (\w+)', line)
        if m:
            props = out.get(m.group(1))  # None: a device function
            continue
        m = re.search(r'(\d+) bytes stack frame, (\d+) bytes spill stores, '
                      r'(\d+) bytes spill loads', line)
        if m and props is not None:
            props.update(zip(('stack', 'spill_stores', 'spill_loads'),
                             map(int, m.groups())))
            continue
        m = re.search(r'Used (\d+) registers', line)
        if m and entry is not None:
            smem = re.search(r'(\d+) bytes smem', line)
            entry['registers'] = int(m.group(1))
            entry['smem'] = int(smem.group(1)) if smem else 0
    for resources in out.values():
        for key in ('stack', 'spill_stores', 'spill_loads'):
            resources.setdefault(key, 0)
    return out


def launch_problems(resources, threads=block_threads):
    """Why kernels of ``resources`` (from :func:`ptxas_resources`) cannot
    launch with ``threads(name)`` threads per block; empty if they can."""
    problems = []
    for name, r in sorted(resources.items()):
        n = threads(name)
        if 'registers' not in r:
            problems.append('{}: no register count from ptxas'.format(name))
        elif r['registers'] * n > BLOCK_REGISTERS:
            problems.append('{}: {} registers x {} threads > {}'.format(
                name, r['registers'], n, BLOCK_REGISTERS))
        if r.get('smem', 0) > STATIC_SHARED:
            problems.append('{}: {} bytes of static shared memory > '
                            '{}'.format(name, r['smem'], STATIC_SHARED))
    return problems


@pytest.mark.parametrize('filename', CU_FILES)
def test_sources_build_and_launch(nvrtc, filename):
    text = _compile.source(filename)
    names = cuda_emulator.kernel_names(text)
    assert names, filename
    for dtype, k, defines in _variants(filename):
        opts = _compile.options(dtype, k, defines)
        status, log, cubin = nvrtc_compile(nvrtc, text, opts)
        resources = ptxas_resources(log)
        where = (filename, opts, log)
        # first: NVRTC's log says nothing when ptxas rejects > 48 KiB of
        # static shared memory
        assert launch_problems(resources) == [], where
        assert status == 0 and cubin > 0 and 'warning' not in log, where
        assert sorted(resources) == sorted(names), where


def test_launch_check_rejects_static_shared_memory(nvrtc):
    source = """extern "C" __global__ void big(double* y) {
        __shared__ double s[N];
        s[threadIdx.x] = y[threadIdx.x];
        __syncthreads();
        y[threadIdx.x] = s[N - 1 - threadIdx.x];
    }"""
    status, log, _ = nvrtc_compile(nvrtc, source, ['-DN=6144'])  # 48 KiB
    assert status == 0
    assert launch_problems(ptxas_resources(log)) == []
    status, log, _ = nvrtc_compile(nvrtc, source, ['-DN=6145'])
    assert launch_problems(ptxas_resources(log)) == [
        'big: 49160 bytes of static shared memory > 49152'], log


def test_launch_check_rejects_registers(nvrtc):
    """48 live doubles need more than 64 registers a thread, too many for
    1,024 threads unless the launch bounds say so."""
    source = """extern "C" __global__ void BOUNDS greedy(const double* x,
                                                     double* y) {
        const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
        double a[48], s = 0;
        #pragma unroll
        for (int j = 0; j < 48; ++j) a[j] = x[i * 48 + j];
        #pragma unroll
        for (int j = 0; j < 48; ++j)
            #pragma unroll
            for (int k = j + 1; k < 48; ++k) s += a[j] * a[k];
        y[i] = s;
    }"""
    status, log, _ = nvrtc_compile(nvrtc, source, ['-DBOUNDS='])
    problems = launch_problems(ptxas_resources(log), lambda name: 1024)
    assert status == 0 and len(problems) == 1, (problems, log)
    assert re.match(r'greedy: \d+ registers x 1024 threads > 65536$',
                    problems[0]), problems
    status, log, _ = nvrtc_compile(
        nvrtc, source, ['-DBOUNDS=__launch_bounds__(1024)'])
    assert status == 0, log
    assert launch_problems(ptxas_resources(log), lambda name: 1024) == [], \
        log


def test_ptxas_report_is_parsed():
    log = '\n'.join([
        "ptxas info    : 0 bytes gmem",
        "ptxas info    : Function properties for helper",
        "ptxas         .     8 bytes stack frame, 0 bytes spill stores, "
        "0 bytes spill loads",
        "ptxas info    : Compiling entry function 'a' for 'sm_90'",
        "ptxas info    : Function properties for a",
        "ptxas         .     816 bytes stack frame, 4 bytes spill stores, "
        "8 bytes spill loads",
        "ptxas info    : Used 72 registers, used 1 barriers, 816 bytes "
        "cumulative stack size",
        "ptxas info    : Compiling entry function 'b' for 'sm_90'",
        "ptxas info    : Used 40 registers, used 1 barriers, 8200 bytes smem"])
    resources = ptxas_resources(log)
    assert resources == {
        'a': {'registers': 72, 'smem': 0, 'stack': 816, 'spill_stores': 4,
              'spill_loads': 8},
        'b': {'registers': 40, 'smem': 8200, 'stack': 0, 'spill_stores': 0,
              'spill_loads': 0}}
    assert launch_problems(resources, lambda name: 1024) == [
        'a: 72 registers x 1024 threads > 65536']
    assert launch_problems({'c': {}}) == ['c: no register count from ptxas']


def test_geometry_comes_from_python():
    """No .cu file defines what _compile passes with -D."""
    names = [o.split('=')[0][2:] for o in _compile.GEOMETRY]
    for filename in CU_FILES + ['common.cuh']:
        with open(os.path.join(_compile._DIR, filename)) as f:
            text = f.read()
        for name in names:
            assert not re.search(r'#define\s+{}\b'.format(name), text), \
                (filename, name)
    assert 'common.cuh' not in _compile.source('gmm.cu')  # inlined


# ------------------------------------------------- launches vs signatures
def signatures():
    """{kernel name: [(type, is_pointer), ...]} from every source."""
    out = {}
    for filename in CU_FILES:
        text = _compile.source(filename)
        for name, params in KERNEL.findall(text):
            parsed = []
            for p in params.split(','):
                p = re.sub(r'\b(const|__restrict__)\b', ' ', p).split()
                pointer = '*' in ''.join(p)
                base = ' '.join(t.strip('*') for t in p[:-1]).strip() \
                    if not p[-1].startswith('*') else \
                    ' '.join(p[:-1]).strip('* ')
                parsed.append((base.replace('*', '').strip(), pointer))
            out[name] = parsed
    return out


class FakeModule(object):
    calls = []

    def __init__(self, code, options):
        self.options = dict(o[2:].split('=', 1) for o in options
                            if o.startswith('-D'))

    def get_function(self, name):
        def launch(grid, block, args):
            FakeModule.calls.append((name, self.options, grid, block, args))
        launch.name = name  # as cupy.RawKernel
        return launch


@pytest.fixture
def fake_gpu(monkeypatch):
    """NumPy arrays take the kernel path; kernels record their launches
    (the emulator's stand-in for CuPy, with recording modules)."""
    cuda_emulator.install(monkeypatch, FakeModule)
    FakeModule.calls = []
    return FakeModule.calls


_POINTEE = {'real_t': None, 'long long': numpy.int64,
            'unsigned int': numpy.uint32,
            'double': numpy.float64, 'int': numpy.int32,
            'unsigned long long': numpy.uint64, 'bits_t': None}


def check_calls(calls):
    sigs = signatures()
    for name, options, grid, block, args in calls:
        params = sigs[name]
        assert len(args) == len(params), (name, len(args), len(params))
        real = {'float': numpy.float32, 'double': numpy.float64}.get(
            options.get('real_t'))
        for i, ((ctype, pointer), arg) in enumerate(zip(params, args)):
            where = '{} argument {} ({})'.format(name, i, ctype)
            if pointer:
                assert arg is None or isinstance(arg, numpy.ndarray), where
                want = real if ctype == 'real_t' else _POINTEE[ctype]
                if arg is not None and want is not None:
                    assert arg.dtype == want, (where, arg.dtype)
                    assert arg.flags.c_contiguous, where
            elif ctype == 'long long':
                assert isinstance(arg, (int, numpy.integer)) and \
                    not isinstance(arg, bool), (where, type(arg))
            else:
                assert ctype == 'double' and isinstance(arg, float), \
                    (where, type(arg))
        assert block == (block_threads(name),), (name, block)
        assert all(isinstance(g, int) and g >= 1 for g in grid), (name, grid)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('k, em_iter, fraction', [(1, 2, 1.0), (3, 1, 1.0),
                                                  (4, 5, 0.5)])
def test_gmm_launches_match_the_kernels(fake_gpu, dtype, k, em_iter,
                                        fraction):
    x = numpy.random.RandomState(0).randn(300, 6).astype(dtype)
    fit, resp = gmm.fit(x, k, em_iter, fit_fraction=fraction)
    assert resp.shape == (300, k) and fit.means.shape == (k, 6)
    gmm.kmeans(x, x[:k], 2)
    gmm.em(x, fit, 2, var_floor=1e-3)
    gmm.responsibilities(x, fit)
    gmm.kmeans_pp(x, k)
    names = {c[0] for c in fake_gpu}
    assert {'estep', 'assign', 'moments_part', 'column_stats',
            'partition_gmm', 'm_step', 'prune', 'seed_pick',
            'uniforms'} <= names
    if k > 1:
        assert 'seed_dist' in names
    if fraction < 1:
        assert 'affine_rows' in names
    check_calls(fake_gpu)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_mn_launches_match_the_kernels(fake_gpu, dtype):
    link = MixtureNormalization(5, n_components=3, dtype=dtype,
                                check_finite=False)  # DeviceFiniteFlag: GPU
    x = chainer.Variable(numpy.random.RandomState(0).randn(
        4, 5, 3, 3).astype(dtype))
    y = link(x)
    y.grad = numpy.ones_like(y.array)
    y.backward()
    cuda.finite.flag_nonfinite(x.array, numpy.zeros(1, numpy.int32))
    names = [c[0] for c in fake_gpu]
    for name in ('nonfinite', 'nchw_to_rows', 'mn_stats', 'mn_output',
                 'mn_grad_stats', 'mn_grad_x', 'queue_push'):
        assert name in names
    check_calls(fake_gpu)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_bn_launches_match_the_kernels(fake_gpu, dtype):
    flag = numpy.zeros(1, numpy.int32)
    x = numpy.random.RandomState(0).randn(4, 5, 9).astype(dtype)
    gamma, beta = numpy.ones(5, dtype), numpy.zeros(5, dtype)
    mean, var = numpy.zeros(5, dtype), numpy.ones(5, dtype)
    for running in ((mean, var), (None, None)):
        y, stats = cuda.bn.forward(x, gamma, beta, 2e-5, *running,
                                   decay=0.9, flag=flag)
        cuda.bn.backward(x, gamma, numpy.ones_like(x), stats)
    names = [c[0] for c in fake_gpu]
    assert names == ['bn_stats', 'bn_output', 'bn_grad_stats',
                     'bn_grad_x'] * 2
    check_calls(fake_gpu)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_conv_launches_match_the_kernels(fake_gpu, dtype):
    x = numpy.random.RandomState(0).randn(2, 3, 6, 5).astype(dtype)
    W = numpy.ones((4, 3, 3, 2), dtype)
    y = cuda.conv.forward(x, W, numpy.zeros(4, dtype), (2, 1), (1, 0))
    cuda.conv.backward(x, W, numpy.ones_like(y), (2, 1), (1, 0))
    W = numpy.ones((3, 4, 3, 2), dtype)  # transposed: (in, out, kh, kw)
    y = cuda.conv.deconv_forward(x, W, numpy.zeros(4, dtype), (2, 1),
                                 (1, 0))
    cuda.conv.deconv_backward(x, W, numpy.ones_like(y), (2, 1), (1, 0))
    assert [c[0] for c in fake_gpu] == [
        'im2col', 'swap01', 'swap01', 'im2col', 'col2im',     # convolution
        'swap01', 'col2im', 'im2col', 'swap01', 'swap01']     # transposed
    check_calls(fake_gpu)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_pool_launches_match_the_kernels(fake_gpu, dtype):
    x = numpy.random.RandomState(0).randn(2, 3, 7, 6).astype(dtype)
    for kind in ('max', 'average'):
        y, argmax = cuda.pool.forward(x, (3, 2), (2, 1), (1, 0), True, kind)
        cuda.pool.backward(x.shape, numpy.ones_like(y), argmax, (3, 2),
                           (2, 1), (1, 0), True, kind)
    assert [c[0] for c in fake_gpu] == ['max_pool', 'max_pool_grad',
                                        'average_pool', 'average_pool_grad']
    check_calls(fake_gpu)


def test_timed_launches_add_up_per_kernel(fake_gpu, monkeypatch):
    clock = iter(range(1000))

    class Event(object):
        def record(self):
            self.t = next(clock)

        def synchronize(self):
            pass

    monkeypatch.setattr(_compile.cupy, 'cuda', types.SimpleNamespace(
        Event=Event, get_elapsed_time=lambda a, b: float(b.t - a.t),
        Device=_compile.cupy.cuda.Device,
        get_current_stream=_compile.cupy.cuda.get_current_stream))
    totals = {}
    x = numpy.random.RandomState(0).randn(4, 5, 9).astype(numpy.float32)
    with _compile.timed_launches(totals):
        cuda.bn.forward(x, numpy.ones(5, numpy.float32),
                        numpy.zeros(5, numpy.float32), 2e-5)
    cuda.bn.forward(x, numpy.ones(5, numpy.float32),
                    numpy.zeros(5, numpy.float32), 2e-5)  # not timed
    assert totals == {'bn_stats': [1.0, 1], 'bn_output': [1.0, 1]}
    assert _compile._timings is None
