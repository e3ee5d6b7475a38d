"""The CuPy kernel path against the NumPy reference, and its sync-freedom.

Skipped without CuPy or a CUDA device.  Shapes cover the corners of the
ranges the kernels serve (K = 1..5, D = 3..1024, m = K..65536) sparsely to
keep the module short.
"""
import chainer
import chainer.functions as F
import numpy
import pytest

import mixnorm
from mixnorm import cuda, GMM, MixtureNormalization, gmm
from mixnorm import mixture_normalization

from kernel_cases import (Backend, TOL, blobs, check_batch_normalization,
                          check_convolution, check_pooling,
                          check_fit, check_function,
                          check_kmeans_em, check_kmeans_pp, check_uniforms,
                          uniforms_reference)

cupy = pytest.importorskip('cupy')


def _has_device():
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, or a driver too old for this CuPy
        return False


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not _has_device(), reason='no CUDA device')]


@pytest.fixture(autouse=True)
def kernel_path(monkeypatch):
    """Every test here runs the kernels (even with MIXNORM_KERNELS=0)."""
    monkeypatch.setattr(cuda, 'enabled', True)


GPU = Backend(cupy, cupy.asarray, cupy.asnumpy, device='@cupy:0')


# ------------------------------------------------------- random numbers
def test_device_uniforms():
    check_uniforms(GPU, cuda.random.DeviceUniforms())


def test_device_uniforms_advance_inside_a_graph():
    gen = cuda.random.DeviceUniforms()
    gen.seed(1)
    gen.random_sample(4)  # compile
    stream = capture_stream()
    with stream:
        stream.begin_capture()
        try:
            out = gen.random_sample(4)
        finally:
            graph = stream.end_capture()
        draws = []
        for _ in range(2):
            graph.launch(stream)
            stream.synchronize()
            draws.append(cupy.asnumpy(out))
    numpy.testing.assert_array_equal(draws[0], uniforms_reference(1, 4, 4))
    numpy.testing.assert_array_equal(draws[1], uniforms_reference(1, 8, 4))


# ------------------------------------------------------------ GMM pieces
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('k, m, d', [(1, 7, 3), (2, 2, 5), (3, 512, 8),
                                     (5, 2000, 16), (4, 64, 1024)])
def test_kmeans_pp_picks_the_same_rows(dtype, k, m, d):
    check_kmeans_pp(GPU, dtype, k, m, d)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('k, m, d', [(1, 65536, 3), (3, 1000, 1024),
                                     (5, 65536, 3), (2, 4096, 448)])
def test_kmeans_em_responsibilities_match(dtype, k, m, d):
    check_kmeans_em(GPU, dtype, k, m, d)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('k, m, d, em_iter', [
    (1, 65536, 3, 1), (2, 2, 1024, 2), (3, 4096, 448, 2), (4, 300, 12, 1),
    (5, 65536, 3, 8), (5, 5, 7, 4), (3, 8192, 1024, 8)])
def test_fit_matches_numpy(dtype, k, m, d, em_iter):
    if em_iter == 1 and k > 1 and dtype == numpy.float32:
        pytest.skip('the GMM starts at the seeds, and float32 centring '
                    'rounds the D^2 weights differently in the two paths')
    check_fit(GPU, dtype, k, m, d, em_iter)


def test_fit_on_a_subset_uses_distinct_rows():
    for m, n in ((10, 3), (4096, 1024), (65536, 16384), (7, 7)):
        rows = cupy.asnumpy(cuda.gmm.subset_rows(m, n, cupy.random))
        assert len(numpy.unique(rows)) == n and rows.min() >= 0 \
            and rows.max() < m
    x = cupy.asarray(blobs(4096, 16, 3, numpy.float32))
    model, resp = gmm.fit(x, 3, 2, fit_fraction=0.25)
    assert resp.shape == (4096, 3)
    numpy.testing.assert_allclose(cupy.asnumpy(resp.sum(1)), 1, rtol=1e-5)
    assert int((model.weights > 0).sum()) == 3


# ------------------------------------------- mixture normalizing function
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('shape, k', [((5, 3), 5), ((4, 1024, 1, 1), 2),
                                      ((1024, 3, 8, 8), 4),
                                      ((64, 448, 8, 8), 3), ((3, 7, 2, 5), 1)])
def test_function_matches_numpy(dtype, shape, k):
    check_function(GPU, dtype, shape, k)


@pytest.mark.parametrize('variant', [  # variants: the generic transform
    {}, dict(activation='relu'),
    dict(affine='components', weight_scaling=False)])
