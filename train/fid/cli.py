"""``python -m train.fid``: FID statistics, and the Inception weights.

    python -m train.fid stats --data PATH --out FILE
        (--fid-weights NPZ | --fid-proxy RUN) [--device D] [--allow-few]
    python -m train.fid convert pt_inception-2015-12-05-6726825d.pth \\
        fid_inception-2015-12-05.npz

``stats`` writes the FID statistics of a data set's training images
(:mod:`train.fid.statistics`), which a GAN run reads with ``--fid-stats``;
``convert`` turns pytorch-fid's weight file into the ``.npz`` that
``--fid-weights`` takes (:mod:`train.fid.convert`; reading it needs
``torch``).

:mod:`train.fid.__main__` runs :func:`main`.
"""
import argparse
import sys

from train import device as device_module
from train.config.schema import ConfigError
from train.data.datasets import load_dataset
from train.data.imagefolder import DataError
from train.fid import convert
from train.fid import inception
from train.fid.features import make_features
from train.fid.statistics import real_statistics
from train.fid.statistics import save_statistics
from train.metrics.fid import FIDError
from train.metrics.fid import MIN_SAMPLES


def stats(args):
    """``stats``: writes the statistics; returns the exit status."""
    device = device_module.get_or_exit(args.device, 'train.fid')
    device.use()
    dataset = load_dataset(args.dataset, args.data)
    features = make_features(args.fid_weights, args.fid_proxy,
                             dataset['mean'], dataset['std'])
    features.to_device(device)
    images = dataset['train_x']
    mu, sigma = real_statistics(features, images, device, args.batch_size,
                                args.allow_few)
    save_statistics(args.out, mu, sigma, len(images), features)
    print('wrote {}: {} training images of {}, {}'.format(
        args.out, len(images), dataset['source'], features.name),
        file=sys.stderr)
    return 0


def convert_weights(args):
    """``convert``: writes the ``.npz``; returns the exit status."""
    try:
        skipped = convert.convert(args.src, args.dst)
    except (convert.ConversionError, OSError) as e:
        print('train.fid convert: error: {}'.format(e), file=sys.stderr)
        return 2
    print('wrote {} (sha256 {}...); skipped {} tensors not needed for pool3 '
          '({})'.format(args.dst, inception.file_digest(args.dst),
                        len(skipped), ', '.join(skipped[:4]) +
                        (', ...' if len(skipped) > 4 else '')),
          file=sys.stderr)
    return 0


def parser():
    p = argparse.ArgumentParser(prog='python -m train.fid')
    sub = p.add_subparsers(dest='command', required=True)
    s = sub.add_parser('stats', help="FID statistics of a data set's "
                                     "training images")
    s.add_argument('--data', default=None,
                   help='image folder or .zip (default $MIXNORM_DATA, else '
                        'chainer.datasets)')
    s.add_argument('--dataset', default='cifar10',
                   choices=('cifar10', 'cifar100'))
    s.add_argument('--out', required=True, help='output .npz')
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument('--fid-weights', default=None, metavar='NPZ',
                       help='converted Inception weights (python -m '
                            'train.fid convert)')
    which.add_argument('--fid-proxy', default=None, metavar='RUN',
                       help='CIFAR CNN run folder: proxy features')
    s.add_argument('--device', default=None)
    s.add_argument('--batch-size', type=int, default=100)
    s.add_argument('--allow-few', action='store_true',
                   help='accept fewer than {} images'.format(MIN_SAMPLES))
    c = sub.add_parser(
        'convert', help="convert pytorch-fid's pt_inception-2015-12-05 "
                        "weights into the .npz that --fid-weights takes")
    c.add_argument('src', help='PyTorch weight file (.pth)')
    c.add_argument('dst', help='output .npz')
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == 'convert':
        return convert_weights(args)
    try:
        return stats(args)
    except (FIDError, DataError, ConfigError) as e:
        print('train.fid: error: {}'.format(e), file=sys.stderr)
        return 2

