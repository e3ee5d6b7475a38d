"""One normalization layer, forward + backward: MixtureNormalization vs BN.

For each input shape, one random activation-like tensor is normalized by
``chainer.links.BatchNormalization`` (Chainer's code, ``BN (Chainer)``),
by ``mixnorm.BatchNormalization`` (on a GPU without cuDNN: the kernels of
``mixnorm/cuda/bn.cu``, ``BN (kernels)``; on NumPy Chainer's code again)
and by ``MixtureNormalization`` for every (K, EM iter.), all in this
process, in training mode, each call a
forward and a backward from a fixed output gradient.  After a warm-up
(kernel compilation, memory pools), rounds alternate over the variants;
each round times ``--inner`` calls of a variant (then synchronises the GPU)
and the figure is the median over rounds of the time per call.

Shapes: Table 7's last DenseNet BN ((64 or 128, 196 or 448, 8, 8)), the
CIFAR CNN's conv3 ((256, 128, 8, 8)) and, on a GPU, its conv1 ((256, 64,
32, 32), K = 3, EM iter. 2: the speed issue's targets).  The floor beside
each BN figure is the time to move its tensors at ``--bandwidth`` GB/s:
forward reads x twice and writes y, backward reads x and gy twice and
writes gx (8 tensor passes).  The paper reports whole-network
iterations per second (Table 7, Titan X Pascal); its ratio BN/MN of those,
the slowdown of the whole training step, is printed beside our layer-only
ratio for orientation, not as a like-for-like comparison.

Usage::

    python benchmarks/layer.py --device @cupy:0      # full grid on a GPU
    python benchmarks/layer.py                       # CPU, reduced grid
    python benchmarks/layer.py --quick               # CPU smoke run, < 1 min
"""
import argparse
import datetime
import os
import statistics
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
sys.path.insert(0, ROOT)

from mixnorm import BatchNormalization  # noqa: E402  (before Chainer)
from mixnorm import MixtureNormalization  # noqa: E402

import numpy  # noqa: E402

import chainer  # noqa: E402
import chainer.links as L  # noqa: E402

from train.device import get_or_exit  # noqa: E402
from train.device import device_name, versions  # noqa: E402
from benchmarks.throughput import load_grid  # noqa: E402

RESULTS = os.path.join(ROOT, 'benchmarks', 'results')
SHAPES = [(64, 196, 8, 8), (64, 448, 8, 8), (128, 196, 8, 8),
          (128, 448, 8, 8), (256, 128, 8, 8)]
# Table 7: (batch, channels) -> iterations/sec, K = 1 is BN
PAPER = load_grid()['paper']


def grid(on_gpu, quick):
    """(shape, [(K, EM iter.), ...]) to run."""
    if quick:
        return [((64, 448, 8, 8), [(3, 2)]), ((256, 128, 8, 8), [(3, 2)])]
    ks, iters = ((2, 3, 4, 5), (2, 4, 8)) if on_gpu else ((3, 5), (2, 8))
    shapes = [(s, [(k, n) for k in ks for n in iters]) for s in SHAPES]
    return shapes + ([((256, 64, 32, 32), [(3, 2)])] if on_gpu else [])


def activations(shape, seed=0):
    """ReLU-then-conv-like input: a few modes per channel, float32."""
    rng = numpy.random.RandomState(seed)
    n, c, h, w = shape
    mode = rng.randint(0, 3, (n, 1, h, w))
    centers = rng.randn(3, c) * 2
    x = numpy.take(centers, mode[:, 0], axis=0).transpose(0, 3, 1, 2)
    x = numpy.maximum(x + rng.randn(*shape), 0) + 0.1 * rng.randn(*shape)
    return x.astype(numpy.float32)


