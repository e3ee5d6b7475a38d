"""The mixture normalizing transform (Equations 34-36) as a Chainer function.

For a mini-batch with channels C and m samples i = (n, h, w), written as rows
x_i of an (m, C) matrix, and posteriors nu (m, K) of a GMM fitted to those
rows (constants: the gradient stops at nu, Section 3.2 "Differentiability"):

    lambda_k  = mean_i nu_ik                              (weights)
    w_ik      = nu_ik / sum_j nu_jk                       (Eq. 36)
    mu_k      = sum_i w_ik x_i                            (Eq. 35)
    var_k     = sum_i w_ik (x_i - mu_k)^2                 (Eq. 35)
    xhat_i^k  = (x_i - mu_k) / sqrt(var_k + eps)          (Eq. 35)
    xhat_i    = sum_k nu_ik / sqrt(lambda_k) * xhat_i^k   (Eq. 34)
    y_i       = gamma * xhat_i + beta

The affine step after aggregation gives MN exactly BatchNormalization's
parameter set; with K = 1 the transform is batch normalization.

With A = nu / sqrt(lambda) and S = 1 / sqrt(var + eps) (both K x C), the
aggregation is two matrix products, xhat = x * (A S) - A (mu * S), and the
gradient (g = gamma * dL/dy, G = A^T g, H_k = sum_i a_ik g_i xhat_i^k) is

    dL/dx = g * (A S) - w (S G) - x * (w (S^2 H)) + w (S^2 H mu),

so each pass over the data is a matrix product or one elementwise sweep.
The data are centred by their channel means first, which leaves every
formula unchanged and keeps float32 sums small.

CuPy float32/float64 arrays take :func:`mixnorm.cuda.mn.forward` and
:func:`mixnorm.cuda.mn.backward` instead (two launches each way, on the
(N, C, H*W) layout, with the same centred two-pass statistics); the code
below is the reference they are tested against.
"""
import numpy

import chainer
from chainer import backend
from chainer import function_node
from chainer.utils import type_check

from mixnorm import cuda


def to_rows(x):
    """(m, C) matrix with one row per (n, h, w) position of x."""
    if x.ndim == 2:
        return x
    axes = (0,) + tuple(range(2, x.ndim)) + (1,)
    return x.transpose(axes).reshape(-1, x.shape[1])


def from_rows(rows, shape):
    """Inverse of :func:`to_rows` for an input of the given shape."""
    if len(shape) == 2:
        return rows
    rows = rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))
    return rows.transpose((0, len(shape) - 1)
                          + tuple(range(1, len(shape) - 1)))


def component_statistics(rows, resp, eps):
    """Per-component quantities of Equations 34-36.

    Args:
        rows: (m, C) data.
        resp: (m, K) posteriors nu.
        eps (float): added to the variances before the square root.

    Returns:
        ``(lam, w, mean, var, inv_std)``: lam (K,), the normalised
        posteriors w (m, K) of Eq. 36, and mean, var, inv_std (K, C).
    """
    xp = backend.get_array_module(rows)
    tiny = numpy.finfo(rows.dtype).tiny
    mass = resp.sum(0)
    lam = mass / resp.shape[0]
    w = resp / xp.maximum(mass, tiny)                     # Eq. 36
    mean = w.T @ rows                                     # Eq. 35
    var = xp.stack([w[:, k] @ (rows - mean[k]) ** 2       # centered, Eq. 35
                    for k in range(resp.shape[1])])
    return lam, w, mean, var, 1.0 / xp.sqrt(var + eps)


def aggregation_coefficients(resp, lam):
    """nu_ik / sqrt(lambda_k) of Eq. 34; an absent component gives 0."""
    xp = backend.get_array_module(resp)
    return resp / xp.sqrt(xp.where(lam > 0, lam, 1))


