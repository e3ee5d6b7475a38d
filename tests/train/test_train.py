"""Training through the real CLI on tiny data; resume; optimizers."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

import mixnorm
import chainer

import models
from train import cli, config
from train.classifier import runner
from train.classifier.evaluate import TEST_MODE, TRAIN_MODE
from train.common import optim, runfolder
from tinydata import ROOT, env, make_folder, make_zip, train_cli, \
    write_config


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A 10-class folder (4 train / 1 test image per class) and its zip."""
    root = tmp_path_factory.mktemp('tiny')
    folder = make_folder(str(root / 'data'), n_train=4, n_test=1)
    return {'dir': folder, 'zip': make_zip(folder, str(root / 'data.zip')),
            'cache': str(root / 'cache')}


def _log(out):
    with open(os.path.join(out, 'log')) as f:
        return json.load(f)


def _run_json(out):
    with open(os.path.join(out, 'run.json')) as f:
        return json.load(f)


def test_bn_and_mn_train_through_the_cli(tiny, tmp_path):
    """BN on the folder, MN (conv3) on the zip: logs, plots, parameters."""
    for name, layers, source in (('bn', (), 'dir'), ('mn', ('conv3',),
                                                     'zip')):
        cfg = write_config(str(tmp_path / (name + '.yaml')), layers=layers,
                           batch_size=8, epochs=2)
        out = str(tmp_path / name)
        r = train_cli(['--config', cfg, '--out', out, '--device', '@numpy',
                       '--data', tiny[source], '--seed', '1'], tiny['cache'])
        assert r.returncode == 0, r.stderr
        log = _log(out)
        assert [e['epoch'] for e in log] == [1, 2]
        assert [e['iteration'] for e in log] == [5, 10]  # 40 images / 8
        for e in log:
            assert 0 <= e['validation/main/accuracy'] <= 1
            assert e['validation/main/error'] == pytest.approx(
                1 - e['validation/main/accuracy'])
            assert numpy.isfinite(e['main/loss'])
        info = _run_json(out)
        assert info['finished'] and info['iterations'] == 10
        assert info['mn_paths'] == ['{}/bn'.format(x) for x in layers]
        params = numpy.load(os.path.join(out, 'model.npz'))
        assert ('conv3/bn/queue_means' in params.files) == bool(layers)
        assert os.path.exists(os.path.join(out, 'error.png'))
        assert [f for f in os.listdir(out) if f.startswith('snapshot')] == \
            ['snapshot_iter_10']
        assert 'finished: max test accuracy' in r.stderr


@pytest.mark.parametrize('layers', [('conv2',), ()])
def test_evaluate_reproduces_the_log_and_compares_rules(tiny, tmp_path,
                                                        layers):
    """train.classifier.evaluate: the default rule (an MN run) or test mode
    (a BN run) gives the logged test accuracy."""
    cfg = write_config(str(tmp_path / 'mn.yaml'), layers=layers,
                       batch_size=8, epochs=1)
    out = str(tmp_path / 'mn')
    r = train_cli(['--config', cfg, '--out', out, '--device', '@numpy',
                   '--data', tiny['dir']], tiny['cache'])
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, '-m', 'train.classifier.evaluate', out, '--device',
         '@numpy'],
        cwd=ROOT, env=env(tiny['cache']), capture_output=True, text=True,
        timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {line.split('|')[1].strip(): float(line.split('|')[3])
            for line in r.stdout.splitlines()
            if line.startswith('| ') and line.split('|')[1].strip() not in
            ('inference', '---')}
    rules = list(mixnorm.links.INFERENCE_RULES) if layers else [TEST_MODE]
    assert sorted(rows) == sorted(rules + [TRAIN_MODE])
    logged = 100 * _log(out)[-1]['validation/main/accuracy']
    assert rows[rules[0]] == pytest.approx(logged, abs=0.01)
    assert 'training mode' in r.stdout
    assert os.path.exists(os.path.join(out, 'inference.md'))


def test_existing_run_needs_resume_and_finished_run_is_skipped(tiny,
                                                               tmp_path):
    cfg = write_config(str(tmp_path / 'c.yaml'), batch_size=20, epochs=1)
    out = str(tmp_path / 'run')
    args = ['--config', cfg, '--out', out, '--data', tiny['dir']]
    assert train_cli(args, tiny['cache']).returncode == 0
    r = train_cli(args, tiny['cache'])
    assert r.returncode == 2 and 'already holds a run' in r.stderr
    r = train_cli(args + ['--resume'], tiny['cache'])
    assert r.returncode == 0 and 'already finished' in r.stderr
    r = train_cli(args + ['--resume', '--epochs', '3'], tiny['cache'])
    assert r.returncode == 2 and 'different epochs' in r.stderr


