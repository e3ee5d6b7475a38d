"""Converts the PyTorch FID Inception weights into this project's ``.npz``.

    python -m train.fid convert pt_inception-2015-12-05-6726825d.pth \\
        fid_inception-2015-12-05.npz

The input is the weight file of mseitzer/pytorch-fid (the TensorFlow FID
Inception of 2015-12-05 ported to PyTorch; see the README for where to get
it).  Reading it needs ``torch`` (any CPU build: ``pip install torch``);
nothing else in this project does.  The output loads into
:class:`train.fid.inception.FIDInceptionV3` (``--fid-weights PATH``).

Each PyTorch tensor ``<path>.conv.weight`` / ``<path>.bn.{weight, bias,
running_mean, running_var}`` goes to ``<path>/conv/W`` / ``<path>/bn/{gamma,
beta, avg_mean, avg_var}``; the classifier (``fc.*``) and
``num_batches_tracked`` counters are not needed for pool3 and are skipped.
Every parameter of the network must be filled exactly once, with the
shape it has here; anything else is an error that names the tensors.
"""
import numpy

import chainer

from train.fid import inception

# PyTorch name of a tensor of a conv or bn module -> Chainer attribute
_ATTRS = {('conv', 'weight'): 'W', ('bn', 'weight'): 'gamma',
          ('bn', 'bias'): 'beta', ('bn', 'running_mean'): 'avg_mean',
          ('bn', 'running_var'): 'avg_var'}
_SKIPPED_PREFIXES = ('fc.', 'AuxLogits.')


class ConversionError(ValueError):
    """The state dict does not fit the FID network; the message says how."""


def _targets(net):
    """Chainer path -> (link, attribute) for every array to be filled."""
    out = {}
    for path, link in net.namedlinks(skipself=True):
        kind = path.rsplit('/', 1)[-1]
        for (module, _), attr in _ATTRS.items():
            if module == kind:
                out['{}/{}'.format(path.lstrip('/'), attr)] = (link, attr)
    return out


def convert_state_dict(state):
    """Fills a :class:`FIDInceptionV3` from a PyTorch-style state dict.

    Args:
        state (dict): Tensor name -> array (NumPy, or anything
            ``numpy.asarray`` takes), as the PyTorch port names them.

    Returns:
        tuple: ``(net, skipped)``: the filled network and the sorted names
        of the tensors it does not use.

    Raises:
        ConversionError: A tensor is unknown or has the wrong shape, or a
            parameter of the network has no tensor.

    """
    net = inception.FIDInceptionV3()
    targets = _targets(net)
    filled, skipped, unknown, shapes = set(), [], [], []
    for name, value in state.items():
        parts = name.split('.')
        if name.startswith(_SKIPPED_PREFIXES) or \
                parts[-1] == 'num_batches_tracked':
            skipped.append(name)
            continue
        attr = _ATTRS.get(tuple(parts[-2:]))
        path = '/'.join(parts[:-1] + [attr]) if attr else None
        if path not in targets:
            unknown.append(name)
            continue
        link, attr = targets[path]
        dest = getattr(link, attr)
        dest = dest.array if isinstance(dest, chainer.Variable) else dest
        value = numpy.asarray(value, dtype=numpy.float32)
        if value.shape != dest.shape:
            shapes.append('{} {} (expected {})'.format(
                name, value.shape, dest.shape))
            continue
        dest[...] = value
        filled.add(path)
    missing = sorted(set(targets) - filled)
    problems = []
    for title, names in (('unknown tensors', unknown),
                         ('wrong shapes', shapes),
                         ('parameters without a tensor', missing)):
        if names:
            problems.append('{} ({}): {}{}'.format(
                title, len(names), ', '.join(names[:5]),
                ', ...' if len(names) > 5 else ''))
    if problems:
        raise ConversionError('not the FID Inception weights: ' +
                              '; '.join(problems))
    return net, sorted(skipped)


def read_torch(path):
    """The state dict of a PyTorch weight file, as NumPy arrays."""
    try:
        import torch
    except ImportError:
        raise ConversionError(
            'reading {} needs PyTorch, for this conversion only: pip install '
            'torch (a CPU build is enough)'.format(path))
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike
        raise ConversionError('{}: not a PyTorch weight file ({}: {})'.format(
            path, type(e).__name__, e))
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ConversionError('{} holds a {}, not a state dict'.format(
            path, type(state).__name__))
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def convert(src, dst):
    """Converts the file ``src`` (``.pth``) into ``dst`` (``.npz``).

    Returns:
        list of str: Names of the skipped tensors.

    """
    net, skipped = convert_state_dict(read_torch(src))
    chainer.serializers.save_npz(dst, net)
    return skipped
