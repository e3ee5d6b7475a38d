"""Batch normalization where Chainer has no fast path.

Without cuDNN (CuPy 14, CUDA 13) Chainer normalizes a batch with generic
CuPy reductions, an order of magnitude above the memory floor, and on
NumPy with several single-threaded passes over the activations per
direction.  :class:`BatchNormalization` is Chainer's link, with its
parameters, persistent values and arithmetic, that in training mode takes
:mod:`mixnorm.cuda.bn` (CUDA kernels) or :mod:`mixnorm.cpu.bn` (NumPy,
chunked, on every core), the two modules having the same functions, where
they apply (:func:`implementation`), and Chainer's own code otherwise
(cuDNN, iDeep, test mode, ``finetune``, float16, a non-default ``axis``, a
batch of one sample, or ``MIXNORM_BN=chainer``).

The training-mode transform, for x (N, C, L) with m = N L values per
channel c, is Chainer's:

    mean_c  = 1/m sum_i x_ic,       var_c = 1/m sum_i (x_ic - mean_c)^2
    xhat_ic = (x_ic - mean_c) / sqrt(var_c + eps)
    y_ic    = gamma_c xhat_ic + beta_c

with running averages mean <- decay mean + (1 - decay) mean_c and var <-
decay var + (1 - decay) m / (m - 1) var_c.  Differentiating through
mean_c and var_c (d mean_c / dx_ic = 1/m, d var_c / dx_ic = 2/m (x_ic -
mean_c)) gives, with gbeta_c = sum_i gy_ic and ggamma_c = sum_i gy_ic
xhat_ic,

    dL/dx_ic = gamma_c / sqrt(var_c + eps) (gy_ic - (xhat_ic ggamma_c
               + gbeta_c) / m).
"""
import numpy

import chainer
from chainer.backends import intel64
from chainer import configuration
from chainer.utils import argument
from chainer import function_node
import chainer.links as L

from mixnorm import cpu
from mixnorm import cuda
from mixnorm._finite import FiniteChecks


def _backend(x):
    """:mod:`mixnorm.cuda.bn` or :mod:`mixnorm.cpu.bn` for array ``x``, or
    None (Chainer's code)."""
    if cuda.replaces_chainer(cuda.bn_kernels, x):
        return cuda.bn
    if (cuda.bn_kernels and isinstance(x, numpy.ndarray)
            and x.dtype in (numpy.float32, numpy.float64)
            and not intel64.should_use_ideep('>=auto')):
        return cpu.bn
    return None


def implementation(link, x):
    """The module that normalizes array ``x`` for ``link`` in training
    mode: :mod:`mixnorm.cuda.bn` for a CuPy array without cuDNN,
    :mod:`mixnorm.cpu.bn` for a NumPy array, when the switch is on
    (:data:`mixnorm.cuda.bn_kernels`, ``MIXNORM_BN``), x is float32 or
    float64 of the parameters' dtype, normalized over every axis but axis
    1, with more than one value per channel (and, on a GPU, at most 65,535
    channels: :func:`mixnorm.cuda.fits_channel_grid`); otherwise None:
    Chainer's own code."""
    if link.axis is not None or x.ndim < 2:
        return None
    backend = _backend(x)
    gamma = link.gamma if link.gamma is not None else link.avg_mean
    usable = (backend is not None and gamma is not None
              and gamma.shape == x.shape[1:2] and gamma.dtype == x.dtype
              and link.avg_mean.dtype == x.dtype and x.size > x.shape[1]
              and (backend is cpu.bn
                   or cuda.fits_channel_grid(x.shape[1])))
    return backend if usable else None


