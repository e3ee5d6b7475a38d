"""Optimizers and learning-rate schedules named in configurations.

Optimizers (``optimizer.name``):

* ``rmsprop``: :class:`chainer.optimizers.RMSprop`; the paper's "RMSprop
  with 0.9 momentum" (Section 4.2) is read as ``alpha: 0.9``, the decay of
  the squared-gradient average.
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
import chainer
from chainer import training

# optimizer name -> (class, name of its learning-rate hyperparameter)
_OPTIMIZERS = {
    'rmsprop': (chainer.optimizers.RMSprop, 'lr'),
    'nesterov': (chainer.optimizers.NesterovAG, 'lr'),
    'adam': (chainer.optimizers.Adam, 'alpha'),
}


def make_optimizer(cfg):
    """Builds the optimizer of a configuration's ``optimizer`` section.

    Args:
        cfg (dict): The validated section (see :mod:`train.config`).

    Returns:
        tuple: ``(optimizer, lr_attr)``, where ``lr_attr`` names the
        hyperparameter that schedules change (``lr`` or Adam's ``alpha``).
        Call ``optimizer.setup(model)`` and then :func:`add_hooks`.

    """
    cls, lr_attr = _OPTIMIZERS[cfg['name']]
    kwargs = {lr_attr: cfg['lr']}
    if cfg['name'] == 'rmsprop':
        kwargs.update({k: cfg[k] for k in ('alpha', 'eps') if k in cfg})
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
