"""Swap BatchNormalization links of a model for MixtureNormalization."""
import sys

import chainer
import chainer.links as L

from mixnorm.links import MixtureNormalization
from mixnorm.multinode import MultiNodeMixtureNormalization


def _key(name):
    return '/' + name.replace('.', '/').strip('/')


def batch_normalizations(chain):
    """Paths (without the leading '/') of every BatchNormalization link."""
    return [path[1:] for path, child in chain.namedlinks(skipself=True)
            if isinstance(child, L.BatchNormalization)]


def replace_bn(chain, names, comm=None, optimizer=None, **mn_kwargs):
    """Replace named BatchNormalization links by MixtureNormalization.

    Each new link has the replaced link's size, dtype, eps, device and
    current ``gamma``/``beta`` values.  With a ChainerMN communicator the
    new links are :class:`~mixnorm.MultiNodeMixtureNormalization`.

    Call it before ``optimizer.setup(model)``.  On a model already set up,
    pass that optimizer: the new parameters then get update rules as
    ``optimizer.setup`` gives them (see :func:`replace_links`).

    Args:
        chain (~chainer.Link): the model, modified in place.
        names (iterable of str): link paths inside ``chain`` such as
            ``'conv3/bn'`` or ``'inc2/0/2/4'`` ('.' works as separator too).
        comm: a ChainerMN communicator, or None.
        optimizer (~chainer.Optimizer): the optimizer ``chain`` is set up
            with, if it is; None before ``optimizer.setup``.
        **mn_kwargs: arguments of :class:`MixtureNormalization` (e.g.
            ``n_components``, ``em_iter``).

    Returns:
        list of str: the replaced paths.

    Raises:
        ValueError: a name is not a BatchNormalization link of ``chain``
            (the message lists the valid names), or ``optimizer`` is not
            the one ``chain`` is set up with.
        RuntimeError: ``chain`` is set up with an optimizer and
            ``optimizer`` is None.
    """
    return replace_links(chain, names,
                         lambda bn: _from_bn(bn, comm, mn_kwargs),
                         optimizer=optimizer)


def replace_links(chain, names, make, optimizer=None):
    """Replace named BatchNormalization links by ``make(link)``.

    The one place that swaps links in a model: :func:`replace_bn` makes
    mixture normalization, and a trainer can make, e.g., ChainerMN's
    synchronised batch normalization from the same paths.

    ``optimizer.setup`` gives each parameter of the model an update rule;
    a parameter without one is never updated.  So on a model already set
    up (some parameter has an update rule), ``optimizer`` must be the
    optimizer it is set up with, and each parameter of a new link that has
    no update rule gets ``optimizer.create_update_rule()``, in fp32 if the
    optimizer updates in fp32: what ``optimizer.setup`` would give it.
    Nothing else of the optimizer changes: its step count, its hooks (which
    reach the new parameters, e.g. ``WeightDecay``) and the other
    parameters' rules, with their state and per-parameter settings, stay.
    The replaced links' rules go with them: settings made on those (a
    per-parameter learning rate, a rule hook) must be made again on the new
    links' rules.

    Args:
        chain (~chainer.Link): the model, modified in place.
        names (iterable of str): link paths, as for :func:`replace_bn`.
        make: function of the BatchNormalization link giving its
            replacement.
        optimizer (~chainer.Optimizer): the optimizer ``chain`` is set up
            with (a ChainerMN multi-node optimizer too), if it is.

    Returns:
        list of str: the replaced paths.

    Raises:
        ValueError: a name is not a BatchNormalization link of ``chain``
            (the message lists the valid names), or ``optimizer`` is not
            the one ``chain`` is set up with.
        RuntimeError: ``chain`` is set up with an optimizer and
            ``optimizer`` is None, or ``optimizer`` is a double-buffering
            ChainerMN optimizer.
    """
    links = dict(chain.namedlinks(skipself=True))
    valid = batch_normalizations(chain)
    targets = []
    for name in names:
        key = _key(name)
        target = links.get(key)
        if not isinstance(target, L.BatchNormalization):
            what = 'no link' if target is None else 'a {}, not a ' \
                'BatchNormalization'.format(type(target).__name__)
            raise ValueError('replace_bn: {!r} is {} in {}; valid names: '
                             '{}'.format(name, what, type(chain).__name__,
                                         ', '.join(valid) or '(none)'))
        if any(key == k for k, _ in targets):
            raise ValueError('replace_bn: {!r} is named twice'.format(name))
        targets.append((key, target))
    new_rule = _rule_maker(chain, [t for _, t in targets], optimizer)
    replaced = []
    for key, target in targets:
        parent_path, _, child = key.rpartition('/')
        parent = links[parent_path] if parent_path else chain
        new = make(target)
        _swap(parent, child, new)
        if new_rule is not None:
            for param in new.params():
                if param.update_rule is None:
                    param.update_rule = new_rule()
        links = dict(chain.namedlinks(skipself=True))
        replaced.append(key[1:])
    return replaced


def _rule_maker(chain, targets, optimizer):
    """A function giving update rules for the new links' parameters, or
    None where they need none (the model is not set up yet)."""
    set_up = any(p.update_rule is not None for p in chain.params())
    if optimizer is None:
        if set_up:
            raise RuntimeError(
                'replace_bn: {} is already set up with an optimizer (its '
                'parameters have update rules), so the links swapped in '
                'would never be trained. Call replace_bn before '
                'optimizer.setup(model), or pass that optimizer: '
                'replace_bn(model, names, optimizer=optimizer)'
                .format(type(chain).__name__))
        return None
    root = optimizer.target
    if root is None and not set_up:  # its setup, later, covers the new links
        return None
    inside = set() if root is None else {id(link) for link in root.links()}
    if not all(id(target) in inside for target in targets):
        raise ValueError(
            'replace_bn: the optimizer given is {}, not the one that {} is '
            'set up with; pass that one'.format(
                'not set up' if root is None else 'set up with a ' +
                type(root).__name__, type(chain).__name__))
    mn_optimizers = sys.modules.get('chainermn.optimizers')
    if mn_optimizers is not None and isinstance(
            optimizer, mn_optimizers._DoubleBufferingOptimizer):
        raise RuntimeError(
            'replace_bn: a double-buffering ChainerMN optimizer keeps the '
            'parameters it first saw and would not average the new ones; '
            'call replace_bn before create_multi_node_optimizer and setup')
    if not hasattr(optimizer, 'create_update_rule'):
        return None  # not a GradientMethod: no per-parameter rules

    def new_rule():
        rule = optimizer.create_update_rule()
        if getattr(optimizer, '_use_fp32_update', False):
            rule.use_fp32_update()
        return rule
    return new_rule


def _from_bn(bn, comm, mn_kwargs):
    kwargs = dict(eps=bn.eps, dtype=bn.avg_mean.dtype)  # eps: as trained
    kwargs.update(mn_kwargs)
    size = bn.avg_mean.shape[0]
    mn = MixtureNormalization(size, **kwargs) if comm is None \
        else MultiNodeMixtureNormalization(size, comm, **kwargs)
    mn.to_device(bn.device)
    for name in ('gamma', 'beta'):
        param = getattr(bn, name, None)
        if param is not None and param.array is not None:
            getattr(mn, name).array[...] = param.array
    return mn


def _swap(parent, child, new):
    if isinstance(parent, chainer.ChainList):
        parent[int(child)] = new  # names it too
        return
    delattr(parent, child)
    with parent.init_scope():
        setattr(parent, child, new)
