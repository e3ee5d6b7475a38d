"""MixtureNormalization: a drop-in replacement for L.BatchNormalization."""
import numpy

from chainer import backend
from chainer import configuration
from chainer import functions as F
from chainer import initializers
from chainer import link
from chainer import variable

from mixnorm import gmm as gmm_module
from mixnorm import kernels
from mixnorm.functions import from_rows
from mixnorm.functions import MixtureNormalizationFunction
from mixnorm.functions import to_rows

INFERENCE_RULES = ('consistent', 'paper', 'batch')


class _DeviceFiniteFlag(object):
    """NaN/Inf detection on a GPU without host-device synchronisation.

    :func:`mixnorm.kernels.flag_nonfinite` sets a device int32 flag for any
    NaN or Inf of a checked input and never clears it; after each check the
    flag is copied with ``cudaMemcpyAsync`` on the current stream into
    pinned host memory.  :meth:`seen` reads that host memory, which is no
    CUDA call and never waits: it sees the flag as of the last copy that has
    landed, so a bad input is reported one or more calls later, never
    missed (the flag only goes from 0 to 1 until :meth:`reset`).
    """

    def __init__(self):
        self._flag = self._pinned = self._host = None

    def check(self, x):
        cupy = kernels.cupy
        if self._flag is None or self._flag.device != x.device:
            with x.device:
                self._flag = cupy.zeros(1, numpy.int32)
            self._pinned = cupy.cuda.alloc_pinned_memory(4)
            self._host = numpy.frombuffer(self._pinned, numpy.int32, 1)
            self._host[0] = 0
        kernels.flag_nonfinite(x, self._flag)
        cupy.cuda.runtime.memcpyAsync(
            self._host.ctypes.data, self._flag.data.ptr, 4,
            cupy.cuda.runtime.memcpyDeviceToHost,
            cupy.cuda.get_current_stream().ptr)

    def seen(self, wait=False):
        """Whether a checked input had NaN/Inf (``wait``: sync first)."""
        if self._host is None:
            return False
        if wait:
            self._flag.device.synchronize()
        return bool(self._host[0])

    def reset(self):
        """Clear the flag; synchronises (called on the error path only)."""
        self._flag.device.synchronize()
        self._flag.fill(0)
        self._host[0] = 0

    def __deepcopy__(self, memo):
        return _DeviceFiniteFlag()

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()


def queue_decay_weights(n_fits, queue_length, decay):
    """tau^t of Eq. 39 for the newest ``n_fits`` entries of the queue.

    tau^t = (1 - zeta) / (1 - zeta^T) * zeta^(T - t - 1), t = 0 (oldest) ..
    T - 1 (newest); with fewer than T fits the weights of the entries held
    are renormalised to sum to one.

    Returns:
        numpy.ndarray of shape (min(n_fits, T),), oldest first.
    """
    t = numpy.arange(queue_length)
    tau = (1 - decay) / (1 - decay ** queue_length) \
        * decay ** (queue_length - t - 1)
    tau = tau[queue_length - min(n_fits, queue_length):]
    return tau / tau.sum()


