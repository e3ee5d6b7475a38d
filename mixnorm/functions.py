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

The affine step after aggregation (``affine='output'``, the default) gives
MN exactly BatchNormalization's parameter set; with K = 1 the transform is
batch normalization.  The paper's variants:

* ``affine='components'``, Eq. 37 as printed: beta shifts every component's
  mean and gamma scales every component's variance, xhat_i^k = (x_i - mu_k
  - beta) / sqrt(var_k * gamma + eps), and y = xhat.  gamma is clipped at
  0 inside the square root, so that a negative gamma cannot give NaN.
* ``activation='relu'``, Eq. 40: each component's normalized activation
  is rectified before the aggregation, y = sum_k a_ik ReLU(gamma xhat_i^k +
  beta) (with Eq. 37, sum_k a_ik ReLU(xhat_i^k)); the output is then the
  activation, and the layer replaces the ReLU after it.
* ``weight_scaling=False``: Eq. 34 without its 1/sqrt(lambda_k) factor (an
  ablation).

Write a_ik = nu_ik / sqrt(lambda_k) (or nu_ik), s_k = 1/sqrt(var_k g + eps)
(g = 1, or gamma under Eq. 37), c_k the centre the component subtracts (mu_k,
or mu_k + beta) and u_ik = dL/dxhat_i^k: G_i a_ik with G = gamma dL/dy
(dL/dy under Eq. 37) without the activation, and dL/dy_i a_ik gamma'
[gamma' xhat_i^k + beta' > 0] with it (gamma', beta' = gamma, beta, or 1, 0
under Eq. 37).  With T_k = sum_i u_ik and P_k = sum_i u_ik xhat_i^k, the
chain rule through s_k, mu_k and var_k (d mu_k / dx_i = w_ik, d var_k /
dx_i = 2 w_ik (x_i - mu_k)) gives

    dL/dx_i = sum_k s_k u_ik - w_ik s_k T_k - w_ik g s_k^2 P_k (x_i - mu_k),

and, under Eq. 37, dL/dbeta = -sum_k s_k T_k and dL/dgamma = -1/2 sum_k
var_k s_k^2 P_k; with the activation and the output affine, dL/dgamma and
dL/dbeta are the sums over i and k of dL/dy_i a_ik [...] xhat_i^k and of
dL/dy_i a_ik [...].  Without the activation every sum over k is a matrix
product (xhat = x * (A S) - A (C * S) with A = (a_ik), S = (s_k), C =
(c_k)); with it the components are visited one at a time.  The data are
centred by their channel means first, which leaves every formula unchanged
and keeps float32 sums small.

At test time the same transform runs with fixed statistics: coefficients
a (m, J) and per-component means and variances (J, C) given by the caller
(Eq. 38 over the queue), so only the first term of dL/dx remains.

