"""Batch normalization on the GPU without cuDNN (``bn.cu``).

Two launches each way on the (N, C, L) layout: the per-channel sums over a
(slices, C) grid (:func:`mixnorm.cuda._compile.channel_grid`), whose last
block per channel finishes the channel, then one elementwise pass.  The
sums are taken in double about a sample of the channel (forward) or about
the mean (backward), so one read of x gives the mean and variance.
Nothing is read back to the host.
"""
import numpy

from mixnorm.cuda import _compile
from mixnorm.cuda._compile import cupy



def _kernel(name, x):
    return _compile.kernel('bn.cu', name, x.dtype,
                           defines=(_compile.index_type(x.size),))


def forward(x3, gamma, beta, eps, running_mean=None, running_var=None,
            decay=0.9, flag=None):
    """Training-mode batch normalization of x3 (N, C, L).

    Args:
        x3: input, float32 or float64.
        gamma, beta: (C,) parameters of x3's dtype.
        eps (float): added to the variance.
        running_mean, running_var: (C,) arrays updated in place (Chainer's
            rule: the unbiased variance, weight ``1 - decay``), or None.
        decay (float): the running averages' decay.
        flag: int32 device scalar set to 1 when a statistic is not finite
            (:class:`mixnorm.cuda.finite.DeviceFiniteFlag`), or None.

    Returns:
        ``(y, stats)``: the output and the buffer [mean (C) | inv_std (C)]
        that :func:`backward` takes.
    """
    x3 = cupy.ascontiguousarray(x3)
    n, c, length = x3.shape
    grid = _compile.channel_grid(n, c, length)
    partial = cupy.empty(2 * grid[0] * c, numpy.float64)
    stats = cupy.empty(2 * c, x3.dtype)
    _compile.launch(_kernel('bn_stats', x3), grid, (
        x3, n, c, length, float(eps), float(decay), running_mean,
        running_var, partial, _compile.channel_counters(), stats, flag))
    y = cupy.empty_like(x3)
    _compile.launch(_kernel('bn_output', x3), _compile.flat_grid(x3.size),
                    (x3, n, c, length, stats, gamma, beta, y))
    return y, stats


def backward(x3, gamma, gy3, stats):
    """Gradients ``(gx, ggamma, gbeta)`` of :func:`forward`'s output."""
    x3 = cupy.ascontiguousarray(x3)
    gy3 = cupy.ascontiguousarray(gy3)
    n, c, length = x3.shape
    grid = _compile.channel_grid(n, c, length)
    partial = cupy.empty(2 * grid[0] * c, numpy.float64)
    grads = cupy.empty(2 * c, x3.dtype)  # [ggamma | gbeta]
    _compile.launch(_kernel('bn_grad_stats', x3), grid, (
        x3, gy3, n, c, length, stats, partial, _compile.channel_counters(),
        grads))
    gx = cupy.empty_like(x3)
    _compile.launch(_kernel('bn_grad_x', x3), _compile.flat_grid(x3.size),
                    (x3, gy3, n, c, length, stats, gamma, grads, gx))
    return gx, grads[:c], grads[c:]
