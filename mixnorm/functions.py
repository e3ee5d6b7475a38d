"""The mixture normalizing transform (Equations 34-36) as a Chainer function.

For a mini-batch x with channels C and samples i = (n, h, w), and posteriors
nu (m, K) of a GMM fitted to the rows of x (treated as constants: the
gradient stops at nu, Section 3.2 "Differentiability"):

    lambda_k  = mean_i nu_ik                              (weights)
    w_ik      = nu_ik / sum_j nu_jk                       (Eq. 36)
    mu_k      = sum_i w_ik x_i                            (Eq. 35)
    var_k     = sum_i w_ik (x_i - mu_k)^2                 (Eq. 35)
    xhat_i^k  = (x_i - mu_k) / sqrt(var_k + eps)          (Eq. 35)
    xhat_i    = sum_k nu_ik / sqrt(lambda_k) * xhat_i^k   (Eq. 34)
    y_i       = gamma * xhat_i + beta

The affine step after aggregation gives MN exactly BatchNormalization's
parameter set; with K = 1 the transform is batch normalization.
"""
import numpy

import chainer
from chainer import backend
from chainer import function_node
from chainer.utils import type_check


def component_statistics(x, resp, eps):
    """Per-component weights, means, variances and 1/std of Eq. 34-36.

    Args:
        x: (N, C, L) array.
        resp: (N, L, K) posteriors.
        eps (float): added to the variances before the square root.

    Returns:
        ``(lam, w, mean, var, inv_std)``: lam (K,), w (K, N, 1, L) the
        normalised posteriors of Eq. 36, mean/var/inv_std (K, C).
    """
    xp = backend.get_array_module(x)
    tiny = numpy.finfo(x.dtype).tiny
    n, _, length = x.shape
    k = resp.shape[-1]
    resp_k = xp.moveaxis(resp, -1, 0).reshape(k, n, 1, length)
    mass = resp_k.sum(axis=(1, 2, 3))
    lam = mass / (n * length)
    w = resp_k / xp.maximum(mass, tiny)[:, None, None, None]  # Eq. 36
    mean = xp.stack([(w[j] * x).sum(axis=(0, 2)) for j in range(k)])
    var = xp.stack([(w[j] * (x - mean[j][:, None]) ** 2).sum(axis=(0, 2))
                    for j in range(k)])  # centered second moment, Eq. 35
    inv_std = 1.0 / xp.sqrt(var + eps)
    return lam, w, mean, var, inv_std


def _aggregation_coefficients(resp_k, lam):
    """nu_ik / sqrt(lambda_k) of Eq. 34; an absent component gives 0."""
    xp = backend.get_array_module(resp_k)
    safe = xp.where(lam > 0, lam, 1)
    return resp_k / xp.sqrt(safe)[:, None, None, None]


class MixtureNormalizationFunction(function_node.FunctionNode):

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

    def _split(self, x, resp):
        n, c = x.shape[:2]
        length = x.size // (n * c)
        return (x.reshape(n, c, length),
                resp.reshape(n, length, resp.shape[1]))

    def forward(self, inputs):
        self.retain_inputs((0, 1, 3))
        x, gamma, beta, resp = inputs
        if resp.shape[0] * x.shape[1] != x.size:
            raise ValueError('resp has {} rows; x of shape {} has {} '
                             'samples'.format(resp.shape[0], x.shape,
                                              x.size // x.shape[1]))
        x3, resp3 = self._split(x, resp)
        lam, w, mean, var, inv_std = component_statistics(x3, resp3,
                                                          self.eps)
        self.statistics = (lam, mean, var)
        coef = _aggregation_coefficients(
            backend.get_array_module(x).moveaxis(resp3, -1, 0)[:, :, None],
            lam)
        xhat = sum(coef[j] * (x3 - mean[j][:, None]) * inv_std[j][:, None]
                   for j in range(len(lam)))  # Eq. 34
        y = gamma[:, None] * xhat + beta[:, None]
        self._cache = (w, coef, mean, inv_std)
        return y.reshape(x.shape),

    def backward(self, indexes, grad_outputs):
        x, gamma, resp = self.get_retained_inputs()
        x3, _ = self._split(x.array, resp.array)
        gy = grad_outputs[0].array.reshape(x3.shape)
        w, coef, mean, inv_std = self._cache
        g = gy * gamma.array[:, None]
        gx = 0
        xhat = 0
        for j in range(len(mean)):
            xhat_j = (x3 - mean[j][:, None]) * inv_std[j][:, None]
            g_j = coef[j] * g
            total = g_j.sum(axis=(0, 2))[:, None]
            proj = (g_j * xhat_j).sum(axis=(0, 2))[:, None]
            gx = gx + inv_std[j][:, None] * (g_j - w[j] * (total +
                                                           xhat_j * proj))
            xhat = xhat + coef[j] * xhat_j
        ggamma = (gy * xhat).sum(axis=(0, 2))
        gbeta = gy.sum(axis=(0, 2))
        grads = {0: gx.reshape(x.shape), 1: ggamma, 2: gbeta}
        return tuple(chainer.Variable(grads[i]) if i in grads else None
                     for i in indexes)


def mixture_normalization(x, gamma, beta, resp, eps=2e-5):
    """Mixture normalizing transform (Eq. 34-36) with an affine output.

    Args:
        x (~chainer.Variable or array): (N, C) or (N, C, H, W) input.
        gamma, beta (~chainer.Variable or array): (C,) scale and shift.
        resp (array): (N*H*W, K) posteriors nu, rows ordered as
            ``x.transpose(0, 2, 3, 1).reshape(-1, C)``; no gradient flows
            into it.
        eps (float): added to each component variance (Eq. 35).

    Returns:
        ~chainer.Variable: the output, shaped like ``x``.
    """
    if isinstance(resp, chainer.Variable):
        resp = resp.array
    y, = MixtureNormalizationFunction(eps).apply((x, gamma, beta, resp))
    return y
