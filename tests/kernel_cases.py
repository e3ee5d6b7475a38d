"""The checks of the CUDA kernels against the NumPy reference, run on a GPU
by tests/test_gpu.py and on the CPU emulator by tests/test_cuda_emulated.py.

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


def check_batch_normalization(be, dtype, shape, check_finite=True,
                              calls=2):
    """mixnorm.BatchNormalization on the kernels against Chainer's link on
    the reference path: ``calls`` training steps (outputs, gradients,
    running statistics), then test mode."""
    rng = numpy.random.RandomState(0)
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.randn(c).astype(dtype)
    batches = [((rng.randn(*shape) * 3 + 2).astype(dtype),
                rng.randn(*shape).astype(dtype)) for _ in range(calls)]

    def run(link, asarray):
        link.to_device(be.device)
        out = []
        for x, gy in batches:
            link.cleargrads()
            xv = chainer.Variable(asarray(x))
            y = link(xv)
            y.grad = asarray(gy)
            y.backward()
            out += [y.array, xv.grad, link.gamma.grad, link.beta.grad]
        out += [link.avg_mean, link.avg_var]
        with chainer.using_config('train', False):
            out.append(link(asarray(batches[0][0])).array)
        return [be.asnumpy(a) for a in out]

    args = dict(dtype=dtype, initial_gamma=gamma, initial_beta=beta)
    with be.reference():
        ref = run(L.BatchNormalization(c, **args), be.asarray)
    kernels = mixnorm.BatchNormalization(c, check_finite=check_finite, **args)
    got = run(kernels, be.asarray)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == numpy.float32 else \
        dict(rtol=1e-10, atol=1e-10)
    for i, (a, b) in enumerate(zip(ref, got)):
        numpy.testing.assert_allclose(b, a, err_msg=str(i), **tol)
    return kernels


def check_convolution(be, dtype, x_shape, out, ksize, stride=1, pad=0,
                      nobias=False, transposed=False):
    """mixnorm.Convolution2D (or, transposed, Deconvolution2D) on the
    kernels against Chainer's link on the reference path: output and the
    gradients of x, W and b."""
    rng = numpy.random.RandomState(0)
    x = rng.randn(*x_shape).astype(dtype)
    w_shape = (x_shape[1], out) if transposed else (out, x_shape[1])
    args = dict(stride=stride, pad=pad, nobias=nobias,
                initialW=rng.randn(*(w_shape + ksize)).astype(dtype),
                initial_bias=None if nobias else rng.randn(out).astype(dtype))
    name = 'Deconvolution2D' if transposed else 'Convolution2D'

    def run(link):
        link.to_device(be.device)
        xv = chainer.Variable(be.asarray(x))
        y = link(xv)
        y.grad = be.asarray(rng_gy.randn(*y.shape).astype(dtype))
        y.backward()
        grads = [y.array, xv.grad, link.W.grad]
        return [be.asnumpy(a) for a in grads + (
            [] if nobias else [link.b.grad])]

    with chainer.using_config('dtype', dtype):  # the parameters' dtype
        links = [getattr(module, name)(x_shape[1], out, ksize, **args)
                 for module in (L, mixnorm)]
    rng_gy = numpy.random.RandomState(1)
    with be.reference():
        ref = run(links[0])
    rng_gy = numpy.random.RandomState(1)
    got = run(links[1])
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == numpy.float32 else \
        dict(rtol=1e-10, atol=1e-10)
    for i, (a, b) in enumerate(zip(ref, got)):
        assert a.shape == b.shape, i
        numpy.testing.assert_allclose(b, a, err_msg=str(i), **tol)


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
