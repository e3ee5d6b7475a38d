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

    python -m benchmarks.layer --device @cupy:0      # full grid on a GPU
    python -m benchmarks.layer                       # CPU, reduced grid
    python -m benchmarks.layer --quick               # CPU smoke run, < 1 min
"""
import argparse
import os
import sys

from mixnorm import BatchNormalization  # (before Chainer)
from mixnorm import MixtureNormalization

import numpy

import chainer.links as L

from train.device import get_or_exit
from benchmarks.inputs import activations
from benchmarks.table7 import load_grid
from benchmarks.timing import forward_backward, median_ms, no_sync
from benchmarks.timing import report_head, RESULTS

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
        sync = no_sync

    rows = []
    for shape, configs in grid(on_gpu, args.quick):
        x = device.send(activations(shape))
        gy = device.send(numpy.random.RandomState(1).randn(
            *shape).astype(numpy.float32))
        variants = {}
        for name, link in (('chainer', L.BatchNormalization(shape[1])),
                           ('kernels', BatchNormalization(shape[1]))):
            link.to_device(device)
            variants[name] = forward_backward(link, x, gy)
        for k, em_iter in configs:
            mn = MixtureNormalization(shape[1], n_components=k,
                                      em_iter=em_iter)
            mn.to_device(device)
            variants[(k, em_iter)] = forward_backward(mn, x, gy)
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
        f.write(report(rows, device, rounds, inner, args, argv))
    print('wrote', out)


def report(rows, device, rounds, inner, args, argv):
    lines = [
        '# MixtureNormalization vs BatchNormalization, one layer, '
        'forward + backward', ''] + report_head(device, 'layer', argv) + [
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
