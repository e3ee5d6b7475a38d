"""mixnorm.Convolution2D: Chainer's link, as GEMMs where they apply.  The
kernel path runs on the CPU emulator (tests/support/cuda_emulator.py,
with NumPy's matmul for cuBLAS) against Chainer's link on NumPy;
tests/mixnorm/test_gpu.py repeats the comparison on a GPU.  The NumPy path
(mixnorm.cpu.conv) is compared with Chainer's link on NumPy at the end."""
import io

import numpy
import pytest

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import gradient_check

import mixnorm
from mixnorm import Convolution2D, Deconvolution2D, cpu, cuda
from mixnorm.convolution import Convolution2DFunction, implementation

import cuda_emulator
from cuda_emulator import launched
from kernel_cases import assert_close, check_convolution

EMULATED = cuda_emulator.backend()
DTYPES = [numpy.float32, numpy.float64]




@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad, nobias', [
    ((2, 3, 8, 8), 4, (5, 5), 1, 2, True),      # the CIFAR CNN's conv1
    ((3, 2, 7, 9), 5, (3, 2), (2, 1), (1, 0), False),
    ((2, 4, 5, 5), 3, (1, 1), 1, 0, False),     # 1x1
    ((1, 2, 4, 4), 2, (3, 3), 2, 3, True),      # padding beyond the kernel
    ((2, 3, 6, 6), 2, (6, 6), 1, 0, False),     # one output position
])
def test_kernels_match_chainer(emulated, dtype, x_shape, out, ksize, stride,
                               pad, nobias):
    check_convolution(EMULATED, dtype, x_shape, out, ksize, stride, pad,
                      nobias)
    assert launched() == ['im2col', 'swap01', 'swap01', 'im2col', 'col2im']


def test_gradient_check_float64(emulated):
    rng = numpy.random.RandomState(0)
    x, W, b = rng.randn(2, 2, 5, 4), rng.randn(3, 2, 3, 2), rng.randn(3)

    def f(x, W, b):
        return Convolution2DFunction((2, 1), (1, 1), False,
                                     cuda.conv).apply((x, W, b))[0]

    y = f(x, W, b)
    gradient_check.check_backward(f, (x, W, b), rng.randn(*y.shape),
                                  eps=1e-3, atol=1e-6, rtol=1e-5)


def test_only_the_needed_gradients(emulated):
    link = Convolution2D(2, 3, 3, pad=1)
    x = numpy.ones((2, 2, 4, 4), numpy.float32)
    y = link(x)  # x is no Variable: no gx, no col2im
    F.sum(y).backward()
    assert launched() == ['im2col', 'swap01', 'swap01', 'im2col']
    assert link.W.grad is not None and link.b.grad is not None


def test_which_calls_take_the_kernels(emulated, monkeypatch):
    def uses_kernels(link, x):
        return implementation(link, x) is cuda.conv

    x = numpy.ones((2, 3, 6, 6), numpy.float32)
    assert uses_kernels(Convolution2D(3, 4, 3), x)
    assert not uses_kernels(Convolution2D(3, 4, 3), x.astype(numpy.float64))
    assert not uses_kernels(Convolution2D(3, 4, 3, dilate=2), x)
    assert not uses_kernels(Convolution2D(3, 6, 3, groups=3), x)
    assert not uses_kernels(Convolution2D(3, 4, 7), x)  # no output
    monkeypatch.setattr(cuda, 'conv_kernels', False)
    assert not uses_kernels(Convolution2D(3, 4, 3), x)
    monkeypatch.setattr(cuda, 'conv_kernels', True)
    monkeypatch.setattr(chainer.backends.cuda, 'cudnn_enabled', True)
    monkeypatch.setattr(chainer, 'should_use_cudnn',
                        lambda level, lowest_version=0: True)
    assert not uses_kernels(Convolution2D(3, 4, 3), x)


