"""Optimizers and learning-rate schedules named in configurations.

Optimizers (``optimizer.name``):

* ``rmsprop``: :class:`chainer.optimizers.RMSprop`; the paper's "RMSprop
  with 0.9 momentum" (Section 4.2) is read as ``alpha: 0.9``, the decay of
  the squared-gradient average.
* ``rmsprop_tf``: :class:`RMSpropTF`, TensorFlow 1's RMSprop, the other
  reading of "RMSprop with 0.9 momentum": a momentum term on top of the
  squared-gradient average, with the TensorFlow Inception recipe's
  ``decay: 0.9``, ``momentum: 0.9`` and ``eps: 1.0`` by default.  Not the
  default reading; the shipped configurations use ``rmsprop``.
* ``nesterov``: :class:`chainer.optimizers.NesterovAG`, momentum 0.9 by
  default (Section 4.3).
* ``adam``: :class:`chainer.optimizers.Adam`; ``lr`` is Adam's ``alpha``.

Weight decay is an L2 term added by :class:`chainer.optimizer_hooks.
WeightDecay`.  Schedules (``schedule.name``), a pure function of the number
of finished epochs, so that a resumed run recomputes the same rate:

* ``exponential``: ``lr * rate ** (epoch // every_epochs)`` (Section 4.2:
  0.93 every 2 epochs; Section 4.3: every 4 epochs).
* ``step``: ``lr * factor ** k`` after ``k`` of the ``drops`` (fractions of
  the total epochs) have passed (Section 4.3: x0.1 at 50% and 75%, x0.2 at
  30%, 60% and 80%).
* ``none``: constant.
"""
import numpy

import chainer
from chainer.backends import cuda
from chainer import optimizer as optimizer_module
from chainer import training

_rmsprop_tf_defaults = optimizer_module.Hyperparameter()
_rmsprop_tf_defaults.lr = 0.01
_rmsprop_tf_defaults.decay = 0.9
_rmsprop_tf_defaults.momentum = 0.9
_rmsprop_tf_defaults.eps = 1.0


class RMSpropTFRule(optimizer_module.UpdateRule):

    """Update rule of :class:`RMSpropTF`, for one parameter.

    State: ``ms``, the running average of squared gradients, starts at ones;
    ``mom``, the accumulated step, starts at zeros.  Both have the
    parameter's shape and dtype, and are saved and loaded by Chainer's
    serializers with the optimizer (so snapshots resume them).

    Args:
        parent_hyperparam (~chainer.optimizer.Hyperparameter): Hyperparameter
            that provides the default values.
        lr (float): Learning rate.
        decay (float): Decay rate of the squared-gradient average.
        momentum (float): Decay rate of the accumulated step.
        eps (float): Added to ``ms`` inside the square root.

    """

    is_elementwise = True
    _kernel = None

    def __init__(self, parent_hyperparam=None, lr=None, decay=None,
                 momentum=None, eps=None):
        super(RMSpropTFRule, self).__init__(
            parent_hyperparam or _rmsprop_tf_defaults)
        for name, value in (('lr', lr), ('decay', decay),
                            ('momentum', momentum), ('eps', eps)):
            if value is not None:
                setattr(self.hyperparam, name, value)

    def init_state(self, param):
        with chainer.using_device(param.device):
            xp = param.device.xp
            self.state['ms'] = xp.ones_like(param.data)  # as TF1: not zeros
            self.state['mom'] = xp.zeros_like(param.data)

    def _eps(self, grad):
        """eps in the gradient's dtype; an error where it rounds to 0."""
        eps = grad.dtype.type(self.hyperparam.eps)
        if self.hyperparam.eps != 0 and eps == 0:
            raise ValueError('eps of RMSpropTF ({}) is too small for {}'
                             .format(self.hyperparam.eps, grad.dtype.name))
        return eps

    def update_core_cpu(self, param):
        grad = param.grad
        if grad is None:
            return
        hp = self.hyperparam
        eps = self._eps(grad)
        ms, mom = self.state['ms'], self.state['mom']
        ms *= hp.decay
        ms += (1 - hp.decay) * grad * grad
        mom *= hp.momentum
        mom += hp.lr * grad / numpy.sqrt(ms + eps)
        param.data -= mom

    def update_core_gpu(self, param):
        grad = param.grad
        if grad is None:
            return
        hp = self.hyperparam
        if RMSpropTFRule._kernel is None:
            RMSpropTFRule._kernel = cuda.elementwise(
                'T grad, T lr, T decay, T momentum, T eps',
                'T param, T ms, T mom',
                '''ms = decay * ms + (1 - decay) * grad * grad;
                   mom = momentum * mom + lr * grad / sqrt(ms + eps);
                   param -= mom;''',
                'rmsprop_tf')
        RMSpropTFRule._kernel(grad, hp.lr, hp.decay, hp.momentum,
                              self._eps(grad), param.data, self.state['ms'],
                              self.state['mom'])


