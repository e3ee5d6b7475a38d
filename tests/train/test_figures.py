"""Figures 1, 2, 3, 4, 8 and 9 (train/figures/) and what they read.

The figures are built from hand-made logs, models and records; the
recording extensions (train/classifier/records.py) run in real tiny
trainings, one of them interrupted and resumed; the active-component
counter of MixtureNormalization is checked against a direct count.
"""
import io
import json
import os
import re
import subprocess
import sys

import numpy
import pytest

import mixnorm
import chainer
import chainer.functions as F

from train import config, data as data_module, figures
from train.classifier import records, runner
from train.common import extensions, runfolder
from train.figures import activations
from tinydata import ROOT, env, make_folder, make_run, write_config

CONFIGS = os.path.join(ROOT, 'configs')
PNG = b'\x89PNG\r\n\x1a\n'


def _png(path):
    with open(path, 'rb') as f:
        return f.read(8) == PNG


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures saved during the test, in order."""
    from matplotlib.figure import Figure
    figs = []
    save = Figure.savefig

    def savefig(self, *args, **kwargs):
        figs.append(self)
        return save(self, *args, **kwargs)
    monkeypatch.setattr(Figure, 'savefig', savefig)
    return figs


def _suptitle(fig):
    return fig.get_suptitle()


def _integer_epoch_ticks(ax):
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <=
             ax.get_xlim()[1]]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


# ------------------------------------------------------ the counter (Fig. 9)
def _blobs(rng, n_blobs, shape=(16, 6, 3, 3)):
    """Conv-like activations whose positions fall into ``n_blobs`` groups."""
    x = rng.randn(*shape)
    x += 6 * rng.randint(0, n_blobs, size=(shape[0], 1) + shape[2:])
    return x.astype(numpy.float32)


@pytest.mark.parametrize('min_weight', [0.2, 0.0])
def test_active_counter_matches_a_direct_count(rng, min_weight):
    """Every training call is counted, as a direct count of the weights it
    pushed into the queue (lambda_k >= min_weight, above 0) would."""
    mn = mixnorm.MixtureNormalization(6, n_components=4,
                                      min_weight=min_weight)
    mn.count_active = True
    direct = numpy.zeros(5, numpy.int64)
    got = numpy.zeros(5, numpy.int64)
    for step in range(40):
        mn(_blobs(rng, 1 + step % 4))
        lam = mn.queue_weights[-1]
        direct[int(((lam >= min_weight) & (lam > 0)).sum())] += 1
        if step in (12, 39):  # read (and reset) twice
            got += mn.pop_active_counts()
    numpy.testing.assert_array_equal(got, direct)
    assert direct.sum() == 40
    if min_weight:
        assert (direct > 0).sum() >= 2  # components were discarded
    assert not mn.pop_active_counts().any()  # reset


def test_active_counter_counts_only_training_fits(rng):
    mn = mixnorm.MixtureNormalization(6, n_components=3)
    x = _blobs(rng, 2)
    mn(x)  # count_active off: nothing counted
    assert not mn.pop_active_counts().any()
    mn.count_active = True
    mn(x)
    with chainer.using_config('train', False):
        mn(x)  # test mode: the queue, no fit
    assert mn.pop_active_counts().sum() == 1
    y = F.forget(lambda v: mn(v) * 1, chainer.Variable(x))
    y.grad = numpy.ones_like(y.array)
    y.backward()  # the recomputed forward reuses the fit: counted once
    assert mn.pop_active_counts().sum() == 1


@pytest.mark.gpu
def test_active_counter_does_not_synchronise():
    """The counting steps of a training forward run inside a CUDA graph
    capture, which fails on any host-device synchronisation."""
    gpu = pytest.importorskip('test_gpu')  # skips without CuPy
    if not gpu._has_device():
        pytest.skip('no CUDA device')
    cupy = gpu.cupy
    x = cupy.asarray(gpu.blobs(32 * 64, 64, 3, numpy.float32).reshape(
        32, 8, 8, 64).transpose(0, 3, 1, 2).copy())
    mn = mixnorm.MixtureNormalization(64, n_components=3)
    mn.to_device('@cupy:0')
    mn.count_active = True
    with gpu.capture_stream():
        for _ in range(2):
            mn(x)
    cupy.cuda.Device().synchronize()
    gpu.capture(lambda: mn(x))
    counts = mn.pop_active_counts()
    assert isinstance(counts, numpy.ndarray) and counts.sum() == 3
    assert counts[3] == 3  # three blobs, three components


# ---------------------------------------------------------- the extensions
def test_fraction_iterations():
    assert records.fraction_iterations(figures.FIT_FRACTIONS, 15) == {
        3: [0.2], 6: [0.4], 9: [0.6], 12: [0.8], 15: [1.0]}
    # 0.6 * 5 is 3.0000000000000004 in floating point: still iteration 3
    assert records.fraction_iterations([0.6], 5) == {3: [0.6]}
    assert records.fraction_iterations(figures.FIT_FRACTIONS, 4) == {
        1: [0.2], 2: [0.4], 3: [0.6], 4: [0.8, 1.0]}
    assert records.fraction_iterations([0.01], 10) == {1: [0.01]}


RECORD = ('record:\n  models_at: [0.5]\n  fits_at: [0.2, 0.4, 0.6, 0.8, '
          '1.0]\n  fits_layers: [conv3]\n  active_components: true\n'
          '  active_every: 2\n')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A 10-class folder: 4 training images per class, 1 test image."""
    root = tmp_path_factory.mktemp('figtiny')
    return {'dir': make_folder(str(root / 'data'), n_train=4, n_test=1),
            'cache': str(root / 'cache')}


