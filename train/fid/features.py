"""The features the FID reads: networks that map images to vectors.

* **Inception** (:class:`InceptionFeatures`): the standard FID network,
  Inception-V3's 2,048 pool3 features (:mod:`train.fid.inception`), with
  weights converted from the PyTorch FID weights (:mod:`train.fid.convert`).
  FIDs with it are comparable with the paper's.
* **Proxy** (:class:`ProxyFeatures`): without the Inception weights, the
  256 pooled (pool4) features of a CIFAR CNN this project trained (a Table
  2 run).  Reports label it :data:`PROXY_LABEL`: it ranks models by the
  same formula (:func:`train.metrics.fid.frechet_distance`) on other
  features, and its numbers mean nothing next to the paper's.
"""
import os

import numpy

import chainer

from train.common.runfolder import load_predictor
from train.common.runfolder import MODEL
from train.common.runfolder import RUN_JSON
from train.fid import inception
from train.metrics.fid import FIDError

PROXY_LABEL = 'proxy FID (CIFAR CNN features), not comparable with the paper'


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
        weights (str): ``.npz`` written by ``python -m train.fid convert``.

    """

    def __init__(self, weights):
        if not weights or not os.path.isfile(weights):
            raise FIDError(
                'no Inception FID weights at {!r}: convert pytorch-fid\'s '
                'pt_inception-2015-12-05 file with python -m train.fid '
                'convert (see the README), or use the proxy features '
                '(--fid-proxy RUN)'.format(weights))
        super(InceptionFeatures, self).__init__(inception.load(weights))
        self.name = 'Inception-V3 pool3 (2015-12-05 weights, {} sha256 '\
            '{})'.format(os.path.basename(weights),
                         inception.file_digest(weights))

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
        weights = os.path.join(run, MODEL)
        if not (os.path.isfile(os.path.join(run, RUN_JSON)) and
                os.path.isfile(weights)):
            raise FIDError('{} is not a finished classifier run (run.json '
                           'and model.npz are needed for the proxy '
                           'features)'.format(run))
        net, _, cfg = load_predictor(run)
        if not hasattr(net, 'features'):
            raise FIDError('{}: the {} model has no pooled features; use a '
                           'CIFAR CNN run (Table 2)'.format(run, cfg['model']))
        super(ProxyFeatures, self).__init__(net)
        self.mean = numpy.asarray(mean, numpy.float32).reshape(1, -1, 1, 1)
        self.scale = 1 / numpy.asarray(std, numpy.float32).reshape(
            1, -1, 1, 1)
        self.name = 'CIFAR CNN pool4 of {} ({}, model.npz sha256 {})'.format(
            os.path.abspath(run), cfg['name'],
            inception.file_digest(weights))

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
