"""Where the time of one MixtureNormalization call goes, on a GPU.

At each shape (default Table 7's (64, 448, 8, 8) and the CIFAR CNN's
conv1 output (256, 64, 32, 32)), K and EM iter. (default 3 and 2) it
times, in one process on the same tensor, the median ms per call of:

* ``BN (Chainer) fwd+bwd``, ``BN (kernels) fwd+bwd`` and ``MN fwd+bwd``:
  as :mod:`benchmarks.layer` does;
* ``NCHW to rows copy``: the transposition of x into the (N H W, C) rows
  that the fit reads, alone (the fit's kernels read rows; this tells what
  reading NCHW directly could save);
* ``fit``: :func:`mixnorm.gmm.fit` alone; ``MN function fwd+bwd``:
  :func:`mixnorm.mixture_normalization` from given posteriors;
* ``... enqueue``: the host time to issue the calls (100 calls, one
  synchronisation at the end, divided by 100): when it is close to the
  synchronised time, Python and launch overhead bound the call;
* ``... graph replay``: the training forward captured once into a CUDA
  graph and replayed: the device time with no Python in the way;
* per kernel of mixnorm's: the GPU ms of each kernel an MN forward +
  backward launches (CUDA events around each launch).

It also counts the nodes (kernels, copies) of the captured forwards
through the CUDA driver API.  Output goes to stdout and, with ``--out``,
to a markdown file.

Usage::

    python -m benchmarks.breakdown --device @cupy:0 --out breakdown.md
"""
import argparse
import sys

import mixnorm  # (patches the stack before Chainer is imported)
from mixnorm import MixtureNormalization, gmm

import numpy

import chainer
import chainer.links as L

from benchmarks.inputs import activations
from benchmarks.timing import forward_backward, host_ms, median_ms
from benchmarks.timing import versions_line
from train.device import get_or_exit
from train.device import device_name


def timed(fn, sync):
    """Median ms per call (synchronised) and host ms per call (enqueue)."""
    ms = median_ms({'fn': fn}, 20, 10, sync)['fn']
    return ms, host_ms(fn, 100, sync)


def captured_nodes(stream):
    """(nodes, kernel nodes) of the graph ``stream`` is capturing, from the
    CUDA driver API (``cuStreamGetCaptureInfo``, ``cuGraphGetNodes``)."""
    import ctypes
    cuda = ctypes.CDLL('libcuda.so.1')
    out = [ctypes.c_int(), ctypes.c_uint64(), ctypes.c_void_p(),
           ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_size_t()]
    for name, n_out in (('cuStreamGetCaptureInfo_v3', 6),
                        ('cuStreamGetCaptureInfo_v2', 5)):
        fn = getattr(cuda, name, None)
        if fn is not None:
            args = out[:n_out - 1] + out[-1:]
            break
    else:
        raise RuntimeError('no cuStreamGetCaptureInfo in libcuda')
    rc = fn(ctypes.c_void_p(stream.ptr), *(ctypes.byref(a) for a in args))
    if rc:
        raise RuntimeError('{} returned {}'.format(name, rc))
    graph, count = out[2], ctypes.c_size_t()
    cuda.cuGraphGetNodes(graph, None, ctypes.byref(count))
    nodes = (ctypes.c_void_p * count.value)()
    cuda.cuGraphGetNodes(graph, nodes, ctypes.byref(count))
    kind = ctypes.c_int()
    kernels = 0
    for node in nodes:
        cuda.cuGraphNodeGetType(ctypes.c_void_p(node), ctypes.byref(kind))
        kernels += kind.value == 0  # CU_GRAPH_NODE_TYPE_KERNEL
    return count.value, kernels


def graph_of(fn, stream):
    """fn's device work captured into a CUDA graph, and its node counts
    (None when the driver API cannot be queried)."""
    with stream:
        for _ in range(2):
            fn()
        stream.synchronize()
        stream.begin_capture()
        try:
            fn()
            try:
                counts = captured_nodes(stream)
            except Exception as e:  # a diagnostic only
                print('node count unavailable:', e)
                counts = None, None
        finally:
            graph = stream.end_capture()
    return (graph,) + tuple(counts)