class BatchNormalizationFunction(function_node.FunctionNode):
    """Training-mode batch normalization of (x, gamma, beta) by ``backend``
    (:mod:`mixnorm.cuda.bn` or :mod:`mixnorm.cpu.bn`, as
    :func:`implementation` chooses).

    ``running_mean`` and ``running_var`` (or None) are updated in place by
    the forward pass; ``flag`` (or None) is set when a statistic is not
    finite (on a GPU a device scalar, :class:`mixnorm.cuda.finite.
    DeviceFiniteFlag`; on NumPy an int32 array, and the running averages
    are then left as they were).
    """

    def __init__(self, eps, running_mean, running_var, decay, flag,
                 backend):
        self.eps = eps
        self.running_mean, self.running_var = running_mean, running_var
        self.decay = decay
        self.flag = flag
        self.backend = backend
        self._stats = None

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, gamma, beta = inputs
        y, self._stats = self.backend.forward(
            x.reshape(len(x), x.shape[1], -1), gamma, beta, self.eps,
            self.running_mean, self.running_var, self.decay, self.flag)
        return y.reshape(x.shape),

    def backward(self, indexes, grad_outputs):
        x, gamma = self.get_retained_inputs()
        return BatchNormalizationGrad(self._stats, self.backend).apply(
            (x, gamma, grad_outputs[0]))


class BatchNormalizationGrad(function_node.FunctionNode):
    """Gradients (gx, ggamma, gbeta) of a :class:`BatchNormalizationFunction`
    from (x, gamma, gy); its own gradient (double backprop) is not
    implemented: it raises rather than silently giving zero."""

    def __init__(self, stats, backend):
        self._stats = stats
        self.backend = backend

    def forward(self, inputs):
        x, gamma, gy = inputs
        shape = (len(x), x.shape[1], -1)
        gx, ggamma, gbeta = self.backend.backward(
            x.reshape(shape), gamma, gy.reshape(shape), self._stats)
        return gx.reshape(x.shape), ggamma, gbeta

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'batch normalization on the mixnorm kernels: the gradient of '
            'its gradient (double backprop) is not implemented; set '
            'mixnorm.cuda.bn_kernels = False (or MIXNORM_BN=chainer) for '
            'Chainer\'s own batch normalization')


class BatchNormalization(FiniteChecks, L.BatchNormalization):

    """:class:`chainer.links.BatchNormalization` on :mod:`mixnorm.cuda.bn`
    or :mod:`mixnorm.cpu.bn` where they apply (:func:`implementation`).

    Arguments, parameters (``gamma``, ``beta``) and persistent values
    (``avg_mean``, ``avg_var``, ``N``) are Chainer's, so an npz of either
    link loads into the other.  On those paths a NaN or Inf input, or
    statistics that overflow, raise a ``ValueError`` naming the link: on
    NumPy in the call itself, before the running averages move; on a GPU
    one or more calls later (the check does not wait for the device), or
    at :meth:`check_finite_now`.  Elsewhere Chainer's behaviour is
    unchanged.

    Args:
        check_finite (bool): report non-finite statistics (free: the
            statistics pass sets the flag).
        args, kwargs: those of :class:`chainer.links.BatchNormalization`.

    """

    _nonfinite_effect = 'its batch statistics are not finite'

    def __init__(self, *args, **kwargs):
        check_finite = kwargs.pop('check_finite', True)
        super(BatchNormalization, self).__init__(*args, **kwargs)
        self._init_finite(check_finite)

    def forward(self, x, **kwargs):
        """forward(self, x, finetune=False): as Chainer's."""
        finetune, = argument.parse_kwargs(
            kwargs, ('finetune', False),
            test='test argument is not supported anymore. '
                 'Use chainer.using_config')
        x_array = chainer.as_array(x)
        backend = None if finetune or not configuration.config.train \
            else implementation(self, x_array)
        if backend is None:
            return super(BatchNormalization, self).forward(
                x, finetune=finetune)
        flag = None
        if self.check_finite and backend is cuda.bn:
            self._raise_if_seen()
            flag = self._device_flag.array(x_array)
        elif self.check_finite:
            flag = numpy.zeros(1, numpy.int32)
        running = (None, None) if configuration.config.in_recomputing \
            else (self.avg_mean, self.avg_var)
        gamma = self.gamma if self.gamma is not None else self._get_gamma()[0]
        beta = self.beta if self.beta is not None else self._get_beta()[0]
        y, = BatchNormalizationFunction(
            self.eps, running[0], running[1], self.decay, flag,
            backend).apply((x, gamma, beta))
        if flag is not None and backend is cuda.bn:
            self._device_flag.publish()
        elif flag is not None and flag[0]:
            raise self._nonfinite()
        return y