def test_cli_reports_config_typos(tiny, tmp_path):
    cfg = write_config(str(tmp_path / 'typo.yaml'))
    with open(cfg) as f:
        text = f.read().replace('batch_size', 'batchsize')
    with open(cfg, 'w') as f:
        f.write(text)
    r = train_cli(['--config', cfg, '--data', tiny['dir'], '--out',
                   str(tmp_path / 'x')], tiny['cache'])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "mixnorm-train: error: {}: top level: unknown key 'batchsize'; did "
        "you mean 'batch_size'? (known: name, dataset, model, model_args, "
        "norm, epochs, batch_size, optimizer, schedule, paper, record)"
        .format(cfg)]


def test_cli_reports_a_corrupt_image(tiny, tmp_path):
    data = make_folder(str(tmp_path / 'data'), n_train=1, n_test=1)
    bad = os.path.join(data, 'test', 'c7', '0000.png')
    with open(bad, 'wb') as f:
        f.write(b'\x89PNG broken')
    cfg = write_config(str(tmp_path / 'c.yaml'))
    r = train_cli(['--config', cfg, '--data', data, '--out',
                   str(tmp_path / 'x')], str(tmp_path / 'cache'))
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert 'cannot decode image file {}'.format(bad) in r.stderr


def test_killed_run_resumes_to_the_same_result(tiny, tmp_path):
    """SIGKILL mid-run, resume: same iterations, log and final parameters.

    Uses MN so that the mixture queues (persistent values) and the random
    states that seed the GMM fits must be restored as well.
    """
    cfg = write_config(str(tmp_path / 'mn.yaml'), layers=('conv3',),
                       batch_size=8, epochs=5)
    args = ['--config', cfg, '--data', tiny['dir'], '--device', '@numpy',
            '--seed', '3', '--resume']
    whole = str(tmp_path / 'whole')
    r = train_cli(args + ['--out', whole], tiny['cache'])
    assert r.returncode == 0, r.stderr

    cut = str(tmp_path / 'cut')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'train'] + args + ['--out', cut], cwd=ROOT,
        env=env(tiny['cache']), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(cut, 'snapshot_iter_10')):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # somewhere in epoch 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not _run_json(cut)['finished']

    r = train_cli(args + ['--out', cut], tiny['cache'])
    assert r.returncode == 0, r.stderr
    assert 'resuming' in r.stderr
    a, b = _log(whole), _log(cut)
    assert [e['iteration'] for e in b] == [5, 10, 15, 20, 25]
    for key in ('iteration', 'epoch', 'main/loss', 'validation/main/loss',
                'validation/main/accuracy', 'lr'):
        assert [e[key] for e in a] == [e[key] for e in b], key
    pa = numpy.load(os.path.join(whole, 'model.npz'))
    pb = numpy.load(os.path.join(cut, 'model.npz'))
    assert sorted(pa.files) == sorted(pb.files)
    assert 'conv3/bn/queue_means' in pa.files
    for k in pa.files:
        numpy.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


# ------------------------------------------ in-process runs: build, checks
def _run_in_process(tiny, tmp_path, monkeypatch):
    """runner.run, 2 epochs of 2 updates, MN at conv2 and conv3."""
    monkeypatch.setenv('MIXNORM_CACHE', tiny['cache'])
    cfg = config.load(write_config(str(tmp_path / 'c.yaml'),
                                   layers=('conv2', 'conv3'), batch_size=20,
                                   epochs=2), check_model=False)
    out = str(tmp_path / 'run')
    runner.run(cfg, out, device='@numpy', data=tiny['dir'],
               log=io.StringIO())
    return out


def test_every_mn_link_is_checked_at_every_epoch_end(tiny, tmp_path,
                                                     monkeypatch):
    checked = []
    monkeypatch.setattr(mixnorm.MixtureNormalization, 'check_finite_now',
                        lambda link: checked.append(link))
    _run_in_process(tiny, tmp_path, monkeypatch)
    assert len(checked) == 2 * 2  # epochs x MN links, not per update
    assert len(set(map(id, checked))) == 2


def test_a_nonfinite_flag_at_an_epoch_end_stops_the_run(tiny, tmp_path,
                                                        monkeypatch):
    """The link's ValueError ends the run before the epoch is evaluated,
    logged or snapshotted."""
    def flagged(link):
        raise ValueError('MixtureNormalization {!r}: the input of an earlier '
                         'training step contained NaN or Inf'.format(
                             link.name))
    monkeypatch.setattr(mixnorm.MixtureNormalization, 'check_finite_now',
                        flagged)
    with pytest.raises(ValueError, match='contained NaN or Inf'):
        _run_in_process(tiny, tmp_path, monkeypatch)
    out = str(tmp_path / 'run')
    assert sorted(os.listdir(out)) == ['run.json']
    assert not _run_json(out)['finished']


def test_a_cli_run_builds_its_model_once(tiny, tmp_path, monkeypatch):
    built = []
    build = models.build

    def counted(*args, **kwargs):
        built.append(args[0])
        return build(*args, **kwargs)
    monkeypatch.setattr(models, 'build', counted)
    monkeypatch.setenv('MIXNORM_CACHE', tiny['cache'])
    cfg = write_config(str(tmp_path / 'c.yaml'), layers=('conv3',),
                       batch_size=20, epochs=1)
    assert cli.main(['--config', cfg, '--out', str(tmp_path / 'run'),
                     '--device', '@numpy', '--data', tiny['dir']]) == 0
    assert built == ['cifar_cnn']


