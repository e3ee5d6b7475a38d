"""The FID of a GAN during training, and its sample grids (Figures 6, 7).

:class:`FIDEvaluation` is a trainer extension, as chainer-gan-lib's
``common/evaluation.py`` computes the FID: it reports ``fid`` (and
``fid_time``) through :mod:`chainer.reporter` for the LogReport, and
writes an 8x8 grid of samples to ``samples/iter_<N>.png``.
"""
import os
import time

import numpy

import chainer
from chainer import training

from train.common.runfolder import sample_path
from train.fid.statistics import activations
from train.metrics.fid import frechet_distance
from train.metrics.fid import statistics

GRID = 8  # the grids are GRID x GRID images


def tile(images, rows=GRID):
    """uint8 ``(rows * H, cols * W, C)`` grid of ``(N, C, H, W)`` images in
    [-1, 1], row by row."""
    x = numpy.clip(numpy.rint((numpy.asarray(images) + 1) * 127.5), 0, 255)
    n, c, h, w = x.shape
    cols = -(-n // rows)
    x = numpy.concatenate([x, numpy.zeros((rows * cols - n, c, h, w))])
    x = x.reshape(rows, cols, c, h, w).transpose(0, 3, 1, 4, 2)
    return x.reshape(rows * h, cols * w, c).astype(numpy.uint8)


class FIDEvaluation(training.Extension):

    """Reports the FID of the generator (test mode) and saves samples.

    Each evaluation generates ``n_samples`` images from z drawn by its own
    fixed-seed generator (the same z each time, and the training streams
    untouched), compares their features' statistics with the real ones,
    reports ``fid`` and ``fid_time`` (seconds), and writes an 8x8 grid from
    64 fixed z to ``samples/iter_<N>.png``.

    Args:
        generator: The generator.
        features (train.fid.Features): On the generator's device.
        real (tuple): ``(mu, sigma)`` of the real images.
        fid (dict): The run's FID settings
            (:func:`train.gan.runner.fid_settings`).
        device: The generator's device.
        out (str): Run folder.
        seed (int): The run's seed.

    """

    priority = training.PRIORITY_WRITER

    def __init__(self, generator, features, real, fid, device, out, seed):
        self.generator = generator
        self.features = features
        self.real = real
        self.fid = fid
        self.device = device
        self.out = out
        self.seed = seed

    def _generate(self, z):
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            return self.generator(self.device.send(z)).array

    def _z(self, stream, n):
        rng = numpy.random.RandomState([self.seed, stream])
        return rng.uniform(-1, 1, (n, self.generator.n_hidden)).astype(
            numpy.float32)

    def evaluate(self):
        """The FID of the generator as it is now."""
        n, batch = self.fid['n_samples'], self.fid['batch_size']
        z = self._z(1, n)
        feats = activations(
            self.features, (self._generate(z[i:i + batch])
                            for i in range(0, n, batch)))
        mu, sigma = statistics(
            feats, allow_few=self.fid['allow_few_samples'])
        return frechet_distance(mu, sigma, *self.real)

    def samples(self):
        """uint8 grid of GRID x GRID images from fixed z."""
        x = self._generate(self._z(2, GRID * GRID))
        return tile(chainer.backend.CpuDevice().send(x))

    def __call__(self, trainer):
        from PIL import Image

        start = time.time()
        value = self.evaluate()
        path = sample_path(self.out, trainer.updater.iteration)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(self.samples()).save(path)
        chainer.report({'fid': value, 'fid_time': time.time() - start})