def test_layer_matches_numpy(variant):
    x = blobs(256 * 16, 32, 3, numpy.float32)  # rows (n, h, w), 32 channels
    x = x.reshape(256, 4, 4, 32).transpose(0, 3, 1, 2).copy()
    gy = numpy.random.RandomState(1).randn(*x.shape).astype(numpy.float32)
    outs = []
    for device in ('@numpy', '@cupy:0'):
        mn = MixtureNormalization(32, n_components=3, em_iter=2, **variant)
        mn.to_device(device)
        xv = chainer.Variable(mn.xp.asarray(x))
        y = mn(xv)
        y.grad = mn.xp.asarray(gy)
        y.backward()
        with chainer.using_config('train', False):
            yt = mn(mn.xp.asarray(x)).array
        outs.append([cupy.asnumpy(a) for a in (y.array, xv.grad,
                                               mn.gamma.grad, yt)])
    for a, b in zip(*outs):  # the output does not depend on component order
        numpy.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3)


# ------------------------------------------------------- synchronisation
# blocking: work on the legacy stream during a capture also fails
STREAM = None


def capture_stream():
    global STREAM
    if STREAM is None:
        STREAM = cupy.cuda.Stream()
    return STREAM


def capture(fn):
    """Run fn while capturing the current work into a CUDA graph.

    A host-device synchronisation inside fn (a device-to-host copy, a
    stream or device synchronise, an implicit sync with the legacy stream)
    is illegal during capture, so CUDA raises and the capture fails.
    """
    stream = capture_stream()
    with stream:
        stream.begin_capture()
        try:
            out = fn()
        finally:
            graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
    return out


def test_capture_detects_a_synchronisation():
    x = cupy.arange(10, dtype=numpy.float32)
    with pytest.raises(Exception):
        capture(lambda: float(x.sum()))
    with pytest.raises(Exception):
        capture(lambda: bool(cupy.isfinite(x).all()))
    assert float(capture(lambda: (x * 2).sum())) == 90  # async work is fine


@pytest.mark.parametrize('k, em_iter', [(1, 2), (3, 2), (5, 8)])
def test_training_forward_does_not_synchronise(k, em_iter):
    x = cupy.ascontiguousarray(cupy.asarray(blobs(
        64 * 64, 448, 3, numpy.float32).reshape(64, 8, 8, 448).transpose(
            0, 3, 1, 2)))
    mn = MixtureNormalization(448, n_components=k, em_iter=em_iter)
    mn.to_device('@cupy:0')
    with capture_stream():  # compile, allocate, warm this stream's pool
        for _ in range(2):
            mn(x)
    cupy.cuda.Device().synchronize()
    n_fits = mn.n_fits
    y = capture(lambda: mn(x))
    assert mn.n_fits == n_fits + 1
    assert bool(cupy.isfinite(y.array).all())
    if k <= 3:  # as many blobs as components: one normalisation
        ref = mn(x).array
        numpy.testing.assert_allclose(cupy.asnumpy(y.array),
                                      cupy.asnumpy(ref), rtol=1e-3,
                                      atol=1e-3)


def test_a_replayed_training_forward_moves_the_queue_in_place():
    """The queue is pushed in place, so a graph's replays push into the
    link's own queue (a new array per push left the graph writing into
    memory returned to the pool)."""
    x = cupy.ascontiguousarray(cupy.asarray(blobs(
        64 * 64, 448, 3, numpy.float32).reshape(64, 8, 8, 448).transpose(
            0, 3, 1, 2)))
    mn = MixtureNormalization(448, n_components=3, em_iter=2,
                              queue_length=3)
    mn.to_device('@cupy:0')
    stream = capture_stream()
    with stream:
        for _ in range(2):
            mn(x)
    cupy.cuda.Device().synchronize()
    queue = mn.queue_weights
    with stream:
        stream.begin_capture()
        try:
            mn(x)
        finally:
            graph = stream.end_capture()
        queue.fill(0)
        for _ in range(3):
            graph.launch(stream)
        stream.synchronize()
    assert mn.queue_weights is queue
    numpy.testing.assert_allclose(cupy.asnumpy(queue).sum(1), 1, rtol=1e-5)


def test_first_channel_launch_inside_a_capture_raises(monkeypatch):
    link = mixnorm.BatchNormalization(4)
    link.to_device('@cupy:0')
    x = cupy.random.randn(8, 4, 4, 4, dtype=numpy.float32)
    with capture_stream():
        link(x)  # compile, the flag, the counters
    cupy.cuda.Device().synchronize()
    monkeypatch.setattr(cuda._compile, '_counters', {})
    with pytest.raises(RuntimeError, match='inside a CUDA graph capture'):
        capture(lambda: link(x))
    link(x)  # eager: made now
    assert cupy.cuda.Device().id in cuda._compile._counters


