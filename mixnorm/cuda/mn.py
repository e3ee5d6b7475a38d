"""The mixture normalizing transform (Eq. 34-36) on the GPU (``mn.cu``).

Two launches each way on the (N, C, L) layout: the per-channel sums over a
(slices, C) grid (:func:`mixnorm.cuda._compile.channel_grid`), in double
about a sample of the channel, so x is read once for them, then one
elementwise pass.
"""
import numpy

from mixnorm.cuda import _compile
from mixnorm.cuda._compile import cupy


def _kernel(name, x, n_components):
    return _compile.kernel('mn.cu', name, x.dtype, n_components,
                           defines=(_compile.index_type(x.size),))


def forward(x3, gamma, beta, resp, eps, flag=None):
    """Eq. 34-36 on x3 of shape (N, C, L) with posteriors resp (N*L, K).

    ``flag``: an int32 device scalar that ``mn_stats`` sets to 1 when a
    statistic is not finite (:class:`mixnorm.cuda.finite.DeviceFiniteFlag`),
    or None.

    Returns:
        ``(y, lam, mean, var, stats)``; ``stats``, the buffer that
        ``mn_stats`` writes, feeds :func:`backward`.
    """
    x3 = cupy.ascontiguousarray(x3)
    resp = cupy.ascontiguousarray(resp)
    n, c, length = x3.shape
    k = resp.shape[1]
    dtype = x3.dtype
    # [lam | scale | den] (K each), then [mean | var | inv_std] (K, C) each
    stats = cupy.empty(3 * k * (1 + c), dtype)
    grid = _compile.channel_grid(n, c, length)
    partial = cupy.empty(3 * k * grid[0] * c, numpy.float64)
    _compile.launch(_kernel('mn_stats', x3, k), grid, (
        x3, resp, n, c, length, float(eps), float(numpy.finfo(dtype).tiny),
        partial, _compile.channel_counters(), stats, flag))
    y = cupy.empty_like(x3)
    _compile.launch(_kernel('mn_output', x3, k),
                    _compile.flat_grid(x3.size), (
                        x3, resp, n, c, length, stats, gamma, beta, y))
    lam = stats[:k]
    mean = stats[3 * k:3 * k + k * c].reshape(k, c)
    var = stats[3 * k + k * c:3 * k + 2 * k * c].reshape(k, c)
    return y, lam, mean, var, stats


def backward(x3, gamma, resp, gy3, stats):
    """Gradients (gx, ggamma, gbeta) of :func:`forward`'s output."""
    x3 = cupy.ascontiguousarray(x3)
    gy3 = cupy.ascontiguousarray(gy3)
    n, c, length = x3.shape
    k = resp.shape[1]
    dtype = x3.dtype
    grads = cupy.empty(2 * c * (k + 1), dtype)  # total, proj, ggamma, gbeta
    grid = _compile.channel_grid(n, c, length)
    partial = cupy.empty((2 * k + 2) * grid[0] * c, numpy.float64)
    _compile.launch(_kernel('mn_grad_stats', x3, k), grid, (
        x3, resp, gy3, n, c, length, stats, gamma, partial,
        _compile.channel_counters(), grads))
    gx = cupy.empty_like(x3)
    _compile.launch(_kernel('mn_grad_x', x3, k),
                    _compile.flat_grid(x3.size), (
                        x3, resp, gy3, n, c, length, stats, gamma, grads,
                        gx))
    return gx, grads[2 * k * c:2 * k * c + c], grads[2 * k * c + c:]


def push(queue, value):
    """The queue (T, ...) one place on: ``queue[1:]`` then ``value``, in
    place (one launch), so that a captured graph's queue stays the link's;
    returns the queue (a contiguous copy if ``queue`` was not
    contiguous)."""
    queue = cupy.ascontiguousarray(queue)
    value = _compile.contiguous(value, queue.dtype)
    # queue_push uses neither NK nor index_t: the K = 1, 32-bit module
    fn = _compile.kernel('mn.cu', 'queue_push', queue.dtype, 1,
                         defines=(_compile.index_type(0),))
    _compile.launch(fn, _compile.flat_grid(value.size),
                    (queue, len(queue), value.size, value))
    return queue
