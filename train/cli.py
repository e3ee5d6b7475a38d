"""Command line: ``python -m train`` / ``mixnorm-train``.

    python -m train --config FILE [--device @cupy:0|@numpy] [--out DIR]
                    [--epochs N] [--seed S] [--resume] [--data PATH]
                    [--train-subset N] [--test-subset N]
    mpiexec -n N python -m train --config FILE --comm naive|flat|pure_nccl
                    [--local-bn] [...]

A classifier configuration trains with :func:`train.classifier.run`; with
``--comm`` the N processes train it together (ChainerMN,
:mod:`train.classifier.multinode`).

A GAN configuration (``model: dcgan``, :mod:`train.gan`) takes
``--iterations N``, ``--fid-every N``, ``--fid-weights NPZ``, ``--fid-proxy
RUN`` and ``--fid-stats NPZ`` instead of ``--epochs`` and
``--test-subset``.
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
                        'the GPU when CuPy finds one, else @numpy); one '
                        'that is not usable here is an error (exit 2)')
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
    m = p.add_argument_group('several processes (under mpiexec; ChainerMN)')
    m.add_argument('--comm', default=None, metavar='NAME',
                   help='ChainerMN communicator: naive or flat (CPU or '
                        'GPU), pure_nccl (GPUs with NCCL); every process '
                        'trains on its share of each batch')
    m.add_argument('--local-bn', action='store_true',
                   help='with --comm: keep batch normalization per process '
                        '(default: synchronised, MultiNodeBatchNormalization'
                        '); mixture normalization is always synchronised')
    g = p.add_argument_group('GAN configurations (model: dcgan)')
    g.add_argument('--iterations', type=_positive, default=None, metavar='N',
                   help="override the configuration's iterations")
    g.add_argument('--fid-every', type=_positive, default=None, metavar='N',
                   help='iterations between FID evaluations')
    g.add_argument('--fid-weights', default=None, metavar='NPZ',
                   help='Inception FID weights converted by python -m '
                        'train.fid convert (README: where to get them)')
    g.add_argument('--fid-proxy', default=None, metavar='RUN',
                   help='a finished CIFAR CNN run: the proxy FID (CIFAR CNN '
                        'features), not comparable with the paper')
    g.add_argument('--fid-stats', default=None, metavar='NPZ',
                   help='real-image statistics from python -m train.fid '
                        'stats (default: computed once, cached in '
                        '$MIXNORM_CACHE)')
    return p


_GAN_ONLY = ('iterations', 'fid_every', 'fid_weights', 'fid_proxy',
             'fid_stats')
_CLASSIFIER_ONLY = ('epochs', 'test_subset')


def _misplaced(args, names, kind):
    """Raises RunError for options given that do not apply."""
    from train.common.runfolder import RunError

    given = ['--' + n.replace('_', '-') for n in names
             if getattr(args, n) is not None]
    if given:
        raise RunError('{}: {} only for {} configurations'.format(
            ', '.join(given), 'applies' if len(given) == 1 else 'apply',
            kind))


def _run_gan(args, cfg, out):
    """Trains a GAN configuration (train.gan); returns its message."""
    from train import gan
    from train.common.runfolder import GANRun
    from train.common.runfolder import RunError

    _misplaced(args, _CLASSIFIER_ONLY, 'classifier')
    if args.comm is not None:
        raise RunError('--comm: multi-process training is for '
                              'classifier configurations')
    info = gan.run(cfg, out, device=args.device, iterations=args.iterations,
                   seed=args.seed, resume=args.resume, data=args.data,
                   train_subset=args.train_subset, fid_every=args.fid_every,
                   fid_weights=args.fid_weights, fid_proxy=args.fid_proxy,
                   fid_stats=args.fid_stats, config_path=args.config)
    best = GANRun(out).best()
    return '{}: finished: best FID {} ({} iterations, {:.0f} s); {}'.format(
        out, '{:.2f} at iteration {}'.format(best[1], best[0]) if best
        else 'n/a', info['iterations'], info.get('wall_time', 0),
        info.get('fid_label', 'FID'))


def main(argv=None):
    """Entry point; returns the process exit status."""
    args = parser().parse_args(argv)
    from train import config
    from train import device
    from train.classifier import runner
    from train.common.runfolder import RunError
    from train.data import DataError
    from train.metrics import FIDError

    cfg = None
    try:
        device.get(args.device)  # before the data: fails in a second
        # run() builds the model before it reads the data, and that build
        # checks model, model_args and norm: loading need not build it too
        cfg = config.load(args.config, check_model=False)
        out = args.out or os.path.join('runs', cfg['name'])
        if config.is_gan(cfg):
            print(_run_gan(args, cfg, out), file=sys.stderr)
            return 0
        _misplaced(args, _GAN_ONLY, 'GAN')
        comm = None
        if args.comm is not None:
            from train.classifier import multinode
            try:
                comm = multinode.create_communicator(args.comm)
            except (ValueError, RuntimeError) as e:
                raise RunError(str(e))
        elif args.local_bn:
            raise RunError('--local-bn applies only with --comm')
        info = runner.run(
            cfg, out, device=args.device, epochs=args.epochs, seed=args.seed,
            resume=args.resume, data=args.data,
            train_subset=args.train_subset, test_subset=args.test_subset,
            config_path=args.config, comm=comm, local_bn=args.local_bn)
        if comm is not None and comm.rank != 0:
            return 0  # rank 0 reports
    except (config.ConfigError, DataError, RunError, FIDError,
            device.DeviceError) as e:
        print('mixnorm-train: error: {}'.format(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('mixnorm-train: interrupted; run the same command with '
              '--resume to continue from the last {}'.format(
                  'snapshot' if config.is_gan(cfg) else 'finished epoch'),
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
