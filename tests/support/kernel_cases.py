"""The checks of the CUDA kernels against the NumPy reference, run on a GPU
by tests/mixnorm/test_gpu.py and on the CPU emulator by
tests/mixnorm/test_cuda_emulated.py.

Each check takes a :class:`Backend`: how arrays go to the kernel path and
back, and a context in which the reference runs with the kernels off.
"""
import contextlib

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

import mixnorm
from mixnorm import GMM, gmm, mixture_normalization

# The kernels' float32 results are compared with the NumPy path run in
# float64 (the NumPy float32 path expands the quadratic forms of the
# E-step, whose rounding error would dominate); float64 with float64.
TOL = {numpy.float32: dict(rtol=1e-3, atol=1e-3),
       numpy.float64: dict(rtol=1e-9, atol=1e-9)}


# NumPy paths against Chainer or the reference: relative to the largest value
CLOSE = {numpy.float32: 1e-5, numpy.float64: 1e-12}


def assert_close(got, ref, dtype, what):
    """Same shape and dtype, within :data:`CLOSE` of ``ref``, relative to
    ``ref``'s largest value."""
    assert got.shape == ref.shape and got.dtype == ref.dtype, what
    tol = CLOSE[dtype]
    numpy.testing.assert_allclose(got, ref, rtol=tol,
                                  atol=tol * numpy.abs(ref).max(),
                                  err_msg=what)


class Backend(object):

    """Where the kernel path runs.

    Args:
        xp: the array module of kernel-path arrays.
        asarray, asnumpy: to and from that module.
        reference: a context manager factory under which the same arrays
            take the NumPy reference path (the emulator's arrays are NumPy
            arrays).
        device: the Chainer device of kernel-path links.

    """

    def __init__(self, xp, asarray, asnumpy, reference=None,
                 device='@numpy'):
        self.xp, self.asarray, self.asnumpy = xp, asarray, asnumpy
        self.reference = reference or contextlib.nullcontext
        self.device = device


class SharedUniforms(object):
    """One stream of uniforms served to both paths in the order each asks.

    The NumPy k-means++ asks ``randint(0, m)`` for the first centre and then
    ``random_sample(T)`` per centre; the kernels ask one
    ``random_sample(1 + (K - 1) T)`` and take ``floor(u_0 m)`` first.
    """

    def __init__(self, seed, xp):
        self.u = numpy.random.RandomState(seed).random_sample(4096)
        self.pos, self.xp = 0, xp

    def _take(self, n):
        out = self.u[self.pos:self.pos + n]
        self.pos += n
        return out

    def randint(self, low, high, size):
        return numpy.minimum((self._take(1) * high).astype(numpy.int64),
                             high - 1)

    def random_sample(self, size):
        return self.xp.asarray(self._take(size))


def blobs(m, d, k, dtype, seed=0, spread=40.0):
    """Well separated blobs: any sensible seeding ends in one partition."""
    rng = numpy.random.RandomState(seed)
    centers = rng.randn(k, d) * spread
    labels = numpy.sort(rng.randint(0, k, m))
    labels[:k] = numpy.arange(k)  # every blob has a point
    x = centers[labels] + rng.randn(m, d)
    return x.astype(dtype)


def match(reference, means):
    """Order of the host array ``means``' components that matches
    ``reference``'s by means."""
    ref = numpy.asarray(reference.means)
    order = [int(numpy.argmin(((means - r) ** 2).sum(1))) for r in ref]
    assert sorted(order) == list(range(len(order)))
    return order


def uniforms_reference(seed, start, n):
    """cuda.random.DeviceUniforms' numbers, computed in Python integers."""
    mask = 2 ** 64 - 1
    key = (seed * 0xd1342543de82ef95 + 0x632be59bd9b4e019) & mask
    out = []
    for i in range(start, start + n):
        z = (key + (i + 1) * 0x9e3779b97f4a7c15) & mask
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & mask
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & mask
        out.append(((z ^ (z >> 31)) >> 11) * 2.0 ** -53)
    return numpy.array(out)


