"""Command line: ``python -m train`` / ``mixnorm-train``.

    python -m train --config FILE [--device @cupy:0|@numpy] [--out DIR]
                    [--epochs N] [--seed S] [--resume] [--data PATH]
                    [--train-subset N] [--test-subset N]
"""
import argparse
import os
import sys


def _positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError('must be a positive integer')
    return value


def parser():
    p = argparse.ArgumentParser(
        prog='mixnorm-train',
        description='Train a configuration (configs/...) with Chainer.')
    p.add_argument('--config', required=True, help='YAML configuration')
    p.add_argument('--device', default=None,
                   help='Chainer device, e.g. @cupy:0 or @numpy (default: '
                        'the GPU when CuPy finds one, else @numpy)')
    p.add_argument('--out', default=None,
                   help='output folder (default: runs/<config name>)')
    p.add_argument('--epochs', type=_positive, default=None,
                   help="override the configuration's epochs")
    p.add_argument('--seed', type=int, default=0,
                   help='random seed (NumPy, Python, CuPy); default 0')
    p.add_argument('--resume', action='store_true',
                   help='continue from the newest snapshot in --out (start '
                        'afresh when there is none; a finished run exits)')
    p.add_argument('--data', default=None,
                   help='image folder or .zip with train/<class>/*.png|jpg '
                        'and test/<class>/...; default $MIXNORM_DATA, else '
                        'CIFAR through chainer.datasets')
    p.add_argument('--train-subset', type=_positive, default=None,
                   metavar='N', help='train on a fixed random subset of N '
                                     'images (quick runs)')
    p.add_argument('--test-subset', type=_positive, default=None,
                   metavar='N', help='evaluate on a fixed random subset of '
                                     'N images (quick runs)')
    return p


def main(argv=None):
    """Entry point; returns the process exit status."""
    args = parser().parse_args(argv)
    from train import config
    from train import runner
    from train.imagefolder import DataError

    try:
        # run() builds the model before it reads the data, and that build
        # checks model, model_args and norm: loading need not build it too
        cfg = config.load(args.config, check_model=False)
        out = args.out or os.path.join('runs', cfg['name'])
        info = runner.run(
            cfg, out, device=args.device, epochs=args.epochs, seed=args.seed,
            resume=args.resume, data=args.data,
            train_subset=args.train_subset, test_subset=args.test_subset,
            config_path=args.config)
    except (config.ConfigError, DataError, runner.RunError) as e:
        print('mixnorm-train: error: {}'.format(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('mixnorm-train: interrupted; run the same command with '
              '--resume to continue from the last finished epoch',
              file=sys.stderr)
        return 130
    from train import metrics
    log = metrics.load_log(out)
    print('{}: finished: max test accuracy {:.2f}% in {} epochs '
          '({} iterations), {:.0f} s'.format(
              out, metrics.max_accuracy(log), info['epochs'],
              info.get('iterations', '?'), info.get('wall_time', 0)),
          file=sys.stderr)
    return 0