class MixtureNormalizationFunction(function_node.FunctionNode):
    """Eq. 34-36 with an affine output; see the module docstring.

    Inputs ``(x, gamma, beta, resp)``; gamma, beta and resp share a dtype,
    and x has it too or is float16 with float32 parameters, in which case
    the transform runs in float32 and the output is float16, as in
    Chainer's batch normalization.  After ``forward``, ``statistics`` holds
    (lam, mean, var) of the batch.
    """

    def __init__(self, eps=2e-5):
        self.eps = eps
        self.statistics = None

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ('x', 'gamma', 'beta', 'resp'))
        x_type, gamma_type, beta_type, resp_type = in_types
        type_check.expect(
            x_type.dtype.kind == 'f',
            x_type.ndim >= 2,
            gamma_type.dtype.kind == 'f',
            beta_type.dtype == gamma_type.dtype,
            resp_type.dtype == gamma_type.dtype,
            gamma_type.ndim == 1,
            gamma_type.shape[0] == x_type.shape[1],
            beta_type.shape == gamma_type.shape,
            resp_type.ndim == 2,
        )
        x_dtype, gamma_dtype = (type_check.eval(t.dtype)
                                for t in (x_type, gamma_type))
        if x_dtype != gamma_dtype:
            type_check.expect(x_type.dtype == numpy.float16,
                              gamma_type.dtype == numpy.float32)

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, gamma, beta, resp = inputs
        if resp.shape[0] * x.shape[1] != x.size:
            raise ValueError('resp has {} rows; x of shape {} has {} '
                             'samples'.format(resp.shape[0], x.shape,
                                              x.size // x.shape[1]))
        out_dtype = x.dtype
        x = x.astype(gamma.dtype, copy=False)
        self._kernels = cuda.supports(x)
        if self._kernels:
            x3 = x.reshape(x.shape[0], x.shape[1], -1)
            y, lam, mean, var, stats = cuda.mn.forward(
                x3, gamma, beta, resp, self.eps)
            self.statistics = (lam, mean, var)
            self._saved = (x3, resp, stats)
            return y.reshape(x.shape).astype(out_dtype, copy=False),
        rows = to_rows(x)
        shift = rows.mean(0)
        rows = rows - shift
        lam, w, mean, var, inv_std = component_statistics(rows, resp,
                                                          self.eps)
        self.statistics = (lam, mean + shift, var)
        coef = aggregation_coefficients(resp, lam)
        xhat = rows * (coef @ inv_std) - coef @ (mean * inv_std)  # Eq. 34
        self._saved = (rows, w, coef, mean, inv_std, xhat)
        y = from_rows(gamma * xhat + beta, x.shape)
        return y.astype(out_dtype, copy=False),

    def backward(self, indexes, grad_outputs):
        x, gamma = self.get_retained_inputs()
        grads = MixtureNormalizationGrad(self).apply(
            (x, gamma, grad_outputs[0]))
        return tuple(grads[i] if i < 3 else None for i in indexes)


class MixtureNormalizationGrad(function_node.FunctionNode):
    """Gradients (gx, ggamma, gbeta) of a :class:`MixtureNormalizationFunction`
    (the formula of the module docstring), from inputs (x, gamma, gy).

    A node of its own, so that differentiating the gradient again (double
    backprop) raises instead of silently giving zero: that second
    derivative is not implemented.
    """

    def __init__(self, forward_node):
        self._forward = forward_node

    def forward(self, inputs):
        x, gamma, gy = inputs
        gy = gy.astype(gamma.dtype, copy=False)
        node = self._forward
        if node._kernels:
            x3, resp, stats = node._saved
            gx, ggamma, gbeta = cuda.mn.backward(
                x3, gamma, resp, gy.reshape(x3.shape), stats)
            return gx.reshape(x.shape).astype(x.dtype, copy=False), \
                ggamma, gbeta
        rows, w, coef, mean, inv_std, xhat = node._saved
        gy = to_rows(gy)
        g = gy * gamma
        inv_var = inv_std * inv_std
        total = coef.T @ g                                        # G
        proj = inv_std * (coef.T @ (g * rows) - total * mean)     # H
        h = inv_var * proj
        gx = g * (coef @ inv_std) - w @ (inv_std * total) \
            - rows * (w @ h) + w @ (h * mean)
        return from_rows(gx, x.shape).astype(x.dtype, copy=False), \
            (gy * xhat).sum(0), gy.sum(0)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'mixture normalization: the gradient of its gradient (double '
            'backprop) is not implemented')


def mixture_normalization(x, gamma, beta, resp, eps=2e-5):
    """Mixture normalizing transform (Eq. 34-36) with an affine output.

    Args:
        x (~chainer.Variable or array): (N, C) or (N, C, H, W) input, of
            gamma's dtype or float16 with float32 gamma.
        gamma, beta (~chainer.Variable or array): (C,) scale and shift.
        resp (array): (N*H*W, K) posteriors nu, rows ordered as
            :func:`to_rows` orders the samples; no gradient flows into it.
        eps (float): added to each component variance (Eq. 35).

    Returns:
        ~chainer.Variable: the output, shaped like ``x``.
    """
    if isinstance(resp, chainer.Variable):
        resp = resp.array
    y, = MixtureNormalizationFunction(eps).apply((x, gamma, beta, resp))
    return y
