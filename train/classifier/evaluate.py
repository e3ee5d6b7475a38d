"""Re-evaluate a finished run under each way of normalizing at test time.

    python -m train.classifier.evaluate RUN_DIR
        [--inference consistent paper batch] [--device @cupy:0|@numpy]
        [--out FILE]

Loads ``RUN_DIR/model.npz`` into the run's model and measures test loss and
accuracy on the run's test set (the same subset, if the run used one):
once per rule of :class:`mixnorm.MixtureNormalization` (``'consistent'``:
Eq. 38 with the scale-consistent factor, ``'paper'``: Eq. 38 as printed,
``'batch'``: a GMM fitted to each test batch), with batch normalization
layers in test mode (a run without MN: once in test mode); and, for BN
and MN runs alike, once in training mode
(every BN and MN layer normalizes each test batch with its own statistics;
parameters are not updated), which separates MN's inference rule from the
lag of running averages early in training.  The test set is evaluated in
one fixed random order, so that every batch mixes the classes as training
batches do (the stored order is by class, which would hand ``'batch'``
class-pure batches).  An ablation for the gap between training and test
behaviour (issue "CIFAR pipeline", the bar to beat).
"""
import argparse
import os
import sys

import numpy

import mixnorm
import chainer
import chainer.functions as F

from train import device as device_module
from train.common.extensions import mixture_links
from train.common.runfolder import load_predictor
from train.common.runfolder import read_info
from train.common.runfolder import RunError
from train.config.loading import norm_label
from train.data.batches import Preprocess
from train.data.datasets import load_dataset
from train.data.datasets import subset


TRAIN_MODE = 'batch statistics everywhere (training mode)'
TEST_MODE = 'running averages (test mode)'


def evaluate(predictor, test_x, test_y, converter, device, batch_size,
             train_mode=False):
    """Mean test loss and accuracy (%) of ``predictor``.

    Args:
        train_mode (bool): run in Chainer's training mode (every
            normalization layer uses the batch's statistics) instead of
            test mode; nothing is trained.
    """
    loss = correct = 0.0
    with chainer.using_config('train', train_mode), \
            chainer.no_backprop_mode():
        for i in range(0, len(test_x), batch_size):
            batch = list(zip(test_x[i:i + batch_size],
                             test_y[i:i + batch_size]))
            x, t = converter(batch, device)
            y = predictor(x)
            loss += float(F.softmax_cross_entropy(y, t).array) * len(t)
            correct += float((y.array.argmax(1) == t).sum())
    return loss / len(test_x), 100.0 * correct / len(test_x)


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m train.classifier.evaluate',
                                description=__doc__.split('\n\n')[1])
    p.add_argument('run', help='a finished run folder (holds model.npz)')
    p.add_argument('--inference', nargs='+',
                   default=list(mixnorm.links.INFERENCE_RULES),
                   choices=mixnorm.links.INFERENCE_RULES)
    p.add_argument('--device', default=None)
    p.add_argument('--out', default=None,
                   help='Markdown table (default RUN/inference.md)')
    args = p.parse_args(argv)
    device = device_module.get_or_exit(args.device, p.prog)
    info = read_info(args.run)
    if info is None:
        raise RunError('{}: no run.json: not the folder of a run of '
                       'python -m train'.format(args.run))
    source = None if info['data'] == info['config']['dataset'] else \
        info['data']
    device.use()
    predictor, paths, cfg = load_predictor(args.run)
    dataset = load_dataset(cfg['dataset'], source)
    test_x, test_y = subset(dataset['test_x'], dataset['test_y'],
                            info['test_subset'], seed=1)
    # Test sets are stored class by class; with 'batch' a batch's own
    # statistics would then carry its class.  Mixed batches, as in training.
    order = numpy.random.RandomState(info['seed']).permutation(len(test_x))
    test_x, test_y = test_x[order], test_y[order]
    predictor.to_device(device)
    converter = Preprocess(dataset['mean'], dataset['std'], augment=False)
    norms = [link for _, link in mixture_links(predictor)]
    numpy.random.seed(info['seed'])  # 'batch' draws k-means++ seeds
    lines = ['# Test metrics by normalization at test time: {}'.format(
                 args.run), '',
             '- model: {} with {}; test images: {}; device: {}'.format(
                 cfg['model'], norm_label(paths), len(test_x),
                 device), '',
             '| inference | test loss | test acc. (%) |', '|---|---|---|']
    # training mode last: it moves BN's running averages and MN's queue
    modes = [(rule, False) for rule in args.inference] if norms else [
        (TEST_MODE, False)]  # a BN run: what its log gives, checked
    modes.append((TRAIN_MODE, True))
    for rule, train_mode in modes:
        for link in norms if not train_mode else ():
            link.inference = rule
        loss, acc = evaluate(predictor, test_x, test_y, converter, device,
                             cfg['batch_size'], train_mode)
        lines.append('| {} | {:.4f} | {:.2f} |'.format(rule, loss, acc))
    text = '\n'.join(lines) + '\n'
    out = args.out or os.path.join(args.run, 'inference.md')
    with open(out, 'w') as f:
        f.write(text)
    print(text + 'wrote ' + out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