def median_ms(variants, rounds, inner, sync, warmup=3):
    """Median ms per call of each variant; rounds alternate variants."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    sync()
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            times[name].append((time.perf_counter() - t0) / inner)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def step(link, x, gy):
    def run():
        link.cleargrads()
        xv = chainer.Variable(x)
        y = link(xv)
        y.grad = gy
        y.backward()
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='@numpy')
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--inner', type=int, default=None)
    parser.add_argument('--out', default=None)
    parser.add_argument('--bandwidth', type=float, default=4800.0,
                        help='GB/s of the BN floor (default: H200)')
    args = parser.parse_args(argv)
    device = get_or_exit(args.device, parser.prog)
    device.use()
    on_gpu = device.xp is not numpy
    rounds = args.rounds or (3 if args.quick else (15 if on_gpu else 5))
    inner = args.inner or (10 if on_gpu else 1)
    if on_gpu:
        import cupy
        sync = cupy.cuda.Device(device.device.id).synchronize
    else:
        def sync():
            pass

    rows = []
    for shape, configs in grid(on_gpu, args.quick):
        x = device.send(activations(shape))
        gy = device.send(numpy.random.RandomState(1).randn(
            *shape).astype(numpy.float32))
        variants = {}
        for name, link in (('chainer', L.BatchNormalization(shape[1])),
                           ('kernels', BatchNormalization(shape[1]))):
            link.to_device(device)
            variants[name] = step(link, x, gy)
        for k, em_iter in configs:
            mn = MixtureNormalization(shape[1], n_components=k,
                                      em_iter=em_iter)
            mn.to_device(device)
            variants[(k, em_iter)] = step(mn, x, gy)
        ms = median_ms(variants, rounds, inner, sync)
        floor = 8 * x.nbytes / (args.bandwidth * 1e6)
        for k, em_iter in configs:
            row = (shape, k, em_iter, ms['chainer'], ms['kernels'], floor,
                   ms[(k, em_iter)])
            rows.append(row)
            print('{:>16s} K={} EM iter.={}: BN (Chainer) {:8.3f} ms  BN '
                  '(kernels) {:8.3f} ms (floor {:.3f})  MN {:8.3f} ms  '
                  'MN/BN (kernels) {:6.2f}'.format(
                      str(shape), k, em_iter, *row[3:],
                      row[6] / row[4]))
            sys.stdout.flush()

    tag = 'gpu' if on_gpu else 'cpu'
    out = args.out or os.path.join(RESULTS, 'layer-{}.md'.format(tag))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        f.write(report(rows, device, rounds, inner, args))
    print('wrote', out)


def report(rows, device, rounds, inner, args):
    lines = [
        '# MixtureNormalization vs BatchNormalization, one layer, '
        'forward + backward', '',
        '- device: {}'.format(device_name(device)),
        '- date: {}'.format(datetime.datetime.now().isoformat(
            timespec='seconds')),
        '- versions: {}'.format(', '.join(
            '{} {}'.format(k, v)
            for k, v in versions('numpy', 'chainer', 'cupy').items())),
        '- command: `python benchmarks/layer.py {}`'.format(
            ' '.join(sys.argv[1:])),
        '- timing: one process, same float32 tensor, training mode, '
        'rounds alternate both BNs and every MN variant of a shape after 3 '
        'warm-up calls each; median over {} rounds of {} call(s)'.format(
            rounds, inner),
        '- BN floor: 8 passes over the tensor at {:g} GB/s'.format(
            args.bandwidth),
        '- paper: Table 7 whole-network iterations/sec, BN over MN '
        '(slowdown of the whole training step on a Titan X Pascal)', '',
        '| shape | K | EM iter. | BN (Chainer) ms | BN (kernels) ms | BN '
        'floor ms | MN ms | MN/BN (kernels) | MN/BN (Chainer) | paper '
        'network BN/MN |', '|---|---|---|---|---|---|---|---|---|---|']
    for shape, k, em_iter, chainer_bn, bn, floor, mn in rows:
        paper = PAPER.get(shape[:2], {})
        lines.append('| {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | '
                     '{:.2f} | {:.2f} | {} |'.format(
                         'x'.join(map(str, shape)), k, em_iter, chainer_bn,
                         bn, floor, mn, mn / bn, mn / chainer_bn,
                         '{:.3f}'.format(paper[1] / paper[k])
                         if k in paper else '-'))
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
