"""Convolution forward + backward: Chainer's code vs mixnorm's GEMM path.

At the convolutions of the paper's models (the CIFAR CNN's four at batch
256, typical DenseNet-40 and Inception-V3 ones at their batch sizes), one
process times ``chainer.links.Convolution2D`` and ``mixnorm.Convolution2D``
(on a GPU without cuDNN: ``mixnorm/cuda/conv.cu`` and cuBLAS) on the same
input, training mode, rounds alternating the two
(:func:`benchmarks.timing.median_ms`).  Beside each it prints the achieved
float32 rate (3 GEMMs of 2 N OH OW C KH KW out FLOPs each) and that rate
over ``--tflops``.

Usage::

    python -m benchmarks.conv --device @cupy:0 --out conv-gpu.md
    python -m benchmarks.conv --quick        # CPU smoke run
"""
import argparse

import mixnorm  # (before Chainer)

import numpy

import chainer
import chainer.links as L

from benchmarks.timing import forward_backward, median_ms, no_sync
from benchmarks.timing import report_head

# (label, input shape, out channels, ksize, stride, pad); "transposed":
# Deconvolution2D, whose FLOPs are those of the convolution of its output
SHAPES = [('CIFAR CNN conv1', (256, 3, 32, 32), 64, 5, 1, 2),
          ('CIFAR CNN conv2', (256, 64, 16, 16), 128, 5, 1, 2),
          ('CIFAR CNN conv3', (256, 128, 8, 8), 128, 5, 1, 2),
          ('CIFAR CNN conv4', (256, 128, 4, 4), 256, 3, 1, 1),
          ('DenseNet-40 block 1', (64, 160, 32, 32), 12, 3, 1, 1),
          ('DenseNet-40 block 3', (64, 448, 8, 8), 12, 3, 1, 1),
          ('Inception-V3 3x3', (128, 64, 32, 32), 96, 3, 1, 1),
          ('Inception-V3 1x1', (128, 288, 16, 16), 64, 1, 1, 0),
          ('DCGAN dc1 transposed', (64, 512, 4, 4), 256, 4, 2, 1),
          ('DCGAN dc4 transposed', (64, 64, 32, 32), 3, 3, 1, 1)]


def flops(shape, out, k, stride, pad):
    n, c, h, w = shape
    oh, ow = ((h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
    return 3 * 2 * n * oh * ow * c * k * k * out


def transposed_flops(shape, out, k, stride, pad):
    """A transposed convolution's: that of the convolution of its output."""
    n, c, h, w = shape
    return 3 * 2 * n * h * w * c * k * k * out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='@numpy')
    parser.add_argument('--quick', action='store_true',
                        help='batch 2, two layers, 2 rounds')
    parser.add_argument('--tflops', type=float, default=51.0,
                        help='float32 rate for the last column (H200 GEMM)')
    parser.add_argument('--out')
    args = parser.parse_args(argv)
    device = chainer.get_device(args.device)
    device.use()
    on_gpu = device.xp is not numpy
    sync = device.device.synchronize if on_gpu else no_sync
    shapes = SHAPES
    if args.quick:  # a convolution and a transposed one at batch 2
        shapes = [(s[0], (2,) + s[1][1:]) + s[2:]
                  for s in (SHAPES[1], SHAPES[-2])]
    rounds, inner = (2, 1) if args.quick else ((10, 5) if on_gpu else (3, 1))
    rng = numpy.random.RandomState(0)
    lines = ['# Convolution forward + backward: Chainer vs mixnorm', '']
    lines += report_head(device, 'conv', argv)
    lines += ['- timing: median over {} rounds of {} call(s), the two '
              'alternating; rate: 3 GEMMs of 2 N OH OW C KH KW out FLOPs '
              'over the time, beside {:g} TFLOP/s'.format(
                  rounds, inner, args.tflops),
              '', '| convolution | input | out, k, s, p | Chainer ms | '
              'mixnorm ms | Chainer / mixnorm | mixnorm TFLOP/s | of peak |',
              '|---|---|---|---:|---:|---:|---:|---:|']
    for label, shape, out, k, s, p in shapes:
        x = device.send(rng.randn(*shape).astype(numpy.float32))
        variants = {}
        transposed = label.endswith('transposed')
        cls = 'Deconvolution2D' if transposed else 'Convolution2D'
        for name, module in (('chainer', L), ('mixnorm', mixnorm)):
            link = getattr(module, cls)(shape[1], out, k, stride=s, pad=p)
            link.to_device(device)
            gy = link.xp.ones_like(link(x).array)
            variants[name] = forward_backward(link, x, gy)
        ms = median_ms(variants, rounds, inner, sync)
        rate = (transposed_flops if transposed else flops)(
            shape, out, k, s, p) / ms['mixnorm'] / 1e9
        lines.append('| {} | {} | {}, {}, {}, {} | {:.3f} | {:.3f} | {:.2f} '
                     '| {:.1f} | {:.0%} |'.format(
                         label, 'x'.join(map(str, shape)), out, k, s, p,
                         ms['chainer'], ms['mixnorm'],
                         ms['chainer'] / ms['mixnorm'], rate,
                         rate / args.tflops))
        print(lines[-1], flush=True)
    text = '\n'.join(lines) + '\n'
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return text


if __name__ == '__main__':
    main()
