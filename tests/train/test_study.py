"""Studies (train.study, scripts/study.sh): study files and their errors,
runs trained on tiny data, the budget, resuming, and the report."""
import io
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest
from PIL import Image

from train import metrics, study
from train.classifier import runner
from train.common import runfolder
from tinydata import ROOT, env, make_folder, table_row, write_config

STUDIES = os.path.join(ROOT, 'studies')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A 10-class folder (4 train / 1 test image per class) and two tiny
    CIFAR CNN configurations: BN everywhere, and MN at conv3."""
    root = tmp_path_factory.mktemp('tiny')
    return {'dir': make_folder(str(root / 'data'), n_train=4, n_test=1),
            'cache': str(root / 'cache'),
            'bn': write_config(str(root / 'bn.yaml'), batch_size=8),
            'mn': write_config(str(root / 'mn.yaml'), layers=('conv3',),
                               batch_size=8)}


def _study(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def _section(text, title):
    """The markdown of ``text`` under the heading ``## title``."""
    return text.split('## ' + title + '\n')[1].split('\n## ')[0]


def _log(out):
    return metrics.load_log(out)


# ------------------------------------------------------------ study files
def test_a_study_expands_into_runs_in_rounds_of_seeds(tiny, tmp_path):
    path = _study(tmp_path / 's.yaml', '''
name: pair
baseline: bn
epochs: 3
seeds: [5, 1]
variants:
  - {name: bn, config: %s}
  - {name: mn, config: %s, seeds: [1], epochs: 2,
     overrides: {norm.em_iter: 4, norm.n_components: 3}}
  - {name: mn-default-k, config: %s, overrides: {norm.n_components: null}}
''' % (tiny['bn'], tiny['mn'], tiny['mn']))
    s = study.load_study(path)
    # rounds: every variant's first seed, then every variant's second
    assert [(r.id, r.seed, r.epochs) for r in s.runs] == [
        ('bn-s5', 5, 3), ('mn-s1', 1, 2), ('mn-default-k-s5', 5, 3),
        ('bn-s1', 1, 3), ('mn-default-k-s1', 1, 3)]
    mn = s.variant('mn')
    assert mn.cfg['norm']['em_iter'] == 4 and mn.cfg['norm']['n_components'] \
        == 3
    assert mn.data['norm'] == {'layers': ['conv3'], 'n_components': 3,
                               'em_iter': 4}
    # null removes the key: the schema's default (K = 3) applies
    default_k = s.variant('mn-default-k')
    assert 'n_components' not in default_k.data['norm']
    assert default_k.cfg['norm']['n_components'] == 3
    assert s.variant('bn').baseline == 'bn' and s.baseline == 'bn'


def test_apply_overrides_creates_sections_and_leaves_the_input():
    data = {'norm': {'layers': []}, 'epochs': 2}
    out = study.apply_overrides(data, {'schedule.name': 'none',
                                       'norm.layers': ['conv3']})
    assert out == {'norm': {'layers': ['conv3']}, 'epochs': 2,
                   'schedule': {'name': 'none'}}
    assert data == {'norm': {'layers': []}, 'epochs': 2}