Float32/float64 arrays in training mode with the default variant take
:mod:`mixnorm.cuda.mn` (CuPy: two launches each way, on the (N, C, H*W)
layout, with the statistics from sums in double about a sample of each
channel) or :mod:`mixnorm.cpu.mn` (NumPy: the same sums, in chunks on
every core) instead, while ``mixnorm.cuda.enabled`` (``MIXNORM_KERNELS``);
the code below is the reference they are tested against, and runs every
other case on NumPy and CuPy alike.
"""
import numpy

import chainer
from chainer import backend
from chainer import function_node
from chainer.utils import type_check

from mixnorm import cpu
from mixnorm import cuda
from mixnorm._gmm_multinode import allreduce

ACTIVATIONS = (None, 'relu')
AFFINES = ('output', 'components')


def check_variant(activation, affine):
    """Raise ValueError for an unknown activation or affine mode."""
    if activation not in ACTIVATIONS:
        raise ValueError('activation must be None or \'relu\', not '
                         '{!r}'.format(activation))
    if affine not in AFFINES:
        raise ValueError('affine must be one of {}, not {!r}'.format(
            AFFINES, affine))


def to_rows(x):
    """(m, C) matrix with one row per (n, h, w) position of x (on the
    kernel path a contiguous copy made by one tiled-transpose launch)."""
    if x.ndim == 2:
        return x
    if cuda.supports(x) and x.shape[0] <= cuda.layout.MAX_SAMPLES:
        return cuda.layout.to_rows(x)
    axes = (0,) + tuple(range(2, x.ndim)) + (1,)
    return x.transpose(axes).reshape(-1, x.shape[1])


def from_rows(rows, shape):
    """Inverse of :func:`to_rows` for an input of the given shape."""
    if len(shape) == 2:
        return rows
    rows = rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))
    return rows.transpose((0, len(shape) - 1)
                          + tuple(range(1, len(shape) - 1)))


def _sums(comm, *arrays):
    """The arrays summed over the processes of ``comm`` (None: as they
    are)."""
    return list(arrays) if comm is None else allreduce(comm, *arrays)


def component_statistics(rows, resp, comm=None):
    """Per-component quantities of Equations 35-36.

    Args:
        rows: (m, C) data.
        resp: (m, K) posteriors nu.
        comm: a ChainerMN communicator to take every sum over the rows of
            all its processes, or None.

    Returns:
        ``(lam, w, mean, var)``: lam (K,), the normalised posteriors w
        (m, K) of Eq. 36, and mean, var (K, C).
    """
    xp = backend.get_array_module(rows)
    tiny = numpy.finfo(rows.dtype).tiny
    count = xp.full(1, rows.shape[0], rows.dtype)
    mass, s1, count = _sums(comm, resp.sum(0), resp.T @ rows, count)
    lam = mass / count[0]
    w = resp / xp.maximum(mass, tiny)                     # Eq. 36
    mean = s1 / xp.maximum(mass, tiny)[:, None]           # Eq. 35
    dev = xp.empty_like(rows)  # one scratch array for every component

    def centred(k):
        xp.subtract(rows, mean[k], out=dev)
        return w[:, k] @ xp.square(dev, out=dev)
    var, = _sums(comm, xp.stack([centred(k) for k in range(resp.shape[1])]))
    return lam, w, mean, var                              # centred, Eq. 35


def aggregation_coefficients(resp, lam, weight_scaling=True):
    """nu_ik / sqrt(lambda_k) of Eq. 34 (nu_ik without weight_scaling); an
    absent component gives 0."""
    if not weight_scaling:
        return resp
    xp = backend.get_array_module(resp)
    return resp / xp.sqrt(xp.where(lam > 0, lam, 1))


def _variance_scale(gamma, affine):
    """g of the module docstring: 1, or gamma clipped at 0 (Eq. 37)."""
    if affine == 'output':
        return 1
    return backend.get_array_module(gamma).maximum(gamma, 0)


def _normalizers(mean, var, gamma, beta, eps, affine):
    """Centres c_k and scales s_k (J, C) of the components (Eq. 35, 37)."""
    xp = backend.get_array_module(mean)
    if affine == 'components':
        mean = mean + beta                                 # Eq. 37
    return mean, 1 / xp.sqrt(var * _variance_scale(gamma, affine) + eps)


def _aggregate(rows, coef, centre, scale, relu, inner=None):
    """sum_k a_ik xhat_i^k (Eq. 34), or with relu sum_k a_ik ReLU(gamma
    xhat_i^k + beta) (Eq. 40) for ``inner = (gamma, beta)`` or None."""
    xp = backend.get_array_module(rows)
    if not relu:  # rows * (coef @ scale) - coef @ (centre * scale)
        out = coef @ scale
        out *= rows
        out -= coef @ (centre * scale)
        return out
    out = xp.zeros_like(rows)
    for k in range(coef.shape[1]):
        z = (rows - centre[k]) * scale[k]
        if inner is not None:
            z = z * inner[0] + inner[1]
        out += coef[:, k:k + 1] * xp.maximum(z, 0)
    return out


def _aggregate_backward(rows, coef, centre, scale, relu, g, inner=None):
    """``(sum_k s_k u_k, T, P, inner_grads)`` of the module docstring, for
    G = g (dL/dy with relu); inner_grads are the gradients of the inner
    (gamma, beta) of :func:`_aggregate`, or None."""
    xp = backend.get_array_module(rows)
    if not relu:
        total = coef.T @ g
        direct = coef @ scale
        direct *= g
        return (direct, total,
                scale * (coef.T @ (g * rows) - total * centre), None)
    direct = xp.zeros_like(rows)
    total = xp.empty_like(centre)
    proj = xp.empty_like(centre)
    inner_grads = None if inner is None else [0, 0]
    for k in range(coef.shape[1]):
        xhat = (rows - centre[k]) * scale[k]
        z = xhat if inner is None else xhat * inner[0] + inner[1]
        v = g * coef[:, k:k + 1] * (z > 0)                  # dL/dz
        if inner is not None:
            inner_grads[0] = inner_grads[0] + (v * xhat).sum(0)
            inner_grads[1] = inner_grads[1] + v.sum(0)
            v = v * inner[0]
        direct += v * scale[k]
        total[k] = v.sum(0)
        proj[k] = (v * xhat).sum(0)
    return direct, total, proj, inner_grads


class MixtureNormalizationFunction(function_node.FunctionNode):
    """Eq. 34-36 and the paper's variants; see the module docstring.

    Inputs ``(x, gamma, beta, resp)``; gamma, beta and resp share a dtype,
    and x has it too or is float16 with float32 parameters, in which case
    the transform runs in float32 and the output is float16, as in
    Chainer's batch normalization.  After ``forward``, ``statistics`` holds
    (lam, mean, var) of the batch.

    Args:
        eps (float): added to each component variance.
        activation: None or ``'relu'`` (Eq. 40).
        affine (str): ``'output'`` or ``'components'`` (Eq. 37).
        weight_scaling (bool): the 1/sqrt(lambda_k) factor of Eq. 34.
        fixed: None (batch statistics from the posteriors ``resp``), or
            ``(mean, var)`` (J, C) of fixed components, in which case the
            fourth input holds the coefficients a (m, J) themselves.
        comm: a ChainerMN communicator, or None.  With one, the batch
            statistics are those of every process's rows together (sums
            all-reduced), and so are T and P in the gradient; dL/dgamma
            and dL/dbeta stay this process's, as for any parameter under
            ChainerMN's multi-node optimizer.
        flag: an int32 device scalar that the statistics kernel sets when
            a statistic is not finite
            (:class:`mixnorm.cuda.finite.DeviceFiniteFlag`), or None.
            After ``forward``, ``flagged`` tells whether it was passed to
            the kernel; the other paths leave the check to the caller.
    """

    def __init__(self, eps=2e-5, activation=None, affine='output',
                 weight_scaling=True, fixed=None, comm=None, flag=None):
        check_variant(activation, affine)
        self.flag = flag
        self.flagged = False
        self.comm = comm
        self.eps = eps
        self.relu = activation == 'relu'
        self.affine = affine
        self.weight_scaling = weight_scaling
        self.fixed = fixed
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

    def _backend(self, x):
        """:mod:`mixnorm.cuda.mn` (CuPy), :mod:`mixnorm.cpu.mn` (NumPy) for
        the default variant in training mode while ``mixnorm.cuda.enabled``
        (``MIXNORM_KERNELS``), else None: the code of this module."""
        if not (self.fixed is None and not self.relu
                and self.affine == 'output' and self.weight_scaling
                and self.comm is None and x.ndim >= 2):
            return None
        if cuda.supports(x):
            return cuda.mn if cuda.fits_channel_grid(x.shape[1]) else None
        if (cuda.enabled and isinstance(x, numpy.ndarray)
                and x.dtype in (numpy.float32, numpy.float64)):
            return cpu.mn
        return None

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, gamma, beta, resp = inputs
        if resp.shape[0] * x.shape[1] != x.size:
            raise ValueError('resp has {} rows; x of shape {} has {} '
                             'samples'.format(resp.shape[0], x.shape,
                                              x.size // x.shape[1]))
        out_dtype = x.dtype
        x = x.astype(gamma.dtype, copy=False)
        self.backend = self._backend(x)
        if self.backend is not None:
            x3 = x.reshape(x.shape[0], x.shape[1], -1)
            y, lam, mean, var, stats = self.backend.forward(
                x3, gamma, beta, resp, self.eps, self.flag)
            self.flagged = self.flag is not None and self.backend is cuda.mn
            self.statistics = (lam, mean, var)
            self._saved = (x3, resp, stats)
            return y.reshape(x.shape).astype(out_dtype, copy=False),
        rows = to_rows(x)
        if self.fixed is None:
            xp = backend.get_array_module(rows)
            col, count = _sums(self.comm, rows.sum(0),
                               xp.full(1, rows.shape[0], rows.dtype))
            shift = col / count[0]
            rows = rows - shift
            lam, w, mean, var = component_statistics(rows, resp, self.comm)
            self.statistics = (lam, mean + shift, var)
            coef = aggregation_coefficients(resp, lam, self.weight_scaling)
        else:
            (mean, var), w, coef = self.fixed, None, resp
        centre, scale = _normalizers(mean, var, gamma, beta, self.eps,
                                     self.affine)
        inner = self._inner(gamma, beta)
        xhat = _aggregate(rows, coef, centre, scale, self.relu,
                          inner)                           # Eq. 34, 40
        self._saved = (rows, coef, w, mean, var, centre, scale, xhat, inner)
        if self._affine_after():  # gamma xhat + beta
            y = xhat * gamma
            y += beta
        else:
            y = xhat
        return from_rows(y, x.shape).astype(out_dtype, copy=False),

    def _affine_after(self):
        """Whether gamma and beta apply after the aggregation."""
        return self.affine == 'output' and not self.relu

    def _inner(self, gamma, beta):
        """The (gamma, beta) applied to each component before Eq. 40's
        ReLU, or None."""
        return (gamma, beta) if self.relu and self.affine == 'output' \
            else None

    def backward(self, indexes, grad_outputs):
        x, gamma = self.get_retained_inputs()
        grads = MixtureNormalizationGrad(self).apply(
            (x, gamma, grad_outputs[0]))
        return tuple(grads[i] if i < 3 else None for i in indexes)


class MixtureNormalizationGrad(function_node.FunctionNode):
    """Gradients (gx, ggamma, gbeta) of a :class:`MixtureNormalizationFunction`
    (the formulas of the module docstring), from inputs (x, gamma, gy).

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
        if node.backend is not None:
            x3, resp, stats = node._saved
            gx, ggamma, gbeta = node.backend.backward(
                x3, gamma, resp, gy.reshape(x3.shape), stats)
            return gx.reshape(x.shape).astype(x.dtype, copy=False), \
                ggamma, gbeta
        rows, coef, w, mean, var, centre, scale, xhat, inner = node._saved
        gy = to_rows(gy)
        after = node._affine_after()
        gx, total, proj, inner_grads = _aggregate_backward(
            rows, coef, centre, scale, node.relu, gy * gamma if after else gy,
            inner)
        if w is not None:  # batch statistics depend on x (Eq. 35-36)
            total_all, proj_all = _sums(node.comm, total, proj)
            h = _variance_scale(gamma, node.affine) * scale * scale \
                * proj_all
            gx -= w @ (scale * total_all)  # gx is this function's own array
            spread = w @ h
            spread *= rows
            gx -= spread
            gx += w @ (h * mean)
        if after:
            ggamma, gbeta = (gy * xhat).sum(0), gy.sum(0)
        elif inner_grads is not None:                      # Eq. 40
            ggamma, gbeta = inner_grads
        else:                                              # Eq. 37
            gbeta = -(scale * total).sum(0)
            ggamma = -0.5 * (var * scale * scale * proj).sum(0) * (gamma > 0)
        return from_rows(gx, x.shape).astype(x.dtype, copy=False), \
            ggamma, gbeta

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'mixture normalization: the gradient of its gradient (double '
            'backprop) is not implemented')


