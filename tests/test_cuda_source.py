"""The CUDA package on a machine without a GPU.

* Every ``.cu`` file compiles with NVRTC for the options Python passes
  (needs libnvrtc: the ``nvidia-cuda-nvrtc`` wheel or ``$MIXNORM_NVRTC``;
  skipped without it).
* Every launch matches its kernel's parameter list: the GPU path runs
  against a stand-in for CuPy whose kernels record their arguments, which
  are checked against the signatures parsed from the sources (count,
  pointer or scalar, element type of each pointer, block size).
* The launch geometry is defined once, in Python.

The kernels' numbers are tested on a GPU by tests/test_gpu.py.
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


def nvrtc_compile(lib, text, opts):
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), text.encode(),
                                  b'kernel.cu', 0, None, None) == 0
    args = [o.encode() for o in opts] + [b'-arch=compute_80']
    status = lib.nvrtcCompileProgram(
        prog, len(args), (ctypes.c_char_p * len(args))(*args))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return status, log.value.decode(errors='replace')


@pytest.mark.parametrize('filename', CU_FILES)
def test_sources_compile_with_nvrtc(filename):
    lib = _nvrtc()
    if lib is None:
        pytest.skip('libnvrtc not found (pip install nvidia-cuda-nvrtc)')
    for dtype, k, defines in _variants(filename):
        opts = _compile.options(dtype, k, defines)
        status, log = nvrtc_compile(lib, _compile.source(filename), opts)
        assert status == 0 and 'warning' not in log, (filename, opts, log)


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
        for name, params in re.findall(
                r'extern "C" __global__ void (\w+)\((.*?)\)\s*\{', text,
                re.S):
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
        threads = {'seed_pick': _compile.PICK, 'uniforms': 128}.get(
            name, _compile.THREADS)
        assert block == (threads,), (name, block)
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
                           (2, 1), (1, 0), True)
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
        Device=_compile.cupy.cuda.Device))
    totals = {}
    x = numpy.random.RandomState(0).randn(4, 5, 9).astype(numpy.float32)
    with _compile.timed_launches(totals):
        cuda.bn.forward(x, numpy.ones(5, numpy.float32),
                        numpy.zeros(5, numpy.float32), 2e-5)
    cuda.bn.forward(x, numpy.ones(5, numpy.float32),
                    numpy.zeros(5, numpy.float32), 2e-5)  # not timed
    assert totals == {'bn_stats': [1.0, 1], 'bn_output': [1.0, 1]}
    assert _compile._timings is None