class _Crash(Exception):
    pass


def _train(tiny, tmp_path, name, resume=False, extra=RECORD):
    cfg = config.load(write_config(str(tmp_path / (name + '.yaml')),
                                   layers=('conv2', 'conv3'), batch_size=8,
                                   epochs=3, extra=extra), check_model=False)
    out = str(tmp_path / name)
    runner.run(cfg, out, device='@numpy', data=tiny['dir'], seed=2,
               resume=resume, train_subset=24, log=io.StringIO())
    return out


def _records(out):
    """``{file: content}`` of a run's records: arrays of the .npz files
    (whose zip headers hold the time of writing), text of the others."""
    folder = os.path.join(out, records.RECORDS)
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith('.npz'):
            with numpy.load(path) as z:
                out[name] = {k: z[k] for k in z.files}
        else:
            out[name] = open(path).read()
    return out


def _assert_same_records(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        if isinstance(a[name], dict):
            assert sorted(a[name]) == sorted(b[name]), name
            for k in a[name]:
                numpy.testing.assert_array_equal(a[name][k], b[name][k],
                                                 err_msg=name + ' ' + k)
        else:
            assert a[name] == b[name], name


def test_records_at_the_right_iterations_also_across_a_resume(
        tiny, tmp_path, monkeypatch):
    """9 updates (3 epochs of 3): fits at 2, 4, 6, 8, 9, the model at 5,
    counts every 2 updates and at epoch ends.  A run that dies in epoch 2
    (after the fits of iteration 4 were written) and resumes from the
    snapshot of iteration 3 leaves the same files with the same
    contents."""
    monkeypatch.setenv('MIXNORM_CACHE', tiny['cache'])
    whole = _records(_train(tiny, tmp_path, 'whole'))
    assert sorted(whole) == [
        'active_components.jsonl', 'fits_iter_2.npz', 'fits_iter_4.npz',
        'fits_iter_6.npz', 'fits_iter_8.npz', 'fits_iter_9.npz',
        'model_iter_5.npz']
    fits = records.read_fits(str(tmp_path / 'whole'))
    assert [(f['iteration'], f['fractions']) for f in fits] == [
        (2, [0.2]), (4, [0.4]), (6, [0.6]), (8, [0.8]), (9, [1.0])]
    gmm, eps = fits[0]['layers']['conv3/bn']
    assert gmm.means.shape == (2, 128) and eps == 2e-5
    entries = records.read_components(str(tmp_path / 'whole'))
    assert [e['iteration'] for e in entries] == [2, 3, 4, 6, 8, 9]
    steps = [sum(e['counts']['conv2/bn']) for e in entries]
    assert steps == [2, 1, 1, 2, 2, 1]  # every update, once
    assert sorted(entries[0]['counts']) == ['conv2/bn', 'conv3/bn']

    calls = []
    original = data_module.Preprocess.__call__

    def dying(self, batch, device):
        if self.augment:
            calls.append(1)
            if len(calls) == 5:  # the batch of update 5
                raise _Crash()
        return original(self, batch, device)
    monkeypatch.setattr(data_module.Preprocess, '__call__', dying)
    with pytest.raises(_Crash):
        _train(tiny, tmp_path, 'cut')
    cut = str(tmp_path / 'cut')
    assert 'fits_iter_4.npz' in os.listdir(os.path.join(cut, 'records'))
    assert [e['iteration'] for e in records.read_components(cut)] == [
        2, 3, 4]
    monkeypatch.setattr(data_module.Preprocess, '__call__', original)
    _assert_same_records(_records(_train(tiny, tmp_path, 'cut',
                                         resume=True)), whole)


def test_record_errors_name_the_file_and_the_key(tiny, tmp_path,
                                                 monkeypatch):
    monkeypatch.setenv('MIXNORM_CACHE', tiny['cache'])
    for extra, message in (
            ('record:\n  fits_at: [0.5]\n  fits_layers: [conv1]\n',
             r'record.fits_layers: conv1 \(conv1/bn\) is batch '
             r'normalization in this configuration; mixture normalization '
             r'is at: conv2/bn, conv3/bn'),
            ('record:\n  fits_at: [0.5]\n  fits_layers: [conv9]\n',
             "record.fits_layers: CifarCNN has no layer 'conv9'")):
        with pytest.raises(config.ConfigError, match=message):
            _train(tiny, tmp_path, 'bad', extra=extra)
    path = write_config(str(tmp_path / 'bn.yaml'), batch_size=8, extra=(
        'record:\n  active_components: true\n'))
    cfg = config.load(path, check_model=False)
    with pytest.raises(config.ConfigError, match='^' + re.escape(
            path + ': record.active_components: the model has no mixture '
            'normalization')):
        runner.run(cfg, str(tmp_path / 'bn'), device='@numpy',
                   data=tiny['dir'], config_path=path, log=io.StringIO())
    for extra, message in (
            ('record:\n  models_at: [1.5]\n', r'record.models_at: fractions '
             r'of the iterations must lie in \(0, 1\], got 1.5'),
            ('record:\n  fits_at: [0.5]\n', 'fits_at and fits_layers go '
             'together'),
            ('record:\n  active_every: 5\n', 'record.active_every: applies '
             'only with record.active_components: true'),
            ('record:\n  model_at: [0.5]\n', "did you mean 'models_at'")):
        path = write_config(str(tmp_path / 'c.yaml'), extra=extra)
        with pytest.raises(config.ConfigError, match=message):
            config.load(path)


def test_resume_ignores_the_record_section(tmp_path):
    """Adding ``record`` to the configuration of a run keeps it resumable
    (recording changes nothing in training)."""
    plain = config.load(write_config(str(tmp_path / 'c.yaml'),
                                     layers=('conv3',)), check_model=False)
    data, out = str(tmp_path / 'data'), str(tmp_path / 'run')
    info = runner.settings(plain, data=data)
    info['finished'] = True
    os.makedirs(out)
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(info, f)
    with_record = config.load(write_config(
        str(tmp_path / 'r.yaml'), layers=('conv3',), extra=RECORD),
        check_model=False)
    log = io.StringIO()
    assert runner.run(with_record, out, resume=True, data=data,
                      log=log)['finished']
    assert 'already finished' in log.getvalue()


def test_shipped_records_name_mixture_normalized_layers():
    """The configurations' ``record`` sections resolve in their models."""
    for stem, layers in (('table4/cifar10/mn4', ['inc2/0/2/4/bn']),
                         ('table4/cifar100/mn4', ['inc2/0/2/4/bn'])):
        cfg = config.load(os.path.join(CONFIGS, stem + '.yaml'),
                          check_model=False)
        predictor, _ = config.build_model(cfg)
        links = records.fit_links(predictor, cfg['record']['fits_layers'],
                                  '')
        assert [p for p, _ in links] == layers
        assert cfg['record']['active_components']
        assert len(extensions.mixture_links(predictor)) == 10  # Fig. 9
    for ds in ('cifar10', 'cifar100'):
        cfg = config.load(os.path.join(CONFIGS, 'table2', ds, 'bn2.yaml'),
                          check_model=False)
        assert cfg['record'] == {'models_at': [0.5]}


# --------------------------------------------------- Figures 2, 3, 4 (logs)
def _curve(top, speed, n, rng, noise):
    e = numpy.arange(1, n + 1)
    return list(top - (top - 30) * numpy.exp(-e / speed) +
                noise * rng.randn(n))


def _figure(number, runs, tmp_path, *args):
    md = str(tmp_path / 'results' / 'figure{}.md'.format(number))
    status = figures.main([str(number), '--runs', runs, '--configs',
                           CONFIGS, '--out', md, '--reduced-out',
                           str(tmp_path / 'reduced.md')] + list(args))
    return status, md


def _built(capsys, number, runs, tmp_path, *args, reduced=False):
    """The markdown of a figure that must build (with its PNG) into
    results/ or, from reduced runs, into the reduced-out file."""
    status, md = _figure(number, runs, tmp_path, *args)
    assert status == 0, capsys.readouterr().err
    if reduced:
        md = str(tmp_path / 'reduced.md')
    png = md[:-3] + '.png'
    assert _png(png)
    text = open(md).read()
    assert '![Figure {}]({})'.format(number, os.path.basename(png)) in text
    return text


def test_figure2_from_hand_made_logs(tmp_path, rng, capsys):
    runs = str(tmp_path / 'runs')
    for i in range(1, 5):
        for row in ('bn', 'mn'):
            make_run(runs, CONFIGS, 'table2/cifar10/{}{}'.format(row, i),
                     _curve(80 + (row == 'mn'), 5, 12, rng, 1.0), epochs=12)
    # a run whose best epoch is known: 100 - 91 = 9% at epoch 3
    os.remove(os.path.join(runs, 'table2/cifar10/mn2/log'))
    with open(os.path.join(runs, 'table2/cifar10/mn2/log'), 'w') as f:
        json.dump([{'epoch': e + 1, 'iteration': 196 * (e + 1),
                    'validation/main/accuracy': a}
                   for e, a in enumerate([0.5, 0.8, 0.91, 0.9])], f)
    text = _built(capsys, 2, runs, tmp_path, '--dataset', 'cifar10')
    assert 'NOT a reproduction' not in text
    assert 'Only the CIFAR-10 panels' in text
    cells = [c.strip() for c in next(
        line for line in text.splitlines()
        if line.startswith('| CIFAR-10, (lr, weight decay) = (0.01, 2e-5) '
                           '| MN-2')).strip('|').split('|')]
    assert cells[2:5] == ['9.00', '3', '10.00']
    assert cells[5] == '{:.2f}'.format(numpy.std([50, 20, 9, 10]))
    assert text.count('| CIFAR-10, ') == 8


def test_figure_stops_naming_the_runs_it_needs(tmp_path, rng, capsys):
    runs = str(tmp_path / 'runs')
    make_run(runs, CONFIGS, 'table2/cifar10/bn2', [50.0, 60.0], epochs=2)
    status, md = _figure(3, runs, tmp_path, '--dataset', 'cifar10')
    err = capsys.readouterr().err
    assert status == 2 and not os.path.exists(md)
    assert 'Figure 3 needs runs that are missing' in err
    for stem in ('table2/cifar10/mn2', 'figure3/cifar10/mn5',
                 'figure3/cifar10/mn8'):
        assert '{}  (configuration {})'.format(
            os.path.join(runs, stem),
            os.path.join(CONFIGS, stem + '.yaml')) in err
    assert os.path.join(runs, 'table2/cifar10/bn2') + ' ' not in err
    assert 'bash scripts/figures.sh 3' in err


def test_figures_3_and_4_label_reduced_runs(tmp_path, rng, capsys, drawn):
    runs = str(tmp_path / 'runs')
    for stem in ('table2/cifar10/bn2', 'table2/cifar10/mn2',
                 'figure3/cifar10/mn5', 'figure3/cifar10/mn6',
                 'figure3/cifar10/mn7', 'figure3/cifar10/mn8'):
        make_run(runs, CONFIGS, stem, _curve(85, 4, 6, rng, 1.0), epochs=6,
                 train_subset=2560)
    text = _built(capsys, 3, runs, tmp_path, '--dataset', 'cifar10',
                  reduced=True)
    assert 'NOT a reproduction' in text
    assert 'configs/figure3/cifar10/' in text
    assert '| CIFAR-10: EM iterations | MN-6 (conv3, 3, 8) |' in text
    assert '| CIFAR-10: MN layers | MN-8 ((conv2,conv3), 3, 2) |' in text
    fig, = drawn
    assert _suptitle(fig) == ('Figure 3: CIFAR CNN test error: EM '
                              'iterations (left) and MN layers (right) '
                              '(reduced: NOT a reproduction)')
    for ax in fig.axes:  # a legend on each panel, whole epochs
        assert ax.get_legend() is not None and _integer_epoch_ticks(ax)
        assert ax.get_ylabel() == 'test error (%)'

    for stem in ('bn1', 'mn1', 'mn2', 'mn3', 'mn4'):
        make_run(runs, CONFIGS, 'table4/cifar10/' + stem,
                 _curve(90, 8, 10, rng, 0.5), epochs=10)
    text = _built(capsys, 4, runs, tmp_path, '--dataset', 'cifar10')
    assert text.count('| (a) CIFAR-10, small learning rate |') == 5
    assert _suptitle(drawn[-1]) == 'Figure 4: Inception-V3 test error curves'
    assert '(b)' not in text
    status, _ = _figure(4, runs, tmp_path)  # CIFAR-100 panels: no runs
    assert status == 2
    err = capsys.readouterr().err
    assert os.path.join(runs, 'table6/mn_drop3') in err
    assert os.path.join(runs, 'table4/cifar10/') not in err


def test_list_configs(capsys):
    assert figures.main(['3', '--dataset', 'cifar10', '--list-configs']) == 0
    assert capsys.readouterr().out.split() == [
        'configs/table2/cifar10/bn2.yaml', 'configs/table2/cifar10/mn2.yaml',
        'configs/figure3/cifar10/mn5.yaml',
        'configs/figure3/cifar10/mn6.yaml',
        'configs/figure3/cifar10/mn7.yaml',
        'configs/figure3/cifar10/mn8.yaml']
    for n, dataset, first in ((1, 'all', 'configs/table2/cifar100/bn2.yaml'),
                              (8, 'cifar10', 'configs/table4/cifar10/'
                               'mn4.yaml'),
                              (4, 'cifar100', 'configs/table4/cifar100/'
                               'bn1.yaml')):
        assert figures.main([str(n), '--dataset', dataset,
                             '--list-configs']) == 0
        out = capsys.readouterr().out.split()
        assert out[0] == first
        assert all(os.path.exists(os.path.join(ROOT, p)) for p in out)


# ------------------------------------------------ Figure 1 (model, batch)
def _figure1_run(tmp_path, data):
    """A hand-made CIFAR CNN run: run.json, a log and a model saved at
    iteration 3 of 6 (a freshly initialised model: Figure 1 reads any)."""
    cfg = config.load(write_config(
        str(tmp_path / 'c.yaml'), batch_size=8, epochs=2,
        extra='record:\n  models_at: [0.5]\n'), check_model=False)
    out = str(tmp_path / 'bn2')
    os.makedirs(os.path.join(out, records.RECORDS))
    info = runner.settings(cfg, data=data)
    info.update(finished=True, final_iteration=6, iterations=6,
                n_train=20, n_test=10, data_source=data, device='@numpy')
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(info, f)
    with open(os.path.join(out, 'log'), 'w') as f:
        json.dump([{'epoch': 1, 'iteration': 3,
                    'validation/main/accuracy': 0.1}], f)
    predictor, _ = config.build_model(cfg)
    path = os.path.join(out, records.RECORDS, records.MODEL_FILE.format(3))
    chainer.serializers.save_npz(path, predictor)
    return out, cfg, predictor


def test_figure1_captures_conv2_output_and_fits(tmp_path, monkeypatch,
                                                capsys, drawn):
    monkeypatch.setenv('MIXNORM_CACHE', str(tmp_path / 'cache'))
    data = make_folder(str(tmp_path / 'data'), n_train=2, n_test=1)
    out, cfg, predictor = _figure1_run(tmp_path, data)
    run = runfolder.Run(out)
    x, path, it = figures.conv_activations(run, 'conv2', seed=4)
    assert (path, it) == (os.path.join(out, 'records', 'model_iter_3.npz'),
                          3)
    batch = activations._training_batch(cfg, run.info, 4)
    assert batch.shape == (8, 3, 32, 32)
    with chainer.using_config('train', True):
        h = F.max_pooling_2d(predictor.conv1(batch), 3, stride=2)
        expect = predictor.conv2.conv(h).array  # before conv2's BN
    numpy.testing.assert_allclose(x, expect, rtol=1e-5, atol=1e-5)

    fits = figures.figure1_fits(x, [2, 3], 2, 2e-5, 0)
    mean, var, bn_y = fits['bn']
    numpy.testing.assert_allclose(bn_y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    numpy.testing.assert_allclose(bn_y.var(axis=(0, 2, 3)), 1, atol=1e-3)
    for k in (2, 3):
        gmm, y = fits['mn'][k]
        assert gmm.means.shape == (k, 128) and y.shape == x.shape

    # a trainer snapshot instead (the predictor under the updater's path)
    snap = os.path.join(out, 'snapshot_iter_6')
    with numpy.load(path) as z:
        numpy.savez(snap, **{'updater/model:main/predictor/' + k: z[k]
                             for k in z.files})
    os.rename(snap + '.npz', snap)
    x2, _, it2 = figures.conv_activations(run, 'conv2', snapshot=snap,
                                          seed=4)
    assert it2 == 6
    numpy.testing.assert_allclose(x2, x)

    text = _built(capsys, 1, '', tmp_path, '--run', out, '--channels', '6',
                  '--columns', '3')
    assert 'iteration 3 of 6, 50% of training' in text
    assert 'shows a CIFAR-10 run instead' in text
    assert '| mean log-likelihood per sample (higher: better fit) |' in text
    assert '6 random channels shown' in text
    assert _suptitle(drawn[-1]) == ('Figure 1: activation densities of '
                                    'conv2, BN against MN:2 and MN:3')


def test_figure1_without_a_saved_model_says_what_it_needs(tmp_path, capsys):
    out = str(tmp_path / 'run')
    make_run(str(tmp_path), CONFIGS, 'table2/cifar10/bn2', [50.0], epochs=1)
    status, _ = _figure(1, str(tmp_path), tmp_path, '--dataset', 'cifar10')
    err = capsys.readouterr().err
    assert status == 2
    assert 'no model saved during training' in err
    assert 'models_at: [0.5]' in err and '--snapshot' in err
    status, _ = _figure(1, str(tmp_path), tmp_path, '--run', out)
    assert status == 2 and 'no run.json' in capsys.readouterr().err


# ------------------------------------------------- Figure 8 (saved fits)
def _write_fits(run, it, final, fractions, weights, rng, size=200):
    folder = os.path.join(run, records.RECORDS)
    os.makedirs(folder, exist_ok=True)
    k = len(weights)
    arrays = {'iteration': it, 'final_iteration': final,
              'fractions': numpy.asarray(fractions)}
    path = 'inc2/0/2/4/bn'
    arrays.update({path + '/weights': numpy.asarray(weights, numpy.float32),
                   path + '/means': rng.randn(k, size).astype('f') * 5,
                   path + '/variances': rng.rand(k, size).astype('f') + .5,
                   path + '/eps': 2e-5})
    numpy.savez(os.path.join(folder, records.FITS_FILE.format(it)),
                **arrays)


def test_figure8_from_hand_made_fits(tmp_path, rng, capsys, drawn):
    runs = str(tmp_path / 'runs')
    run = make_run(runs, CONFIGS, 'table4/cifar10/mn4', [50.0, 60.0],
                   epochs=2, train_subset=256, n_train=256)
    status, _ = _figure(8, runs, tmp_path, '--dataset', 'cifar10')
    assert status == 2
    assert 'no fits of inc2/0/2/4/bn saved' in capsys.readouterr().err
    _write_fits(run, 20, 100, [0.2], [0.2, 0.25, 0.15, 0.2, 0.2], rng)
    _write_fits(run, 40, 100, [0.4], [0.1, 0.6, 0.1, 0.0, 0.2], rng)
    text = _built(capsys, 8, runs, tmp_path, '--dataset', 'cifar10',
                  '--channels', '50', reduced=True)
    assert _suptitle(drawn[-1]).splitlines() == [
        'Figure 8: evolution of the mixture components of one MN layer '
        '(reduced: NOT a reproduction)', 'inc2/0/2/4/bn: 50 channels']
    assert '| 20% | 20 of 100 | 0.250 0.200 0.200 0.200 0.150 | 5 |' in text
    assert '| 40% | 40 of 100 | 0.600 0.200 0.100 0.100 0.000 | 4 |' in text
    assert 'Not saved yet: 60%, 80%, 100% of training' in text
    assert '50 random channels of 200' in text


# ---------------------------------------- Figure 9 (component counts)
def _write_components(run, entries):
    os.makedirs(os.path.join(run, records.RECORDS), exist_ok=True)
    with open(records.ActiveComponents.path(run), 'w') as f:
        for e in entries:
            f.write(json.dumps(e) + '\n')


def test_smoothing_pools_the_steps_of_the_window():
    entries = [{'iteration': i, 'counts': {'a': h}} for i, h in enumerate(
        [[0, 2, 0], [0, 0, 2], [0, 1, 3], [0, 0, 4]])]
    iters, mean, std = figures.smooth_counts(entries, 'a', 3)
    steps = [[1, 1], [2, 2], [1, 2, 2, 2], [2, 2, 2, 2]]  # per entry
    pooled = [sum(steps[max(0, i - 1):i + 2], []) for i in range(4)]
    assert pooled[1] == [1, 1, 2, 2, 1, 2, 2, 2]
    numpy.testing.assert_allclose(mean, [numpy.mean(p) for p in pooled])
    numpy.testing.assert_allclose(std, [numpy.std(p) for p in pooled])
    numpy.testing.assert_array_equal(iters, [0, 1, 2, 3])


def test_figure9_from_hand_made_counts(tmp_path, rng, capsys, drawn):
    runs = str(tmp_path / 'runs')
    run = make_run(runs, CONFIGS, 'table4/cifar10/mn4', [50.0, 60.0],
                   epochs=2)
    status, _ = _figure(9, runs, tmp_path, '--dataset', 'cifar10')
    assert status == 2
    assert 'no active-component counts' in capsys.readouterr().err
    cfg = config.load(os.path.join(CONFIGS, 'table4/cifar10/mn4.yaml'),
                      check_model=False)
    paths = [p for p, _ in extensions.mixture_links(
        config.build_model(cfg)[0])]
    entries = []
    for i in range(40):
        counts = {}
        for j, p in enumerate(paths):
            # module 0 loses components as training goes on
            full = 100 if j else 100 - 2 * i
            counts[p] = [0, 0, 0, 0, 100 - full, full]
        entries.append({'iteration': 100 * (i + 1), 'epoch': i / 4.0,
                        'counts': counts})
    _write_components(run, entries)
    text = _built(capsys, 9, runs, tmp_path, '--dataset', 'cifar10')
    assert _suptitle(drawn[-1]) == ('Figure 9: number of active mixture '
                                    'components of the MN modules')
    first = next(line for line in text.splitlines()
                 if '| {} |'.format(paths[0]) in line)
    # first 4 entries: 100, 98, 96, 94 of 100 steps with 5, the rest 4
    assert '| 4000 | {:.2f} | {:.2f} | {:.1f}% | 2 |'.format(
        5 - 12 / 400.0, 5 - (72 + 74 + 76 + 78) / 400.0,
        100 * (1 - 1560 / 4000.0)) in first
    assert text.count('| 4000 | 5.00 | 5.00 | 100.0% | 2 |') == 9


# ------------------------------------------------------ scripts/figures.sh
def test_data_check_names_the_dataset_to_pass(tmp_path):
    data = make_folder(str(tmp_path / 'data'), n_train=1, n_test=1)
    assert figures.check_data(2, ('cifar10',), CONFIGS, data) == []
    with pytest.raises(figures.FigureError) as e:
        figures.check_data(2, figures.DATASET_ORDER, CONFIGS, data)
    assert str(e.value).splitlines() == [
        'Figure 2 needs CIFAR-100 runs ({}/table2/cifar100/bn1.yaml and 7 '
        'more), and the data cannot give them: {} has 10 classes and '
        'CIFAR-100 has 100.'.format(CONFIGS, data),
        'Pass --dataset cifar10 to make the figures from CIFAR-10 runs only, '
        'or --data with CIFAR-100 images.']


@pytest.mark.parametrize('how', ['--data', 'MIXNORM_DATA'])
def test_figures_script_checks_the_data_before_training(tmp_path, how):
    """Only CIFAR-10 data and the CIFAR-100 panels asked for: it stops at
    once, naming --dataset cifar10, and trains nothing."""
    runs = str(tmp_path / 'runs')
    data = make_folder(str(tmp_path / 'data'), n_train=1, n_test=1)
    e = env(os.path.join(str(tmp_path), 'cache'))
    e.update(MIXNORM_RUNS=runs, MIXNORM_PYTHON=sys.executable)
    args = ['bash', 'scripts/figures.sh', '--tiny', '2']
    if how == '--data':
        args += ['--data', data]
    else:
        e['MIXNORM_DATA'] = data
    r = subprocess.run(args, cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert 'Pass --dataset cifar10' in r.stderr
    assert 'figures.sh: stopped before training anything' in r.stderr
    assert 'run 1 of' not in r.stderr and 'Traceback' not in r.stderr
    assert not os.path.exists(runs)


def test_figures_script_tiny_mode_skips_finished_runs(tmp_path):
    """--tiny trains with the reduced budget (here the run is finished
    already) and writes the figure into the runs folder."""
    runs = str(tmp_path / 'runs')
    path = 'configs/table4/cifar10/mn4.yaml'
    cfg = config.load(os.path.join(ROOT, path), check_model=False)
    info = runner.settings(cfg, epochs=2, train_subset=256, test_subset=64,
                           config_path=path)
    info.update(finished=True, wall_time=1.0, data_source='CIFAR-10',
                device='@numpy', n_train=256, n_test=64)
    out = os.path.join(runs, 'table4/cifar10/mn4')
    os.makedirs(out)
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(info, f)
    with open(os.path.join(out, 'log'), 'w') as f:
        json.dump([{'epoch': 1, 'iteration': 2,
                    'validation/main/accuracy': 0.2}], f)
    _write_components(out, [{'iteration': 2, 'epoch': 1.0, 'counts': {
        'inc2/0/0/0/bn': [0, 0, 0, 1, 1, 0]}}])
    e = env(os.path.join(runs, 'cache'))
    e.update(MIXNORM_RUNS=runs, MIXNORM_PYTHON=sys.executable)
    r = subprocess.run(['bash', 'scripts/figures.sh', '--tiny', '--dataset',
                        'cifar10', '9'], cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('already finished') == 1
    assert ('figures.sh: run 1 of 1: configs/table4/cifar10/mn4.yaml'
            in r.stderr)
    text = open(os.path.join(runs, 'figures', 'figure9.md')).read()
    assert 'NOT a reproduction' in text
    assert '| inc2/0/0/0/bn | 2 | 3.50 | 3.50 | 0.0% | 1 |' in text
    for args in (['5'], ['--dataset', 'svhn', '9']):
        r = subprocess.run(['bash', 'scripts/figures.sh'] + args, cwd=ROOT,
                           env=e, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and 'Traceback' not in r.stderr
