"""MixtureNormalization: a drop-in replacement for L.BatchNormalization."""
import numpy

from chainer import backend
from chainer import configuration
from chainer.utils import argument
from chainer import initializers
from chainer import link
from chainer import variable

from mixnorm import cuda
from mixnorm import gmm as gmm_module
from mixnorm._common import GMM
from mixnorm._finite import FiniteChecks
from mixnorm._common import resolve_em_iter
from mixnorm.functions import check_variant
from mixnorm.functions import MixtureNormalizationFunction
from mixnorm.functions import to_rows

INFERENCE_RULES = ('consistent', 'paper', 'batch')


def queue_decay_weights(n_fits, queue_length, decay):
    """tau^t of Eq. 39 for the newest ``n_fits`` entries of the queue.

    tau^t = (1 - zeta) / (1 - zeta^T) * zeta^(T - t - 1), t = 0 (oldest) ..
    T - 1 (newest); zeta = 1 gives its limit, 1 / T for every entry.  With
    fewer than T fits the weights of the entries held are renormalised to
    sum to one.

    Returns:
        numpy.ndarray of shape (min(n_fits, T),), oldest first.
    """
    t = numpy.arange(queue_length)
    if decay == 1:
        tau = numpy.full(queue_length, 1.0 / queue_length)
    else:
        tau = (1 - decay) / (1 - decay ** queue_length) \
            * decay ** (queue_length - t - 1)                  # Eq. 39
    tau = tau[queue_length - min(n_fits, queue_length):]
    return tau / tau.sum()