def test_lazy_initialization_and_double_backprop(emulated):
    x = chainer.Variable(numpy.random.RandomState(0).randn(2, 2, 4, 4))
    with chainer.using_config('dtype', numpy.float64):
        link = Convolution2D(None, 3, 3, pad=1)
        y = link(x)
    assert link.W.shape == (3, 2, 3, 3) and 'im2col' in launched()
    gx, = chainer.grad([F.sum(y * y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='MIXNORM_CONV=chainer'):
        F.sum(gx).backward()


def test_npz_round_trip_with_chainers_link():
    a = Convolution2D(2, 3, 3)
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, a)
    buf.seek(0)
    b = L.Convolution2D(2, 3, 3)
    chainer.serializers.load_npz(buf, b)
    numpy.testing.assert_array_equal(a.W.array, b.W.array)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad, nobias', [
    ((2, 6, 4, 4), 3, (4, 4), 2, 1, False),     # the DCGAN generator's
    ((2, 3, 5, 6), 2, (3, 3), 1, 1, True),
    ((1, 2, 3, 2), 4, (3, 2), (2, 3), (0, 1), False),
])
def test_transposed_kernels_match_chainer(emulated, dtype, x_shape, out,
                                          ksize, stride, pad, nobias):
    check_convolution(EMULATED, dtype, x_shape, out, ksize, stride, pad,
                      nobias, transposed=True)
    assert launched() == ['swap01', 'col2im', 'im2col', 'swap01', 'swap01']


def test_transposed_gradient_check_float64(emulated):
    rng = numpy.random.RandomState(0)
    x, W, b = rng.randn(2, 3, 3, 2), rng.randn(3, 2, 3, 2), rng.randn(2)

    def f(x, W, b):
        return Convolution2DFunction((2, 1), (1, 0), True,
                                     cuda.conv).apply((x, W, b))[0]

    y = f(x, W, b)
    assert y.shape == (2, 2, 5, 3)
    gradient_check.check_backward(f, (x, W, b), rng.randn(*y.shape),
                                  eps=1e-3, atol=1e-6, rtol=1e-5)


def test_transposed_with_another_outsize_is_chainers(emulated):
    x = numpy.ones((2, 3, 4, 4), numpy.float32)
    assert implementation(Deconvolution2D(3, 2, 4, 2, 1), x) is cuda.conv
    assert implementation(Deconvolution2D(3, 2, 4, 2, 1, outsize=(8, 8)),
                          x) is cuda.conv
    assert implementation(Deconvolution2D(3, 2, 4, 2, 1, outsize=(9, 9)),
                          x) is None


# --------------------------------------------------------- the NumPy path
# (input shape, out, ksize, stride, pad, nobias)
NUMPY_CONVS = [
    ((2, 3, 8, 8), 4, (5, 5), 1, 2, True),      # the CIFAR CNN's conv1
    ((2, 16, 4, 4), 8, (3, 3), 1, 1, True),     # its conv4
    ((3, 2, 7, 9), 5, (3, 2), (2, 1), (1, 0), False),
    ((2, 4, 5, 5), 3, (1, 1), 1, 0, False),     # 1x1
    ((2, 4, 5, 5), 3, (1, 1), 2, 0, True),      # 1x1, strided
    ((1, 2, 4, 4), 2, (3, 3), 2, 3, True),      # padding beyond the kernel
    ((2, 3, 6, 6), 2, (6, 6), 1, 0, False),     # one output position
    ((2, 3, 8, 8), 16, (3, 3), 1, 1, False),    # the DCGAN critic's c0_0
    ((2, 16, 8, 8), 8, (4, 4), 2, 1, False),    # ... and c0_1
]
NUMPY_DECONVS = [
    ((2, 16, 4, 4), 8, (4, 4), 2, 1, False),    # the DCGAN generator's
    ((2, 8, 8, 8), 3, (3, 3), 1, 1, False),     # dc1..3 and dc4
    ((2, 3, 5, 6), 2, (3, 3), 1, 1, True),
    ((1, 2, 3, 2), 4, (3, 2), (2, 3), (0, 1), False),
    ((2, 4, 3, 3), 3, (1, 1), 1, 0, True),      # 1x1
]


