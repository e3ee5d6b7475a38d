"""The CUDA kernels' numbers on the CPU, through tests/cuda_emulator.py.

The kernels run on a CPU stand-in for the CUDA execution model (g++;
skipped without it), at shapes small enough for it, through the same
checks as tests/test_gpu.py runs on a GPU (tests/kernel_cases.py).
"""
import numpy
import pytest

from mixnorm import cuda

import cuda_emulator
from kernel_cases import (check_fit, check_function,
                          check_kmeans_em, check_kmeans_pp, check_uniforms)

pytestmark = pytest.mark.skipif(cuda_emulator.compiler() is None,
                                reason='no C++ compiler')
EMULATED = cuda_emulator.backend()
DTYPES = [numpy.float32, numpy.float64]


@pytest.fixture(autouse=True)
def every_test_emulated(emulated):
    return emulated


def test_device_uniforms():
    check_uniforms(EMULATED, cuda.random.DeviceUniforms(), big=20000)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('k, m, d', [(1, 7, 3), (2, 2, 5), (3, 300, 8),
                                     (4, 64, 40)])
def test_kmeans_pp_picks_the_same_rows(dtype, k, m, d):
    check_kmeans_pp(EMULATED, dtype, k, m, d)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('k, m, d', [(1, 500, 3), (3, 200, 40),
                                     (5, 600, 3)])
def test_kmeans_em_responsibilities_match(dtype, k, m, d):
    check_kmeans_em(EMULATED, dtype, k, m, d)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('k, m, d, em_iter', [
    (1, 500, 3, 1), (2, 2, 40, 2), (3, 400, 20, 2), (4, 300, 12, 1),
    (5, 5, 7, 4),
    (3, 5000, 5, 2)])  # grid-stride rows, several k-means++ rows a thread
def test_fit_matches_numpy(dtype, k, m, d, em_iter):
    if em_iter == 1 and k > 1 and dtype == numpy.float32:
        pytest.skip('the GMM starts at the seeds, and float32 centring '
                    'rounds the D^2 weights differently in the two paths')
    check_fit(EMULATED, dtype, k, m, d, em_iter)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape, k', [((5, 3), 5), ((4, 40, 1, 1), 2),
                                      ((16, 3, 4, 4), 4), ((3, 7, 2, 5), 1),
                                      ((8, 2, 40, 40), 3)])  # 4 slices
def test_function_matches_numpy(dtype, shape, k):
    check_function(EMULATED, dtype, shape, k)



@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape', [(4, 3), (4, 3, 5), (1, 2, 6)])
def test_queue_push(dtype, shape):
    rng = numpy.random.RandomState(0)
    queue = rng.randn(*shape).astype(dtype)
    value = rng.randn(*shape[1:])
    out = cuda.mn.push(queue, value)
    want = numpy.concatenate([queue[1:], value[None].astype(dtype)])
    numpy.testing.assert_array_equal(out, want)
    assert out.dtype == dtype


def test_the_link_pushes_its_statistics(monkeypatch):
    from mixnorm import MixtureNormalization
    link = MixtureNormalization(3, n_components=2, queue_length=3,
                                check_finite=False)
    x = numpy.random.RandomState(0).randn(8, 3, 2, 2).astype(numpy.float32)
    seen = []
    push = cuda.mn.push
    monkeypatch.setattr(cuda.mn, 'push', lambda q, v: seen.append(
        numpy.array(v)) or push(q, v))
    for _ in range(2):
        link(x)
    assert len(seen) == 6 and link.n_fits == 2
    numpy.testing.assert_array_equal(link.queue_weights[1:],
                                     numpy.stack([seen[0], seen[3]]))
    numpy.testing.assert_array_equal(link.queue_variances[-1], seen[5])
    assert (link.queue_variances[0] == 1).all()  # the initial entry


def test_kernels_stay_in_bounds_under_address_sanitizer():
    """Some of this module's checks, the BN, convolution and pooling ones,
    with the kernels built with -fsanitize=address and libasan preloaded:
    a kernel that reads or writes outside a NumPy buffer aborts them."""
    import os
    import subprocess
    import sys
    asan = subprocess.run([cuda_emulator.compiler(),
                           '-print-file-name=libasan.so'],
                          capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(asan) or not os.path.exists(asan):
        pytest.skip('no libasan')
    env = dict(os.environ, LD_PRELOAD=asan,
               MIXNORM_EMULATOR_FLAGS='-fsanitize=address',
               ASAN_OPTIONS='detect_leaks=0:detect_stack_use_after_return=0')
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-k', 'float32 and (fit or function or kernels_match or '
         'transposed or kmeans_pp or pooling_matches or to_rows or '
         'swap01) or queue',
         os.path.join(here, 'test_cuda_emulated.py'),
         os.path.join(here, 'test_batch_normalization.py'),
         os.path.join(here, 'test_convolution.py'),
         os.path.join(here, 'test_pooling.py')],
        env=env, capture_output=True, text=True, cwd=os.path.dirname(here))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'AddressSanitizer' not in done.stderr
    ran = int(done.stdout.split(' passed')[0].split()[-1])
    assert ran >= 20, done.stdout[-1000:]


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape', [(3, 5, 4, 4), (2, 40, 7, 9),
                                   (1, 33, 1, 1), (4, 3, 70)])
def test_activations_to_rows(dtype, shape):
    from mixnorm.functions import to_rows
    x = numpy.random.RandomState(0).randn(*shape).astype(dtype)
    rows = to_rows(x)
    want = numpy.moveaxis(x, 1, -1).reshape(-1, shape[1])
    numpy.testing.assert_array_equal(rows, want)
    assert rows.flags.c_contiguous
    assert cuda_emulator.launched() == ['nchw_to_rows']


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape', [(3, 4, 5), (5, 2, 1), (1, 7, 33)])
def test_swap01(dtype, shape):
    rng = numpy.random.RandomState(0)
    src = rng.randn(*shape).astype(dtype)
    bias = rng.randn(shape[0]).astype(dtype)
    numpy.testing.assert_array_equal(cuda.layout.swap01(src),
                                     src.transpose(1, 0, 2))
    numpy.testing.assert_array_equal(cuda.layout.swap01(src, bias),
                                     src.transpose(1, 0, 2) + bias[:, None])