def mixture_normalization(x, gamma, beta, resp, eps=2e-5, activation=None,
                          affine='output', weight_scaling=True, comm=None):
    """Mixture normalizing transform (Eq. 34-36) and its variants.

    Args:
        x (~chainer.Variable or array): (N, C) or (N, C, H, W) input, of
            gamma's dtype or float16 with float32 gamma.
        gamma, beta (~chainer.Variable or array): (C,) scale and shift.
        resp (array): (N*H*W, K) posteriors nu, rows ordered as
            :func:`to_rows` orders the samples; no gradient flows into it.
        eps (float): added to each component variance (Eq. 35).
        activation: None, or ``'relu'`` to rectify each component before
            the aggregation (Eq. 40).
        affine (str): ``'output'`` (gamma and beta after the aggregation)
            or ``'components'`` (Eq. 37 as printed).
        weight_scaling (bool): keep Eq. 34's 1/sqrt(lambda_k).
        comm: a ChainerMN communicator: the statistics of all processes'
            rows together (see :class:`MixtureNormalizationFunction`).

    Returns:
        ~chainer.Variable: the output, shaped like ``x``.
    """
    if isinstance(resp, chainer.Variable):
        resp = resp.array
    y, = MixtureNormalizationFunction(
        eps, activation, affine, weight_scaling, comm=comm).apply(
            (x, gamma, beta, resp))
    return y
