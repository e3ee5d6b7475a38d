"""Image-folder datasets, CIFAR loading errors and preprocessing."""
import os
import urllib.error
import zipfile

import numpy
import pytest

import chainer

from train import data as data_module
from train.data import imagefolder
from train.data.imagefolder import DataError
from tinydata import CLASSES, ROOT, image, make_folder, make_zip


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / 'cache'
    monkeypatch.setenv('MIXNORM_CACHE', str(d))
    monkeypatch.delenv('MIXNORM_DATA', raising=False)
    return d


@pytest.fixture
def folder(tmp_path):
    return make_folder(str(tmp_path / 'data'), n_train=3, n_test=2)


def test_folder_layout_labels_and_stats(folder, cache):
    d = imagefolder.load_image_folder(folder)
    assert d['classes'] == CLASSES
    assert d['train_x'].shape == (30, 3, 32, 32)
    assert d['train_x'].dtype == numpy.uint8
    assert d['test_x'].shape == (20, 3, 32, 32)
    assert d['train_y'].tolist() == [i // 3 for i in range(30)]
    assert d['test_y'].tolist() == [i // 2 for i in range(20)]
    # Same pixels as generated (PNG is lossless), in HWC -> CHW order.
    rng = numpy.random.RandomState(0)
    first = image(0, rng)
    numpy.testing.assert_array_equal(d['train_x'][0], first.transpose(2, 0, 1))
    x = d['train_x'].astype(numpy.float64)
    numpy.testing.assert_allclose(d['mean'], x.mean(axis=(0, 2, 3)),
                                  rtol=1e-5)
    numpy.testing.assert_allclose(d['std'], x.std(axis=(0, 2, 3)),
                                  rtol=1e-4)


def test_zip_matches_folder_and_is_cached(folder, cache, tmp_path,
                                          monkeypatch):
    z = make_zip(folder, str(tmp_path / 'data.zip'))
    a = imagefolder.load_image_folder(folder)
    b = imagefolder.load_image_folder(z)
    for k in ('train_x', 'train_y', 'test_x', 'test_y'):
        numpy.testing.assert_array_equal(a[k], b[k])
    assert len(os.listdir(str(cache))) == 2  # one .npz per source

    def no_decoding(args):
        raise AssertionError('decoded although cached')
    monkeypatch.setattr(imagefolder, '_decode_chunk', no_decoding)
    c = imagefolder.load_image_folder(z)
    numpy.testing.assert_array_equal(c['train_x'], a['train_x'])
    assert c['classes'] == CLASSES


def test_zip_with_enclosing_folder_and_jpeg(tmp_path, cache):
    src = make_folder(str(tmp_path / 'pack' / 'cifar'), n_train=1,
                      n_test=1, ext='jpg')
    z = make_zip(os.path.dirname(src), str(tmp_path / 'pack.zip'))
    with zipfile.ZipFile(z) as f:
        assert f.namelist()[0].startswith('cifar/')
    d = imagefolder.load_image_folder(z)
    assert d['train_x'].shape == (10, 3, 32, 32) and d['classes'] == CLASSES


def test_decoding_in_a_pool_matches_serial(folder, cache, monkeypatch):
    serial = imagefolder.load_image_folder(folder, processes=1)
    for f in os.listdir(str(cache)):
        os.remove(os.path.join(str(cache), f))
    monkeypatch.setattr(imagefolder, 'POOL_MIN_FILES', 1)
    monkeypatch.setattr(imagefolder, 'CHUNK', 7)
    pooled = imagefolder.load_image_folder(folder, processes=2)
    numpy.testing.assert_array_equal(serial['train_x'], pooled['train_x'])
    numpy.testing.assert_array_equal(serial['test_y'], pooled['test_y'])


def test_corrupt_image_names_the_file(folder, cache, tmp_path):
    bad = os.path.join(folder, 'train', 'c3', '0001.png')
    with open(bad, 'wb') as f:
        f.write(b'not an image')
    with pytest.raises(DataError, match='cannot decode image file .*'
                       'train/c3/0001.png'):
        imagefolder.load_image_folder(folder)
    z = make_zip(folder, str(tmp_path / 'bad.zip'))
    with pytest.raises(DataError, match='train/c3/0001.png in .*bad.zip'):
        imagefolder.load_image_folder(z)


def test_truncated_image_names_the_file(folder, cache):
    bad = os.path.join(folder, 'test', 'c1', '0000.png')
    raw = open(bad, 'rb').read()
    with open(bad, 'wb') as f:
        f.write(raw[:len(raw) // 2])
    with pytest.raises(DataError, match='test/c1/0000.png'):
        imagefolder.load_image_folder(folder)


def test_dangling_link_names_the_file(folder, cache):
    link = os.path.join(folder, 'train', 'c2', '0009.png')
    os.symlink(os.path.join(folder, 'gone.png'), link)
    with pytest.raises(DataError, match='0009.png'):
        imagefolder.load_image_folder(folder)


def test_empty_class_folder_is_an_error(folder, cache, tmp_path):
    os.makedirs(os.path.join(folder, 'train', 'zebra'))
    with pytest.raises(DataError, match='train/zebra has no image files'):
        imagefolder.load_image_folder(folder)
    z = make_zip(folder, str(tmp_path / 'z.zip'))
    with zipfile.ZipFile(z, 'a') as f:
        f.writestr('train/zebra/', '')
    with pytest.raises(DataError, match='train/zebra has no image files'):
        imagefolder.load_image_folder(z)


def test_missing_split_and_missing_path(tmp_path, cache):
    root = make_folder(str(tmp_path / 'only'), n_train=1, n_test=1)
    import shutil
    shutil.rmtree(os.path.join(root, 'test'))
    with pytest.raises(DataError, match='no images under test/'):
        imagefolder.load_image_folder(root)
    with pytest.raises(DataError, match='does not exist'):
        imagefolder.load_image_folder(str(tmp_path / 'nowhere'))


def test_image_of_another_size_names_the_file(folder, cache):
    from PIL import Image
    odd = os.path.join(folder, 'train', 'c5', '0002.png')
    Image.fromarray(numpy.zeros((28, 28, 3), numpy.uint8)).save(odd)
    with pytest.raises(DataError, match='c5/0002.png is 28x28'):
        imagefolder.load_image_folder(folder)


def test_class_count_must_match_the_dataset(folder, cache):
    with pytest.raises(DataError, match='CIFAR-100 .*100 classes.* has 10'):
        data_module.load_dataset('cifar100', folder)


def test_mixnorm_data_variable(folder, cache, monkeypatch):
    monkeypatch.setenv('MIXNORM_DATA', folder)
    d = data_module.load_dataset('cifar10')
    assert d['source'] == os.path.abspath(folder)


def test_offline_without_data_says_both_ways(cache, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError('Name or service not known')
    monkeypatch.setattr(chainer.datasets, 'get_cifar10', offline)
    with pytest.raises(DataError) as e:
        data_module.load_dataset('cifar10')
    msg = str(e.value)
    assert 'CIFAR-10' in msg and 'downloads' in msg
    assert '--data PATH' in msg and 'MIXNORM_DATA' in msg


def test_offline_cli_prints_only_the_error(cache, monkeypatch, capsys):
    from train import cli

    def offline(*args, **kwargs):
        raise urllib.error.URLError('Name or service not known')
    monkeypatch.setattr(chainer.datasets, 'get_cifar10', offline)
    cfg = os.path.join(ROOT, 'configs', 'table2', 'cifar10', 'bn2.yaml')
    out = os.path.join(str(cache), 'run')
    assert cli.main(['--config', cfg, '--out', out]) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith('mixnorm-train: error: CIFAR-10 is not '
                                   'cached')
    assert 'Traceback' not in captured.err
    assert '--data PATH or MIXNORM_DATA=PATH' in captured.err


def test_subset_is_fixed_and_sorted():
    x = numpy.arange(100)
    y = x % 10
    a = data_module.subset(x, y, 10, seed=0)
    b = data_module.subset(x, y, 10, seed=0)
    numpy.testing.assert_array_equal(a[0], b[0])
    assert list(a[0]) == sorted(a[0]) and len(set(a[0])) == 10
    numpy.testing.assert_array_equal(a[1], a[0] % 10)
    assert data_module.subset(x, y, None, seed=0)[0] is x


def _batch(n=16, seed=3):
    rng = numpy.random.RandomState(seed)
    x = rng.randint(0, 256, size=(n, 3, 32, 32)).astype(numpy.uint8)
    return [(x[i], i % 10) for i in range(n)], x


def test_preprocess_normalizes_without_augmentation():
    batch, x = _batch()
    mean, std = numpy.array([10., 20., 30.]), numpy.array([2., 4., 8.])
    pre = data_module.Preprocess(mean, std, augment=False)
    y, t = pre(batch, chainer.get_device('@numpy'))
    assert y.dtype == numpy.float32 and t.dtype == numpy.int32
    expect = (x - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)
    numpy.testing.assert_allclose(y, expect, rtol=1e-6)
    assert t.tolist() == [i % 10 for i in range(16)]


def test_preprocess_augments_by_padded_crop_and_flip():
    batch, x = _batch(n=64)
    pre = data_module.Preprocess(numpy.zeros(3), numpy.ones(3), augment=True)
    numpy.random.seed(0)
    y, _ = pre(batch, chainer.get_device('@numpy'))
    padded = numpy.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    flips, shifts = 0, set()
    for i in range(len(x)):
        found = [(dy, dx, f) for dy in range(9) for dx in range(9)
                 for f in (False, True)
                 if numpy.array_equal(
                     (padded[i, :, dy:dy + 32, dx:dx + 32][..., ::-1]
                      if f else padded[i, :, dy:dy + 32, dx:dx + 32]),
                     y[i])]
        assert found, 'sample {} is not a padded crop'.format(i)
        flips += found[0][2]
        shifts.add(found[0][:2])
    assert 0 < flips < len(x) and len(shifts) > 10
    numpy.random.seed(0)
    again, _ = pre(batch, chainer.get_device('@numpy'))
    numpy.testing.assert_array_equal(y, again)  # seeded: reproducible
