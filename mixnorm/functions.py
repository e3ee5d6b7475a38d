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

CuPy float32/float64 arrays take :func:`mixnorm.kernels.mn_forward` and
:func:`mixnorm.kernels.mn_backward` instead (two launches each way, on the
(N, C, H*W) layout, with the same centred two-pass statistics); the code
below is the reference they are tested against.
"""
import numpy

import chainer
from chainer import backend
from chainer import function_node
from chainer.utils import type_check

from mixnorm import kernels


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
    return rows.transpose((0, len(shape) - 1) + tuple(range(1, len(shape) - 1)))


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

    After ``forward``, ``statistics`` holds (lam, mean, var) of the batch.
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
            gamma_type.dtype == x_type.dtype,
            beta_type.dtype == x_type.dtype,
            resp_type.dtype == x_type.dtype,
            gamma_type.ndim == 1,
            gamma_type.shape[0] == x_type.shape[1],
            beta_type.shape == gamma_type.shape,
            resp_type.ndim == 2,
        )

    def forward(self, inputs):
        x, gamma, beta, resp = inputs
        if resp.shape[0] * x.shape[1] != x.size:
            raise ValueError('resp has {} rows; x of shape {} has {} '
                             'samples'.format(resp.shape[0], x.shape,
                                              x.size // x.shape[1]))
        self._gamma = gamma
        self._shape = x.shape
        if kernels.supports(x):
            x3 = x.reshape(x.shape[0], x.shape[1], -1)
            y, lam, mean, var, cache = kernels.mn_forward(
                x3, gamma, beta, resp, self.eps)
            self.statistics = (lam, mean, var)
            self._saved = (x3, resp, cache)
            return y.reshape(x.shape),
        rows = to_rows(x)
        shift = rows.mean(0)
        rows = rows - shift
        lam, w, mean, var, inv_std = component_statistics(rows, resp,
                                                          self.eps)
        self.statistics = (lam, mean + shift, var)
        coef = aggregation_coefficients(resp, lam)
        xhat = rows * (coef @ inv_std) - coef @ (mean * inv_std)  # Eq. 34
        self._saved = (rows, w, coef, mean, inv_std, xhat)
        return from_rows(gamma * xhat + beta, x.shape),

    def backward(self, indexes, grad_outputs):
        if kernels.supports(self._saved[0]):
            x3, resp, cache = self._saved
            gx, ggamma, gbeta = kernels.mn_backward(
                x3, self._gamma, resp,
                grad_outputs[0].array.reshape(x3.shape), cache)
            return self._grads(indexes, gx.reshape(self._shape), ggamma,
                               gbeta)
        rows, w, coef, mean, inv_std, xhat = self._saved
        gy = to_rows(grad_outputs[0].array)
        g = gy * self._gamma
        inv_var = inv_std * inv_std
        total = coef.T @ g                                        # G
        proj = inv_std * (coef.T @ (g * rows) - total * mean)     # H
        h = inv_var * proj
        gx = g * (coef @ inv_std) - w @ (inv_std * total) \
            - rows * (w @ h) + w @ (h * mean)
        return self._grads(indexes, from_rows(gx, self._shape),
                           (gy * xhat).sum(0), gy.sum(0))

    @staticmethod
    def _grads(indexes, gx, ggamma, gbeta):
        grads = {0: gx, 1: ggamma, 2: gbeta}
        return tuple(chainer.Variable(grads[i]) if i in grads else None
                     for i in indexes)


def mixture_normalization(x, gamma, beta, resp, eps=2e-5):
    """Mixture normalizing transform (Eq. 34-36) with an affine output.

    Args:
        x (~chainer.Variable or array): (N, C) or (N, C, H, W) input.
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
