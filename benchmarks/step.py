"""One training step (forward, backward, update) per op kind, BN vs MN.

Each model is built as the trainer builds it from a paper configuration
(``CONFIGS``: model, classes, batch size, MN setting, optimizer); one
training step is timed for each variant, all in this process on the same
random images and labels: ``BN (Chainer)`` (BN, convolutions and pooling
on Chainer's own code: ``mixnorm.cuda.bn_kernels``, ``conv_kernels`` and
``pool_kernels`` False), ``BN (kernels)`` (all True: on a GPU without
cuDNN, mixnorm's kernels; on NumPy, mixnorm's GEMM convolution and max
pooling, :mod:`mixnorm.cpu`) and ``MN``
(the configuration's MN layers, the other BNs on the kernels);
``--mn-chainer`` adds ``MN (Chainer)`` (MN, the rest on Chainer's code; on
NumPy also MN's array-generic code, ``mixnorm.cuda.enabled`` False, in
place of :mod:`mixnorm.cpu.mn`).

Timing by :func:`benchmarks.timing.median_ms` (warm-up, rounds alternating
the variants, median ms per step, synchronised); host ms: the time to issue
``--inner`` steps without waiting for the device, per step.  ``--profile``
steps per variant are broken down per op kind: hooks time each outermost
function node (nested ones count for their caller) and each BN or MN link's
forward (the MN fit runs outside any node) with CUDA events read after one
synchronisation (on a CPU ``time.perf_counter``), and the update alone.
An op's floor is the larger of bytes / bandwidth (inputs and outputs;
backward: the inputs twice and the output gradients) and FLOPs / float32
rate (convolution, linear; backward twice forward).  On a CPU the float32
rate is that of an n^3 matmul timed in the same rounds as the steps (so
that a machine shared with other processes slows both alike), and each
variant's unprofiled step is also given over its floor and over its GEMM
floor (the convolutions' and linear layers' FLOPs at that rate).

Usage::

    python -m benchmarks.step --device @cupy:0 --out step-gpu.md
    python -m benchmarks.step --quick       # CPU smoke run, batch 4
"""
import argparse
import os
import statistics
import time
import types

import mixnorm  # (before Chainer)
import models  # noqa: F401

import numpy

import chainer
import chainer.links as L

from benchmarks.timing import host_ms, median_ms, no_sync, report_head
from train import config
from train.classifier.runner import Classifier
from train.common import optim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# model -> the paper configuration it is built from (--config overrides)
CONFIGS = {'cifar_cnn': 'configs/table2/cifar10/mn2.yaml',
           'inception_v3': 'configs/table4/cifar10/mn2.yaml',
           'densenet': 'configs/densenet/mn_40.yaml'}
KINDS = ('conv', 'linear', 'BN', 'MN', 'pooling', 'other', 'update')
GPU_PEAKS = (4800.0, 51.0)  # H200/H100: GB/s, measured float32 GEMM TFLOP/s
QUICK_BATCH = 4
GEMM = 'float32 matmul'  # the timed matmul of the floors, on a CPU
CONV = ('Convolution2DFunction', 'Deconvolution2DFunction',
        'ConvolutionND', 'DeconvolutionND')


def kind_of(node):
    name = type(node).__name__
    if 'MixtureNormalization' in name or 'BatchNormalization' in name:
        return 'MN' if 'Mixture' in name else 'BN'
    if name in CONV or name == 'LinearFunction':
        return 'conv' if name in CONV else 'linear'
    return 'pooling' if 'Pooling' in name else 'other'


def nbytes(arrays):
    """Bytes of arrays, Variables or VariableNodes (None: 0)."""
    return sum(int(numpy.prod(a.shape)) * numpy.dtype(a.dtype).itemsize
               for a in arrays if a is not None and a.shape is not None)


def node_cost(node, phase):
    """(bytes, FLOPs) of a function node's forward or backward."""
    ins = list(node.inputs)
    outs = [ref() for ref in (node.outputs or ())]
    name, flops = type(node).__name__, 0
    if name in CONV:  # 2 * outputs * in/groups * kh * kw (deconv: inputs)
        transposed = name.startswith('Deconv') or getattr(
            node, 'transposed', False)  # mixnorm's node does both
        x = ins[0] if transposed else outs[0]
        if x is not None:
            flops = 2 * int(numpy.prod(x.shape)) * int(numpy.prod(
                ins[1].shape[1:]))
    elif name == 'LinearFunction':  # 2 * N * in * out
        flops = 2 * int(numpy.prod(ins[0].shape)) * ins[1].shape[0]
    if phase == 'forward':
        return nbytes(ins) + nbytes(outs), flops
    return 2 * nbytes(ins) + nbytes(outs), 2 * flops