# ------------------------------------------------------------ the checks
def check_uniforms(be, gen, big=200000):
    gen.seed(5)
    a = be.asnumpy(gen.random_sample(300))
    b = be.asnumpy(gen.random_sample(7))
    numpy.testing.assert_array_equal(a, uniforms_reference(5, 0, 300))
    numpy.testing.assert_array_equal(b, uniforms_reference(5, 300, 7))
    gen.seed(5)
    numpy.testing.assert_array_equal(be.asnumpy(gen.random_sample(300)), a)
    gen.seed(6)
    assert not numpy.isin(be.asnumpy(gen.random_sample(300)), a).any()
    sample = be.asnumpy(gen.random_sample(big))
    assert sample.min() >= 0 and sample.max() < 1
    counts = numpy.histogram(sample, bins=20, range=(0, 1))[0]
    assert numpy.abs(counts / (big / 20.) - 1).max() < 0.05 * (
        200000. / big) ** 0.5


def check_kmeans_pp(be, dtype, k, m, d):
    # small integers: every distance, cumulative sum and product is exact
    # in float32, so both paths must draw exactly the same candidates
    x = numpy.random.RandomState(k).randint(-3, 4, (m, d)).astype(dtype)
    with be.reference():
        ref = gmm.kmeans_pp(x, k, SharedUniforms(1, numpy))
    out = gmm.kmeans_pp(be.asarray(x), k, SharedUniforms(1, be.xp))
    numpy.testing.assert_array_equal(be.asnumpy(out), ref)


def check_kmeans_em(be, dtype, k, m, d):
    rng = numpy.random.RandomState(0)
    x = (rng.randn(m, d) * 2 + rng.randint(0, 3, (m, 1)) * 3).astype(dtype)
    init = x[rng.choice(m, k, replace=False)]
    start = GMM(rng.dirichlet(numpy.ones(k)).astype(dtype), init,
                rng.uniform(0.5, 3, (k, d)).astype(dtype))
    x64 = x.astype(numpy.float64)
    with be.reference():
        centers, labels = gmm.kmeans(x64, init.astype(numpy.float64), 3)
        ref = gmm.em(x64, GMM(*(a.astype(numpy.float64) for a in start)), 3,
                     var_floor=1e-3)
        ref_resp = gmm.responsibilities(x64, ref)
    xg = be.asarray(x)
    c_g, l_g = gmm.kmeans(xg, be.asarray(init), 3)
    assert (be.asnumpy(l_g) == labels).mean() > 0.999
    numpy.testing.assert_allclose(be.asnumpy(c_g), centers, rtol=1e-3,
                                  atol=1e-3)
    out = gmm.em(xg, GMM(*(be.asarray(a) for a in start)), 3,
                 var_floor=1e-3)
    for a, b in zip(ref, out):
        numpy.testing.assert_allclose(be.asnumpy(b), a, **TOL[dtype])
    numpy.testing.assert_allclose(
        be.asnumpy(gmm.responsibilities(xg, out)), ref_resp, **TOL[dtype])