class MixtureNormalization(FiniteChecks, link.Link):
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
        em_iter (int): the paper's "EM iter." (k-means + EM iterations),
            default 2.
        eps (float): added to every component variance; > 0.
        queue_length (int): T, the number of training fits kept.
        decay (float): zeta of Equation 39, in [0, 1] (1: equal weights).
        min_weight (float): components lighter than this are discarded.
        fit_fraction (float): fraction of the samples the GMM is fitted on.
        inference (str): ``'consistent'``, ``'paper'`` or ``'batch'``
            (see above); may be changed after training.
        dtype: parameter dtype.
        initial_gamma, initial_beta: initializers, as in BatchNormalization.
        check_finite (bool): raise ValueError while training on NaN/Inf
            input, and on input so large that the batch statistics overflow
            (float32 squares overflow beyond about 1e19).  On the CPU the
            call with the bad input raises, before its fit enters the
            queue.  On a GPU the check does not synchronise: a device flag
            is set by the statistics kernel (by a check of the variances,
            for the variants on the generic transform) and copied
            asynchronously to pinned host memory, and a later training
            call (or
            :meth:`check_finite_now`) raises; the fits of the steps in
            between have entered the queue.

    float16 input is fitted and normalized in float32, with float32
    parameters, and gives float16 output, as Chainer's BatchNormalization.
    Under ``chainer.config.in_recomputing`` (the second forward pass of
    ``F.forget``) the link reuses the fit of its latest training call and
    records nothing.  Double backprop raises NotImplementedError.
        activation: None (or ``'none'``), or ``'relu'`` to rectify each
            component's normalized activations before the aggregation
            (Eq. 40); the model then skips its own ReLU after this layer
            (see :attr:`fuses_relu`).
        affine (str): ``'output'``: gamma and beta applied after the
            aggregation, BatchNormalization's parameters (default);
            ``'components'``: Eq. 37 as printed, beta shifting every
            component's mean and gamma scaling every component's variance.
        weight_scaling (bool): the 1/sqrt(lambda_k) factor of Eq. 34 (and
            of Eq. 38); False drops it, an ablation.
        n_iter (int): deprecated alias of ``em_iter``; warns.

    The default variant runs on the CUDA kernels on a GPU; the others run
    the array-generic transform there (the fit stays on the kernels).

    Active components (Sec. 5.3, Fig. 9): with ``count_active`` set to
    True, every training call adds its fit's number of active components
    (lambda_k >= ``min_weight``) to a histogram kept on the device, with
    array operations only, so that no call waits for a GPU;
    :meth:`pop_active_counts` reads and resets it (one synchronisation, at
    log time).  Off by default; the trainer's ``record.active_components``
    switches it on (:class:`train.classifier.records.ActiveComponents`).
    """

    #: ChainerMN communicator of :class:`mixnorm.MultiNodeMixtureNormalization`
    comm = None

    _nonfinite_effect = 'the GMM cannot be fitted'

    def __init__(self, size, n_components=3, em_iter=None, eps=2e-5,
                 queue_length=10, decay=0.9, min_weight=0.01,
                 fit_fraction=1.0, inference='consistent',
                 dtype=numpy.float32, initial_gamma=None, initial_beta=None,
                 check_finite=True, activation=None, affine='output',
                 weight_scaling=True, n_iter=None):
        super(MixtureNormalization, self).__init__()
        if inference not in INFERENCE_RULES:
            raise ValueError('inference must be one of {}, not {!r}'.format(
                INFERENCE_RULES, inference))
        if n_components < 1 or queue_length < 1:
            raise ValueError('n_components and queue_length must be >= 1')
        if not 0 < fit_fraction <= 1:
            raise ValueError('fit_fraction must be in (0, 1]')
        if not 0 <= decay <= 1:
            raise ValueError('decay (zeta of Eq. 39) must be in [0, 1], not '
                             '{!r}'.format(decay))
        if not eps > 0:
            raise ValueError('eps must be > 0 (a constant channel has '
                             'variance 0), not {!r}'.format(eps))
        activation = None if activation == 'none' else activation
        check_variant(activation, affine)
        self.size = size
        self.n_components = n_components
        self.em_iter = resolve_em_iter(em_iter, n_iter,
                                       'MixtureNormalization')
        self.eps = eps
        self.queue_length = queue_length
        self.decay = decay
        self.min_weight = min_weight
        self.fit_fraction = fit_fraction
        self.inference = inference
        self._init_finite(check_finite)
        self.activation = activation
        self.affine = affine
        self.weight_scaling = weight_scaling
        self.last_fit = None
        self.count_active = False  # Fig. 9: see _count_active
        self._active_counts = None  # (K + 1,) int64 histogram, on device
        self._active_levels = None  # 0 .. K, on the same device
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

    @property
    def fuses_relu(self):
        """Whether this layer applies the ReLU that follows it (Eq. 40)."""
        return self.activation == 'relu'

    # ------------------------------------------------------------ training
    def _push(self, lam, mean, var):
        for name, value in (('queue_weights', lam),
                            ('queue_means', mean),
                            ('queue_variances', var)):
            queue = getattr(self, name)  # moved in place, as BN's averages
            if cuda.supports(queue):
                queue = cuda.mn.push(queue, value)
            else:
                queue[:-1] = queue[1:].copy()
                queue[-1] = value
            setattr(self, name, queue)
        self.n_fits += 1

    def forward(self, x, **kwargs):
        """forward(self, x, finetune=False)

        Normalize ``x`` of shape (N, C) or (N, C, H, W).

        Args:
            x (~chainer.Variable or array): the input.
            finetune (bool): BatchNormalization's population-statistics
                mode; not supported (raises NotImplementedError when True).
        """
        finetune, = argument.parse_kwargs(
            kwargs, ('finetune', False),
            test='test argument is not supported anymore. '
                 'Use chainer.using_config')
        if finetune:
            raise NotImplementedError(
                'MixtureNormalization {!r}: finetune is not supported; test '
                'mode normalizes with the queue of the last queue_length '
                'fits (Eq. 38-39), which has no population-statistics '
                'mode'.format(self.name or '(unnamed)'))
        if configuration.config.train:
            return self._forward_train(x)
        return self._forward_test(x)

    def _forward_train(self, x):
        x_array = variable.as_array(x)
        if configuration.config.in_recomputing:
            return self._normalize(x, self._latest_resp(x_array))[0]
        flag = None
        if self.check_finite:
            if cuda.supports(x_array):  # NaN/Inf in x reach the statistics
                self._raise_if_seen()
                flag = self._device_flag.array(x_array)
            else:
                self._check_finite(x_array)  # raises before the fit
        y, node = self._normalize(x, self._fit(x_array), flag)
        statistics = node.statistics
        if node.flagged:  # set by the statistics kernel
            self._device_flag.publish()
        elif self.check_finite:  # overflow in the fit or the statistics
            self._check_finite(statistics[2])
        self._push(*statistics)
        if self.count_active:
            self._count_active(statistics[0])
        return y

    def _fit(self, x_array):
        """The posteriors of a GMM fitted to the batch (float16 in float32)."""
        rows = to_rows(x_array)
        if rows.dtype == numpy.float16:
            rows = rows.astype(numpy.float32)
        self.last_fit = gmm_module.fit(
            rows, self.n_components, self.em_iter,
            fit_fraction=self.fit_fraction, min_weight=self.min_weight,
            comm=self.comm)
        return self.last_fit[1]

    def _latest_resp(self, x_array):
        """The posteriors of the latest fit, for a recomputed forward."""
        resp = None if self.last_fit is None else self.last_fit[1]
        if resp is None or resp.shape[0] * x_array.shape[1] != x_array.size:
            raise RuntimeError(
                'MixtureNormalization {!r}: recomputing a forward pass '
                '(F.forget) needs the fit of the same batch, and the latest '
                'fit is of another shape or missing'.format(
                    self.name or '(unnamed)'))
        return resp

    def _normalize(self, x, resp, flag=None):
        """Apply Eq. 34-36 with posteriors resp; returns (y, the node),
        whose ``statistics`` are the batch's."""
        node = MixtureNormalizationFunction(
            self.eps, self.activation, self.affine, self.weight_scaling,
            comm=self.comm, flag=flag)
        y, = node.apply((x, self.gamma, self.beta, resp))
        return y, node

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
        x_array = variable.as_array(x)
        if self.inference == 'batch':
            return self._normalize(x, self._fit(x_array))[0]
        if self.n_fits == 0:
            raise RuntimeError(
                'MixtureNormalization {!r}: no training fit in the queue; '
                'run at least one training step before test mode'.format(
                    self.name or '(unnamed)'))
        xp = backend.get_array_module(x_array)
        tau, lam, mean, var = self.queue()
        c = x_array.shape[1]
        lam = lam.reshape(-1)                                  # (T*K,)
        tau_k = xp.repeat(tau, self.n_components)              # (T*K,)
        mean = mean.reshape(-1, c)
        var = var.reshape(-1, c)
        samples = to_rows(x_array).astype(var.dtype, copy=False)
        post = gmm_module.responsibilities(
            samples, GMM(tau_k * lam, mean, var + self.eps))   # Eq. 38
        scale = xp.ones_like(lam)
        if self.weight_scaling:
            scale = xp.where(lam > 0, lam, 1)
        if self.inference == 'paper':
            scale = scale * tau_k
        node = MixtureNormalizationFunction(
            self.eps, self.activation, self.affine, self.weight_scaling,
            fixed=(mean, var))
        y, = node.apply((x, self.gamma, self.beta, post / xp.sqrt(scale)))
        return y

    def effective_components(self):
        """Number of components with non-zero weight in the newest fit."""
        if self.n_fits == 0:
            return 0
        return int((self.queue_weights[-1] > 0).sum())

    # ------------------------------------------ active components (Fig. 9)
    def _count_active(self, lam):
        """Adds one training step to the histogram of active components.

        Section 5.3 discards components whose weight falls below 0.01
        (``min_weight``); a component is active when its lambda_k, the
        Eq. 35 weight that the step pushes into the queue, is at least
        ``min_weight`` (and above 0: a discarded component has weight 0).
        Entry n of the (K + 1,) histogram counts the steps with n active
        components.  It lives on ``lam``'s device and is updated by array
        operations only (a comparison, a sum, a comparison, an in-place
        add): on a GPU they are queued and nothing waits for the device.
        """
        xp = backend.get_array_module(lam)
        device = backend.get_device_from_array(lam)
        if self._active_counts is None or backend.get_array_module(
                self._active_counts) is not xp:  # first step, or moved
            with backend.using_device(device):
                counts = xp.zeros(self.n_components + 1, numpy.int64)
                self._active_levels = xp.arange(self.n_components + 1)
            if self._active_counts is not None:
                counts += device.send(self._active_counts)
            self._active_counts = counts
        threshold = (self.min_weight if self.min_weight > 0 else
                     numpy.finfo(lam.dtype).tiny)
        active = (lam >= threshold).sum()
        self._active_counts += self._active_levels == active

    def pop_active_counts(self):
        """Histogram of active components since the last call, and reset.

        Reads the histogram that training calls with ``count_active`` fill
        (see :meth:`_count_active`), which waits for the device: call it at
        log time, not at every step.

        Returns:
            numpy.ndarray: int64, shape (K + 1,); entry n is the number of
            training steps since the previous call whose fit had n active
            components (all zero when none was counted).
        """
        if self._active_counts is None:
            return numpy.zeros(self.n_components + 1, numpy.int64)
        counts = backend.CpuDevice().send(self._active_counts).copy()
        self._active_counts.fill(0)
        return counts
