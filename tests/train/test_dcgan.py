"""DCGAN with mixture normalization (Section 4.5): the networks, their
configurations, training through the CLI with BN and MN, resume, and the
Figure 6/7 report from hand-made logs (also through scripts/dcgan.sh)."""
import io
import json
import os
import subprocess
import sys

import numpy
import pytest
from PIL import Image

import chainer

import mixnorm
import models
from models import dcgan
from train import config, fid, figures, gan, metrics
from train.classifier import runner
from train.common import runfolder
from train.data import batches
from tinydata import ROOT, env, make_proxy_run, train_cli

CONFIGS = os.path.join(ROOT, 'configs', 'dcgan')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """40 images (4 per class) and a 1-epoch CIFAR CNN run for the proxy."""
    return make_proxy_run(tmp_path_factory.mktemp('gan'))


def _gan_yaml(path, layers=(), iterations=6, extra=''):
    """A tiny DCGAN configuration: 16 channels, batch 8, FID every 3."""
    norm = ('norm: {{layers: [{}], n_components: 2, em_iter: 2}}\n'.format(
        ', '.join(layers)) if layers else '')
    with open(path, 'w') as f:
        f.write('name: tiny-gan\ndataset: cifar10\nmodel: dcgan\n'
                'generator_args: {{ch: 16}}\ndiscriminator_args: {{ch: 16}}\n'
                '{}iterations: {}\nbatch_size: 8\noptimizer: {{name: adam, '
                'lr: 2.0e-4, betas: [0.0, 0.9]}}\nsnapshot_every: 3\n'
                'log_every: 2\nfid: {{every: 3, n_samples: 40, batch_size: '
                '20, features: proxy, allow_few_samples: true}}\n{}'.format(
                    norm, iterations, extra))
    return path


# ------------------------------------------------------------------ models
def test_generator_and_discriminator_shapes_and_parameter_counts():
    gen, dis = dcgan.Generator(), dcgan.Discriminator()
    # l0 1,056,768 + bn0 16,384 + dc1 2,097,408 + bn1 512 + dc2 524,416
    # + bn2 256 + dc3 131,136 + bn3 128 + dc4 1,731
    assert sum(p.size for p in gen.params()) == 3828739
    # convolutions 5,852,672 + l4 8,193 + BN betas (no gamma) 1,792
    assert sum(p.size for p in dis.params()) == 5862657
    assert dis.bn0_1.gamma is None and dis.bn3_0.beta.shape == (512,)
    small_gen = dcgan.Generator(ch=16)
    z = small_gen.make_hidden(5)
    assert z.shape == (5, 128) and z.dtype == numpy.float32
    assert -1 <= z.min() and z.max() <= 1
    x = small_gen(z)
    assert x.shape == (5, 3, 32, 32)
    assert numpy.abs(x.array).max() <= 1
    assert dcgan.Discriminator(ch=16)(x).shape == (5, 1)
    with pytest.raises(ValueError, match='unconditional'):
        dcgan.Generator(10)


def test_mn_replaces_the_named_generator_bns():
    gen, paths = models.build('dcgan', None, {'ch': 16},
                              {'layers': ['dc1', 'dc2'], 'n_components': 3,
                               'em_iter': 2})
    assert paths == ['bn1', 'bn2']
    assert isinstance(gen.bn1, mixnorm.MixtureNormalization)
    assert isinstance(gen.bn2, mixnorm.MixtureNormalization)
    assert type(gen.bn0) is mixnorm.BatchNormalization
    assert gen(gen.make_hidden(8)).shape == (8, 3, 32, 32)
    with pytest.raises(models.BuildError, match='normalized layers: l0, '
                                                'dc1, dc2, dc3'):
        models.build('dcgan', None, {}, {'layers': ['dc4']})


