"""Whole-network training throughput, BN vs MN (Kalayeh & Shah, Table 7).

Sec. 5.1: DenseNet (3 blocks, growth rate 12) on CIFAR-100-shaped input
whose last BN (after the third dense block) sees 196 or 448 channels, with
that BN replaced by mixture normalization with K = 2..5, at batch sizes 64
and 128.  One iteration is a full training step: forward, backward and the
optimizer update (Nesterov momentum with weight decay, as in Sec. 4.4).

All variants of one (batch, channels) setting live in one process on the
same random input; after a warm-up, timing rounds alternate BN with BN,
convolutions and pooling on Chainer's code (K = 0 in the output), BN (with
them on mixnorm's kernels where they apply: a GPU without cuDNN), MN K=2,
..., so slow drifts of the machine hit every variant alike, and the
reported figure is the median over rounds of iterations per second.

The grid (settings, K, EM iter.) and the paper's iterations per second come
from ``configs/table7.yaml`` (:func:`benchmarks.table7.load_grid`).  The
paper's absolute figures are from a Titan X (Pascal) and compare with
nothing measured elsewhere; the MN/BN ratios of one setting do, so the
table puts each measured ratio beside the paper's.

Usage::

    python -m benchmarks.throughput [--device @cupy:0] --out results/table7.md
    python -m benchmarks.throughput --quick          # CPU smoke run

``--quick`` (batch 8, 196 channels, 5 rounds of 2 steps) and any other
departure from the grid (``--settings``, ``--ks``, ``--em-iter``) is a reduced
run: the output says "NOT a reproduction" and goes to ``--reduced-out``
when given.  Where the grid lacks a measured setting, the paper columns use
the paper's setting with the same channels and the nearest batch size, and
say which.

The 196-channel network is depth 19 in DenseNet's ``3n + 4`` rule (5 layers
per block: 16 + 3 * 5 * 12 = 196; the paper calls it 20 layers) and the
448-channel one depth 40.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import yaml

# models and train import mixnorm, which makes Chainer importable: first
import mixnorm
import models
from train.device import device_name
from train.device import get_or_exit

import numpy

import chainer
import chainer.functions as F

from benchmarks.table7 import depth_for_channels, GRID, load_grid
from benchmarks.table7 import paper_reference

QUICK = (8, 196)  # --quick: (batch, channels)


def parse_setting(text):
    """``'64x196'`` -> ``(64, 196)`` (batch size, channels at the last BN)."""
    try:
        batch, dim = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            'setting must be BATCHxCHANNELS, e.g. 64x196, got %r' % text)
    depth_for_channels(dim)
    return batch, dim


def build(dim, k, em_iter, device, seed):
    """DenseNet + optimizer; the final BN becomes MN with ``k`` components
    when ``k > 1`` (K = 1: BN, K = 0: BN too, timed with Chainer's BN)."""
    numpy.random.seed(seed)  # same initial weights for every variant
    norm = {}
    if k > 1:  # check_finite off: no host synchronisation in the forward
        norm = dict(layers=['final'], n_components=k, em_iter=em_iter,
                    check_finite=False)
    model, _ = models.build('densenet', 100,
                            {'depth': depth_for_channels(dim)}, norm)
    model.to_device(device)
    opt = chainer.optimizers.NesterovAG(lr=0.1, momentum=0.9)
    opt.setup(model)
    opt.add_hook(chainer.optimizer_hooks.WeightDecay(1e-4))
    return model, opt


def train_step(model, opt, x, t):
    model.cleargrads()
    loss = F.softmax_cross_entropy(model(x), t)
    loss.backward()
    opt.update()
    return loss


def synchronize(device):
    if device.xp is not numpy:
        device.device.synchronize()


def time_steps(model, opt, x, t, n, device, kernels=True):
    """Seconds for ``n`` training steps; ``kernels``: BN, convolution and
    pooling on mixnorm's kernels where they apply, else on Chainer's
    code."""
    mixnorm.cuda.set_switches(kernels)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        train_step(model, opt, x, t)
    synchronize(device)
    return time.perf_counter() - start


def run_setting(batch, dim, ks, args, device):
    """Median it/s per K (1 = BN, 0 = BN on Chainer's code) for one
    (batch, channels) setting."""
    rng = numpy.random.RandomState(args.seed)
    x = device.send(rng.randn(batch, 3, 32, 32).astype(numpy.float32))
    t = device.send(rng.randint(0, 100, size=batch).astype(numpy.int32))
    variants = [(k,) + build(dim, k, args.em_iter, device, args.seed)
                for k in ks]
    original = mixnorm.cuda.set_switches()
    try:
        for k, model, opt in variants:
            time_steps(model, opt, x, t, args.warmup, device, k != 0)
        rates = {k: [] for k in ks}
        for _ in range(args.repeats):
            for k, model, opt in variants:
                seconds = time_steps(model, opt, x, t, args.iters, device,
                                     k != 0)
                rates[k].append(args.iters / seconds)
    finally:
        mixnorm.cuda.set_switches(original)
    return {k: statistics.median(r) for k, r in rates.items()}


def versions():
    out = ['Python %s' % platform.python_version(),
           'NumPy %s' % numpy.__version__,
           'Chainer %s' % chainer.__version__]
    try:
        import cupy
        out.append('CuPy %s' % cupy.__version__)
    except Exception:  # CuPy absent or unusable
        out.append('CuPy not available')
    out.append('cuDNN %s' % ('off' if chainer.config.use_cudnn == 'never'
                             else chainer.config.use_cudnn))
    return ', '.join(out)


def fmt(value, spec='%.2f'):
    return '-' if value is None else spec % value


def table(results, paper):
    """Markdown rows beside the paper's.

    MN/BN is over BN with our kernels (on a GPU without cuDNN; the paper's
    BN ran on cuDNN), MN/BN (Chainer) over BN with Chainer's own BN and
    convolution code.

    Args:
        results (list): ``(batch, dim, {K: it/s})`` tuples, K = 1 is BN,
            K = 0 BN on Chainer's code.
        paper (dict): ``{(batch, dim): {K: it/s}}``
            (:func:`benchmarks.table7.load_grid`).

    """
    lines = ['| model | K | batch size | dim. | it/s | MN/BN | MN/BN '
             '(Chainer) | paper setting | paper it/s | paper MN/BN |',
             '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|']
    for batch, dim, rates in results:
        ref = paper_reference(paper, batch, dim)
        ref_rates = paper[ref] if ref else {}
        label = '-'
        if ref:
            label = '%dx%d' % ref + ('' if ref == (batch, dim)
                                     else ' (nearest)')
        for k in sorted(rates):
            ratio = rates[k] / rates[1] if 1 in rates else None
            chainer_ratio = rates[k] / rates[0] if 0 in rates else None
            p = ref_rates.get(k)
            p_ratio = p / ref_rates[1] if p is not None else None
            lines.append('| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s |'
                         % ({0: 'BN (Chainer)', 1: 'BN'}.get(k, 'MN'),
                            k or '-', batch, dim, fmt(rates[k]),
                            fmt(ratio, '%.3f'), fmt(chainer_ratio, '%.3f'),
                            label, fmt(p), fmt(p_ratio, '%.3f')))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default=None,
                        help='Chainer device, e.g. @cupy:0 or @numpy '
                        '(default: the GPU when CuPy finds one)')
    parser.add_argument('--grid', default=GRID,
                        help='Table 7 grid and paper numbers (default: '
                        'configs/table7.yaml)')
    parser.add_argument('--settings', nargs='+', type=parse_setting,
                        default=None, metavar='BATCHxDIM',
                        help='(batch size, channels at the last BN) pairs; '
                        'default: the grid\'s (64x196 64x448 128x448)')
    parser.add_argument('--ks', nargs='+', type=int, default=None,
                        help='mixture components to time (BN always runs); '
                        'default: the grid\'s (2 3 4 5)')
    parser.add_argument('--em-iter', type=int, default=None,
                        help='MN "EM iter." (default: the grid\'s, 2)')
    parser.add_argument('--iters', type=int, default=20,
                        help='training steps per timing round')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timing rounds (median is reported)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed steps per variant before timing')
    parser.add_argument('--no-cudnn', action='store_true',
                        help='run BN and convolutions without cuDNN')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quick', action='store_true',
                        help='small CPU run: batch 8, 196 channels, '
                        '5 rounds of 2 steps, 1 warm-up step')
    parser.add_argument('--out', default=None,
                        help='write the markdown table to this path')
    parser.add_argument('--reduced-out', default=None,
                        help='where to write instead for a reduced run')
    args = parser.parse_args(argv)

    try:
        grid = load_grid(args.grid)
    except (OSError, ValueError, yaml.YAMLError) as e:
        parser.error(str(e))
    paper = grid['paper']
    if args.quick:
        args.settings = args.settings or [QUICK]
        args.iters, args.repeats, args.warmup = 2, 5, 1
    settings = args.settings or sorted(paper)
    ks = sorted(set(args.ks)) if args.ks else grid['ks']
    em_iter = args.em_iter or grid['em_iter']
    if any(k < 2 for k in ks):
        parser.error('--ks are mixture components, each >= 2')
    reduced = (args.quick or sorted(settings) != sorted(paper) or
               ks != grid['ks'] or em_iter != grid['em_iter'])
    if args.no_cudnn:
        chainer.config.use_cudnn = 'never'
    args.em_iter = em_iter

    device = get_or_exit(args.device, parser.prog)
    device.use()
    results = []
    for batch, dim in settings:
        started = time.perf_counter()
        rates = run_setting(batch, dim, [0, 1] + ks, args, device)
        results.append((batch, dim, rates))
        print('batch %d, dim %d (depth %d): %s  [%.1f s]' % (
            batch, dim, depth_for_channels(dim),
            ', '.join('K=%d %.2f it/s' % kv for kv in sorted(rates.items())),
            time.perf_counter() - started), flush=True)

    header = ['# Table 7: DenseNet training throughput, BN vs MN (final BN)',
              '']
    if reduced:
        header += ['**Reduced run (settings, K or EM iter. other than the '
                   'grid\'s, or --quick): NOT a reproduction of the '
                   'paper.**', '']
    header += [
        '- device: %s' % device_name(device),
        '- date: %s' % datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        '- versions: %s' % versions(),
        '- settings: CIFAR-100-shaped random input (3x32x32, 100 classes), '
        'NesterovAG + weight decay, MN EM iter. %d; median over %d rounds '
        'of %d steps after %d warm-up steps, variants alternating'
        % (em_iter, args.repeats, args.iters, args.warmup),
        '- paper: %s, Table 7. Its absolute it/s compare with nothing '
        'measured on another device; the MN/BN ratios do.'
        % grid['paper_device'],
        '']
    text = '\n'.join(header) + '\n' + table(results, paper) + '\n'
    print()
    print(text)
    out = args.reduced_out if (reduced and args.reduced_out) else args.out
    if out:
        directory = os.path.dirname(os.path.abspath(out))
        os.makedirs(directory, exist_ok=True)
        with open(out, 'w') as f:
            f.write(text)
        print('wrote %s%s' % (out, ' (reduced run)' if reduced else ''),
              file=sys.stderr)
    return results


if __name__ == '__main__':
    main()