def kernel_table(label, fn, calls=20):
    """GPU ms per call of each of mixnorm's kernels that ``fn`` launches
    (CUDA events around every launch: :func:`mixnorm.cuda._compile.
    timed_launches`), the largest first."""
    totals = {}
    with mixnorm.cuda._compile.timed_launches(totals):
        for _ in range(calls):
            fn()
    lines = ['| kernel ({}) | GPU ms per call | launches per call |'.format(
        label), '|---|---|---|']
    for name, (ms, count) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        lines.append('| {} | {:.4f} | {:g} |'.format(name, ms / calls,
                                                       count / calls))
    print('\n'.join(lines))
    return lines


def breakdown(shape, args, device, sync, stream):
    """The markdown lines of one shape's breakdown."""
    x = device.send(activations(shape))
    gy = device.send(numpy.random.RandomState(1).randn(*shape).astype(
        numpy.float32))
    chainer_bn = L.BatchNormalization(shape[1])
    bn = mixnorm.BatchNormalization(shape[1])
    mn = MixtureNormalization(shape[1], n_components=args.K,
                              em_iter=args.em_iter)
    for link in (chainer_bn, bn, mn):
        link.to_device(device)
    rows = mixnorm.functions.to_rows(x)
    _, resp = gmm.fit(rows, args.K, em_iter=args.em_iter)
    gamma, beta = mn.gamma.array, mn.beta.array

    def function():
        xv = chainer.Variable(x)
        y = mixnorm.mixture_normalization(xv, gamma, beta, resp)
        y.grad = gy
        y.backward()

    parts = [('BN (Chainer) fwd+bwd', forward_backward(chainer_bn, x, gy)),
             ('BN (kernels) fwd+bwd', forward_backward(bn, x, gy)),
             ('MN fwd+bwd', forward_backward(mn, x, gy)),
             ('NCHW to rows copy (in the fit)',
              lambda: mixnorm.functions.to_rows(x)),
             ('fit', lambda: gmm.fit(rows, args.K, em_iter=args.em_iter)),
             ('MN function fwd+bwd', function)]
    lines = ['## {}, K={}, EM iter.={}'.format(shape, args.K, args.em_iter),
             '', '| part | ms per call (synchronised) | host ms per call '
             '(enqueue) |', '|---|---|---|']
    for name, fn in parts:
        ms, host = timed(fn, sync)
        lines.append('| {} | {:.3f} | {:.3f} |'.format(name, ms, host))
        print(lines[-1])
        sys.stdout.flush()
    lines += [''] + kernel_table('MN fwd+bwd', forward_backward(mn, x, gy))
    lines += ['', '| captured | graph nodes | kernel nodes | replay ms |',
              '|---|---|---|---|']
    for name, fn in (('BN (Chainer) forward', lambda: chainer_bn(x)),
                     ('BN (kernels) forward', lambda: bn(x)),
                     ('MN training forward', lambda: mn(x))):
        try:
            graph, nodes, kernels = graph_of(fn, stream)
        except Exception as e:  # report, do not hide, a failed capture
            lines.append('| {} | capture failed: {} | | |'.format(
                name, str(e).splitlines()[0][:120]))
            print(lines[-1])
            continue
        ms, _ = timed(lambda: graph.launch(stream), stream.synchronize)
        lines.append('| {} | {} | {} | {:.3f} |'.format(name, nodes,
                                                          kernels, ms))
        print(lines[-1])
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='@cupy:0')
    parser.add_argument('--shape', action='append', default=None,
                        help='N,C,H,W (repeatable; default 64,448,8,8 '
                        'and 256,64,32,32)')
    parser.add_argument('-K', type=int, default=3)
    parser.add_argument('--em-iter', type=int, default=2,
                        help='the paper\'s "EM iter." (k-means + EM)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    device = get_or_exit(args.device, parser.prog)
    if device.xp is numpy:
        parser.exit(2, '{}: error: --device {}: this benchmark times GPU '
                       'kernels; pass --device @cupy:N\n'.format(
                           parser.prog, args.device))
    import cupy
    device.use()
    sync = cupy.cuda.Device(device.device.id).synchronize
    stream = cupy.cuda.Stream()
    lines = ['# MN time breakdown', '',
             '- device: {}'.format(device_name(device)),
             versions_line(),
             '- kernels enabled: {}'.format(mixnorm.cuda.enabled)]
    for text in args.shape or ['64,448,8,8', '256,64,32,32']:
        shape = tuple(int(s) for s in text.split(','))
        lines += [''] + breakdown(shape, args, device, sync, stream)
    text = '\n'.join(lines) + '\n'
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)

if __name__ == '__main__':
    main()