def both_links(dtype, x_shape, out, ksize, stride, pad, nobias,
               transposed=False, seed=0):
    """The output and gradients (y, gx, gW[, gb]) of Chainer's link and of
    mixnorm's on NumPy, same parameters, input and gy; and mixnorm's
    output Variable."""
    rng = numpy.random.RandomState(seed)
    x = rng.randn(*x_shape).astype(dtype)
    w_shape = (x_shape[1], out) if transposed else (out, x_shape[1])
    W = rng.randn(*(w_shape + ksize)).astype(dtype)
    b = None if nobias else rng.randn(out).astype(dtype)
    name = 'Deconvolution2D' if transposed else 'Convolution2D'
    results = []
    for module in (L, mixnorm):
        with chainer.using_config('dtype', dtype):
            link = getattr(module, name)(
                x_shape[1], out, ksize, stride=stride, pad=pad,
                nobias=nobias, initialW=W, initial_bias=b)
        link.cleargrads()
        xv = chainer.Variable(x.copy())
        y = link(xv)
        y.grad = numpy.random.RandomState(seed + 1).randn(
            *y.shape).astype(dtype)
        y.backward()
        results.append([y.array, xv.grad, link.W.grad] + (
            [] if nobias else [link.b.grad]))
    return results[0], results[1], y


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad, nobias',
                         NUMPY_CONVS)
def test_numpy_path_equals_chainer(dtype, x_shape, out, ksize, stride, pad,
                                   nobias):
    ref, got, y = both_links(dtype, x_shape, out, ksize, stride, pad, nobias)
    assert type(y.creator) is Convolution2DFunction
    assert y.creator.backend is cpu.conv
    for i, (a, g) in enumerate(zip(ref, got)):
        assert_close(g, a, dtype, 'output {}'.format(i))


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad, nobias',
                         NUMPY_DECONVS)
def test_numpy_deconvolution_equals_chainer(dtype, x_shape, out, ksize,
                                            stride, pad, nobias):
    ref, got, y = both_links(dtype, x_shape, out, ksize, stride, pad, nobias,
                             transposed=True)
    assert y.creator.backend is cpu.conv and y.creator.transposed
    for i, (a, g) in enumerate(zip(ref, got)):
        assert_close(g, a, dtype, 'output {}'.format(i))


@pytest.mark.parametrize('transposed, x_shape, w_shape, stride, pad', [
    (False, (2, 2, 5, 4), (3, 2, 3, 2), (2, 1), (1, 1)),
    (False, (2, 3, 4, 4), (2, 3, 1, 1), (1, 1), (0, 0)),
    (True, (2, 3, 3, 2), (3, 2, 3, 2), (2, 1), (1, 0)),
    (True, (1, 2, 2, 2), (2, 3, 4, 4), (2, 2), (1, 1)),
])
def test_numpy_gradient_check_float64(transposed, x_shape, w_shape, stride,
                                      pad):
    rng = numpy.random.RandomState(0)
    x, W = rng.randn(*x_shape), rng.randn(*w_shape)
    b = rng.randn(w_shape[1] if transposed else w_shape[0])

    def f(x, W, b):
        return Convolution2DFunction(stride, pad, transposed,
                                     cpu.conv).apply((x, W, b))[0]

    y = f(x, W, b)
    gradient_check.check_backward(f, (x, W, b), rng.randn(*y.shape),
                                  eps=1e-3, atol=1e-8, rtol=1e-7)


def test_numpy_path_choice(monkeypatch):
    x = numpy.ones((2, 3, 6, 6), numpy.float32)
    assert implementation(Convolution2D(3, 4, 3), x) is cpu.conv
    assert implementation(Deconvolution2D(3, 4, 3), x) is cpu.conv
    assert implementation(Convolution2D(3, 4, 3), x.astype(
        numpy.float64)) is None  # not the parameters' dtype
    assert implementation(Convolution2D(3, 4, 3), x.astype(
        numpy.float16)) is None
    assert implementation(Convolution2D(3, 4, 3, dilate=2), x) is None
    assert implementation(Convolution2D(3, 6, 3, groups=3), x) is None
    assert implementation(Convolution2D(3, 4, 7), x) is None  # no output
    assert implementation(Deconvolution2D(3, 2, 4, 2, 1, outsize=(13, 13)),
                          x) is None
    monkeypatch.setattr(chainer.backends.intel64, 'should_use_ideep',
                        lambda level: True)
    assert implementation(Convolution2D(3, 4, 3), x) is None