class RMSpropTF(optimizer_module.GradientMethod):

    """RMSprop as TensorFlow 1's ``tf.train.RMSPropOptimizer`` computes it.

    For each parameter ``w`` with gradient ``g``::

        ms  <- decay * ms + (1 - decay) * g^2
        mom <- momentum * mom + lr * g / sqrt(ms + eps)
        w   <- w - mom

    with ``ms`` initialised to ones and ``mom`` to zeros.  It differs from
    :class:`chainer.optimizers.RMSprop` in three ways: the momentum term
    (Chainer's has none), ``eps`` inside the square root (Chainer's default
    adds it to the root), and the ones-initialised average, which damps the
    first steps (Chainer's starts at zeros, so its first step is about
    ``lr / sqrt(1 - alpha)`` times the gradient's sign).

    Sources checked: the equations are those documented for TensorFlow's
    ``ApplyRMSProp`` op (``tf.raw_ops.ApplyRMSProp``) and in the module
    docstring of ``tensorflow/python/training/rmsprop.py``; that file's
    ``RMSPropOptimizer._create_slots`` gives the ``rms`` slot a ones
    initializer and the ``momentum`` slot zeros (the non-centered variant,
    dense gradients).  The defaults are the constants of tensorflow/models'
    ``inception/inception/inception_train.py`` (``RMSPROP_DECAY = 0.9``,
    ``RMSPROP_MOMENTUM = 0.9``, ``RMSPROP_EPSILON = 1.0``), the Inception
    recipe whose "RMSprop with 0.9 momentum" the paper's Section 4.2
    echoes.  TensorFlow's own defaults (``momentum=0``, ``epsilon=1e-10``)
    are not used.

    The update runs in the parameter's dtype, as Chainer's RMSprop does;
    for float16 parameters call :meth:`use_fp32_update` to keep float32
    copies and states.  On CuPy it is one elementwise kernel per parameter
    (no host synchronization).

    Args:
        lr (float): Learning rate (``lr``; schedules set it).
        decay (float): Decay rate of the squared-gradient average.
        momentum (float): Decay rate of the accumulated step.
        eps (float): Added to the average inside the square root.

    """

    def __init__(self, lr=_rmsprop_tf_defaults.lr,
                 decay=_rmsprop_tf_defaults.decay,
                 momentum=_rmsprop_tf_defaults.momentum,
                 eps=_rmsprop_tf_defaults.eps):
        super(RMSpropTF, self).__init__()
        self.hyperparam.lr = lr
        self.hyperparam.decay = decay
        self.hyperparam.momentum = momentum
        self.hyperparam.eps = eps

    lr = optimizer_module.HyperparameterProxy('lr')
    decay = optimizer_module.HyperparameterProxy('decay')
    momentum = optimizer_module.HyperparameterProxy('momentum')
    eps = optimizer_module.HyperparameterProxy('eps')

    def create_update_rule(self):
        return RMSpropTFRule(self.hyperparam)


