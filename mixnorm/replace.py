"""Swap BatchNormalization links of a model for MixtureNormalization."""
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


def replace_bn(chain, names, comm=None, **mn_kwargs):
    """Replace named BatchNormalization links by MixtureNormalization.

    Each new link has the replaced link's size, dtype, eps, device and
    current ``gamma``/``beta`` values.  With a ChainerMN communicator the
    new links are :class:`~mixnorm.MultiNodeMixtureNormalization`.

    Args:
        chain (~chainer.Link): the model, modified in place.
        names (iterable of str): link paths inside ``chain`` such as
            ``'conv3/bn'`` or ``'inc2/0/2/4'`` ('.' works as separator too).
        comm: a ChainerMN communicator, or None.
        **mn_kwargs: arguments of :class:`MixtureNormalization` (e.g.
            ``n_components``, ``em_iter``).

    Returns:
        list of str: the replaced paths.

    Raises:
        ValueError: a name is not a BatchNormalization link of ``chain``;
            the message lists the valid names.
    """
    return replace_links(chain, names,
                         lambda bn: _from_bn(bn, comm, mn_kwargs))


def replace_links(chain, names, make):
    """Replace named BatchNormalization links by ``make(link)``.

    The one place that swaps links in a model: :func:`replace_bn` makes
    mixture normalization, and a trainer can make, e.g., ChainerMN's
    synchronised batch normalization from the same paths.

    Args:
        chain (~chainer.Link): the model, modified in place.
        names (iterable of str): link paths, as for :func:`replace_bn`.
        make: function of the BatchNormalization link giving its
            replacement.

    Returns:
        list of str: the replaced paths.

    Raises:
        ValueError: a name is not a BatchNormalization link of ``chain``;
            the message lists the valid names.
    """
    links = dict(chain.namedlinks(skipself=True))
    valid = batch_normalizations(chain)
    replaced = []
    for name in names:
        key = _key(name)
        target = links.get(key)
        if not isinstance(target, L.BatchNormalization):
            what = 'no link' if target is None else 'a {}, not a ' \
                'BatchNormalization'.format(type(target).__name__)
            raise ValueError('replace_bn: {!r} is {} in {}; valid names: '
                             '{}'.format(name, what, type(chain).__name__,
                                         ', '.join(valid) or '(none)'))
        parent_path, _, child = key.rpartition('/')
        parent = links[parent_path] if parent_path else chain
        _swap(parent, child, make(target))
        links = dict(chain.namedlinks(skipself=True))
        replaced.append(key[1:])
    return replaced


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