def test_the_switch_gives_chainers_convolution_on_numpy(monkeypatch):
    """MIXNORM_CONV=chainer (mixnorm.cuda.conv_kernels = False) governs the
    NumPy path too: Chainer's own function node, the same numbers."""
    x = numpy.random.RandomState(0).randn(2, 3, 6, 6).astype(numpy.float32)
    link = Convolution2D(3, 4, 3, pad=1)
    ours = link(x)
    monkeypatch.setattr(cuda, 'conv_kernels', False)
    assert implementation(link, x) is None
    theirs = link(x)
    assert type(theirs.creator) is not Convolution2DFunction
    assert type(theirs.creator).__module__.startswith('chainer.')
    assert_close(ours.array, theirs.array, numpy.float32, 'y')


def test_numpy_path_computes_only_the_needed_gradients(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu.conv, 'col2im', lambda *a, **k: calls.append(
        'col2im'))
    link = Convolution2D(2, 3, 3, pad=1)
    y = link(numpy.ones((2, 2, 4, 4), numpy.float32))  # no gx wanted
    F.sum(y).backward()
    assert calls == [] and link.W.grad is not None
    assert link.b.grad is not None


def test_numpy_path_double_backprop_raises():
    x = chainer.Variable(numpy.random.RandomState(0).randn(2, 2, 4, 4))
    with chainer.using_config('dtype', numpy.float64):
        link = Convolution2D(None, 3, 3, pad=1)  # lazily initialised
        y = link(x)
    assert link.W.shape == (3, 2, 3, 3) and y.creator.backend is cpu.conv
    gx, = chainer.grad([F.sum(y * y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='MIXNORM_CONV=chainer'):
        F.sum(gx).backward()


@pytest.mark.parametrize('chunk', [1, 2])
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('transposed, case', [
    (False, NUMPY_CONVS[0]), (False, NUMPY_CONVS[2]),
    (True, NUMPY_DECONVS[0]), (True, NUMPY_DECONVS[3])])
def test_numpy_path_split_over_threads_and_chunks(monkeypatch, transposed,
                                                  case, dtype, chunk):
    """The same results, to the tolerance of one call, with the batch (7
    samples) cut into chunks of ``chunk`` samples split over 3 threads:
    gW and gb summed over the chunks, every chunk's buffers reused."""
    from mixnorm.cpu import parallel
    case = ((7,) + case[0][1:],) + case[1:]
    ref, _, _ = both_links(dtype, *case, transposed=transposed)
    monkeypatch.setattr(parallel, 'MIN_ELEMENTS', 1)
    monkeypatch.setattr(parallel, 'threads', 3)
    (_, c, h, w), out, (kh, kw), stride, pad = case[:5]
    if transposed:  # col: (H W, KH KW out) per sample
        col_per_sample = h * w * kh * kw * out
    else:           # col: (OH OW, KH KW C) per sample
        stride, pad = numpy.broadcast_to(stride, 2), numpy.broadcast_to(
            pad, 2)
        col_per_sample = kh * kw * c * cpu.conv.out_size(
            h, kh, stride[0], pad[0]) * cpu.conv.out_size(
                w, kw, stride[1], pad[1])
    monkeypatch.setattr(cpu.conv, 'CHUNK', chunk * col_per_sample)
    pers = []
    over_chunks = parallel.over_chunks
    monkeypatch.setattr(parallel, 'over_chunks', lambda fn, n, per, *a: (
        pers.append(per), over_chunks(fn, n, per, *a))[1])
    _, got, _ = both_links(dtype, *case, transposed=transposed)
    assert set(pers) == {chunk}
    for i, (a, g) in enumerate(zip(ref, got)):
        assert_close(g, a, dtype, 'output {}'.format(i))
