"""FID statistics of image sets: features in batches, the Gaussian's mean
and covariance (:func:`train.metrics.fid.statistics`), and files of them.

``python -m train.fid stats`` writes the statistics of a data set's
training images (:func:`save_statistics`); a GAN run reads them
(``--fid-stats``), or computes them once per set of images and features
into the cache that runs share (:func:`cached_real_statistics`).
"""
import hashlib
import os
import time

import numpy

import chainer

from train.data.imagefolder import cache_dir
from train.metrics.fid import FIDError
from train.metrics.fid import statistics
from train.output.files import replace_file


def uint8_batches(images, batch_size, device):
    """Yields ``images`` (uint8 ``(N, 3, H, W)`` on the host) in batches
    on ``device`` as float32 in [-1, 1]."""
    for i in range(0, len(images), batch_size):
        x = device.send(numpy.ascontiguousarray(images[i:i + batch_size]))
        yield x.astype(numpy.float32) * (1 / 127.5) - 1


def activations(features, batches):
    """Features of every batch, stacked on the host as float64."""
    out = [chainer.backend.CpuDevice().send(features(x)) for x in batches]
    return numpy.concatenate(out).astype(numpy.float64)


def save_statistics(path, mu, sigma, n, features):
    """Writes ``mu``, ``sigma``, the sample count and the features' name."""
    replace_file(path, lambda f: numpy.savez(
        f, mu=mu, sigma=sigma, n=numpy.int64(n),
        features=numpy.array(features.name)))


def load_statistics(path, features=None):
    """Reads :func:`save_statistics`' file: ``(mu, sigma, n, name)``.

    Raises:
        FIDError: Unreadable, or made with other features than
            ``features`` (when given).

    """
    try:
        with numpy.load(path) as f:
            mu, sigma, n = f['mu'], f['sigma'], int(f['n'])
            name = str(f['features'])
    except (OSError, KeyError, ValueError) as e:
        raise FIDError('{}: not a statistics file of python -m train.fid '
                       'stats ({})'.format(path, e))
    if features is not None and name != features.name:
        raise FIDError('{} holds statistics of other features ({}), not of '
                       '{}'.format(path, name, features.name))
    return mu, sigma, n, name


def real_statistics(features, images, device, batch_size=100,
                    allow_few=False):
    """``(mu, sigma)`` of a set of real uint8 images."""
    return statistics(activations(features, uint8_batches(
        images, batch_size, device)), allow_few=allow_few)


def cached_real_statistics(fid, features, images, device, log):
    """``(mu, sigma)`` of a GAN run's training images.

    From ``fid['stats']`` (``--fid-stats``), else from the statistics cache
    that runs share (``$MIXNORM_CACHE``, keyed by the features' name and
    the images' bytes), else computed and cached.

    Args:
        fid (dict): The run's FID settings (``stats``, ``batch_size``,
            ``allow_few_samples``).
        features (Features): On ``device``.
        images: uint8 ``(N, 3, H, W)`` on the host.
        device: Chainer device.
        log: Stream for the message when they are computed.

    """
    if fid['stats']:
        return load_statistics(fid['stats'], features)[:2]
    key = hashlib.sha256(features.name.encode('utf-8') +
                         numpy.ascontiguousarray(images).tobytes())
    cached = os.path.join(cache_dir(),
                          'fid-{}.npz'.format(key.hexdigest()[:20]))
    if os.path.exists(cached):
        return load_statistics(cached, features)[:2]
    start = time.time()
    mu, sigma = real_statistics(
        features, images, device, fid['batch_size'],
        allow_few=fid['allow_few_samples'])
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    save_statistics(cached, mu, sigma, len(images), features)
    print('FID statistics of {} training images: {:.0f} s (cached in {})'
          .format(len(images), time.time() - start, cached), file=log)
    return mu, sigma
