"""FID numerics, the Inception network (random weights), the weight
converter, the proxy features and ``python -m train.fid stats``.

The real FID weights cannot be had here: the network is checked for its
shapes and layout with random weights, and the converter with a state dict
made to the PyTorch port's names (written with torch when it is installed).
"""
import os
import subprocess
import sys

import numpy
import pytest

import chainer

from train.fid import cli as fid_cli
from train.fid import convert as fid_convert
from train.fid import features as fid_features
from train.fid import inception as fid_inception
from train.fid import statistics as fid_statistics
from train.metrics import fid
from tinydata import ROOT, env, make_proxy_run

RNG = numpy.random.RandomState(0)


def _cov(d, rank=None, rng=RNG):
    a = rng.randn(d, rank or d)
    return a @ a.T / (rank or d)


# ----------------------------------------------------------------- numerics
def test_identical_statistics_give_zero():
    mu, sigma = RNG.randn(16), _cov(16)
    assert fid.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(
        0, abs=1e-9)


def test_equal_covariances_give_the_squared_mean_distance():
    mu1, mu2, sigma = RNG.randn(16), RNG.randn(16), _cov(16)
    assert fid.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        numpy.sum((mu1 - mu2) ** 2), rel=1e-9, abs=1e-9)


def test_diagonal_covariances_match_the_closed_form():
    mu1, mu2 = RNG.randn(8), RNG.randn(8)
    v1, v2 = RNG.uniform(0.1, 3, 8), RNG.uniform(0.1, 3, 8)
    expected = (numpy.sum((mu1 - mu2) ** 2) +
                numpy.sum((numpy.sqrt(v1) - numpy.sqrt(v2)) ** 2))
    assert fid.frechet_distance(mu1, numpy.diag(v1), mu2,
                                numpy.diag(v2)) == pytest.approx(expected)


def test_full_covariances_match_scipy_sqrtm():
    linalg = pytest.importorskip('scipy.linalg')
    mu1, mu2, s1, s2 = RNG.randn(20), RNG.randn(20), _cov(20), _cov(20)
    expected = (numpy.sum((mu1 - mu2) ** 2) + numpy.trace(s1 + s2) -
                2 * numpy.trace(linalg.sqrtm(s1 @ s2).real))
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected)


@pytest.mark.parametrize('rank', [1, 5, 29])
def test_singular_and_near_singular_covariances_give_a_finite_value(rank):
    s1, s2 = _cov(30, rank), _cov(30, rank)
    s2[0, 0] += 1e-12  # near-singular
    value = fid.frechet_distance(numpy.zeros(30), s1, numpy.ones(30), s2)
    assert numpy.isfinite(value) and value >= 30 - 1e-6
    zero = numpy.zeros((30, 30))
    assert fid.frechet_distance(numpy.zeros(30), zero, numpy.zeros(30),
                                zero) == 0


def test_statistics_from_fewer_samples_than_dimensions_are_finite():
    mu1, s1 = fid.statistics(RNG.randn(10, 64), allow_few=True)
    mu2, s2 = fid.statistics(RNG.randn(12, 64) + 1, allow_few=True)
    assert numpy.isfinite(fid.frechet_distance(mu1, s1, mu2, s2))


def test_a_non_finite_root_is_retried_with_eps(monkeypatch):
    calls = []
    real = fid._sqrt_product

    def flaky(s1, s2):
        calls.append(s1[0, 0])
        return real(s1, s2) * (numpy.nan if len(calls) == 1 else 1)

    monkeypatch.setattr(fid, '_sqrt_product', flaky)
    sigma = numpy.eye(3)
    # the traces stay those of the covariances given (as pytorch-fid)
    assert fid.frechet_distance(numpy.zeros(3), sigma, numpy.zeros(3),
                                sigma, eps=1e-3) == pytest.approx(-6e-3)
    assert calls == [1.0, 1.001]
    monkeypatch.setattr(fid, '_sqrt_product',
                        lambda s1, s2: numpy.full_like(s1, numpy.nan))
    with pytest.raises(fid.FIDError, match='not finite'):
        fid.frechet_distance(numpy.zeros(3), sigma, numpy.zeros(3), sigma)


def test_a_clearly_complex_root_raises():
    with pytest.raises(fid.FIDError, match='imaginary component'):
        fid.frechet_distance(numpy.zeros(2), numpy.eye(2), numpy.zeros(2),
                             numpy.diag([1.0, -4.0]))
    # rounding-sized negative eigenvalues keep the real part
    value = fid.frechet_distance(numpy.zeros(2), numpy.eye(2),
                                 numpy.zeros(2), numpy.diag([1.0, -1e-9]))
    assert value == pytest.approx(1.0, abs=1e-6)


