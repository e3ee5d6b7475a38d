"""The CUDA kernels' numbers on the CPU, through
tests/support/cuda_emulator.py.

The kernels run on a CPU stand-in for the CUDA execution model (g++;
skipped without it), at shapes small enough for it, through the same
checks as tests/mixnorm/test_gpu.py runs on a GPU
(tests/support/kernel_cases.py).
"""
import numpy
import pytest

from mixnorm import cuda

import cuda_emulator
from kernel_cases import (check_fit, check_function,
                          check_kmeans_em, check_kmeans_pp, check_uniforms)
from tinydata import ROOT

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
    want = numpy.concatenate([queue[1:], value[None].astype(dtype)])
    out = cuda.mn.push(queue, value)
    assert out is queue  # in place: a captured graph keeps the link's queue
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
    and the NaN, Inf and overflow inputs, with the kernels built with
    -fsanitize=address and libasan preloaded: a kernel that reads or
    writes outside a NumPy buffer aborts them."""
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
         'swap01) or queue or bad_input or overflowing_fit',
         os.path.join(here, 'test_cuda_emulated.py'),
         os.path.join(here, 'test_batch_normalization.py'),
         os.path.join(here, 'test_convolution.py'),
         os.path.join(here, 'test_pooling.py')],
        env=env, capture_output=True, text=True, cwd=ROOT)
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


# ------------------------------------------- NaN, Inf and overflow flags
def _bad_input(kind):
    """A (4, 8, 4, 4) float32 batch with a NaN, an Inf, or values whose
    float32 squares overflow; and a good one."""
    from kernel_cases import blobs
    good = blobs(64, 8, 3, numpy.float32).reshape(4, 8, 4, 4)
    bad = good.copy()
    if kind == 'overflow':
        bad *= numpy.float32(1e20)
    else:
        bad[1, 2, 0, 1] = numpy.nan if kind == 'nan' else numpy.inf
    return good, bad


@pytest.mark.filterwarnings('ignore::RuntimeWarning')
@pytest.mark.parametrize('kind', ['nan', 'inf', 'overflow'])
@pytest.mark.parametrize('link', ['mn', 'bn'])
def test_bad_input_is_reported_later_naming_the_link(link, kind):
    """The GPU's deferred report: the statistics kernel sets the link's
    device flag, a later call raises naming the link, then the flag is
    clear.  BN's overflow needs 1e30: its sums are in double."""
    import chainer
    import mixnorm
    good, bad = _bad_input(kind)
    if kind == 'overflow' and link == 'bn':
        bad = good * numpy.float32(1e30)
    model = chainer.Chain()
    with model.init_scope():
        model.norm3 = (mixnorm.MixtureNormalization(8) if link == 'mn'
                       else mixnorm.BatchNormalization(8))
    model.norm3(cuda_emulator.device_array(bad))  # no error yet
    with pytest.raises(ValueError, match='norm3.*earlier.*NaN or Inf'):
        model.norm3(cuda_emulator.device_array(good))
    model.norm3(cuda_emulator.device_array(good))  # the flag was cleared
    model.norm3(cuda_emulator.device_array(bad))
    with pytest.raises(ValueError, match='norm3.*NaN or Inf.*overflow'):
        model.norm3.check_finite_now()
    model.norm3.check_finite_now()


@pytest.mark.filterwarnings('ignore::RuntimeWarning')
@pytest.mark.parametrize('kind', ['nan', 'inf', 'overflow'])
def test_mn_bad_input_raises_at_once_on_numpy(kind):
    """The NumPy path reports the same inputs in the call itself."""
    from mixnorm import MixtureNormalization
    good, bad = _bad_input(kind)
    mn = MixtureNormalization(8)
    with cuda_emulator.kernels_off():
        with pytest.raises(ValueError, match='this training step'):
            mn(bad)
    assert mn.n_fits == 0


@pytest.mark.filterwarnings('ignore::RuntimeWarning')
@pytest.mark.parametrize('kind', ['nan', 'inf', 'overflow'])
def test_overflowing_fit_gives_nan_not_a_flat_layer(kind):
    """Pruning keeps a NaN mean posterior: the posteriors of a fit whose
    statistics overflowed are NaN on both paths (never all components
    dropped, which made the layer output beta), and mn_stats flags them."""
    from mixnorm import gmm
    from mixnorm.functions import to_rows
    _, bad = _bad_input(kind)
    rows = to_rows(bad)
    _, resp = gmm.fit(rows, 3, 2)
    with cuda_emulator.kernels_off():
        _, ref = gmm.fit(rows, 3, 2)
    assert numpy.isnan(ref).any() and numpy.isnan(resp).any()
    assert not (resp == 0).all(1).any()  # no row lost every component
    flag = cuda_emulator.device_array(numpy.zeros(1, numpy.int32))
    gamma, beta = numpy.ones(8, numpy.float32), numpy.zeros(8, numpy.float32)
    y, _, _, _, _ = cuda.mn.forward(bad.reshape(4, 8, 16), gamma, beta,
                                    resp, 2e-5, flag)
    assert flag[0] == 1
    good_resp = numpy.full_like(resp, 1 / 3.)
    flag[0] = 0
    cuda.mn.forward(_bad_input(kind)[0].reshape(4, 8, 16), gamma, beta,
                    good_resp, 2e-5, flag)
    assert flag[0] == 0