@pytest.mark.parametrize('entry, where, message', [
    ('overrides: {norm.em_itr: 4}', 'run',
     "with overrides {norm.em_itr: 4}: norm: unknown key 'em_itr'; did you "
     "mean 'em_iter'?"),
    ('overrides: {norm.em_iter: four}', 'run',
     "norm.em_iter: must be an integer, got str 'four'"),
    ('overrides: {epochs.x: 1}', 'run', 'epochs.x: epochs is 2, not a '
                                        'section'),
    ('overrides: {norm.layers: [conv9]}', 'run',
     "norm.layers: CifarCNN has no layer 'conv9'"),
    ('overrides: [norm.em_iter]', 'key', 'variants[1].overrides: must map '
                                         'dotted configuration keys'),
    ('seeds: [1, 1]', 'key', 'variants[1].seeds: must be a non-empty list '
                             'of distinct integers >= 0, got [1, 1]'),
    ('epochs: 0', 'key', 'variants[1].epochs: must be a positive integer'),
    ('baseline: nope', 'key', "variants[1].baseline: no variant is named "
                              "'nope' (variants: bn, mn)"),
    ('colour: red', 'key', "variants[1]: unknown key 'colour'"),
    ('name: bn', 'key', "variants[1].name: variant 'bn' is named twice"),
    ('name: m/n', 'key', 'variants[1].name: must consist of letters'),
])
def test_study_errors_name_the_file_the_run_and_the_key(
        tiny, tmp_path, entry, where, message):
    path = _study(tmp_path / 'bad.yaml', '''
name: bad
baseline: bn
variants:
  - {name: bn, config: %s}
  - name: mn
    config: %s
    seeds: [0]
    %s
''' % (tiny['bn'], tiny['mn'], entry))
    with pytest.raises(study.StudyError) as e:
        study.load_study(path)
    text = str(e.value)
    assert text.startswith(path + ': '), text
    assert message in text, text
    if where == 'run':
        assert '{}: variant mn (runs mn-s0), {}'.format(path, tiny['mn']) \
            in text


def test_study_file_errors_at_the_top_level(tiny, tmp_path):
    path = _study(tmp_path / 'bad.yaml', 'name: x\nbaseline: bn\n'
                                         'variant: []\n')
    with pytest.raises(study.StudyError, match=r"top level: unknown key "
                       r"'variant'; did you mean 'variants'\?"):
        study.load_study(path)
    path = _study(tmp_path / 'bad.yaml', 'name: x\nbaseline: bn\n'
                  'variants:\n  - {name: mn, config: %s}\n' % tiny['mn'])
    with pytest.raises(study.StudyError, match=r"bad.yaml: baseline: no "
                       r"variant is named 'bn' \(variants: mn\)"):
        study.load_study(path)


