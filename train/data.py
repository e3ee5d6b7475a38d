"""Datasets and preprocessing for the CIFAR experiments (Section 4.1).

Images stay uint8 in memory; :class:`Preprocess` turns a batch of them into
normalized float32 on the training device: per-channel mean/std of the
training split, and for training a random crop from the image zero-padded
by 4 pixels plus a random horizontal flip.  The iterator only gathers
uint8 arrays, so no worker processes are needed; the augmentation is
vectorized over the batch and its random numbers come from NumPy's global
generator (so seeding and snapshots make it reproducible).
"""
import contextlib
import io
import os

import numpy

import chainer

from train.config import DATASETS
from train.imagefolder import (DataError, channel_stats, list_classes,
                               load_image_folder)


def data_path(path=None):
    """The image-folder source: ``path``, else ``$MIXNORM_DATA``, else None."""
    return path or os.environ.get('MIXNORM_DATA') or None


def _supply_hint(name):
    return ('Supply the data in one of two ways: (1) go online once, and '
            'chainer.datasets downloads and caches {0} (under '
            '$CHAINER_DATASET_ROOT, default ~/.chainer/dataset); or (2) pass '
            'an image folder or .zip laid out as train/<class>/*.png|jpg and '
            'test/<class>/*.png|jpg with --data PATH or MIXNORM_DATA=PATH.'
            .format(DATASETS[name].title))


def cifar_cached(name):
    """Whether chainer.datasets has CIFAR-10 or CIFAR-100 here (no download
    needed)."""
    root = chainer.dataset.get_dataset_directory(
        os.path.join('pfnet', 'chainer', 'cifar'), create_directory=False)
    return os.path.exists(os.path.join(root, '{}.npz'.format(
        {'cifar10': 'cifar-10', 'cifar100': 'cifar-100'}[name])))


def check_available(name, path=None):
    """Checks, without decoding, that the dataset ``name`` can be had.

    Args:
        name (str): ``cifar10`` or ``cifar100``.
        path (str): Image folder or .zip; default ``$MIXNORM_DATA``; when
            neither is set, chainer.datasets.

    Returns:
        str: A note when chainer.datasets would download it (it is not
        cached here), else None.

    Raises:
        DataError: The folder is missing, is not laid out as an image
            dataset, or has another number of classes than ``name``.

    """
    path = data_path(path)
    title, n_classes = DATASETS[name]
    if path is None:
        if cifar_cached(name):
            return None
        return ('{} is not cached here: the first run downloads it through '
                'chainer.datasets (offline: pass --data PATH)'.format(title))
    n = len(list_classes(path))
    if n != n_classes:
        raise DataError('{} has {} classes and {} has {}'.format(
            path, n, title, n_classes))
    return None


def load_cifar(name):
    """Loads CIFAR-10 or CIFAR-100 through :mod:`chainer.datasets`.

    Args:
        name (str): ``cifar10`` or ``cifar100``.

    Returns:
        dict: Same keys as :func:`train.imagefolder.load_image_folder`.

    Raises:
        DataError: Not cached and cannot be downloaded.

    """
    getter = {'cifar10': chainer.datasets.get_cifar10,
              'cifar100': chainer.datasets.get_cifar100}[name]
    quiet = io.StringIO()  # Chainer prints "Downloading from ..." to stdout
    try:
        with contextlib.redirect_stdout(quiet):
            # float16 holds 0..255 exactly: half the memory of float32.
            train, test = getter(ndim=3, scale=255., dtype=numpy.float16)
    except OSError as e:  # URLError is an OSError
        raise DataError('{} is not cached here and cannot be downloaded '
                        '({}).\n{}'.format(DATASETS[name].title,
                                           getattr(e, 'reason', e),
                                           _supply_hint(name)))
    data = {}
    for split, ds in (('train', train), ('test', test)):
        x, y = ds._datasets  # TupleDataset (Chainer 7.8.1 is final)
        data[split + '_x'] = x.astype(numpy.uint8)
        data[split + '_y'] = y.astype(numpy.int32)
    data['classes'] = [str(i) for i in range(DATASETS[name].n_classes)]
    data['mean'], data['std'] = channel_stats(data['train_x'])
    return data


def load_dataset(name, path=None):
    """Loads the dataset of a configuration.

    Args:
        name (str): The configuration's ``dataset`` (``cifar10`` or
            ``cifar100``).
        path (str): Image folder or .zip; default ``$MIXNORM_DATA``; when
            neither is set, :func:`load_cifar`.

    Returns:
        dict: ``train_x``, ``train_y``, ``test_x``, ``test_y``, ``classes``,
        ``mean``, ``std`` and ``source`` (a description).

    Raises:
        DataError: The data cannot be had, or an image folder has a
            number of classes other than the dataset's.

    """
    path = data_path(path)
    if path is None:
        data = load_cifar(name)
        data['source'] = '{} (chainer.datasets)'.format(DATASETS[name].title)
        return data
    data = load_image_folder(path)
    n = len(data['classes'])
    title, n_classes = DATASETS[name]
    if n != n_classes:
        raise DataError('the configuration trains on {} ({} classes) but {} '
                        'has {} classes'.format(title, n_classes, path, n))
    data['source'] = os.path.abspath(os.path.expanduser(path))
    return data


def subset(x, y, n, seed):
    """A fixed random subset of ``n`` examples (all when n is None).

    The subset depends only on ``seed`` and the data, not on the global
    random state, so that runs being compared see the same examples.
    """
    if n is None or n >= len(x):
        return x, y
    idx = numpy.sort(numpy.random.RandomState(seed).permutation(len(x))[:n])
    return x[idx], y[idx]


class Preprocess(chainer.dataset.Converter):

    """Batches uint8 images and normalizes (and augments) them on a device.

    Args:
        mean (numpy.ndarray): Per-channel mean, shape ``(C,)``.
        std (numpy.ndarray): Per-channel standard deviation, shape ``(C,)``.
        augment (bool): Random crop from the zero-padded image and random
            horizontal flip (training only).
        pad (int): Zero padding of the random crop.

    """

    def __init__(self, mean, std, augment, pad=4):
        self.mean = numpy.asarray(mean, numpy.float32).reshape(1, -1, 1, 1)
        self.scale = 1 / numpy.asarray(std, numpy.float32).reshape(
            1, -1, 1, 1)
        self.augment = augment
        self.pad = pad

    def __call__(self, batch, device):
        x = numpy.stack([b[0] for b in batch])
        t = numpy.asarray([b[1] for b in batch], dtype=numpy.int32)
        n, c, h, w = x.shape
        if self.augment:  # draw on the host: one generator state to save
            p = self.pad
            dy = numpy.random.randint(0, 2 * p + 1, size=n)
            dx = numpy.random.randint(0, 2 * p + 1, size=n)
            flip = numpy.random.rand(n) < 0.5
        x, t = device.send((x, t))
        xp = device.xp
        if self.augment:
            padded = xp.zeros((n, c, h + 2 * p, w + 2 * p), numpy.uint8)
            padded[:, :, p:p + h, p:p + w] = x
            rows = xp.asarray(dy)[:, None] + xp.arange(h)  # (n, h)
            cols = xp.asarray(dx)[:, None] + xp.arange(w)  # (n, w)
            cols = xp.where(xp.asarray(flip)[:, None], cols[:, ::-1], cols)
            x = padded[xp.arange(n)[:, None, None, None],
                       xp.arange(c)[None, :, None, None],
                       rows[:, None, :, None], cols[:, None, None, :]]
        x = (x.astype(numpy.float32) - xp.asarray(self.mean)) * xp.asarray(
            self.scale)
        return x, t
