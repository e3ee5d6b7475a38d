"""Fréchet Inception Distance (FID) and the features it reads.

    python -m train.fid stats --data PATH --out FILE
        (--fid-weights NPZ | --fid-proxy RUN) [--device D] [--allow-few]

The FID (Heusel et al., 2017; the paper's [46]) of two sets of images is
the Fréchet distance between Gaussians fitted to their features::

    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

:func:`frechet_distance` follows the numerics of
``calculate_frechet_distance`` in mseitzer/pytorch-fid (``fid_score.py``):
retry with ``eps`` on the diagonals when the square root is not finite,
reject a square root whose diagonal has a clearly imaginary part, keep the
real part otherwise.  The square root itself is computed with NumPy only:
for symmetric positive semi-definite ``A`` and ``B``, ``A B`` has the
eigenvalues of the symmetric ``A^(1/2) B A^(1/2)``, so the trace of the
square root is the sum of the square roots of that matrix's eigenvalues
(two symmetric eigendecompositions, no general ``sqrtm``).

Features:

* **Inception** (:class:`InceptionFeatures`): the standard FID network,
  Inception-V3's 2,048 pool3 features (:mod:`train.fid_inception`), with
  weights converted from the PyTorch FID weights (:mod:`train.fid_convert`).
  FIDs with it are comparable with the paper's.
* **Proxy** (:class:`ProxyFeatures`): without the Inception weights, the
  256 pooled (pool4) features of a CIFAR CNN this project trained (a Table
  2 run).  Reports label it :data:`PROXY_LABEL`: it ranks models by the
  same formula on other features, and its numbers mean nothing next to the
  paper's.

Fewer than :data:`MIN_SAMPLES` (2,048) images per set is an error unless
the caller allows it: the covariance of 2,048 features from fewer images is
singular, and the FID from small sets is strongly biased upwards.
"""
import argparse
import json
import os
import sys

import numpy

import chainer

MIN_SAMPLES = 2048
PROXY_LABEL = 'proxy FID (CIFAR CNN features), not comparable with the paper'


class FIDError(ValueError):
    """FID statistics cannot be computed as asked; the message says why."""


# ----------------------------------------------------------------- numerics
def statistics(features, allow_few=False):
    """Mean and covariance of a set of feature vectors.

    Args:
        features: ``(N, D)`` array, one row per image.
        allow_few (bool): Accept fewer than :data:`MIN_SAMPLES` rows.

    Returns:
        tuple: ``(mu, sigma)``, float64 ``(D,)`` and ``(D, D)`` (the
        unbiased covariance, as ``numpy.cov``).

    Raises:
        FIDError: Not a 2-D array, fewer than 2 rows, or fewer than
            :data:`MIN_SAMPLES` without ``allow_few``.

    """
    features = numpy.asarray(features, dtype=numpy.float64)
    if features.ndim != 2:
        raise FIDError('features must be an (N, D) array, got shape {}'
                       .format(features.shape))
    n = len(features)
    if n < 2:
        raise FIDError('a covariance needs at least 2 samples, got {}'
                       .format(n))
    if n < MIN_SAMPLES and not allow_few:
        raise FIDError(
            'FID statistics from {} samples: at least {} are needed (with '
            'fewer the covariance is singular and the FID biased); allow '
            'fewer explicitly (fid.allow_few_samples, --allow-few) only for '
            'smoke tests'.format(n, MIN_SAMPLES))
    return features.mean(axis=0), numpy.cov(features, rowvar=False)