def update_bytes(opt, decay):
    """Bytes of an update: parameters, gradients and states read,
    parameters and states written; weight decay (``decay``) 3x more."""
    total = 0
    for param in opt.target.params():
        state = (param.update_rule.state or {}).values()
        total += (6 if decay else 3) * param.array.nbytes + 2 * nbytes(
            s for s in state if hasattr(s, 'nbytes'))
    return total


class OpTimer(chainer.FunctionHook):

    """Records (kind, start, stop, cost) of the outermost timed ops."""

    name = 'StepOpTimer'

    def __init__(self, on_gpu):
        self.on_gpu, self.records, self._open = on_gpu, [], []

    def mark(self):
        if not self.on_gpu:
            return time.perf_counter()
        import cupy
        event = cupy.cuda.Event()
        event.record()
        return event

    def begin(self, *_):
        self._open.append(self.mark())

    def end(self, kind, cost):
        start = self._open.pop()
        if not self._open:  # a nested op counts for its caller
            self.records.append((kind, start, self.mark(), cost))

    forward_preprocess = backward_preprocess = begin

    def forward_postprocess(self, function, in_data):
        self.end(kind_of(function), (function, 'forward'))

    def backward_postprocess(self, function, in_data, out_grad):
        self.end(kind_of(function), (function, 'backward'))

    def elapsed_ms(self, start, stop):
        if self.on_gpu:
            import cupy
            return cupy.cuda.get_elapsed_time(start, stop)
        return 1e3 * (stop - start)

    def totals(self, floor_ms):
        """{kind: [ms, floor ms]}; after a synchronisation."""
        out = {kind: [0.0, 0.0] for kind in KINDS}
        for kind, start, stop, cost in self.records:
            if isinstance(cost[0], chainer.FunctionNode):
                cost = node_cost(*cost)
            out[kind][0] += self.elapsed_ms(start, stop)
            out[kind][1] += floor_ms(*cost)
        return out


class NormLinkTimer(chainer.LinkHook):

    """Times a BN or MN link's whole forward (the MN fit is in the link)."""

    name = 'StepNormLinkTimer'

    def __init__(self, timer):
        self.timer = timer

    @staticmethod
    def kind(link):
        if isinstance(link, mixnorm.MixtureNormalization):
            return 'MN'
        return 'BN' if isinstance(link, L.BatchNormalization) else None

    def forward_preprocess(self, args):
        if self.kind(args.link):
            self.timer.begin()

    def forward_postprocess(self, args):
        if self.kind(args.link):
            self.timer.end(self.kind(args.link),
                           (nbytes([args.args[0], args.out]), 0))




def build(cfg, mn, device, seed):
    """(Classifier, optimizer, MN paths) as the trainer builds them."""
    numpy.random.seed(seed)  # the same weights for every variant
    predictor, paths = config.build_model(cfg if mn else dict(cfg, norm={}))
    model = Classifier(predictor)
    model.to_device(device)
    opt, _ = optim.make_optimizer(cfg['optimizer'])
    opt.setup(model)
    optim.add_hooks(opt, cfg['optimizer'])
    return model, opt, paths


def use_code(flag, x):
    """mixnorm's code (flag True) or the code before it: Chainer's, and on
    NumPy MN's array-generic code."""
    mixnorm.cuda.set_switches(flag)
    if isinstance(x, numpy.ndarray):
        mixnorm.cuda.enabled = flag


def stepper(x, t, model, opt, flag):
    def run():
        use_code(flag, x)
        model.cleargrads()
        model(x, t).backward()
        opt.update()
    return run


def profile(variant, x, t, env):
    """({kind: [ms, floor ms]}, profiled step ms) of one step."""
    model, opt, flag, decay = variant
    use_code(flag, x)
    timer = OpTimer(env.on_gpu)
    env.sync()
    first = timer.mark()
    model.cleargrads()
    with timer, NormLinkTimer(timer):
        loss = model(x, t)
        loss.backward()
    timer.begin()
    opt.update()
    timer.end('update', (update_bytes(opt, decay), 0))
    last = timer.mark()
    env.sync()
    return timer.totals(env.floor_ms), timer.elapsed_ms(first, last)


