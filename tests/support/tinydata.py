"""Tiny generated datasets and helpers shared by the pipeline tests."""
import json
import os
import subprocess
import sys
import zipfile

import numpy
from PIL import Image

#: the repository's root (this file is tests/support/tinydata.py)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CLASSES = ['c{}'.format(i) for i in range(10)]  # as many as CIFAR-10


def image(label, rng, size=32):
    """A 32x32 RGB image whose color and stripe depend on the label."""
    base = numpy.array([25 * label, 255 - 25 * label, (80 * label) % 256])
    img = rng.randint(0, 40, size=(size, size, 3)) + base
    img[:, 3 * label:3 * label + 3] = 255  # a class-specific stripe
    return numpy.clip(img, 0, 255).astype(numpy.uint8)


def make_folder(root, n_train=2, n_test=1, ext='png', seed=0,
                classes=CLASSES):
    """Writes train/<class>/*.ext and test/<class>/*.ext under ``root``."""
    rng = numpy.random.RandomState(seed)
    for split, n in (('train', n_train), ('test', n_test)):
        for label, c in enumerate(classes):
            d = os.path.join(root, split, c)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                Image.fromarray(image(label, rng)).save(
                    os.path.join(d, '{:04d}.{}'.format(i, ext)))
    return root


def make_zip(folder, path):
    """Zips ``folder`` (its contents at the top of the archive)."""
    with zipfile.ZipFile(path, 'w') as z:
        for dirpath, _, files in os.walk(folder):
            for f in sorted(files):
                full = os.path.join(dirpath, f)
                z.write(full, os.path.relpath(full, folder))
    return path


def write_config(path, layers=(), batch_size=4, epochs=2, extra=''):
    """A small CIFAR CNN configuration for tests."""
    norm = ('norm:\n  layers: [{}]\n  n_components: 2\n  em_iter: 2\n'.format(
        ', '.join(layers)) if layers else '')
    text = ('name: tiny\ndataset: cifar10\nmodel: cifar_cnn\n{}'
            'epochs: {}\nbatch_size: {}\noptimizer:\n  name: rmsprop\n'
            '  lr: 0.01\n  alpha: 0.9\n  weight_decay: 2.0e-5\n'
            'schedule:\n  name: exponential\n  rate: 0.93\n'
            '  every_epochs: 2\n{}').format(norm, epochs, batch_size, extra)
    with open(path, 'w') as f:
        f.write(text)
    return path


def env(cache):
    """Environment for subprocesses: repo on the path, private cache."""
    e = dict(os.environ)
    e['PYTHONPATH'] = ROOT + os.pathsep + e.get('PYTHONPATH', '')
    e['MIXNORM_CACHE'] = str(cache)
    e.pop('MIXNORM_DATA', None)
    e['OMP_NUM_THREADS'] = '1'  # deterministic and cheap on shared CI cores
    return e


def train_cli(args, cache, **kwargs):
    """Runs ``python -m train ARGS``; returns the CompletedProcess."""
    return subprocess.run([sys.executable, '-m', 'train'] + list(args),
                          cwd=ROOT, env=env(cache), capture_output=True,
                          text=True, timeout=300, **kwargs)


def make_run(runs, configs, stem, accs, epochs=4, iters_per_epoch=100,
             finished=True, log_extra=None, **extra):
    """A finished (or interrupted) run folder made by hand, for reports.

    Args:
        runs (str): Runs folder; the run goes to ``<runs>/<stem>``.
        configs (str): Configurations folder.
        stem (str): Path of the configuration under ``configs`` without
            ``.yaml`` (e.g. ``cifar10/bn2``).
        accs (list): Test accuracy (%) after each epoch.
        epochs (int): The run's and its configuration's epochs (a
            full-budget run unless ``extra`` names a subset).
        iters_per_epoch (int): Iterations per epoch in the log.
        finished (bool): Whether run.json says finished.
        log_extra: ``log_extra(i)`` returns more keys for epoch ``i + 1``.
        extra: More run.json fields (e.g. ``train_subset``).

    """
    from train import config

    cfg = config.load(os.path.join(configs, stem + '.yaml'),
                      check_model=False)
    cfg['epochs'] = epochs
    out = os.path.join(runs, stem)
    os.makedirs(out)
    info = {'config': cfg, 'epochs': epochs, 'train_subset': None,
            'test_subset': None, 'data_source': '/data/cifar10-jpeg.zip',
            'device': '@cupy:0', 'finished': finished, 'wall_time': 321.0,
            'n_train': 50000, 'n_test': 10000,
            'mn_paths': ['{}/bn'.format(x) for x in cfg['norm']['layers']]}
    info.update(extra)
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(info, f)
    log = [{'epoch': i + 1, 'iteration': (i + 1) * iters_per_epoch,
            'validation/main/accuracy': a / 100.0, 'elapsed_time': 10.0 * i}
           for i, a in enumerate(accs)]
    for i, entry in enumerate(log):
        entry.update(log_extra(i) if log_extra else {})
    with open(os.path.join(out, 'log'), 'w') as f:
        json.dump(log, f)
    return out


def table_row(text, name):
    """Cells of the one markdown row of ``text`` that starts with ``name``."""
    rows = [line for line in text.splitlines()
            if line.startswith('| {} |'.format(name))]
    assert len(rows) == 1, text
    return [c.strip() for c in rows[0].strip('|').split('|')]


def make_proxy_run(root):
    """A 10-class folder (4 train / 1 test image per class) under ``root``
    and a 1-epoch CIFAR CNN run on it, made in-process with a private
    cache: the features of the proxy FID (train/fid/features.py).

    Returns:
        dict: ``data`` (the folder), ``cache`` and ``proxy`` (the run).

    """
    import io

    from train import config
    from train.classifier import runner

    root = str(root)
    data = make_folder(os.path.join(root, 'data'), n_train=4, n_test=1)
    cache = os.path.join(root, 'cache')
    saved = os.environ.get('MIXNORM_CACHE')
    os.environ['MIXNORM_CACHE'] = cache
    try:
        cfg = config.load(write_config(os.path.join(root, 'cnn.yaml'),
                                       batch_size=20, epochs=1),
                          check_model=False)
        runner.run(cfg, os.path.join(root, 'cnn'), device='@numpy',
                   data=data, log=io.StringIO())
    finally:
        if saved is None:
            del os.environ['MIXNORM_CACHE']
        else:
            os.environ['MIXNORM_CACHE'] = saved
    return {'data': data, 'cache': cache, 'proxy': os.path.join(root, 'cnn')}