class MixtureNormalization(link.Link):
    """Mixture normalization layer (Kalayeh & Shah, TPAMI 2019).

    In training mode each call fits a diagonal GMM to the mini-batch (one
    sample per spatial position, the channels as dimensions), normalizes
    with Equations 34-36 and pushes the fitted components into a queue of
    the last ``queue_length`` fits.  In test mode it normalizes with the
    whole queue (Equations 38-39).  Parameters ``gamma`` and ``beta`` are
    BatchNormalization's and are applied after aggregation.

    Test-mode rules (``inference``): with posteriors
    ``P_tk(x) = tau^t lambda_k^t p_k^t(x) / sum_qj tau^q lambda_j^q p_j^q(x)``
    over all T*K queued components, the output is
    ``sum_tk c_tk P_tk(x) (x - mu_k^t) / sigma_k^t``.

    * ``'paper'``: ``c_tk = 1 / sqrt(tau^t lambda_k^t)``, Equation 38 as
      printed.  If the queue holds T copies of one fit, P_tk = tau^t nu_k
      and the output is ``sum_t sqrt(tau^t)`` times the training-mode output
      (3.13 for T = 10, zeta = 0.9): the factor 1/sqrt(tau^t) over-counts a
      component that is split across its T copies.
    * ``'consistent'`` (default): ``c_tk = 1 / sqrt(lambda_k^t)``.  Then T
      copies of a fit give exactly the output of that fit held once, which
      is Equation 34 with posteriors under that fit, so test mode matches
      the scale training mode produced.
    * ``'batch'``: no queue; every test batch is normalized with a GMM
      fitted to that batch, exactly as in training (the queue is left
      untouched).  An ablation: test outputs then depend on the batch.

    The queue entry of a training step is that step's Equation 35-36
    statistics: lambda_k (mean posterior), mu_k and sigma_k^2, with
    ``sigma_k = sqrt(sigma_k^2 + eps)`` as in training.

    Args:
        size (int): number of channels C.
        n_components (int): K.
        n_iter (int): the paper's "EM iter." (k-means + EM iterations).
        eps (float): added to every component variance.
        queue_length (int): T, the number of training fits kept.
        decay (float): zeta of Equation 39.
        min_weight (float): components lighter than this are discarded.
        fit_fraction (float): fraction of the samples the GMM is fitted on.
        inference (str): ``'consistent'``, ``'paper'`` or ``'batch'``
            (see above); may be changed after training.
        dtype: parameter dtype.
        initial_gamma, initial_beta: initializers, as in BatchNormalization.
        check_finite (bool): raise ValueError on NaN/Inf input while
            training.  On the CPU the call with the bad input raises.  On a
            GPU the check does not synchronise: a device flag is set by the
            bad input and copied asynchronously to pinned host memory, and
            a later training call (or :meth:`check_finite_now`) raises; the
            fits of the steps in between have entered the queue.
    """

    def __init__(self, size, n_components=3, n_iter=2, eps=2e-5,
                 queue_length=10, decay=0.9, min_weight=0.01,
                 fit_fraction=1.0, inference='consistent',
                 dtype=numpy.float32, initial_gamma=None, initial_beta=None,
                 check_finite=True):
        super(MixtureNormalization, self).__init__()
        if inference not in INFERENCE_RULES:
            raise ValueError('inference must be one of {}, not {!r}'.format(
                INFERENCE_RULES, inference))
        if n_components < 1 or queue_length < 1:
            raise ValueError('n_components and queue_length must be >= 1')
        if not 0 < fit_fraction <= 1:
            raise ValueError('fit_fraction must be in (0, 1]')
        self.size = size
        self.n_components = n_components
        self.n_iter = n_iter
        self.eps = eps
        self.queue_length = queue_length
        self.decay = decay
        self.min_weight = min_weight
        self.fit_fraction = fit_fraction
        self.inference = inference
        self.check_finite = check_finite
        self._device_flag = _DeviceFiniteFlag()
        self.last_fit = None
        dtype = numpy.dtype(dtype)
        with self.init_scope():
            for name, init, default in (('gamma', initial_gamma, 1),
                                        ('beta', initial_beta, 0)):
                init = initializers._get_initializer(
                    default if init is None else init)
                init.dtype = dtype
                setattr(self, name, variable.Parameter(init, size))
        shape = (queue_length, n_components)
        for name, value in (('n_fits', 0),
                            ('queue_weights', numpy.zeros(shape, dtype)),
                            ('queue_means',
                             numpy.zeros(shape + (size,), dtype)),
                            ('queue_variances',
                             numpy.ones(shape + (size,), dtype))):
            setattr(self, name, value)
            self.register_persistent(name)

    # ------------------------------------------------------------ training
    def _check_finite(self, x):
        if not self.check_finite:
            return
        if kernels.supports(x):
            if self._device_flag.seen():
                self._raise_earlier_nonfinite()
            self._device_flag.check(x)  # queued, read by a later call
            return
        xp = backend.get_array_module(x)
        if not bool(xp.isfinite(x).all()):
            raise ValueError(
                'MixtureNormalization {!r}: input contains NaN or Inf; the '
                'GMM cannot be fitted'.format(self.name or '(unnamed)'))

    def _raise_earlier_nonfinite(self):
        self._device_flag.reset()
        raise ValueError(
            'MixtureNormalization {!r}: the input of an earlier training '
            'step contained NaN or Inf (on a GPU the check does not wait for '
            'the device, so it reports a bad input one or more calls later); '
            'the GMM cannot be fitted'.format(self.name or '(unnamed)'))

    def check_finite_now(self):
        """Wait for the GPU and raise if a checked input had NaN or Inf.

        Training calls report a bad GPU input one or more calls late; this
        synchronises and reports it now (e.g. at the end of an epoch).  On
        the CPU every call already raises at once, so this does nothing.
        """
        if self._device_flag.seen(wait=True):
            self._raise_earlier_nonfinite()

    def _push(self, lam, mean, var):
        xp = backend.get_array_module(lam)
        for name, value in (('queue_weights', lam),
                            ('queue_means', mean),
                            ('queue_variances', var)):
            queue = xp.roll(getattr(self, name), -1, axis=0)
            queue[-1] = value
            setattr(self, name, queue)
        self.n_fits += 1

    def forward(self, x, **kwargs):
        """Normalize ``x`` of shape (N, C) or (N, C, H, W)."""
        if configuration.config.train:
            return self._forward_train(x)
        return self._forward_test(x)

    def _forward_train(self, x):
        x_array = x.array if isinstance(x, variable.Variable) else x
        self._check_finite(x_array)
        y, statistics = self._normalize_batch(x, x_array)
        self._push(*statistics)
        return y

    def _normalize_batch(self, x, x_array):
        """Fit the batch's GMM and apply Eq. 34-36; returns (y, stats)."""
        fit, resp = gmm_module.fit(
            to_rows(x_array), self.n_components, self.n_iter,
            fit_fraction=self.fit_fraction, min_weight=self.min_weight)
        self.last_fit = (fit, resp)
        node = MixtureNormalizationFunction(self.eps)
        y, = node.apply((x, self.gamma, self.beta, resp))
        return y, node.statistics

    # ---------------------------------------------------------- inference
    def queue(self):
        """The queued fits in use, oldest first: (tau, lam, mean, var)."""
        n = min(self.n_fits, self.queue_length)
        xp = backend.get_array_module(self.queue_weights)
        tau = xp.asarray(queue_decay_weights(n, self.queue_length,
                                             self.decay),
                         self.queue_weights.dtype)
        return (tau, self.queue_weights[-n:], self.queue_means[-n:],
                self.queue_variances[-n:])

    def _forward_test(self, x):
        if self.inference == 'batch':
            x_array = x.array if isinstance(x, variable.Variable) else x
            return self._normalize_batch(x, x_array)[0]
        if self.n_fits == 0:
            raise RuntimeError(
                'MixtureNormalization {!r}: no training fit in the queue; '
                'run at least one training step before test mode'.format(
                    self.name or '(unnamed)'))
        x_array = x.array if isinstance(x, variable.Variable) else x
        xp = backend.get_array_module(x_array)
        tau, lam, mean, var = self.queue()
        c = x_array.shape[1]
        lam = lam.reshape(-1)                                  # (T*K,)
        tau_k = xp.repeat(tau, self.n_components)              # (T*K,)
        mean = mean.reshape(-1, c)
        var = var.reshape(-1, c) + self.eps
        samples = to_rows(x_array)
        post = gmm_module.responsibilities(
            samples, gmm_module.GMM(tau_k * lam, mean, var))   # Eq. 38
        safe = xp.where(lam > 0, lam, 1)
        scale = safe if self.inference == 'consistent' else tau_k * safe
        coef = post / xp.sqrt(scale)
        inv_std = 1.0 / xp.sqrt(var)
        slope = coef @ inv_std                                 # (m, C)
        offset = coef @ (mean * inv_std)
        y = from_rows(slope, x_array.shape) * x \
            - from_rows(offset, x_array.shape)
        return F.bias(F.scale(y, self.gamma, 1), self.beta, 1)

    def effective_components(self):
        """Number of components with non-zero weight in the newest fit."""
        if self.n_fits == 0:
            return 0
        return int((self.queue_weights[-1] > 0).sum())

