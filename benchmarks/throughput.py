"""Whole-network training throughput, BN vs MN (Kalayeh & Shah, Table 7).

Sec. 5.1: DenseNet (3 blocks, growth rate 12) on CIFAR-100-shaped input
whose last BN (after the third dense block) sees 196 or 448 channels, with
that BN replaced by mixture normalization with K = 2..5, at batch sizes 64
and 128.  One iteration is a full training step: forward, backward and the
optimizer update (Nesterov momentum with weight decay, as in Sec. 4.4).

All variants of one (batch, channels) setting live in one process on the
same random input; after a warm-up, timing rounds alternate BN, MN K=2, ...,
so slow drifts of the machine hit every variant alike, and the reported
figure is the median over rounds of iterations per second.

Usage::

    python benchmarks/throughput.py --device @cupy:0 --out results.md
    python benchmarks/throughput.py --quick          # CPU smoke run

The 196-channel network is depth 19 in DenseNet's ``3n + 4`` rule (5 layers
per block: 16 + 3 * 5 * 12 = 196; the paper calls it 20 layers) and the
448-channel one depth 40.
"""
import argparse
import datetime
import inspect
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir))

import mixnorm  # noqa: E402  (patches the stack before Chainer is imported)

import numpy  # noqa: E402

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402

from models.densenet import DenseNet  # noqa: E402


GROWTH = 12
INIT_CHANNELS = 16

# Table 7 (Titan X Pascal): (batch, dim) -> {K: iterations/sec}, K=1 is BN
PAPER = {
    (64, 196): {1: 16.40, 2: 14.46, 3: 14.42, 4: 13.91, 5: 13.69},
    (64, 448): {1: 9.26, 2: 8.83, 3: 8.51, 4: 8.52, 5: 8.41},
    (128, 448): {1: 7.35, 2: 6.59, 3: 6.51, 4: 6.41, 5: 6.38},
}


def depth_for_channels(dim):
    """DenseNet depth whose last BN sees ``dim`` channels."""
    n, rem = divmod(dim - INIT_CHANNELS, 3 * GROWTH)
    if rem or n < 1:
        raise ValueError('%d channels is not 16 + 36n' % dim)
    return 3 * n + 4


def parse_setting(text):
    """``'64x196'`` -> ``(64, 196)`` (batch size, channels at the last BN)."""
    try:
        batch, dim = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            'setting must be BATCHxCHANNELS, e.g. 64x196, got %r' % text)
    depth_for_channels(dim)
    return batch, dim


def mn_available():
    return hasattr(mixnorm, 'replace_bn')


def build(dim, k, n_iter, device, seed):
    """DenseNet + optimizer; the final BN becomes MN with ``k`` components
    when ``k > 1``."""
    numpy.random.seed(seed)  # same initial weights for every variant
    model = DenseNet(100, depth=depth_for_channels(dim))
    if k > 1:
        kwargs = dict(n_components=k, n_iter=n_iter)
        params = inspect.signature(mixnorm.MixtureNormalization).parameters
        if 'check_finite' in params:
            kwargs['check_finite'] = False  # no host sync in the forward
        mixnorm.replace_bn(model, model.norm_paths(['final']), **kwargs)
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