# ------------------------------------------------ the emulator's modes
PROBE = r'''
extern "C" __global__ void probe(unsigned int* count, unsigned int* blocks,
                                 unsigned int* threads, unsigned int* junk,
                                 const float* abc, float* fma) {
    __shared__ unsigned int unset;  // read before this launch writes it
    if (threadIdx.x == 0) blocks[atomicAdd(count, 1u)] = blockIdx.x;
    if (blockIdx.x == 0) {
        threads[atomicAdd(count + 1, 1u)] = threadIdx.x;
        if (threadIdx.x == 0) {
            junk[0] = unset;
            unset = 1;
            fma[0] = abc[0] * abc[1] + abc[2];
        }
    }
}
'''


@pytest.mark.parametrize('mode', sorted(cuda_emulator.MODES))
def test_each_mode_does_what_it_says(monkeypatch, mode):
    """A probe kernel records the order of blocks and of a block's
    threads, a __shared__ value read before it is written, and a * b + c
    for a = b = 1 + 2^-20 and c = -(1 + 2^-19): 0 when the product is
    rounded first, 2^-40 when contracted to an FMA."""
    if mode == 'fma' and 'fma' not in open('/proc/cpuinfo').read():
        pytest.skip('this CPU has no FMA')
    monkeypatch.setenv('MIXNORM_EMULATOR_MODE', mode)
    fn = cuda_emulator.EmulatedModule(PROBE).get_function('probe')
    count = numpy.zeros(2, numpy.uint32)
    blocks = numpy.zeros(64, numpy.uint32)
    threads = numpy.zeros(64, numpy.uint32)
    junk = numpy.zeros(1, numpy.uint32)
    abc = numpy.array([1 + 2 ** -20, 1 + 2 ** -20, -(1 + 2 ** -19)],
                      numpy.float32)
    fma = numpy.zeros(1, numpy.float32)
    fn((64,), (64,), (count, blocks, threads, junk, abc, fma))
    order = numpy.arange(64)
    want = {'reversed': order[::-1]}.get(mode, order)
    if mode == 'shuffled':
        for seen in (blocks, threads):
            assert sorted(seen) == list(order) and \
                not (seen == order).all()
    else:
        numpy.testing.assert_array_equal(blocks, want)
        numpy.testing.assert_array_equal(threads, want)
    assert junk[0] == (0xFFFFFFFF if mode == 'poisoned' else 0)
    assert fma[0] == (2.0 ** -40 if mode == 'fma' else 0)
    empty = cuda_emulator.fake_cupy().empty(3, numpy.int64)
    assert (empty.view(numpy.uint8) ==
            (cuda_emulator.JUNK if mode == 'poisoned' else 0)).all()


@pytest.mark.parametrize('mode', sorted(set(cuda_emulator.MODES)
                                        - {'default'}))
def test_kernel_suite_passes_in_every_mode(mode):
    """The emulated kernel checks (this module's, and the BN, convolution
    and pooling ones) in each adversarial mode, in a process of their
    own."""
    import os
    import subprocess
    import sys
    if mode == 'fma' and 'fma' not in open('/proc/cpuinfo').read():
        pytest.skip('this CPU has no FMA')
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-k', 'not sanitizer and not every_mode and not each_mode',
         os.path.join(here, 'test_cuda_emulated.py'),
         os.path.join(here, 'test_batch_normalization.py'),
         os.path.join(here, 'test_convolution.py'),
         os.path.join(here, 'test_pooling.py')],
        env=dict(os.environ, MIXNORM_EMULATOR_MODE=mode),
        capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = int(done.stdout.split(' passed')[0].split()[-1])
    assert ran >= 100, done.stdout[-1000:]


# ------------------------------------------- channel grid and counters
def test_arrival_counters_are_made_once_outside_a_capture(monkeypatch):
    from mixnorm.cuda import _compile
    stream = _compile.cupy.cuda.get_current_stream()
    monkeypatch.setattr(stream, 'is_capturing', lambda: True)
    with pytest.raises(RuntimeError, match='inside a CUDA graph capture'):
        _compile.channel_counters()
    monkeypatch.setattr(stream, 'is_capturing', lambda: False)
    counters = _compile.channel_counters()
    assert counters.size == _compile.MAX_CHANNELS == 65535
    x = numpy.random.RandomState(0).randn(4, 3, 50).astype(numpy.float32)
    one = numpy.ones(3, numpy.float32)
    cuda.bn.forward(x, one, one, 2e-5)
    monkeypatch.setattr(stream, 'is_capturing', lambda: True)
    assert _compile.channel_counters() is counters  # kept, and reset
    assert not counters.any()


def test_more_channels_than_the_grid_take_the_generic_code():
    import chainer
    import mixnorm
    from mixnorm.batch_normalization import implementation
    from mixnorm.cuda import _compile
    with pytest.raises(ValueError, match='at most 65535'):
        _compile.channel_grid(2, 65536, 1)
    x = numpy.random.RandomState(0).randn(2, 65536).astype(numpy.float32)
    link = mixnorm.BatchNormalization(65536)
    assert implementation(link, x) is None
    assert implementation(mixnorm.BatchNormalization(65535),
                          x[:, :65535]) is cuda.bn
    link(x)  # Chainer's code
    assert 'bn_stats' not in cuda_emulator.launched()
    gamma, beta = (numpy.ones(65536, numpy.float32),
                   numpy.zeros(65536, numpy.float32))
    resp = numpy.ones((2, 1), numpy.float32)
    y = mixnorm.mixture_normalization(chainer.Variable(x), gamma, beta, resp)
    assert 'mn_stats' not in cuda_emulator.launched()
    with cuda_emulator.kernels_off():
        ref = mixnorm.mixture_normalization(x, gamma, beta, resp)
    numpy.testing.assert_array_equal(y.array, ref.array)