def _sqrt_product(sigma1, sigma2):
    """A matrix with the trace (and eigenvalues) of ``(sigma1 sigma2)^(1/2)``.

    ``S^(1/2) sigma2 S^(1/2)`` with ``S = sigma1`` (negative eigenvalues of
    ``sigma1`` from rounding clipped to 0) is symmetric and similar to
    ``sigma1 sigma2`` on its range; its square root is taken through its
    eigenvalues, complex where one is negative.
    """
    w, v = numpy.linalg.eigh(sigma1)
    root1 = (v * numpy.sqrt(numpy.clip(w, 0, None))) @ v.T
    m = root1 @ sigma2 @ root1
    w, v = numpy.linalg.eigh((m + m.T) / 2)
    roots = numpy.sqrt(w.astype(numpy.complex128))
    if not roots.imag.any():
        roots = roots.real
    return (v * roots) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: Mean vectors ``(D,)``.
        sigma1, sigma2: Covariance matrices ``(D, D)``.
        eps (float): Added to both diagonals when the matrix square root
            is not finite (then tried once more).

    Returns:
        float

    Raises:
        FIDError: Shapes differ, the square root stays non-finite, or its
            diagonal has an imaginary part above 1e-3.

    """
    mu1, mu2 = (numpy.atleast_1d(numpy.asarray(m, numpy.float64))
                for m in (mu1, mu2))
    sigma1, sigma2 = (numpy.atleast_2d(numpy.asarray(s, numpy.float64))
                      for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or \
            sigma1.shape != mu1.shape * 2:
        raise FIDError('statistics do not match: means {} and {}, '
                       'covariances {} and {}'.format(
                           mu1.shape, mu2.shape, sigma1.shape, sigma2.shape))

    def root(s1, s2):
        try:
            r = _sqrt_product(s1, s2)
        except numpy.linalg.LinAlgError:
            return None
        return r if numpy.isfinite(r).all() else None

    covmean = root(sigma1, sigma2)
    if covmean is None:
        offset = numpy.eye(len(mu1)) * eps
        covmean = root(sigma1 + offset, sigma2 + offset)
        if covmean is None:
            raise FIDError('the matrix square root of the covariance product '
                           'is not finite, even with {} added to the '
                           'diagonals'.format(eps))
    if numpy.iscomplexobj(covmean):
        imag = numpy.abs(numpy.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise FIDError('the matrix square root has an imaginary '
                           'component of {:.3g} on its diagonal (are both '
                           'covariances positive semi-definite?)'.format(
                               imag))
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + numpy.trace(sigma1) + numpy.trace(sigma2) -
                 2 * numpy.trace(covmean))


# ----------------------------------------------------------------- features
class Features(object):

    """Maps images to feature vectors on a device.

    Call it on a batch of images in [-1, 1], ``(N, 3, H, W)`` float32 on
    the device it was sent to; it returns an ``(N, D)`` device array.

    Attributes:
        name (str): What the features are (recorded with statistics, which
            must match before they are compared).
        proxy (bool): Whether FIDs from them are the proxy FID.

    """

    name = None
    proxy = False

    def __init__(self, net):
        self.net = net

    def to_device(self, device):
        self.net.to_device(device)
        return self

    @property
    def label(self):
        """How reports call FIDs from these features."""
        return PROXY_LABEL if self.proxy else 'FID (Inception-V3 pool3)'

    def __call__(self, x):
        raise NotImplementedError


class InceptionFeatures(Features):

    """Inception-V3 pool3 features (the standard FID).

    Args:
        weights (str): ``.npz`` written by ``python -m train.fid_convert``.

    """

    def __init__(self, weights):
        from train import fid_inception
        if not weights or not os.path.isfile(weights):
            raise FIDError(
                'no Inception FID weights at {!r}: convert pytorch-fid\'s '
                'pt_inception-2015-12-05 file with python -m '
                'train.fid_convert (see the README), or use the proxy '
                'features (--fid-proxy RUN)'.format(weights))
        super(InceptionFeatures, self).__init__(fid_inception.load(weights))
        self.name = 'Inception-V3 pool3 (2015-12-05 weights, {} sha256 '\
            '{})'.format(os.path.basename(weights),
                         fid_inception.file_digest(weights))

    def __call__(self, x):
        return self.net(x).array


class ProxyFeatures(Features):

    """The pooled (pool4, 256-d) features of a trained CIFAR CNN run.

    Images in [-1, 1] are mapped back to pixel values and normalized as the
    run's training normalized them (per-channel mean and standard deviation
    of the training set).

    Args:
        run (str): A finished run folder of ``python -m train`` whose model
            has a ``features`` method (the CIFAR CNN of Table 1).
        mean, std: Per-channel pixel mean and standard deviation ``(3,)``
            of the training set.

    """

    proxy = True

    def __init__(self, run, mean, std):
        from train import config as config_module
        from train import fid_inception

        info_path = os.path.join(run, 'run.json')
        weights = os.path.join(run, 'model.npz')
        if not (os.path.isfile(info_path) and os.path.isfile(weights)):
            raise FIDError('{} is not a finished classifier run (run.json '
                           'and model.npz are needed for the proxy '
                           'features)'.format(run))
        with open(info_path) as f:
            cfg = json.load(f)['config']
        cfg = config_module.upgrade(cfg, warn=False)
        net, _ = config_module.build_model(cfg, info_path)
        if not hasattr(net, 'features'):
            raise FIDError('{}: the {} model has no pooled features; use a '
                           'CIFAR CNN run (Table 2)'.format(run, cfg['model']))
        chainer.serializers.load_npz(weights, net)
        super(ProxyFeatures, self).__init__(net)
        self.mean = numpy.asarray(mean, numpy.float32).reshape(1, -1, 1, 1)
        self.scale = 1 / numpy.asarray(std, numpy.float32).reshape(
            1, -1, 1, 1)
        self.name = 'CIFAR CNN pool4 of {} ({}, model.npz sha256 {})'.format(
            os.path.abspath(run), cfg['name'],
            fid_inception.file_digest(weights))

    def __call__(self, x):
        xp = chainer.backend.get_array_module(x)
        x = ((x + 1) * 127.5 - xp.asarray(self.mean)) * xp.asarray(self.scale)
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            return self.net.features(x).array


def make_features(weights=None, proxy_run=None, mean=None, std=None):
    """The Inception features (``weights``) or the proxy (``proxy_run``)."""
    if (weights is None) == (proxy_run is None):
        raise FIDError('give exactly one of the Inception weights and a '
                       'proxy run')
    if weights is not None:
        return InceptionFeatures(weights)
    return ProxyFeatures(proxy_run, mean, std)


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
    tmp = path + '.tmp.npz'
    numpy.savez(tmp, mu=mu, sigma=sigma, n=numpy.int64(n),
                features=numpy.array(features.name))
    os.replace(tmp, path)


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


# ---------------------------------------------------------------- command
def _stats(args):
    from train import data as data_module
    from train import device as device_module

    device = device_module.get_or_exit(args.device, 'train.fid')
    device.use()
    dataset = data_module.load_dataset(args.dataset, args.data)
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


def main(argv=None):
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
                       help='converted Inception weights (train.fid_convert)')
    which.add_argument('--fid-proxy', default=None, metavar='RUN',
                       help='CIFAR CNN run folder: proxy features')
    s.add_argument('--device', default=None)
    s.add_argument('--batch-size', type=int, default=100)
    s.add_argument('--allow-few', action='store_true',
                   help='accept fewer than {} images'.format(MIN_SAMPLES))
    args = p.parse_args(argv)
    from train.config import ConfigError
    from train.imagefolder import DataError
    try:
        return _stats(args)
    except (FIDError, DataError, ConfigError) as e:
        print('train.fid: error: {}'.format(e), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