def test_mismatched_statistics_raise():
    with pytest.raises(fid.FIDError, match='do not match'):
        fid.frechet_distance(numpy.zeros(3), numpy.eye(3), numpy.zeros(2),
                             numpy.eye(2))


def test_statistics_need_2048_samples_unless_allowed():
    feats = RNG.randn(fid.MIN_SAMPLES - 1, 4)
    with pytest.raises(fid.FIDError, match='at least 2048'):
        fid.statistics(feats)
    mu, sigma = fid.statistics(feats, allow_few=True)
    numpy.testing.assert_allclose(mu, feats.mean(0))
    numpy.testing.assert_allclose(sigma, numpy.cov(feats, rowvar=False))
    assert fid.statistics(RNG.randn(fid.MIN_SAMPLES, 2))[1].shape == (2, 2)
    with pytest.raises(fid.FIDError, match='at least 2 samples'):
        fid.statistics(RNG.randn(1, 4), allow_few=True)


# ------------------------------------------------------- Inception network
def test_resize_matches_half_pixel_bilinear():
    m = fid_inception.resize_matrix(32, 299)
    numpy.testing.assert_allclose(m.sum(axis=1), 1)
    numpy.testing.assert_allclose(fid_inception.resize_matrix(5, 5),
                                  numpy.eye(5))
    # 2 -> 4: samples at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
    numpy.testing.assert_allclose(fid_inception.resize_matrix(2, 4), [
        [1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    torch = _torch()
    if torch is not None:
        x = RNG.uniform(-1, 1, (2, 3, 32, 32)).astype(numpy.float32)
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(x), size=(299, 299), mode='bilinear',
            align_corners=False).numpy()
        numpy.testing.assert_allclose(
            fid_inception.resize_bilinear(x, 299), ref, atol=1e-5)


def test_inception_network_gives_2048_pool3_features():
    net = fid_inception.FIDInceptionV3()
    n_params = sum(p.size for p in net.params())
    assert n_params == 21785568  # torchvision's Inception-V3 body, no fc
    x = RNG.uniform(-1, 1, (2, 3, 32, 32)).astype(numpy.float32)
    y = net(x)  # resized to 299 x 299
    assert y.shape == (2, fid_inception.DIMS)
    assert numpy.isfinite(y.array).all() and (y.array >= 0).all()
    assert y.creator is None  # no graph
    # the 3x3 average pooling does not count the padding
    ones = numpy.ones((1, 1, 4, 4), numpy.float32)
    numpy.testing.assert_allclose(
        fid_inception._avg_pool_exclusive(ones).array, 1)


# ---------------------------------------------------------------- converter
def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _state_dict(seed=0):
    """Random tensors under the PyTorch port's names, with its extras."""
    rng = numpy.random.RandomState(seed)
    net = fid_inception.FIDInceptionV3()
    names = {'W': 'weight', 'gamma': 'weight', 'beta': 'bias',
             'avg_mean': 'running_mean', 'avg_var': 'running_var'}
    state = {}
    for path, (link, attr) in fid_convert._targets(net).items():
        value = getattr(link, attr)
        shape = (value.array if isinstance(value, chainer.Variable)
                 else value).shape
        key = path.rsplit('/', 1)[0].replace('/', '.') + '.' + names[attr]
        state[key] = rng.uniform(0.5, 1.5, shape).astype(numpy.float32)
        if attr == 'avg_var':
            state[key.replace('running_var', 'num_batches_tracked')] = \
                numpy.array(0)
    state['fc.weight'] = rng.randn(1008, 2048).astype(numpy.float32)
    state['fc.bias'] = rng.randn(1008).astype(numpy.float32)
    return state


def test_converter_maps_every_tensor_by_name():
    state = _state_dict()
    net, skipped = fid_convert.convert_state_dict(state)
    n_bn = sum(1 for k in state if k.endswith('.running_var'))
    assert n_bn == 94  # conv-BN units of the Inception-V3 body
    assert skipped == sorted(['fc.bias', 'fc.weight'] + [
        k for k in state if k.endswith('.num_batches_tracked')])
    assert len(skipped) == n_bn + 2
    numpy.testing.assert_array_equal(
        net.Mixed_6b.branch7x7dbl_2.conv.W.array,
        state['Mixed_6b.branch7x7dbl_2.conv.weight'])
    assert net.Mixed_6b.branch7x7dbl_2.conv.W.shape == (128, 128, 7, 1)
    numpy.testing.assert_array_equal(
        net.Mixed_7c.branch_pool.bn.avg_var,
        state['Mixed_7c.branch_pool.bn.running_var'])


def test_converter_rejects_other_weights():
    state = _state_dict()
    del state['Conv2d_1a_3x3.conv.weight']
    state['Mixed_9z.conv.weight'] = numpy.zeros(3)
    state['Mixed_5b.branch1x1.bn.bias'] = numpy.zeros(3)
    with pytest.raises(fid_convert.ConversionError) as e:
        fid_convert.convert_state_dict(state)
    text = str(e.value)
    assert 'unknown tensors (1): Mixed_9z.conv.weight' in text
    assert 'wrong shapes (1): Mixed_5b.branch1x1.bn.bias (3,)' in text
    assert ('parameters without a tensor (2): Conv2d_1a_3x3/conv/W, '
            'Mixed_5b/branch1x1/bn/beta') in text


def test_converter_command_reads_a_torch_file(tmp_path):
    torch = _torch()
    if torch is None:
        pytest.skip('torch is not installed (needed for conversion only)')
    state = _state_dict(seed=1)
    src, dst = str(tmp_path / 'w.pth'), str(tmp_path / 'w.npz')
    torch.save({k: torch.from_numpy(numpy.asarray(v))
                for k, v in state.items()}, src)
    assert fid_cli.main(['convert', src, dst]) == 0
    net = fid_inception.load(dst)
    numpy.testing.assert_array_equal(net.Mixed_5d.branch5x5_2.conv.W.array,
                                     state['Mixed_5d.branch5x5_2.conv.weight'])
    features = fid_features.InceptionFeatures(dst)
    assert 'sha256 ' + fid_inception.file_digest(dst) in features.name
    with open(src, 'wb') as f:
        f.write(b'not a torch file')
    assert fid_cli.main(['convert', src, dst]) == 2


def test_missing_or_wrong_weight_files_are_errors(tmp_path):
    with pytest.raises(fid.FIDError, match='python -m train.fid convert'):
        fid_features.InceptionFeatures(str(tmp_path / 'none.npz'))
    bad = str(tmp_path / 'bad.npz')
    numpy.savez(bad, x=numpy.zeros(2))
    with pytest.raises(ValueError, match='not a converted FID Inception'):
        fid_inception.load(bad)


# ------------------------------------------------------------- proxy, stats
@pytest.fixture(scope='module')
def proxy(tmp_path_factory):
    """A tiny data folder and a CIFAR CNN run on it (1 epoch)."""
    return make_proxy_run(tmp_path_factory.mktemp('proxy'))


def test_proxy_features_are_the_cifar_cnn_pool4(proxy):
    mean, std = numpy.full(3, 120.0), numpy.full(3, 60.0)
    features = fid_features.ProxyFeatures(proxy['proxy'], mean, std)
    assert features.proxy and features.label == fid_features.PROXY_LABEL
    x = RNG.uniform(-1, 1, (5, 3, 32, 32)).astype(numpy.float32)
    y = features(x)
    assert y.shape == (5, 256)
    cnn = features.net
    with chainer.using_config('train', False):
        expected = cnn.features((((x + 1) * 127.5 - 120) / 60).astype(
            numpy.float32)).array
    numpy.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-3)
    with pytest.raises(fid.FIDError, match='not a finished classifier run'):
        fid_features.ProxyFeatures(proxy['data'], mean, std)


def test_stats_command_writes_the_training_set_statistics(proxy, tmp_path):
    out = str(tmp_path / 'real.npz')
    cmd = [sys.executable, '-m', 'train.fid', 'stats', '--data',
           proxy['data'], '--out', out, '--fid-proxy', proxy['proxy'],
           '--device', '@numpy']
    r = subprocess.run(cmd, cwd=ROOT, env=env(proxy['cache']),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'at least 2048' in r.stderr
    assert not os.path.exists(out)
    r = subprocess.run(cmd + ['--allow-few'], cwd=ROOT,
                       env=env(proxy['cache']), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    mu, sigma, n, name = fid_statistics.load_statistics(out)
    assert mu.shape == (256,) and sigma.shape == (256, 256) and n == 40
    assert name.startswith('CIFAR CNN pool4 of ' + proxy['proxy'])