def test_the_cli_reports_errors_and_refuses_the_run_options(tiny, tmp_path,
                                                            capsys):
    bad = _study(tmp_path / 'bad.yaml', 'name: x\nbaseline: bn\nvariants:\n'
                 '  - {name: bn, config: %s, overrides: {norm.k: 2}}\n'
                 % tiny['bn'])
    assert study.main(['run', bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith('train.study: error: {}: variant bn'.format(bad))
    assert "norm: unknown key 'k'" in err
    good = _study(tmp_path / 'good.yaml', 'name: x\nbaseline: bn\n'
                  'variants:\n  - {name: bn, config: %s}\n' % tiny['bn'])
    assert study.main(['run', good, '--epochs', '3']) == 2
    assert ('--epochs is set for each run by the study file'
            in capsys.readouterr().err)
    runs = str(tmp_path / 'runs')
    assert study.main(['run', good, '--dry-run', '--runs', runs, '--data',
                       tiny['dir']]) == 0
    out = capsys.readouterr().out
    assert 'bn-s0: {} seed 0, 2 epochs, as configured -> {}'.format(
        tiny['bn'], os.path.join(runs, 'x', 'bn-s0')) in out
    assert not os.path.exists(runs)


def test_shipped_studies_are_those_of_issue_10():
    """Study 1: BN-2/MN-2, 25 epochs, >= 3 seeds; study 2: the variants,
    25 epochs, >= 2 seeds, TF RMSprop for BN and MN; study 3: 100 epochs,
    >= 2 seeds.  Every configuration validates with its overrides."""
    def load(name):
        return study.load_study(os.path.join(STUDIES, name + '.yaml'))

    s1 = load('bn2-mn2')
    assert [v.name for v in s1.variants] == ['bn2', 'mn2']
    assert all(v.epochs == 25 and len(v.seeds) >= 3 for v in s1.variants)
    s2 = load('variants')
    assert all(v.epochs == 25 and len(v.seeds) >= 2 for v in s2.variants)
    norms = {v.name: v.cfg['norm'] for v in s2.variants}
    assert norms['mn2-relu']['activation'] == 'relu'
    assert norms['mn2-eq37']['affine'] == 'components'
    assert norms['mn2-no-weights']['weight_scaling'] is False
    tf = {v.name: v for v in s2.variants
          if v.cfg['optimizer']['name'] == 'rmsprop_tf'}
    assert sorted(tf) == ['bn2-rmsprop-tf', 'mn2-rmsprop-tf']
    assert tf['mn2-rmsprop-tf'].baseline == 'bn2-rmsprop-tf'
    for v in tf.values():
        opt = v.cfg['optimizer']
        assert (opt['decay'], opt['momentum'], opt['eps']) == (0.9, 0.9, 1.0)
    s3 = load('faithful-100ep')
    assert all(v.epochs == 100 and len(v.seeds) >= 2 for v in s3.variants)
    assert {v.cfg['paper']['row'] for v in s3.variants} == {'BN-2', 'MN-2'}


def test_paper_numbers_sit_at_the_same_epoch(tmp_path):
    """acc_at counts percentages of the configuration's 100 epochs: a
    25-epoch run meets its 25% column at its own 100%."""
    path = _study(tmp_path / 's.yaml', '''
name: p
baseline: bn2
variants:
  - {name: bn2, config: configs/table2/cifar10/bn2.yaml, epochs: 25}
  - {name: mn2, config: configs/table2/cifar10/mn2.yaml, epochs: 50}
''')
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        s = study.load_study(path, check_model=False)
    finally:
        os.chdir(cwd)
    bn2, mn2 = s.variants
    assert [study.paper_accuracy(bn2, p) for p in (25, 50, 75, 100)] == [
        None, None, None, 84.11]
    assert [study.paper_accuracy(mn2, p) for p in (25, 50, 75, 100)] == [
        None, 85.56, None, 87.28]


# ------------------------------------------------------ report, by hand
def _fake_run(out, variant, seed, accs, losses, epochs=4):
    """A run folder as the trainer leaves it after ``len(accs)`` of
    ``epochs`` epochs, 10 updates per epoch."""
    os.makedirs(out)
    info = runner.settings(variant.cfg, epochs, seed)
    finished = len(accs) == epochs
    info.update(finished=finished, data_source='CIFAR-10 (chainer.datasets)',
                n_train=50000, n_test=10000, device='@cupy:0',
                mn_paths=['conv3/bn'] if variant.cfg['norm']['layers'] else
                [])
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(info, f)
    with open(os.path.join(out, 'log'), 'w') as f:
        json.dump([{'epoch': i + 1, 'iteration': 10 * (i + 1),
                    'main/loss': loss, 'validation/main/accuracy': a / 100,
                    'elapsed_time': 5.0 * (i + 1)}
                   for i, (a, loss) in enumerate(zip(accs, losses))], f)


def test_report_pairs_runs_by_seed_and_averages_over_seeds(tiny, tmp_path):
    path = _study(tmp_path / 's.yaml', '''
name: hand
baseline: bn
epochs: 4
seeds: [0, 1]
variants:
  - {name: bn, config: %s}
  - {name: mn, config: %s}
''' % (tiny['bn'], tiny['mn']))
    s = study.load_study(path)
    runs = str(tmp_path / 'runs')
    accs = {('bn', 0): [50, 60, 70, 65], ('bn', 1): [40, 60, 60, 68],
            ('mn', 0): [60, 70, 72, 71], ('mn', 1): [50, 55, 66]}
    for (name, seed), a in accs.items():
        _fake_run(os.path.join(runs, 'hand', '{}-s{}'.format(name, seed)),
                  s.variant(name), seed, a, [2.0 - 0.25 * i for i in
                                             range(len(a))])
    state = {'invocations': [{
        'started': '2026-12-01 00:00:00 UTC', 'ended':
        '2026-12-01 01:00:00 UTC', 'device': 'GPU 0: NVIDIA H200 (cuDNN not '
        'used)', 'host': 'CPU: x (16 cores)', 'versions': {'python': '3.12'},
        'budget': 3600, 'parallel': 1, 'train_args': [], 'outcomes': {
            'bn-s0': {'status': 'done'}, 'mn-s0': {'status': 'done'},
            'bn-s1': {'status': 'done'}, 'mn-s1': {'status': 'cut'}}}]}
    with open(os.path.join(runs, 'hand', 'study.json'), 'w') as f:
        json.dump(state, f)
    md, png = study.report(s, runs, str(tmp_path / 'results'),
                           log=io.StringIO())
    assert md == str(tmp_path / 'results' / 'study-hand.md')
    text = open(md).read()
    assert '| GPU 0: NVIDIA H200 (cuDNN not used) |' in text
    assert ('Runs: 4 epochs (of 2), 50,000 train / 10,000 test images, '
            'CIFAR-10 (chainer.datasets).') in text
    rows = _section(text, 'Runs')
    # same seed's BN run: bn-s0 best 70 (epoch 3), bn-s1 best 68 (epoch 4)
    assert table_row(rows, 'mn-s0')[1:] == [
        'done', '4/4', '40', '60.00', '70.00', '72.00', '72.00', '70.00',
        '20', '+2.00', '1.2500', '20']
    # cut after epoch 3: compared with bn-s1 over epochs 1-3 (66 - 60)
    assert table_row(rows, 'mn-s1')[1:] == [
        'cut by the budget after epoch 3 of 4', '3/4', '30', '50.00', '55.00',
        '66.00', 'n/a', '68.00', '-', '+6.00', '1.5000', '15']
    assert table_row(rows, 'bn-s1')[9:11] == ['40', '+0.00']
    acc = _section(text, 'Maximum test accuracy (%) per variant')
    assert table_row(acc, 'mn')[3:] == [
        '2 of 2', '55.00 ± 7.07', 'n/a', '62.50 ± 10.61', 'n/a',
        '69.00 ± 4.24', 'n/a', '72.00 (n=1)', 'n/a']
    speed = _section(text, 'Training speed per variant')
    assert table_row(speed, 'mn')[1:] == [
        'bn', '4.00 ± 2.83', '20 (n=1)', '1 of 2', 'n/a',
        '1.3750 ± 0.1768']
    # bn-s0 reaches its 70 at epoch 3, bn-s1 its 68 at epoch 4
    assert table_row(speed, 'bn')[2:5] == ['0.00 ± 0.00', '35 ± 7',
                                           '2 of 2']
    assert '![study hand](study-hand.png)' in text
    with Image.open(png) as img:
        assert img.format == 'PNG'


# ------------------------------------------------- training, end to end
def test_a_two_run_study_through_the_script(tiny, tmp_path):
    """scripts/study.sh trains both runs, writes the report and the plot,
    and the report's numbers are the logs'."""
    path = _study(tmp_path / 'pair.yaml', '''
name: pair
baseline: bn
epochs: 2
seeds: [3]
variants:
  - {name: bn, config: %s}
  - {name: mn, config: %s, overrides: {norm.em_iter: 3}}
''' % (tiny['bn'], tiny['mn']))
    runs, results = str(tmp_path / 'runs'), str(tmp_path / 'results')
    e = env(tiny['cache'])
    e.update(MIXNORM_PYTHON=sys.executable, MIXNORM_RUNS=runs)
    r = subprocess.run(['bash', 'scripts/study.sh', path, '--results',
                        results, '--data', tiny['dir'], '--device',
                        '@numpy'], cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert 'study pair: 2 done' in r.stderr
    folder = os.path.join(runs, 'studies', 'pair')
    bn, mn = (_log(os.path.join(folder, name)) for name in ('bn-s3',
                                                            'mn-s3'))
    with open(os.path.join(folder, 'mn-s3', 'run.json')) as f:
        info = json.load(f)
    assert (info['seed'], info['epochs'], info['finished']) == (3, 2, True)
    assert info['config']['norm']['em_iter'] == 3
    assert 'study: mn-s3 epoch 2/2, iteration 10' in r.stderr

    text = open(os.path.join(results, 'study-pair.md')).read()
    rows = _section(text, 'Runs')
    target = metrics.max_accuracy(bn)
    for name, log in (('bn-s3', bn), ('mn-s3', mn)):
        cells = table_row(rows, name)
        assert cells[1:4] == ['done', '2/2', '10']
        accs = [100 * e['validation/main/accuracy'] for e in log]
        # by epochs 0.5, 1, 1.5, 2 of 2
        assert cells[4:8] == ['n/a', '{:.2f}'.format(accs[0]),
                              '{:.2f}'.format(accs[0]),
                              '{:.2f}'.format(max(accs))]
        assert cells[8] == '{:.2f}'.format(target)
        assert cells[9] == metrics.format_steps(
            metrics.steps_to_reach(log, target))
        assert cells[11] == '{:.4f}'.format(log[-1]['main/loss'])
    assert table_row(rows, 'mn-s3')[10] == '{:+.2f}'.format(
        metrics.max_accuracy(mn) - target)
    invocations = _section(text, 'Invocations')
    assert '| CPU: ' in invocations and '| none | 1 | 2 done |' in invocations
    with Image.open(os.path.join(results, 'study-pair.png')) as img:
        assert img.format == 'PNG'
    state = study.load_state(study.load_study(path), os.path.join(
        runs, 'studies'))
    (outcomes,) = [i['outcomes'] for i in state['invocations']]
    assert {k: (o['status'], o['exit'], o['epochs_logged'])
            for k, o in outcomes.items()} == {'bn-s3': ('done', 0, 2),
                                              'mn-s3': ('done', 0, 2)}


def test_the_budget_cuts_a_run_and_the_next_call_resumes(tiny, tmp_path,
                                                         monkeypatch):
    """The clock jumps past the budget once the first run has logged two of
    its four epochs: that run stops with its finished epochs and their
    snapshot, the other is skipped; the next call resumes the first (same
    log as far as it went) and trains the second beside it; a third call
    passes over both."""
    monkeypatch.chdir(ROOT)
    for key, value in env(tiny['cache']).items():
        monkeypatch.setenv(key, value)
    path = _study(tmp_path / 'cut.yaml', '''
name: cut
baseline: bn
variants:
  - {name: bn, config: %s, epochs: 4}
  - {name: mn, config: %s}
''' % (tiny['bn'], tiny['mn']))
    s = study.load_study(path)
    runs, results = str(tmp_path / 'runs'), str(tmp_path / 'results')
    out = os.path.join(runs, 'cut', 'bn-s0')
    train_args = ['--data', tiny['dir'], '--device', '@numpy']

    def clock():  # the budget is spent once two epochs are logged
        try:
            logged = len(_log(out))
        except (OSError, ValueError):  # no epoch yet
            logged = 0
        return time.monotonic() + (1e6 if logged >= 2 else 0)

    log = io.StringIO()
    record = study.run_study(s, runs, train_args, budget=1000, reserve=0,
                             poll=0.1, log=log, clock=clock)
    assert {k: o['status'] for k, o in record['outcomes'].items()} == {
        'bn-s0': 'cut', 'mn-s0': 'skipped'}, log.getvalue()
    first = _log(out)
    k = len(first)
    assert 2 <= k < 4 and [e['epoch'] for e in first] == list(
        range(1, k + 1))
    assert os.path.basename(runfolder.newest_snapshot(out)) == \
        'snapshot_iter_{}'.format(first[-1]['iteration'])
    with open(os.path.join(out, 'run.json')) as f:
        assert not json.load(f)['finished']
    assert not os.path.exists(os.path.join(runs, 'cut', 'mn-s0'))
    md, _ = study.report(s, runs, results, log=log)
    rows = _section(open(md).read(), 'Runs')
    assert table_row(rows, 'bn-s0')[1] == \
        'cut by the budget after epoch {} of 4'.format(k)
    assert table_row(rows, 'mn-s0')[1:3] == ['skipped: budget spent', '0/2']

    # what a later call needs, without the model or finished snapshots
    tgz = str(tmp_path / 'cut.tgz')
    names = study.pack(s, runs, tgz)
    assert 'cut/bn-s0/snapshot_iter_{}'.format(first[-1]['iteration']) in \
        names and 'cut/study.json' in names
    with tarfile.open(tgz) as tar:
        assert sorted(tar.getnames()) == sorted(names)

    record = study.run_study(s, runs, train_args, parallel=2, poll=0.1,
                             log=log)
    assert {k: o['status'] for k, o in record['outcomes'].items()} == {
        'bn-s0': 'done', 'mn-s0': 'done'}, log.getvalue()
    assert 'study: bn-s0 resumed after epoch {}'.format(k) in log.getvalue()
    whole = _log(out)
    assert [e['epoch'] for e in whole] == [1, 2, 3, 4]
    for key in ('iteration', 'main/loss', 'validation/main/accuracy', 'lr'):
        assert [e[key] for e in whole[:k]] == [e[key] for e in first], key
    with open(os.path.join(out, 'output.txt')) as f:
        assert 'resuming {} from snapshot_iter_'.format(out) in f.read()

    names = study.pack(s, runs, tgz)  # finished: no snapshot any more
    assert not [n for n in names if 'snapshot' in n or 'model.npz' in n]
    mtime = os.path.getmtime(os.path.join(out, 'output.txt'))
    record = study.run_study(s, runs, train_args, log=log)
    assert {k: o['status'] for k, o in record['outcomes'].items()} == {
        'bn-s0': 'finished earlier', 'mn-s0': 'finished earlier'}
    assert os.path.getmtime(os.path.join(out, 'output.txt')) == mtime
    text = open(study.report(s, runs, results, log=log)[0]).read()
    assert table_row(_section(text, 'Runs'), 'bn-s0')[1:3] == ['done', '4/4']
    invocations = _section(text, 'Invocations')
    assert '| 1000 | 1 | 1 cut, 1 skipped |' in invocations
    assert '| none | 2 | 2 done |' in invocations
    assert '| none | 1 | 2 finished earlier |' in invocations


def test_sigterm_stops_the_study_and_still_reports(tiny, tmp_path):
    """SIGTERM (what `timeout` sends) stops the running run after a
    finished epoch, leaves the rest unstarted, and the report says so."""
    path = _study(tmp_path / 'term.yaml', '''
name: term
baseline: bn
variants:
  - {name: bn, config: %s, epochs: 50}
  - {name: mn, config: %s}
''' % (tiny['bn'], tiny['mn']))
    runs, results = str(tmp_path / 'runs'), str(tmp_path / 'results')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'train.study', 'run', path, '--runs', runs,
         '--results', results, '--data', tiny['dir'], '--device', '@numpy'],
        cwd=ROOT, env=env(tiny['cache']), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    out = os.path.join(runs, 'term', 'bn-s0')
    deadline = time.time() + 240
    while not os.path.exists(os.path.join(out, 'log')):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    proc.terminate()
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert 'study: interrupted' in err
    k = len(_log(out))
    text = open(os.path.join(results, 'study-term.md')).read()
    rows = _section(text, 'Runs')
    assert table_row(rows, 'bn-s0')[1] == \
        'interrupted after epoch {} of 50'.format(k)
    assert table_row(rows, 'mn-s0')[1] == \
        'not started: the call was interrupted'