def time_steps(model, opt, x, t, n, device):
    """Seconds for ``n`` training steps."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        train_step(model, opt, x, t)
    synchronize(device)
    return time.perf_counter() - start


def run_setting(batch, dim, ks, args, device):
    """Median it/s per K (1 = BN) for one (batch, channels) setting."""
    rng = numpy.random.RandomState(args.seed)
    x = device.send(rng.randn(batch, 3, 32, 32).astype(numpy.float32))
    t = device.send(rng.randint(0, 100, size=batch).astype(numpy.int32))
    variants = [(k,) + build(dim, k, args.n_iter, device, args.seed)
                for k in ks]
    for _, model, opt in variants:
        for _ in range(args.warmup):
            train_step(model, opt, x, t)
    rates = {k: [] for k in ks}
    for _ in range(args.repeats):
        for k, model, opt in variants:
            seconds = time_steps(model, opt, x, t, args.iters, device)
            rates[k].append(args.iters / seconds)
    return {k: statistics.median(r) for k, r in rates.items()}


def device_name(device):
    if device.xp is numpy:
        name = platform.processor() or platform.machine()
        try:
            with open('/proc/cpuinfo') as f:
                for line in f:
                    if line.startswith('model name'):
                        name = line.split(':', 1)[1].strip()
                        break
        except OSError:
            pass
        return 'CPU: %s (%d cores)' % (name, os.cpu_count() or 0)
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(device.device.id)
    name = props['name']
    if isinstance(name, bytes):
        name = name.decode()
    return 'GPU %d: %s' % (device.device.id, name)


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


def table(results):
    """Markdown rows: results is a list of (batch, dim, {K: it/s})."""
    lines = ['| model | K | batch size | dim. | it/s | MN/BN | paper it/s '
             '| paper MN/BN |',
             '|---|---:|---:|---:|---:|---:|---:|---:|']
    for batch, dim, rates in results:
        paper = PAPER.get((batch, dim), {})
        for k in sorted(rates):
            ratio = rates[k] / rates[1] if 1 in rates else None
            p = paper.get(k)
            p_ratio = p / paper[1] if p is not None else None
            lines.append('| %s | %d | %d | %d | %s | %s | %s | %s |' % (
                'BN' if k == 1 else 'MN', k, batch, dim, fmt(rates[k]),
                fmt(ratio, '%.3f'), fmt(p), fmt(p_ratio, '%.3f')))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='@numpy',
                        help='Chainer device, e.g. @cupy:0 or @numpy')
    parser.add_argument('--settings', nargs='+', type=parse_setting,
                        default=None, metavar='BATCHxDIM',
                        help='(batch size, channels at the last BN) pairs; '
                        'default: Table 7\'s 64x196 64x448 128x448')
    parser.add_argument('--ks', nargs='+', type=int, default=[2, 3, 4, 5],
                        help='mixture components to time (BN always runs)')
    parser.add_argument('--n-iter', type=int, default=2,
                        help='MN "EM iter." (Sec. 4.4 uses 2)')
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
                        help='tiny smoke run: batch 8, 196 channels, '
                        '2 steps x 2 rounds, 1 warm-up step')
    parser.add_argument('--out', default=None,
                        help='write the markdown table to this path')
    args = parser.parse_args(argv)

    if args.quick:
        args.settings = args.settings or [(8, 196)]
        args.iters, args.repeats, args.warmup = 2, 2, 1
    settings = args.settings or sorted(PAPER, key=lambda s: (s[0], s[1]))
    if any(k < 2 for k in args.ks):
        parser.error('--ks are mixture components, each >= 2')
    if args.no_cudnn:
        chainer.config.use_cudnn = 'never'

    device = chainer.get_device(args.device)
    device.use()
    ks = [1]
    note = ''
    if mn_available():
        ks += sorted(set(args.ks))
    else:
        note = ('MN rows skipped: this mixnorm has no replace_bn yet.\n')

    results = []
    for batch, dim in settings:
        started = time.perf_counter()
        rates = run_setting(batch, dim, ks, args, device)
        results.append((batch, dim, rates))
        print('batch %d, dim %d (depth %d): %s  [%.1f s]' % (
            batch, dim, depth_for_channels(dim),
            ', '.join('K=%d %.2f it/s' % kv for kv in sorted(rates.items())),
            time.perf_counter() - started), flush=True)

    header = [
        '# Table 7: DenseNet training throughput, BN vs MN (final BN)',
        '',
        '- device: %s' % device_name(device),
        '- date: %s' % datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        '- versions: %s' % versions(),
        '- settings: CIFAR-100-shaped random input (3x32x32, 100 classes), '
        'NesterovAG + weight decay, MN EM iter. %d; median over %d rounds '
        'of %d steps after %d warm-up steps, variants alternating'
        % (args.n_iter, args.repeats, args.iters, args.warmup),
        '- paper: Titan X (Pascal), Table 7',
        '']
    text = '\n'.join(header) + '\n' + note + table(results) + '\n'
    print()
    print(text)
    if args.out:
        directory = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(directory, exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)
    return results


if __name__ == '__main__':
    main()