def test_cli_reports_a_bad_layer_before_reading_data(tmp_path, capsys):
    cfg = write_config(str(tmp_path / 'c.yaml'), layers=('conv5',))
    assert cli.main(['--config', cfg, '--out', str(tmp_path / 'run'),
                     '--device', '@numpy', '--data',
                     str(tmp_path / 'no-such-data')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('mixnorm-train: error: {}: norm.layers: CifarCNN '
                          "has no layer 'conv5'".format(cfg)), err


def test_resume_reads_a_run_recorded_with_n_iter(tmp_path):
    """run.json of a run started before norm.n_iter became em_iter."""
    cfg = config.load(write_config(str(tmp_path / 'c.yaml'),
                                   layers=('conv3',)), check_model=False)
    data, out = str(tmp_path / 'data'), str(tmp_path / 'run')
    info = runner.settings(cfg, data=data)
    norm = info['config']['norm']
    norm['n_iter'] = norm.pop('em_iter')
    info['finished'] = True
    os.makedirs(out)
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(info, f)
    log = io.StringIO()
    assert runner.run(cfg, out, resume=True, data=data, log=log)['finished']
    assert 'already finished' in log.getvalue()
    cfg['norm']['em_iter'] = 4  # a real difference still is one
    with pytest.raises(runfolder.RunError, match='different config'):
        runner.run(cfg, out, resume=True, data=data, log=log)


# ------------------------------------------------------ optimizers/schedules
def test_exponential_schedule():
    cfg = {'name': 'exponential', 'rate': 0.93, 'every_epochs': 2}
    got = [optim.lr_factor(cfg, e, 100) for e in range(6)]
    assert got == pytest.approx([1, 1, 0.93, 0.93, 0.93 ** 2, 0.93 ** 2])
    cfg['every_epochs'] = 4
    assert optim.lr_factor(cfg, 7, 200) == pytest.approx(0.93)
    assert optim.lr_factor(cfg, 8, 200) == pytest.approx(0.93 ** 2)


def test_step_schedules():
    resnet = {'name': 'step', 'drops': [0.5, 0.75], 'factor': 0.1}
    got = [optim.lr_factor(resnet, e, 150) for e in (0, 74, 75, 112, 113)]
    assert got == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    wrn = {'name': 'step', 'drops': [0.3, 0.6, 0.8], 'factor': 0.2}
    got = [optim.lr_factor(wrn, e, 150) for e in (44, 45, 90, 120)]
    assert got == pytest.approx([1, 0.2, 0.04, 0.008])
    assert optim.lr_factor({'name': 'none'}, 99, 100) == 1.0


@pytest.mark.parametrize('cfg, cls, expect', [
    ({'name': 'rmsprop', 'lr': 0.01, 'alpha': 0.9, 'eps': 1e-6},
     chainer.optimizers.RMSprop, {'lr': 0.01, 'alpha': 0.9, 'eps': 1e-6}),
    ({'name': 'nesterov', 'lr': 0.14},
     chainer.optimizers.NesterovAG, {'lr': 0.14, 'momentum': 0.9}),
    ({'name': 'adam', 'lr': 2e-4, 'betas': [0.0, 0.9]},
     chainer.optimizers.Adam, {'alpha': 2e-4, 'beta1': 0.0, 'beta2': 0.9}),
])
def test_make_optimizer(cfg, cls, expect):
    opt, attr = optim.make_optimizer(cfg)
    assert type(opt) is cls
    assert attr == ('alpha' if cfg['name'] == 'adam' else 'lr')
    for k, v in expect.items():
        assert getattr(opt, k) == pytest.approx(v)


@pytest.mark.parametrize('rate', [0.0, 5e-4])
def test_weight_decay_hook(rate):
    link = chainer.links.Linear(3, 2, initialW=1.0, nobias=True)
    opt, _ = optim.make_optimizer({'name': 'nesterov', 'lr': 0.1})
    opt.setup(link)
    optim.add_hooks(opt, {'weight_decay': rate})
    link.cleargrads()
    link.W.grad = numpy.zeros_like(link.W.array)
    opt.update()  # zero loss gradient: only the decay term moves W
    # First Nesterov step from zero velocity: lr * (1 + m + m^2) * grad.
    numpy.testing.assert_allclose(link.W.array, 1 - 0.1 * 2.71 * rate,
                                  rtol=1e-6)


def test_schedule_extension_sets_adams_alpha():
    link = chainer.links.Linear(2, 2)
    opt, attr = optim.make_optimizer({'name': 'adam', 'lr': 0.1})
    opt.setup(link)

    class Updater(object):
        epoch = 4

        def get_optimizer(self, name):
            return opt

    class Trainer(object):
        updater = Updater()

    ext = optim.LRSchedule({'name': 'exponential', 'rate': 0.5,
                            'every_epochs': 2}, 0.1, attr, 10)
    ext.initialize(Trainer())
    assert opt.alpha == pytest.approx(0.025)