# optimizer name -> (class, name of its learning-rate hyperparameter)
_OPTIMIZERS = {
    'rmsprop': (chainer.optimizers.RMSprop, 'lr'),
    'rmsprop_tf': (RMSpropTF, 'lr'),
    'nesterov': (chainer.optimizers.NesterovAG, 'lr'),
    'adam': (chainer.optimizers.Adam, 'alpha'),
}


def make_optimizer(cfg):
    """Builds the optimizer of a configuration's ``optimizer`` section.

    Args:
        cfg (dict): The validated section (see
            :mod:`train.config.classifier`).

    Returns:
        tuple: ``(optimizer, lr_attr)``, where ``lr_attr`` names the
        hyperparameter that schedules change (``lr`` or Adam's ``alpha``).
        Call ``optimizer.setup(model)`` and then :func:`add_hooks`.

    """
    cls, lr_attr = _OPTIMIZERS[cfg['name']]
    kwargs = {lr_attr: cfg['lr']}
    if cfg['name'] == 'rmsprop':
        kwargs.update({k: cfg[k] for k in ('alpha', 'eps') if k in cfg})
    elif cfg['name'] == 'rmsprop_tf':
        kwargs.update({k: cfg[k] for k in ('decay', 'momentum', 'eps')
                       if k in cfg})
    elif cfg['name'] == 'nesterov':
        kwargs['momentum'] = cfg.get('momentum', 0.9)
    else:
        if 'betas' in cfg:
            kwargs['beta1'], kwargs['beta2'] = cfg['betas']
        if 'eps' in cfg:
            kwargs['eps'] = cfg['eps']
    return cls(**kwargs), lr_attr


def add_hooks(optimizer, cfg):
    """Adds the weight-decay hook of ``cfg`` to a set-up optimizer."""
    if cfg.get('weight_decay', 0.0) > 0:
        optimizer.add_hook(
            chainer.optimizer_hooks.WeightDecay(cfg['weight_decay']))


def lr_factor(cfg, epoch, total_epochs):
    """Multiplier of the initial learning rate after ``epoch`` epochs.

    Args:
        cfg (dict): The validated ``schedule`` section.
        epoch (int): Finished epochs.
        total_epochs (int): Length of the run (for ``step`` drops).

    Returns:
        float

    """
    name = cfg['name']
    if name == 'exponential':
        return cfg['rate'] ** (epoch // cfg['every_epochs'])
    if name == 'step':
        passed = sum(1 for f in cfg['drops'] if epoch >= f * total_epochs)
        return cfg['factor'] ** passed
    return 1.0


class LRSchedule(training.Extension):

    """Sets the learning rate from the finished epochs at each epoch end.

    Stateless: on a resumed run :meth:`initialize` recomputes the rate.
    Runs after the logging extensions, so a log entry shows the rate that
    its epoch used.

    Args:
        cfg (dict): The validated ``schedule`` section.
        lr (float): Initial learning rate.
        lr_attr (str): Hyperparameter to set (``lr`` or ``alpha``).
        total_epochs (int): Length of the run.

    """

    trigger = 1, 'epoch'
    priority = -50  # after writers, editors, readers; before snapshots

    def __init__(self, cfg, lr, lr_attr, total_epochs):
        self.cfg = cfg
        self.lr = lr
        self.lr_attr = lr_attr
        self.total_epochs = total_epochs

    def _set(self, trainer):
        optimizer = trainer.updater.get_optimizer('main')
        factor = lr_factor(self.cfg, trainer.updater.epoch,
                           self.total_epochs)
        setattr(optimizer, self.lr_attr, self.lr * factor)

    def initialize(self, trainer):
        self._set(trainer)

    def __call__(self, trainer):
        self._set(trainer)
