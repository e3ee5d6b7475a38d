"""Tiny generated datasets and helpers shared by the pipeline tests."""
import os
import subprocess
import sys
import zipfile

import numpy
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    norm = ('norm:\n  layers: [{}]\n  n_components: 2\n  n_iter: 2\n'.format(
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