def measure_peaks(xp, sync, n, mib):
    """(copy GB/s, n^3 float32 matmul TFLOP/s), medians of 5 runs."""
    a, src = xp.ones((n, n), xp.float32), xp.ones(mib << 18, xp.float32)
    dst = xp.empty_like(src)

    def seconds(fn):
        return median_ms({'fn': fn}, 5, 1, sync, warmup=1)['fn'] / 1e3
    return (2 * src.nbytes / seconds(lambda: xp.copyto(dst, src)) / 1e9,
            2 * n ** 3 / seconds(lambda: xp.matmul(a, a)) / 1e12)


def run_model(name, path, args, env):
    cfg = config.load(os.path.join(ROOT, path), check_model=False)
    batch = args.batch or (QUICK_BATCH if args.quick else cfg['batch_size'])
    n_classes = config.DATASETS[cfg['dataset']].n_classes
    rng = numpy.random.RandomState(args.seed)
    x = env.device.send(rng.randn(batch, 3, 32, 32).astype(numpy.float32))
    t = env.device.send(rng.randint(0, n_classes, batch).astype(numpy.int32))
    decay = cfg['optimizer'].get('weight_decay', 0) > 0
    variants, paths = {}, []
    labels = [('BN (Chainer)', False, False), ('BN (kernels)', False, True),
              ('MN', True, True)]
    if args.mn_chainer:
        labels.append(('MN (Chainer)', True, False))
    for label, mn, flag in labels:
        model, opt, used = build(cfg, mn, env.device, args.seed)
        paths = used or paths
        variants[label] = (model, opt, flag, decay)
    steps = {k: stepper(x, t, *v[:3]) for k, v in variants.items()}
    timed = dict(steps, **({} if env.on_gpu else {GEMM: env.gemm}))
    ms = median_ms(timed, args.rounds, args.inner, env.sync, args.warmup)
    lines = ['## {} at batch {}{}'.format(
        name, batch, '' if batch == cfg['batch_size'] else
        ' (NOT the paper batch size, {})'.format(cfg['batch_size'])), '',
        '- configuration: `{}`; optimizer {}; {} (K = {}, EM iter. {})'.format(
            path, cfg['optimizer']['name'], config.norm_label(paths),
            cfg['norm']['n_components'], cfg['norm']['em_iter'])]
    if GEMM in ms:
        rate = env.gemm_flops / ms.pop(GEMM) / 1e9
        lines.append('- float32 matmul in the same rounds: {:.3f} TFLOP/s'
                     '{}'.format(rate, '' if args.tflops else
                                 ' (the floors below use it)'))
        env.peaks[1] = args.tflops or rate
    host = {k: host_ms(fn, args.inner, env.sync) for k, fn in steps.items()}
    runs = {label: [profile(variant, x, t, env)
                    for _ in range(args.profile)]
            for label, variant in variants.items()}
    lines.append('')
    lines += step_table(ms, host, env.on_gpu)
    lines += [''] + floor_table(ms, runs)
    for label in variants:
        lines += [''] + breakdown_table(label, runs[label], ms[label])
    return lines


def floor_table(ms, runs):
    """Each variant's unprofiled step over the sum of its ops' floors and
    over its GEMM floor (the conv and linear floors: FLOPs at the float32
    rate), from the first profiled step's costs."""
    lines = ['| variant | step ms | x floor | GEMM floor ms | x GEMM floor |',
             '|---|---:|---:|---:|---:|']
    for label, value in ms.items():
        floors = runs[label][0][0]
        total = sum(f for _, f in floors.values())
        gemm = floors['conv'][1] + floors['linear'][1]
        lines.append('| {} | {:.1f} | {:.2f} | {:.1f} | {:.2f} |'.format(
            label, value, value / total, gemm, value / gemm))
    return lines


def step_table(ms, host, on_gpu):
    lines = ['| variant | step ms ({}) | host ms | steps/s | / BN (Chainer) '
             '| / BN (kernels) |'.format('GPU' if on_gpu else 'CPU wall'),
             '|---|---:|---:|---:|---:|---:|']
    for label, value in ms.items():
        lines.append('| {} | {:.3f} | {:.3f} | {:.2f} | {:.3f} | {:.3f} |'
                     .format(label, value, host[label], 1e3 / value,
                             value / ms['BN (Chainer)'],
                             value / ms['BN (kernels)']))
    return lines