def test_nonfinite_input_is_reported_later_naming_the_link():
    model = chainer.Chain()
    with model.init_scope():
        model.norm3 = MixtureNormalization(8)
    model.to_device('@cupy:0')
    good = cupy.asarray(blobs(64, 8, 3, numpy.float32).reshape(4, 8, 4, 4))
    bad = good.copy()
    bad[1, 2, 0, 1] = numpy.nan
    model.norm3(bad)  # no wait for the device: not seen yet
    cupy.cuda.Device().synchronize()
    with pytest.raises(ValueError, match='norm3.*earlier.*NaN or Inf'):
        model.norm3(good)
    model.norm3(good)  # the flag was cleared
    bad[1, 2, 0, 1] = numpy.inf
    model.norm3(bad)
    with pytest.raises(ValueError, match='norm3.*NaN or Inf'):
        model.norm3.check_finite_now()
    model.norm3.check_finite_now()
    y = model.norm3(good)
    F.sum(y).backward()


# ------------------------------------------- the default (generic) CuPy path
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_generic_cupy_path_matches_numpy(monkeypatch, dtype):
    """With the kernels off, CuPy runs the NumPy reference code itself."""
    monkeypatch.setattr(cuda, 'enabled', False)
    x = blobs(2048, 16, 3, numpy.float64)
    start = GMM(numpy.full(3, 1 / 3.), x[[0, 1000, 2000]],
                numpy.ones((3, 16)))
    ref = gmm.em(x, start, 3)
    got = gmm.em(cupy.asarray(x.astype(dtype)),
                 GMM(*(cupy.asarray(a.astype(dtype)) for a in start)), 3)
    for a, b in zip(ref, got):
        numpy.testing.assert_allclose(cupy.asnumpy(b), a, **TOL[dtype])
    rng = numpy.random.RandomState(0)
    xs = rng.randn(8, 6, 4, 4).astype(dtype)
    resp = rng.dirichlet(numpy.ones(3), 8 * 16).astype(dtype)
    gamma, beta = numpy.ones(6, dtype), numpy.zeros(6, dtype)
    y_ref = mixture_normalization(xs, gamma, beta, resp).array
    y_gpu = mixture_normalization(*(cupy.asarray(a) for a in
                                    (xs, gamma, beta, resp))).array
    numpy.testing.assert_allclose(cupy.asnumpy(y_gpu), y_ref, **TOL[dtype])
    layer = MixtureNormalization(6, dtype=dtype)
    layer.to_device('@cupy:0')
    xv = chainer.Variable(cupy.asarray(xs))
    y = layer(xv)
    F.sum(y * y).backward()
    assert bool(cupy.isfinite(xv.grad).all())
    with chainer.using_config('train', False):
        assert bool(cupy.isfinite(layer(xv).array).all())


# ------------------------------------------------ bad input, link contract
def test_overflowing_statistics_are_reported_later():
    mn = MixtureNormalization(8)
    mn.to_device('@cupy:0')
    good = cupy.asarray(blobs(64, 8, 3, numpy.float32).reshape(4, 8, 4, 4))
    mn(good * numpy.float32(1e20))  # no wait for the device: not seen yet
    cupy.cuda.Device().synchronize()
    with pytest.raises(ValueError, match='earlier.*NaN or Inf.*overflow'):
        mn(good)
    mn(good)  # the flag was cleared


def test_float16_and_recomputing_match_numpy():
    x = blobs(256, 8, 2, numpy.float32).reshape(16, 4, 4, 8)
    x = x.transpose(0, 3, 1, 2).astype(numpy.float16)
    outs = []
    for device in ('@numpy', '@cupy:0'):
        mn = MixtureNormalization(8, n_components=2)
        mn.to_device(device)
        mn.cleargrads()
        xv = chainer.Variable(mn.xp.asarray(x))
        y = F.forget(mn, xv)
        F.sum(y * y).backward()
        assert y.dtype == numpy.float16 and mn.n_fits == 1
        outs.append([cupy.asnumpy(a).astype(numpy.float32)
                     for a in (y.array, xv.grad, mn.gamma.grad)])
    for a, b in zip(*outs):
        numpy.testing.assert_allclose(b, a, rtol=1e-2, atol=1e-2)


# ------------------------------------------------ batch normalization
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('shape', [(7, 3), (64, 5, 1, 1), (3, 7, 2, 5),
                                   (256, 64, 32, 32), (64, 448, 8, 8)])
