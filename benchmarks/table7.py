"""Table 7's grid (``configs/table7.yaml``): the (batch size, channels)
settings of the DenseNet throughput benchmark, K and EM iter., and the
paper's iterations per second (Kalayeh & Shah, Sec. 5.1, on a Titan X
Pascal), which :mod:`benchmarks.throughput` and :mod:`benchmarks.layer`
print beside what they measure; and the depth of the DenseNet (3 blocks,
growth rate 12) whose last BN sees a number of channels.
"""
import os

import yaml

GROWTH = 12
INIT_CHANNELS = 16
GRID = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                    'configs', 'table7.yaml')


def load_grid(path=GRID):
    """Reads and checks Table 7's grid.

    The file holds ``paper_device`` (str), ``em_iter`` (int, MN's EM iter.)
    and ``settings``, a list of ``{batch_size, channels, paper_its: {BN:
    it/s, MN: {K: it/s}}}``.

    Args:
        path (str): The YAML file (default ``configs/table7.yaml``).

    Returns:
        dict: ``paper_device``, ``em_iter``, ``ks`` (sorted K of every
        setting) and ``paper``: ``{(batch, channels): {K: it/s}}`` with
        K = 1 for BN.

    Raises:
        ValueError: The message names the file and the offending key.

    """
    def fail(where, what):
        raise ValueError('{}: {}: {}'.format(path, where, what))

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) \
            and v > 0

    def keys(d, where, expected):
        if not isinstance(d, dict) or sorted(d) != sorted(expected):
            fail(where, 'must be a mapping with keys {}, got {!r}'.format(
                ', '.join(expected), d))

    with open(path) as f:
        data = yaml.safe_load(f)
    keys(data, 'top level', ('paper_device', 'em_iter', 'settings'))
    if not isinstance(data['em_iter'], int) or data['em_iter'] < 1:
        fail('em_iter', 'must be a positive integer')
    if not isinstance(data['settings'], list) or not data['settings']:
        fail('settings', 'must be a non-empty list')
    paper, ks = {}, None
    for i, entry in enumerate(data['settings']):
        where = 'settings[{}]'.format(i)
        keys(entry, where, ('batch_size', 'channels', 'paper_its'))
        batch, dim = entry['batch_size'], entry['channels']
        if not isinstance(batch, int) or batch < 1:
            fail(where + '.batch_size', 'must be a positive integer')
        try:
            depth_for_channels(dim)
        except (TypeError, ValueError) as e:
            fail(where + '.channels', e)
        its = entry['paper_its']
        keys(its, where + '.paper_its', ('BN', 'MN'))
        if not isinstance(its['MN'], dict) or not its['MN'] or not all(
                isinstance(k, int) and k >= 2 for k in its['MN']):
            fail(where + '.paper_its.MN', 'must map K >= 2 to it/s')
        rates = {1: its['BN']}
        rates.update(its['MN'])
        if not all(number(v) for v in rates.values()):
            fail(where + '.paper_its', 'it/s must be positive numbers')
        if (batch, dim) in paper:
            fail(where, 'setting {}x{} is listed twice'.format(batch, dim))
        if ks is not None and sorted(its['MN']) != ks:
            fail(where + '.paper_its.MN', 'K differ between settings')
        ks = sorted(its['MN'])
        paper[(batch, dim)] = rates
    return {'paper_device': str(data['paper_device']),
            'em_iter': data['em_iter'], 'ks': ks, 'paper': paper}


def paper_reference(paper, batch, dim):
    """The paper's setting to compare ``(batch, dim)`` with, or None.

    The same setting when the grid has it, else the one with the same
    channels and the nearest batch size.
    """
    if (batch, dim) in paper:
        return batch, dim
    same = [b for b, d in paper if d == dim]
    if not same:
        return None
    return min(same, key=lambda b: (abs(b - batch), b)), dim


def depth_for_channels(dim):
    """DenseNet depth whose last BN sees ``dim`` channels."""
    n, rem = divmod(dim - INIT_CHANNELS, 3 * GROWTH)
    if rem or n < 1:
        raise ValueError('%d channels is not 16 + 36n' % dim)
    return 3 * n + 4