def check_fit(be, dtype, k, m, d, em_iter):
    if em_iter == 1:  # the GMM starts at the seeds: seed exactly alike
        x = numpy.random.RandomState(2).randint(-3, 4, (m, d)).astype(dtype)
        if k > 1:
            x[:, 0] += numpy.repeat(numpy.arange(k) * 9, -(-m // k))[:m]
    else:
        x = blobs(m, d, k, dtype)
    with be.reference():
        ref, ref_resp = gmm.fit(x.astype(numpy.float64), k, em_iter,
                                rng=SharedUniforms(3, numpy))
    out, out_resp = gmm.fit(be.asarray(x), k, em_iter,
                            rng=SharedUniforms(3, be.xp))
    means = be.asnumpy(out.means)
    order = match(ref, means) if em_iter > 1 else list(range(k))
    tol = TOL[dtype]
    numpy.testing.assert_allclose(be.asnumpy(out.weights)[order],
                                  ref.weights, **tol)
    scale = numpy.abs(x).max()
    numpy.testing.assert_allclose(means[order], ref.means,
                                  rtol=tol['rtol'], atol=tol['atol'] * scale)
    numpy.testing.assert_allclose(be.asnumpy(out.variances)[order],
                                  ref.variances, **tol)
    numpy.testing.assert_allclose(be.asnumpy(out_resp)[:, order],
                                  ref_resp, **tol)


def check_function(be, dtype, shape, k):
    """mixture_normalization and its gradients, kernels vs reference."""
    rng = numpy.random.RandomState(0)
    x = (rng.randn(*shape) * 2 + 1).astype(dtype)
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.randn(c).astype(dtype)
    logits = rng.randn(x.size // c, k) * 2
    resp = numpy.exp(logits) / numpy.exp(logits).sum(1, keepdims=True)
    resp = resp.astype(dtype)
    gy = rng.randn(*shape).astype(dtype)

    def run(asarray, dt):
        xv = chainer.Variable(asarray(x.astype(dt)))
        gv = chainer.Variable(asarray(gamma.astype(dt)))
        bv = chainer.Variable(asarray(beta.astype(dt)))
        y = mixture_normalization(xv, gv, bv, asarray(resp.astype(dt)))
        y.grad = asarray(gy.astype(dt))
        y.backward()
        return [be.asnumpy(a) for a in (y.array, xv.grad, gv.grad,
                                        bv.grad)]

    with be.reference():
        ref = run(numpy.asarray, numpy.float64)
    for a, b in zip(ref, run(be.asarray, dtype)):
        numpy.testing.assert_allclose(b, a, **TOL[dtype])


def assert_within(got, ref, tol, what):
    """|got - ref| <= tol elementwise (tol an array or a scalar)."""
    err = numpy.abs(got.astype(numpy.float64) - ref)
    bad = err > tol
    if bad.any():
        i = numpy.unravel_index(numpy.argmax(err - tol), err.shape)
        raise AssertionError(
            '{}: {} of {} values off; worst at {}: got {!r}, want {!r}, '
            'tolerance {!r}'.format(what, int(bad.sum()), bad.size, i,
                                    got[i], ref[i],
                                    numpy.broadcast_to(tol, err.shape)[i]))


def unit_roundoff(dtype):
    """u = 2^-24 (float32) or 2^-53 (float64)."""
    return numpy.finfo(dtype).eps / 2


def check_batch_normalization(be, dtype, shape, check_finite=True,
                              calls=2):
    """mixnorm.BatchNormalization on the kernels against Chainer's link run
    in float64 on the reference path: ``calls`` training steps (outputs,
    gradients, running statistics), then test mode.

    Tolerance (float32): the kernels sum in double and round each result
    once, and the elementwise outputs are a few float32 operations on
    values of order 10, so 1e-5 in absolute and relative terms, whatever
    M = N * H * W.  ggamma = inv_std sum gy (x - mean) is summed about the
    mean rounded to float32, which adds up to u |mean| |gbeta| inv_std
    (u = 2^-24), four times that in the tolerance.  float64: 1e-10.
    """
    rng = numpy.random.RandomState(0)
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.randn(c).astype(dtype)
    batches = [((rng.randn(*shape) * 3 + 2).astype(dtype),
                rng.randn(*shape).astype(dtype)) for _ in range(calls)]

    def run(link, dt):
        link.to_device(be.device)
        out = []
        for x, gy in batches:
            link.cleargrads()
            xv = chainer.Variable(be.asarray(x.astype(dt)))
            y = link(xv)
            y.grad = be.asarray(gy.astype(dt))
            y.backward()
            out += [y.array, xv.grad, link.gamma.grad, link.beta.grad]
        out += [link.avg_mean, link.avg_var]
        with chainer.using_config('train', False):
            out.append(link(be.asarray(batches[0][0].astype(dt))).array)
        return [be.asnumpy(a) for a in out]

    def args(dt):
        return dict(dtype=dt, initial_gamma=gamma.astype(dt),
                    initial_beta=beta.astype(dt))

    with be.reference():
        ref = run(L.BatchNormalization(c, **args(numpy.float64)),
                  numpy.float64)
    kernels = mixnorm.BatchNormalization(c, check_finite=check_finite,
                                         **args(dtype))
    got = run(kernels, dtype)
    base = 1e-5 if dtype == numpy.float32 else 1e-10
    axes = (0,) + tuple(range(2, len(shape)))
    for i, (a, b) in enumerate(zip(ref, got)):
        tol = base + base * numpy.abs(a)
        step, which = divmod(i, 4)
        if step < calls and which == 2:  # ggamma
            x = batches[step][0].astype(numpy.float64)
            mean, var = x.mean(axes), x.var(axes)
            tol = tol + 4 * unit_roundoff(dtype) * numpy.abs(
                mean * ref[4 * step + 3]) / numpy.sqrt(var + 2e-5)
        assert_within(b, a, tol, 'output {}'.format(i))
    return kernels


def check_convolution(be, dtype, x_shape, out, ksize, stride=1, pad=0,
                      nobias=False, transposed=False):
    """mixnorm.Convolution2D (or, transposed, Deconvolution2D) on the
    kernels against Chainer's link run in float64 on the reference path:
    output and the gradients of x, W and b.

    Tolerance: an output summing K products p_i (K = C KH KW for y, out
    KH KW for gx, N times the larger spatial size for gW and gb), in any
    order and any split over blocks (cuBLAS chooses, and may split K),
    is within lam sqrt(K) u sum |p_i| of the exact sum, but for a chance
    below 2 exp(-lam^2 / 2) (Higham and Mary's probabilistic bound, for
    independent roundings; u = 2^-24 or 2^-53).  With lam = 8 that is
    1e-14 per value.  sum |p_i| is the same float64 reference run on |x|,
    |W| and |gy|, since the convolution is linear in each.
    """
    rng = numpy.random.RandomState(0)
    x = rng.randn(*x_shape).astype(dtype)
    w_shape = (x_shape[1], out) if transposed else (out, x_shape[1])
    W = rng.randn(*(w_shape + ksize)).astype(dtype)
    b = None if nobias else rng.randn(out).astype(dtype)
    name = 'Deconvolution2D' if transposed else 'Convolution2D'

    def run(module, dt, absolute=False):
        f = numpy.abs if absolute else (lambda a: a)
        with chainer.using_config('dtype', dt):  # the parameters' dtype
            link = getattr(module, name)(
                x_shape[1], out, ksize, stride=stride, pad=pad,
                nobias=nobias, initialW=f(W).astype(dt),
                initial_bias=None if nobias else f(b).astype(dt))
        link.to_device(be.device)
        xv = chainer.Variable(be.asarray(f(x).astype(dt)))
        y = link(xv)
        gy = numpy.random.RandomState(1).randn(*y.shape)
        y.grad = be.asarray(f(gy).astype(dt))
        y.backward()
        grads = [y.array, xv.grad, link.W.grad]
        return [be.asnumpy(a) for a in grads + (
            [] if nobias else [link.b.grad])]

    with be.reference():
        ref = run(L, numpy.float64)
        size = run(L, numpy.float64, absolute=True)
    got = run(mixnorm, dtype)
    taps = ksize[0] * ksize[1]
    spatial = max(numpy.prod(x_shape[2:]), numpy.prod(ref[0].shape[2:]))
    lengths = [x_shape[1] * taps, out * taps] + [x_shape[0] * spatial] * 2
    u = unit_roundoff(dtype) + unit_roundoff(numpy.float64)
    for i, (a, g) in enumerate(zip(ref, got)):
        assert a.shape == g.shape, i
        tol = 8 * numpy.sqrt(lengths[i]) * u * size[i] + 1e-300
        assert_within(g, a, tol, 'output {}'.format(i))


def check_pooling(be, dtype, shape, kind, ksize, stride=None, pad=0,
                  cover_all=True, ties=False):
    """mixnorm.max_pooling_2d (or average_pooling_2d) on the kernels
    against Chainer's function on the reference path: output and gx
    (``ties``: small integers, so that windows hold equal maxima)."""
    rng = numpy.random.RandomState(0)
    x = (rng.randint(0, 3, shape) if ties else rng.randn(*shape)).astype(
        dtype)
    args = (ksize, stride, pad) + ((cover_all,) if kind == 'max' else ())
    name = kind + '_pooling_2d'

    def run(module):
        xv = chainer.Variable(be.asarray(x))
        y = getattr(module, name)(xv, *args)
        y.grad = be.asarray(numpy.random.RandomState(1).randn(
            *y.shape).astype(dtype))
        y.backward()
        return [be.asnumpy(y.array), be.asnumpy(xv.grad)]

    with be.reference():
        ref = run(F)
    for a, b in zip(ref, run(mixnorm)):
        assert a.shape == b.shape
        numpy.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