def test_batch_normalization_matches_chainer_on_cupy(dtype, shape):
    check_batch_normalization(GPU, dtype, shape)


def test_batch_normalization_forward_does_not_synchronise():
    link = mixnorm.BatchNormalization(64)
    link.to_device('@cupy:0')
    x = cupy.random.randn(256, 64, 16, 16, dtype=numpy.float32)
    with capture_stream():
        link(x)
    cupy.cuda.Device().synchronize()
    mean = link.avg_mean.copy()
    y = capture(lambda: link(x))
    assert bool(cupy.isfinite(y.array).all())
    assert not bool((link.avg_mean == mean).all())  # updated in the graph


def test_batch_normalization_reports_nonfinite_input_later():
    model = chainer.Chain()
    with model.init_scope():
        model.bn2 = mixnorm.BatchNormalization(8)
    model.to_device('@cupy:0')
    good = cupy.asarray(blobs(64, 8, 3, numpy.float32).reshape(4, 8, 4, 4))
    bad = good.copy()
    bad[1, 2, 0, 1] = numpy.nan
    model.bn2(bad)
    cupy.cuda.Device().synchronize()
    with pytest.raises(ValueError, match='bn2.*earlier.*NaN or Inf'):
        model.bn2(good)
    model.bn2(good)  # the flag was cleared
    model.bn2(good * numpy.float32(1e30))  # the variance overflows
    with pytest.raises(ValueError, match='bn2.*NaN or Inf'):
        model.bn2.check_finite_now()


# --------------------------------------------------------- convolution
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad', [
    ((256, 3, 32, 32), 64, (5, 5), 1, 2),    # the CIFAR CNN's convolutions
    ((256, 64, 16, 16), 128, (5, 5), 1, 2),
    ((64, 160, 8, 8), 12, (3, 3), 1, 1),     # DenseNet
    ((8, 32, 35, 35), 48, (3, 3), 2, 0),     # Inception, strided
    ((4, 6, 9, 7), 5, (1, 3), 1, (0, 1))])
def test_convolution_matches_chainer_on_cupy(dtype, x_shape, out, ksize,
                                             stride, pad):
    check_convolution(GPU, dtype, x_shape, out, ksize, stride, pad)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('x_shape, out, ksize, stride, pad', [
    ((64, 512, 4, 4), 256, (4, 4), 2, 1),    # the DCGAN generator's
    ((64, 64, 32, 32), 3, (3, 3), 1, 1)])
def test_deconvolution_matches_chainer_on_cupy(dtype, x_shape, out, ksize,
                                               stride, pad):
    check_convolution(GPU, dtype, x_shape, out, ksize, stride, pad,
                      transposed=True)


def test_training_step_does_not_synchronise():
    """A CIFAR CNN step (forward, backward) with MN at conv3, on the
    kernels everywhere, captured in a CUDA graph."""
    import models
    model, _ = models.build('cifar_cnn', 10, norm=dict(
        layers=['conv3'], n_components=3, em_iter=2))
    model.to_device('@cupy:0')
    x = cupy.random.randn(256, 3, 32, 32, dtype=numpy.float32)
    onehot = cupy.eye(10, dtype=numpy.float32)[cupy.arange(256) % 10]

    def step():  # cross-entropy without Chainer's host-side label count
        model.cleargrads()
        loss = -F.sum(F.log_softmax(model(x)) * onehot) / 256
        loss.backward()
        return loss

    with capture_stream():
        step()
    cupy.cuda.Device().synchronize()
    loss = capture(step)
    assert bool(cupy.isfinite(loss.array))
    assert bool(cupy.isfinite(model.conv1.conv.W.grad).all())



# -------------------------------------------------------------- pooling
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('kind, shape, ksize, stride, pad, cover_all', [
    ('max', (256, 64, 32, 32), 3, 2, 0, True),      # the CIFAR CNN's
    ('max', (128, 288, 35, 35), 3, 2, 1, False),    # Inception's
    ('average', (256, 256, 4, 4), 4, 1, 0, False),
    ('average', (64, 160, 32, 32), 2, None, 0, False)])   # DenseNet's
def test_pooling_matches_chainer_on_cupy(dtype, kind, shape, ksize, stride,
                                         pad, cover_all):
    check_pooling(GPU, dtype, shape, kind, ksize, stride, pad, cover_all)
    if kind == 'max':  # equal maxima: the first one in the window wins
        check_pooling(GPU, dtype, shape, kind, ksize, stride, pad,
                      cover_all, ties=True)