def breakdown_table(label, runs, step):
    """Per kind: median ms of the profiled steps, share of the profiled
    step, floor ms, ms / floor; then the time between ops, and the step."""
    whole = statistics.median(r[1] for r in runs)
    lines = ['{}: profiled step {:.3f} ms (unprofiled median {:.3f} ms); '
             'shares of the profiled step'.format(label, whole, step), '',
             '| kind | ms | share | floor ms | x floor |',
             '|---|---:|---:|---:|---:|']
    row = '| {} | {:.3f} | {:.1%} | {} | {} |'
    spent = floors = 0.0
    for kind in KINDS:
        kind_ms = statistics.median(r[0][kind][0] for r in runs)
        floor = runs[0][0][kind][1]
        spent, floors = spent + kind_ms, floors + floor
        lines.append(row.format(kind, kind_ms, kind_ms / whole,
                                '{:.4f}'.format(floor), '{:.1f}'.format(
                                    kind_ms / floor) if floor else '-'))
    lines.append(row.format('rest (between ops)', whole - spent,
                            (whole - spent) / whole, '-', '-'))
    lines.append(row.format('step', whole, 1.0, '{:.4f}'.format(floors),
                            '{:.1f}'.format(whole / floors)))
    return lines


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='@numpy')
    parser.add_argument('--models', nargs='+', choices=sorted(CONFIGS),
                        default=list(CONFIGS))
    parser.add_argument('--config', action='append', default=[],
                        metavar='MODEL=PATH', help='another configuration')
    parser.add_argument('--quick', action='store_true',
                        help='CPU smoke run: batch 4, 2 rounds of 1 step')
    parser.add_argument('--batch', type=int, help='instead of the paper\'s')
    parser.add_argument('--rounds', type=int)
    parser.add_argument('--inner', type=int, help='steps per round')
    parser.add_argument('--profile', type=int, help='profiled steps')
    parser.add_argument('--bandwidth', type=float, help='GB/s for floors')
    parser.add_argument('--tflops', type=float, help='float32 TFLOP/s')
    parser.add_argument('--mn-chainer', action='store_true',
                        help='also time MN with the rest on Chainer\'s code')
    parser.add_argument('--out', help='also write the tables here (.md)')
    return parser.parse_args(argv)


def header(args, argv, device, measured, peaks):
    return [
        '# One training step per op kind: BN (Chainer), BN (kernels), MN',
        ''] + report_head(device, 'step', argv) + [
        '- measured here: copy {:.1f} GB/s, float32 matmul {:.2f} TFLOP/s; '
        'floors use {:.1f} GB/s and {:.2f} TFLOP/s'.format(*measured + peaks),
        '- timing: median over {} rounds of {} step(s) after {} warm-up '
        'step(s), variants alternating; breakdown: median of {} profiled '
        'step(s)'.format(args.rounds, args.inner, args.warmup, args.profile)]


def main(argv=None):
    args = parse_args(argv)
    paths = dict(CONFIGS, **dict(c.split('=', 1) for c in args.config))
    device = chainer.get_device(args.device)
    device.use()
    on_gpu, quick = device.xp is not numpy, args.quick
    args.rounds = args.rounds or (2 if quick else (10 if on_gpu else 3))
    args.inner = args.inner or (5 if on_gpu and not quick else 1)
    args.warmup, args.seed = (1 if quick else 3), 0
    args.profile = args.profile or (1 if quick else 3)
    sync = device.device.synchronize if on_gpu else no_sync
    mixnorm.seed(args.seed)
    measured = measure_peaks(device.xp, sync, 4096 if on_gpu else 1024,
                             256 if on_gpu else 64)
    default = GPU_PEAKS if on_gpu else measured
    peaks = [args.bandwidth or default[0], args.tflops or default[1]]

    def floor_ms(n_bytes, flops):
        return 1e3 * max(n_bytes / peaks[0] / 1e9, flops / peaks[1] / 1e12)

    n = 1024
    square = device.xp.ones((n, n), device.xp.float32)
    env = types.SimpleNamespace(device=device, on_gpu=on_gpu, sync=sync,
                                floor_ms=floor_ms, peaks=peaks,
                                gemm=lambda: device.xp.matmul(square, square),
                                gemm_flops=2 * n ** 3)
    lines = header(args, argv, device, measured, tuple(peaks))
    if quick or args.batch:
        lines += ['', '**Reduced run: NOT the paper batch size.**']
    print('\n'.join(lines), flush=True)
    original = mixnorm.cuda.set_switches(), mixnorm.cuda.enabled
    try:
        for name in args.models:
            started = time.perf_counter()
            part = [''] + run_model(name, paths[name], args, env)
            print('\n'.join(part) + '\n[{:.1f} s]'.format(
                time.perf_counter() - started), flush=True)
            lines += part
    finally:
        mixnorm.cuda.set_switches(original[0])
        mixnorm.cuda.enabled = original[1]
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        print('wrote', args.out)
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
