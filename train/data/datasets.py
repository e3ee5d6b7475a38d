"""The datasets of the CIFAR experiments (Section 4.1): CIFAR-10 and
CIFAR-100 through :mod:`chainer.datasets`, or an image folder or .zip
(:mod:`train.data.imagefolder`), as uint8 arrays with the training split's
per-channel mean and standard deviation; fixed random subsets for quick
runs.  :data:`DATASETS` names them for configurations and reports.
"""
import collections
import contextlib
import io
import os

import numpy

import chainer

from train.data.imagefolder import channel_stats
from train.data.imagefolder import DataError
from train.data.imagefolder import list_classes
from train.data.imagefolder import load_image_folder

Dataset = collections.namedtuple('Dataset', ['title', 'n_classes'])
# the configuration's ``dataset`` -> its name in reports and messages, and
# its number of classes
DATASETS = {'cifar10': Dataset('CIFAR-10', 10),
            'cifar100': Dataset('CIFAR-100', 100)}


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
        dict: Same keys as :func:`train.data.imagefolder.load_image_folder`.

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