# ---------------------------------------------------------- configurations
def test_shipped_configs_follow_section_4_5():
    bn = config.load(os.path.join(CONFIGS, 'bn.yaml'))
    mn = config.load(os.path.join(CONFIGS, 'mn.yaml'))
    for cfg in (bn, mn):
        assert (cfg['iterations'], cfg['batch_size']) == (100000, 64)
        assert cfg['optimizer'] == {'name': 'adam', 'lr': 2e-4,
                                    'betas': [0.0, 0.9], 'weight_decay': 0.0}
        assert cfg['fid']['every'] == 10000 and cfg['fid']['n_samples'] >= \
            metrics.MIN_SAMPLES
        assert (cfg['generator_args'], cfg['discriminator_args']) == ({}, {})
    assert bn['norm']['layers'] == []
    assert (mn['norm']['layers'], mn['norm']['n_components'],
            mn['norm']['em_iter']) == (['dc1', 'dc2'], 3, 2)
    assert (bn['paper']['best_fid'], bn['paper']['best_at']) == (37.56, 60000)
    assert (mn['paper']['best_fid'], mn['paper']['steps_to_target'],
            mn['paper']['target_row']) == (33.35, 25000, 'DCGAN-BN')
    for name in ('bn', 'mn'):
        tiny = config.load(os.path.join(CONFIGS, 'tiny', name + '.yaml'))
        assert 'paper' not in tiny and tiny['fid']['features'] == 'proxy'


@pytest.mark.parametrize('extra,message', [
    ('epochs: 3\n', "top level: unknown key 'epochs'"),
    ('generator_args: {width: 3}\n', 'generator_args: '),
    ('norm: {layers: [conv3]}\n', "norm.layers: the DCGAN generator has no "
                                  "normalized layer 'conv3'"),
    ('optimizer: {name: adam, lr: 1.0, alpha: 0.9}\n',
     'optimizer.alpha: does not apply to optimizer'),
    ('fid: {every: 5, n_samples: 100}\n',
     'fid.n_samples: 100 generated images give a biased FID'),
    ('fid: {every: 5, features: proxy, weights: w.npz}\n',
     "fid.weights: does not apply to fid.features 'proxy'"),
    ('paper: {figure: 6, row: X, target_row: Y}\n',
     'paper: target_row and steps_to_target go together'),
])
def test_config_mistakes_name_the_file_and_key(tmp_path, extra, message):
    base = ('name: g\ndataset: cifar10\nmodel: dcgan\niterations: 10\n'
            'batch_size: 8\n')
    keys = [line.split(':')[0] for line in extra.splitlines()]
    if 'optimizer' not in keys:
        base += 'optimizer: {name: adam, lr: 2.0e-4}\n'
    if 'fid' not in keys:
        base += 'fid: {every: 5}\n'
    path = str(tmp_path / 'g.yaml')
    with open(path, 'w') as f:
        f.write(base + extra)
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert str(e.value).startswith(path + ': ')
    assert message in str(e.value)


# ---------------------------------------------------------------- training
def test_device_images_cover_every_image_once_per_epoch():
    images = numpy.arange(10, dtype=numpy.uint8).reshape(10, 1, 1, 1)
    numpy.random.seed(0)
    it = batches.DeviceImages(images, 4, chainer.get_device('@numpy'))
    seen = [it.next() for _ in range(5)]  # 20 images: two epochs
    assert [it.epoch, it.current_position, it.is_new_epoch] == [2, 0, True]
    values = numpy.rint((numpy.concatenate(seen).ravel() + 1) * 127.5)
    assert sorted(values[:10]) == list(range(10))
    assert sorted(values[10:]) == list(range(10))
    assert seen[0].dtype == numpy.float32 and seen[0].min() >= -1
    it.next()  # into a third epoch
    saved = chainer.serializers.DictionarySerializer()
    it.serialize(saved)
    state = numpy.random.get_state()
    expected = [it.next() for _ in range(4)]
    copy = batches.DeviceImages(images, 4, chainer.get_device('@numpy'))
    copy.serialize(chainer.serializers.NpzDeserializer(saved.target))
    numpy.random.set_state(state)
    for x in expected:
        numpy.testing.assert_array_equal(copy.next(), x)
    with pytest.raises(ValueError, match='fewer than one batch'):
        batches.DeviceImages(images, 11, chainer.get_device('@numpy'))


