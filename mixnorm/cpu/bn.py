"""Batch normalization on NumPy: the CPU side of :mod:`mixnorm.cuda.bn`.

The same functions and buffers as the CUDA module, with the arithmetic of
:mod:`mixnorm.batch_normalization` (its docstring derives the gradient).
Chainer's NumPy code takes several passes over x per direction, each the
size of the activations and on one thread.  Here x (and gy) are read in
cache-sized chunks of samples, and each chunk is used for everything
needed of it while it is in cache:

* forward: one read of x for the per-channel sums of d = x - shift and
  d^2 (shift a sample of the channel, so that the sums stay small; float32
  sums over one sample's values, float64 across samples), then one read of
  x and one write of y for y = gamma (x - mean) inv_std + beta;
* backward: one read of x and gy for gbeta = sum gy and sum gy (x - mean),
  then one read of both and one write of gx for
  gx = A gy + B (x - mean) + D, with A = gamma inv_std,
  B = -A inv_std ggamma / m and D = -A gbeta / m.

Chunks are split over the cores (:mod:`mixnorm.cpu.parallel`).
"""
import numpy

from mixnorm.cpu import parallel

CHUNK = 1 << 16  # elements of x a chunk holds, at least one sample


def _sums_per_channel(*sums):
    """Float sums per (sample, channel) as float64 sums per channel."""
    return tuple(a.sum(0, dtype=numpy.float64) for a in sums)


def _per_channel(v, dtype):
    return numpy.asarray(v, dtype)[:, None]


def forward(x3, gamma, beta, eps, running_mean=None, running_var=None,
            decay=0.9, flag=None):
    """Training-mode batch normalization of x3 (N, C, L), as
    :func:`mixnorm.cuda.bn.forward`: returns ``(y, stats)``, stats the
    buffer [mean (C) | inv_std (C)] of x3's dtype.  ``running_mean`` and
    ``running_var`` are updated in place unless a statistic is not finite;
    then ``flag`` (an int32 array of one element, or None) is set to 1."""
    x3 = numpy.ascontiguousarray(x3)
    n, c, length = x3.shape
    dtype = x3.dtype
    m = n * length
    shift = x3[0, :, :1].copy()

    def sums(lo, hi):
        d = x3[lo:hi] - shift
        return _sums_per_channel(d.sum(2), numpy.einsum('kcl,kcl->kc', d, d))

    with numpy.errstate(over='ignore', invalid='ignore'):
        s1, s2 = parallel.over_samples(sums, x3, CHUNK, 2)
        d = s1 / m
        var = numpy.maximum(s2 / m - d * d, 0)  # keeps NaN
        mean = shift[:, 0] + d
        stats = numpy.concatenate([mean, 1 / numpy.sqrt(var + eps)]).astype(
            dtype)
    finite = bool(numpy.isfinite(s1).all() and numpy.isfinite(s2).all()
                  and numpy.isfinite(var.astype(dtype)).all())
    if not finite and flag is not None:
        flag[0] = 1
    if running_mean is not None and finite:
        adjust = m / max(m - 1.0, 1.0)  # unbiased
        running_mean *= decay
        running_mean += ((1 - decay) * mean).astype(dtype)
        running_var *= decay
        running_var += ((1 - decay) * adjust * var).astype(dtype)
    y = numpy.empty_like(x3)
    mean_c, inv_std = (_per_channel(stats[:c], dtype),
                       _per_channel(stats[c:], dtype))
    scale = _per_channel(gamma, dtype) * inv_std
    shift_out = _per_channel(beta, dtype)

    def output(lo, hi):
        out = y[lo:hi]
        numpy.subtract(x3[lo:hi], mean_c, out=out)
        out *= scale
        out += shift_out

    with numpy.errstate(over='ignore', invalid='ignore'):
        parallel.over_samples(output, x3, CHUNK)
    return y, stats


def backward(x3, gamma, gy3, stats):
    """Gradients ``(gx, ggamma, gbeta)`` of :func:`forward`'s output, as
    :func:`mixnorm.cuda.bn.backward`."""
    x3 = numpy.ascontiguousarray(x3)
    gy3 = numpy.ascontiguousarray(gy3)
    n, c, length = x3.shape
    dtype = x3.dtype
    m = n * length
    mean = _per_channel(stats[:c], dtype)
    inv_std = stats[c:].astype(numpy.float64)

    def sums(lo, hi):
        g = gy3[lo:hi]
        return _sums_per_channel(
            g.sum(2), numpy.einsum('kcl,kcl->kc', g, x3[lo:hi] - mean))

    gbeta, proj = parallel.over_samples(sums, x3, CHUNK, 2)
    ggamma = proj * inv_std
    a = numpy.asarray(gamma, numpy.float64) * inv_std
    b = _per_channel(-a * inv_std * ggamma / m, dtype)
    d = _per_channel(-a * gbeta / m, dtype)
    a = _per_channel(a, dtype)
    gx = numpy.empty_like(x3)

    def grad(lo, hi):
        out = gx[lo:hi]
        numpy.subtract(x3[lo:hi], mean, out=out)
        out *= b
        out += gy3[lo:hi] * a
        out += d

    parallel.over_samples(grad, x3, CHUNK)
    return gx, ggamma.astype(dtype), gbeta.astype(dtype)
