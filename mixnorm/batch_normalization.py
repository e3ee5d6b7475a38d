"""Batch normalization on CUDA kernels where Chainer has no fast path.

Without cuDNN (CuPy 14, CUDA 13) Chainer normalizes a batch with generic
CuPy reductions, which are an order of magnitude above the memory floor.
:class:`BatchNormalization` is Chainer's link, with its parameters,
persistent values and arithmetic, that in training mode takes the kernels
of :mod:`mixnorm.cuda.bn` when they apply (:func:`uses_kernels`) and
Chainer's own code otherwise (NumPy, cuDNN, test mode, ``finetune``,
float16, a non-default ``axis``, a batch of one sample).

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
import chainer
from chainer import configuration
from chainer.utils import argument
from chainer import function_node
import chainer.links as L

from mixnorm import cuda
from mixnorm._finite import FiniteChecks


def uses_kernels(link, x):
    """Whether ``link``'s training call on array ``x`` takes the kernels.

    They serve float32 and float64 CuPy arrays of the parameters' dtype,
    normalized over every axis but axis 1, with more than one value per
    channel and at most 65,535 channels
    (:func:`mixnorm.cuda.fits_channel_grid`), when the kernels are on
    (:data:`mixnorm.cuda.bn_kernels`, ``MIXNORM_BN``) and cuDNN is not
    there to do it.
    """
    if link.axis is not None or not cuda.replaces_chainer(cuda.bn_kernels,
                                                           x):
        return False
    gamma = link.gamma if link.gamma is not None else link.avg_mean
    return (x.ndim >= 2 and gamma is not None and gamma.shape == x.shape[1:2]
            and gamma.dtype == x.dtype and link.avg_mean.dtype == x.dtype
            and x.size > x.shape[1]
            and cuda.fits_channel_grid(x.shape[1]))


class BatchNormalizationFunction(function_node.FunctionNode):
    """Training-mode batch normalization of (x, gamma, beta) on the kernels.

    ``running_mean`` and ``running_var`` (or None) are updated in place by
    the forward kernel; ``flag`` (or None) is set on the device when a
    statistic is not finite.
    """

    def __init__(self, eps, running_mean, running_var, decay, flag):
        self.eps = eps
        self.running_mean, self.running_var = running_mean, running_var
        self.decay = decay
        self.flag = flag
        self._stats = None

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, gamma, beta = inputs
        y, self._stats = cuda.bn.forward(
            x.reshape(len(x), x.shape[1], -1), gamma, beta, self.eps,
            self.running_mean, self.running_var, self.decay, self.flag)
        return y.reshape(x.shape),

    def backward(self, indexes, grad_outputs):
        x, gamma = self.get_retained_inputs()
        return BatchNormalizationGrad(self._stats).apply(
            (x, gamma, grad_outputs[0]))


class BatchNormalizationGrad(function_node.FunctionNode):
    """Gradients (gx, ggamma, gbeta) of a :class:`BatchNormalizationFunction`
    from (x, gamma, gy); its own gradient (double backprop) is not
    implemented: it raises rather than silently giving zero."""

    def __init__(self, stats):
        self._stats = stats

    def forward(self, inputs):
        x, gamma, gy = inputs
        shape = (len(x), x.shape[1], -1)
        gx, ggamma, gbeta = cuda.bn.backward(
            x.reshape(shape), gamma, gy.reshape(shape), self._stats)
        return gx.reshape(x.shape), ggamma, gbeta

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'batch normalization on the mixnorm kernels: the gradient of '
            'its gradient (double backprop) is not implemented; set '
            'mixnorm.cuda.bn_kernels = False (or MIXNORM_BN=chainer) for '
            'Chainer\'s own batch normalization')


class BatchNormalization(FiniteChecks, L.BatchNormalization):

    """:class:`chainer.links.BatchNormalization` on the kernels of
    :mod:`mixnorm.cuda.bn` where they apply (:func:`uses_kernels`).

    Arguments, parameters (``gamma``, ``beta``) and persistent values
    (``avg_mean``, ``avg_var``, ``N``) are Chainer's, so an npz of either
    link loads into the other.  On the kernel path a NaN or Inf input, or
    statistics that overflow, raise a ``ValueError`` naming the link one or
    more calls later (the check does not wait for the device), or at
    :meth:`check_finite_now`; elsewhere Chainer's behaviour is unchanged.

    Args:
        check_finite (bool): report non-finite statistics on the kernel
            path (free: the statistics kernel sets the flag).
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
        if (finetune or not configuration.config.train
                or not uses_kernels(self, x_array)):
            return super(BatchNormalization, self).forward(
                x, finetune=finetune)
        flag = None
        if self.check_finite:
            self._raise_if_seen()
            flag = self._device_flag.array(x_array)
        running = (None, None) if configuration.config.in_recomputing \
            else (self.avg_mean, self.avg_var)
        gamma = self.gamma if self.gamma is not None else self._get_gamma()[0]
        beta = self.beta if self.beta is not None else self._get_beta()[0]
        y, = BatchNormalizationFunction(
            self.eps, running[0], running[1], self.decay, flag).apply(
                (x, gamma, beta))
        if flag is not None:
            self._device_flag.publish()
        return y