def _read(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def test_bn_and_mn_train_through_the_cli(tiny, tmp_path):
    for name, layers in (('bn', ()), ('mn', ('dc1', 'dc2'))):
        cfg = _gan_yaml(str(tmp_path / (name + '.yaml')), layers)
        out = str(tmp_path / name)
        args = ['--config', cfg, '--out', out, '--device', '@numpy',
                '--data', tiny['data'], '--fid-proxy', tiny['proxy']]
        r = train_cli(args, tiny['cache'])
        assert r.returncode == 0, r.stderr
        assert 'finished: best FID' in r.stderr and fid.PROXY_LABEL in \
            r.stderr
        log = _read(out, 'log')
        assert [e['iteration'] for e in log] == [2, 3, 4, 6]
        assert [e['iteration'] for e in log if 'fid' in e] == [3, 6]
        for e in log:
            assert numpy.isfinite(e['gen/loss']) and numpy.isfinite(
                e['dis/loss'])
        info = _read(out, 'run.json')
        assert info['finished'] and info['proxy'] and info['n_train'] == 40
        assert info['mn_paths'] == ['bn1', 'bn2'][:len(layers)]
        assert info['fid']['proxy_run'] == tiny['proxy']
        params = numpy.load(os.path.join(out, 'generator.npz'))
        assert ('bn1/queue_means' in params.files) == bool(layers)
        for f in ('discriminator.npz', 'fid.png',
                  'snapshot_iter_6', 'samples/iter_0000003.png',
                  'samples/iter_0000006.png'):
            assert os.path.exists(os.path.join(out, f)), f
        grid = Image.open(os.path.join(out, 'samples/iter_0000006.png'))
        assert grid.size == (256, 256)
        if not layers:
            r = train_cli(args + ['--resume'], tiny['cache'])
            assert r.returncode == 0 and 'already finished' in r.stderr
    # one set of real statistics, computed by the first run, shared
    stats = [f for f in os.listdir(tiny['cache']) if f.startswith('fid-')]
    assert len(stats) == 1
    assert fid.load_statistics(os.path.join(tiny['cache'], stats[0]))[2] == 40
    r = train_cli(args + ['--resume', '--epochs', '2'], tiny['cache'])
    assert r.returncode == 2
    assert '--epochs: applies only for classifier configurations' in \
        r.stderr
    r = train_cli(['--config', cfg, '--out', str(tmp_path / 'x'),
                   '--data', tiny['data']], tiny['cache'])
    assert r.returncode == 2 and 'the FID needs features' in r.stderr


class _Interrupt(chainer.training.Extension):
    """Stops a run as a kill would, after the snapshot at iteration 3."""

    def __call__(self, trainer):
        raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_same_result(tiny, tmp_path,
                                                    monkeypatch):
    """MN in the generator: the queues and random states must come back."""
    monkeypatch.setenv('MIXNORM_CACHE', tiny['cache'])
    cfg = config.load(_gan_yaml(str(tmp_path / 'g.yaml'), ('dc1', 'dc2')),
                      check_model=False)
    kwargs = dict(device='@numpy', data=tiny['data'], seed=2,
                  fid_proxy=tiny['proxy'], log=io.StringIO())
    whole, cut = str(tmp_path / 'whole'), str(tmp_path / 'cut')
    gan.run(cfg, whole, **kwargs)
    with pytest.raises(KeyboardInterrupt):
        gan.run(cfg, cut, extra_extensions=[(_Interrupt(), (5, 'iteration'))],
                **kwargs)
    assert not _read(cut, 'run.json')['finished']
    assert runfolder.newest_snapshot(cut).endswith('snapshot_iter_3')
    with pytest.raises(runfolder.RunError, match='already holds a run'):
        gan.run(cfg, cut, **kwargs)
    info = gan.run(cfg, cut, resume=True, **kwargs)
    assert info['finished'] and info['iterations_done'] == 6
    timeless = [[{k: v for k, v in e.items()
                  if k not in ('elapsed_time', 'fid_time')}
                 for e in _read(out, 'log')] for out in (whole, cut)]
    assert timeless[0] == timeless[1]
    assert [e['iteration'] for e in timeless[0]] == [2, 3, 4, 6]
    for name in ('generator.npz', 'discriminator.npz'):
        a = numpy.load(os.path.join(whole, name))
        b = numpy.load(os.path.join(cut, name))
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with pytest.raises(runfolder.RunError, match='different iterations'):
        gan.run(cfg, cut, resume=True, iterations=9, **kwargs)


# ------------------------------------------------------------------ report
def _hand_run(runs, stem, cfg_path, fids, every, proxy=True, **settings):
    """A finished GAN run of ``cfg_path`` in ``<runs>/<stem>``, with an FID
    every ``every`` iterations and a sample grid at each."""
    cfg = config.load(cfg_path, check_model=False)
    fid_cfg = dict(cfg['fid'], every=every, stats=None, proxy_run='/p/cnn')
    info = gan.settings(cfg, fid=fid_cfg, **settings)
    info.update(finished=True, wall_time=100.0, proxy=proxy, n_train=50000,
                features='CIFAR CNN pool4 of /p/cnn', device='@cupy:0',
                data_source='/data/cifar10-jpeg.zip', mn_paths=[])
    out = os.path.join(runs, stem)
    os.makedirs(os.path.join(out, runfolder.SAMPLES))
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(info, f)
    log = []
    for i, value in enumerate(fids):
        it = (i + 1) * every
        log.append({'iteration': it, 'fid': value, 'fid_time': 1.0,
                    'elapsed_time': 2.0 * (i + 1) + 1.0 * (i + 1)})
        shade = numpy.full((256, 256, 3), 20 * i, numpy.uint8)
        Image.fromarray(shade).save(runfolder.sample_path(out, it))
    with open(os.path.join(out, 'log'), 'w') as f:
        json.dump(log, f)
    return out


def test_steps_to_reach_interpolates_between_evaluations():
    its, fids = [10000, 20000, 30000], [80.0, 40.0, 30.0]
    assert metrics.steps_to_fid(its, fids, 50.0) == (20000, 17500.0)
    assert metrics.steps_to_fid(its, fids, 90.0) == (10000, 10000.0)
    assert metrics.steps_to_fid(its, fids, 10.0) == (None, None)


def test_report_from_hand_made_logs(tmp_path):
    runs = str(tmp_path / 'runs')  # runs/dcgan/<stem>, as dcgan.sh
    _hand_run(os.path.join(runs, 'dcgan'), 'bn',
              os.path.join(CONFIGS, 'bn.yaml'),
              [90, 60, 50, 45, 41, 40, 42, 44, 43, 45], every=10000)
    _hand_run(os.path.join(runs, 'dcgan'), 'mn',
              os.path.join(CONFIGS, 'mn.yaml'),
              [80, 50, 42, 38, 36, 35, 37, 36, 38, 39], every=10000)
    out, reduced = str(tmp_path / 'res' / 'dcgan.md'), str(tmp_path / 'r.md')
    configs = os.path.dirname(CONFIGS)
    assert figures.main(['6', '--configs', configs, '--runs', runs, '--out',
                         out, '--reduced-out', reduced]) == 0
    assert not os.path.exists(reduced)  # full runs: results/
    text = open(out).read()
    assert 'NOT a reproduction' not in text
    assert 'Proxy FID (CIFAR CNN features), not comparable with the paper' \
        in text
    rows = {line.split('|')[1].strip(): [c.strip() for c in
                                         line.strip('|').split('|')]
            for line in text.splitlines() if line.startswith('| DCGAN-')}
    assert rows['DCGAN-BN'][2:7] == ['37.56', '40.00', '60,000', '60,000',
                                     '60,000']
    # MN first at or below 40.00 at 40K (38), crossing between 30K and 40K
    assert rows['DCGAN-MN'][1:7] == ['((dc1,dc2), 3, 2)', '33.35', '35.00',
                                     '60,000', '25,000',
                                     '40,000 (interp. 35,000)']
    # 100,000 iterations in 30 s, of which 10 s of FID evaluations
    assert rows['DCGAN-BN'][7] == '5000.00'
    assert '| 100,000 | 45.00 | 39.00 |' in text
    for name in ('figure6.png', 'figure7.png'):
        assert '({})'.format(name) in text
        assert Image.open(os.path.join(tmp_path, 'res', name)).size[0] > 400

    # a shorter run is reduced: the report goes to --reduced-out
    _hand_run(str(tmp_path / 'short' / 'dcgan'), 'bn',
              os.path.join(CONFIGS, 'bn.yaml'),
              [90, 60], every=1000, iterations=2000)
    assert figures.main(['6', '--configs', configs, '--runs',
                         str(tmp_path / 'short'), '--out', out,
                         '--reduced-out', reduced]) == 0
    text = open(reduced).read()
    assert 'NOT a reproduction' in text
    assert 'done, 2,000 it, 100 s, reduced' in text
    assert '| DCGAN-MN | ((dc1,dc2), 3, 2) | 33.35 | n/a |' in text
    assert os.path.exists(str(tmp_path / 'figure7.png'))


def test_dcgan_script_tiny_mode_over_finished_runs(tmp_path):
    """scripts/dcgan.sh --tiny: the proxy CNN and both GANs are found
    finished (as the CLI records them), and the report goes to the runs
    folder with its figures."""
    runs = str(tmp_path / 'runs')
    tiny_runs = os.path.join(runs, 'dcgan', 'tiny')
    cnn_cfg = 'configs/table2/cifar10/bn2.yaml'
    info = runner.settings(config.load(os.path.join(ROOT, cnn_cfg),
                                       check_model=False), epochs=1,
                           train_subset=2560, test_subset=500,
                           config_path=cnn_cfg)
    info['finished'] = True
    os.makedirs(os.path.join(tiny_runs, 'proxy-cnn'))
    with open(os.path.join(tiny_runs, 'proxy-cnn', 'run.json'), 'w') as f:
        json.dump(info, f)
    with open(os.path.join(tiny_runs, 'proxy-cnn', 'log'), 'w') as f:
        json.dump([{'epoch': 1, 'iteration': 10,
                    'validation/main/accuracy': 0.14}], f)
    for stem in ('bn', 'mn'):
        path = os.path.join('configs', 'dcgan', 'tiny', stem + '.yaml')
        cfg = config.load(os.path.join(ROOT, path), check_model=False)
        fid_cfg = gan.fid_settings(cfg, fid_proxy=os.path.join(
            tiny_runs, 'proxy-cnn'))
        _hand_run(tiny_runs, stem, os.path.join(ROOT, path), [300, 250, 260],
                  every=10, train_subset=2048, config_path=path)
        with open(os.path.join(tiny_runs, stem, 'run.json')) as f:
            data = json.load(f)
        data['fid'] = fid_cfg
        with open(os.path.join(tiny_runs, stem, 'run.json'), 'w') as f:
            json.dump(data, f)
    e = env(str(tmp_path / 'cache'))
    e.update(MIXNORM_RUNS=runs, MIXNORM_PYTHON=sys.executable)
    r = subprocess.run(['bash', 'scripts/dcgan.sh', '--tiny'], cwd=ROOT,
                       env=e, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('already finished') == 3
    assert 'the CIFAR CNN run ' + os.path.join(tiny_runs, 'proxy-cnn') in \
        r.stderr
    text = open(os.path.join(tiny_runs, 'dcgan.md')).read()
    assert 'NOT a reproduction' in text and fid.PROXY_LABEL[1:] in text
    for name in ('figure6.png', 'figure7.png'):
        assert os.path.exists(os.path.join(tiny_runs, name))
