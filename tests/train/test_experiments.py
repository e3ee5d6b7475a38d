"""Experiments of Tables 4-7 and Figure 5 (Sections 4.3, 4.4, 5.1).

The shipped configurations against the paper, their learning-rate
schedules at the boundaries, one CLI training run of each deep model on
tiny data, Table 7's grid, and the reports of Tables 4-6 and Figure 5 built
from hand-made logs.  The scripts are run in test_scripts.py.
"""
import glob
import json
import os

import pytest
import yaml

from train import config, figures, metrics
from train.common import optim
from train.report import cli as report_cli
from train.report import tables
import tinydata
from tinydata import ROOT, make_folder, table_row, train_cli

CONFIGS = os.path.join(ROOT, 'configs')
_RED = ['red1', 'red2']
_INC = ['inc2/0', 'inc3/0']
# Table 4 as printed: row -> ((MN layers, K, EM iter.) or None, lr,
# accuracies after 50/100/150/200 epochs, Table 5 steps or absent).
# Table 5's steps: None where it prints "-", missing where the row is absent.
TABLE4 = {
    'cifar10': (91.50, {
        'BN-1': (None, 0.001, [89.18, 90.62, 91.08, 91.50], 7.34e4),
        'MN-1': ((_RED, 3, 8), 0.001, [89.47, 91.03, 91.70, 91.91], 4.29e4),
        'MN-2': ((_RED + ['inc3/0'], 3, 4), 0.001,
                 [89.73, 91.69, 92.09, 92.55], 3.86e4),
        'MN-3': ((_INC, 3, 2), 0.001, [90.49, 91.52, 92.17, 92.30], 3.82e4),
        'MN-4': ((_INC, 5, 2), 0.001, [90.26, 91.77, 92.00, 92.25], 3.58e4),
    }),
    'cifar100': (71.30, {
        'BN-1': (None, 0.001, [66.88, 69.44, 71.03, 71.30], 7.34e4),
        'BN-5': (None, 0.005, [40.68, 47.47, 51.13, 52.63]),
        'MN-1': ((_RED, 3, 8), 0.001, [66.6, 68.86, 70.01, 70.43], None),
        'MN-2': ((_RED + ['inc3/0'], 3, 4), 0.001,
                 [68.26, 70.78, 71.78, 72.23], 4.57e4),
        'MN-4': ((_INC, 5, 2), 0.001, [68.4, 70.99, 71.98, 72.74], 3.93e4),
        'MN-5': ((_INC, 5, 2), 0.005, [50.41, 55.69, 57.88, 59.10]),
    }),
}
# Table 6: file suffix -> (group, drops, factor, target, {row: (steps, max)})
TABLE6 = {
    'drop2': ('lr decay policy: (0.1,0.5,0.75)', [0.5, 0.75], 0.1, 75.75,
              {'BN': (2.78e4, 75.75), 'MN': (1.52e4, 77.30)}),
    'drop3': ('lr decay policy: (0.2,0.3,0.6,0.8)', [0.3, 0.6, 0.8], 0.2,
              75.20, {'BN': (2.41e4, 75.20), 'MN': (1.79e4, 77.32)}),
}
# Section 4.4: depth -> {row: best test error (%)}
DENSENET = {40: {'BN': 25.10, 'MN': 24.63}, 100: {'BN': 21.93, 'MN': 20.97}}


def _load(*parts):
    # The models are built by test_config.test_shipped_config_validates.
    return config.load(os.path.join(CONFIGS, *parts) + '.yaml',
                       check_model=False)


# ------------------------------------------------------------ configurations
def test_table4_and_table5_configs_match_the_paper():
    for ds, (target, rows) in TABLE4.items():
        paths = sorted(glob.glob(os.path.join(CONFIGS, 'table4', ds,
                                              '*.yaml')))
        cfgs = {c['paper']['row']: c for c in (
            config.load(p, check_model=False) for p in paths)}
        assert sorted(cfgs) == sorted(rows), ds
        for row, spec in rows.items():
            mn, lr, accs = spec[:3]
            c = cfgs[row]
            assert (c['dataset'], c['model'], c['model_args']) == \
                (ds, 'inception_v3', {})
            assert (c['epochs'], c['batch_size']) == (200, 128)
            assert c['optimizer'] == {'name': 'rmsprop', 'lr': lr,
                                      'alpha': 0.9, 'weight_decay': 5e-4}
            assert c['schedule'] == {'name': 'exponential', 'rate': 0.93,
                                     'every_epochs': 4}
            layers, k, em = mn or ([], 3, 2)
            assert c['norm'] == {'layers': layers, 'n_components': k,
                                 'em_iter': em}
            paper = c['paper']
            assert (paper['table'], paper['row']) == (4, row)
            assert [paper['acc_at'][p] for p in (25, 50, 75, 100)] == accs
            if len(spec) == 4:
                assert paper['steps'] == {'table': 5, 'target': target,
                                          'target_row': 'BN-1',
                                          'value': spec[3]}
            else:
                assert 'steps' not in paper


def test_table6_configs_match_the_paper():
    for suffix, (group, drops, factor, target, rows) in TABLE6.items():
        for row, (steps, best) in rows.items():
            c = _load('table6', '{}_{}'.format(row.lower(), suffix))
            assert (c['dataset'], c['model']) == ('cifar100', 'inception_v3')
            assert (c['epochs'], c['batch_size']) == (150, 256)
            assert c['optimizer'] == {'name': 'nesterov', 'lr': 0.14,
                                      'momentum': 0.9,
                                      'weight_decay': 5e-4}
            assert c['schedule'] == {'name': 'step', 'drops': drops,
                                     'factor': factor}
            assert c['norm'] == (
                {'layers': ['inc2/1', 'inc3/0'], 'n_components': 5,
                 'em_iter': 2} if row == 'MN' else
                {'layers': [], 'n_components': 3, 'em_iter': 2})
            assert c['paper'] == {
                'table': 6, 'group': group, 'row': row, 'max_acc': best,
                'steps': {'table': 6, 'target': target, 'target_row': 'BN',
                          'value': steps}}


def test_densenet_configs_match_section_4_4():
    for depth, rows in DENSENET.items():
        for row, error in rows.items():
            c = _load('densenet', '{}_{}'.format(row.lower(), depth))
            assert (c['dataset'], c['model']) == ('cifar100', 'densenet')
            assert c['model_args'] == {'depth': depth, 'growth_rate': 12}
            assert (c['epochs'], c['batch_size']) == (200, 64)
            assert c['optimizer'] == {'name': 'nesterov', 'lr': 0.1,
                                      'momentum': 0.9,
                                      'weight_decay': 1e-4}
            assert c['schedule'] == {'name': 'step', 'drops': [0.5, 0.75],
                                     'factor': 0.1}
            assert c['norm'] == (
                {'layers': ['trans1', 'trans2', 'final'], 'n_components': 5,
                 'em_iter': 2} if row == 'MN' else
                {'layers': [], 'n_components': 3, 'em_iter': 2})
            assert c['paper'] == {'figure': 5, 'row': row,
                                  'group': 'DenseNet L={}, k=12'.format(
                                      depth), 'best_error': error}


@pytest.mark.parametrize('parts, total, expect', [
    # Sec. 4.3: RMSprop, x0.93 every 4 epochs
    (('table4', 'cifar10', 'mn2'), 200,
     {0: 1, 3: 1, 4: 0.93, 7: 0.93, 8: 0.93 ** 2, 199: 0.93 ** 49}),
    # Table 6: x0.1 at 50% and 75% of 150 epochs
    (('table6', 'mn_drop2'), 150,
     {0: 1, 74: 1, 75: 0.1, 112: 0.1, 113: 0.01, 149: 0.01}),
    # Table 6: x0.2 at 30%, 60% and 80% of 150 epochs
    (('table6', 'bn_drop3'), 150,
     {44: 1, 45: 0.2, 89: 0.2, 90: 0.04, 119: 0.04, 120: 0.008,
      149: 0.008}),
    # Sec. 4.4: divided by 10 at 50% and 75% of 200 epochs
    (('densenet', 'mn_100'), 200,
     {99: 1, 100: 0.1, 149: 0.1, 150: 0.01, 199: 0.01}),
])
def test_shipped_schedules_at_their_boundaries(parts, total, expect):
    cfg = _load(*parts)
    assert cfg['epochs'] == total
    got = {e: optim.lr_factor(cfg['schedule'], e, total) for e in expect}
    assert got == pytest.approx(expect)


@pytest.mark.parametrize('old, new, key', [
    ('  table: 6\n', '  table: 6\n  figure: 5\n',
     'exactly one of table and figure'),
    ('  table: 6\n', '', 'exactly one of table and figure'),
    ('  max_acc: 75.75\n', '  max_acc: 75.75\n  best_error: 24.25\n',
     'max_acc and best_error'),
])
def test_paper_block_is_checked(tmp_path, old, new, key):
    text = open(os.path.join(CONFIGS, 'table6', 'bn_drop2.yaml')).read()
    assert old in text
    path = tmp_path / 'c.yaml'
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(config.ConfigError) as e:
        config.load(str(path), check_model=False)
    assert key in str(e.value)


# ------------------------------------------------------------ Table 7 grid
def test_table7_grid_holds_the_paper():
    from benchmarks import table7
    grid = table7.load_grid()
    assert grid['em_iter'] == 2 and grid['ks'] == [2, 3, 4, 5]
    assert grid['paper'] == {
        (64, 196): {1: 16.40, 2: 14.46, 3: 14.42, 4: 13.91, 5: 13.69},
        (64, 448): {1: 9.26, 2: 8.83, 3: 8.51, 4: 8.52, 5: 8.41},
        (128, 448): {1: 7.35, 2: 6.59, 3: 6.51, 4: 6.41, 5: 6.38}}
    assert table7.paper_reference(grid['paper'], 64, 448) == (64, 448)
    assert table7.paper_reference(grid['paper'], 100, 448) == (128, 448)
    assert table7.paper_reference(grid['paper'], 8, 196) == (64, 196)
    assert table7.paper_reference(grid['paper'], 8, 52) is None


@pytest.mark.parametrize('edit, message', [
    (lambda d: d.pop('em_iter'), 'top level'),
    (lambda d: d['settings'][1].update(channels=200), 'settings[1].channels'),
    (lambda d: d['settings'][0]['paper_its']['MN'].update({1: 9.0}),
     'settings[0].paper_its.MN'),
    (lambda d: d['settings'][2]['paper_its']['MN'].pop(5),
     'K differ'),
    (lambda d: d['settings'][2].update(batch_size=64, channels=196),
     'listed twice'),
])
def test_table7_grid_errors_name_the_key(tmp_path, edit, message):
    from benchmarks import table7
    with open(table7.GRID) as f:
        data = yaml.safe_load(f)
    edit(data)
    path = str(tmp_path / 'grid.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(data, f)
    with pytest.raises(ValueError) as e:
        table7.load_grid(path)
    assert str(e.value).startswith(path) and message in str(e.value)


# ---------------------------------------------- one CLI run of each model
@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    return {'data': make_folder(str(root / 'data'), n_train=4, n_test=1),
            'cache': str(root / 'cache')}


def _shrunk(tmp_path, parts, **changes):
    """A shipped configuration with some keys changed, written to tmp."""
    with open(os.path.join(CONFIGS, *parts) + '.yaml') as f:
        data = yaml.load(f, Loader=config.Loader)
    data.update(changes)
    path = str(tmp_path / (parts[-1] + '.yaml'))
    with open(path, 'w') as f:
        yaml.safe_dump(data, f)
    return path


@pytest.mark.parametrize('parts, changes, epochs, n_mn, lrs', [
    # Table 4 MN-2: RMSprop, MN at red1, red2, inc3/0 (K 3, EM iter. 4)
    (('table4', 'cifar10', 'mn2'), {'model_args': {'width': 0.125}}, 1, 10,
     [0.001]),
    # Fig. 5 MN: Nesterov, drops at 50% and 75%, MN at trans1/2 and final
    (('densenet', 'mn_40'), {'model_args': {'depth': 10},
                             'dataset': 'cifar10'}, 2, 3, [0.1, 0.01]),
], ids=['inception_v3', 'densenet'])
def test_deep_models_train_through_the_cli(tiny, tmp_path, parts, changes,
                                           epochs, n_mn, lrs):
    cfg = _shrunk(tmp_path, parts, batch_size=8, **changes)
    out = str(tmp_path / 'run')
    r = train_cli(['--config', cfg, '--out', out, '--device', '@numpy',
                   '--data', tiny['data'], '--epochs', str(epochs)],
                  tiny['cache'])
    assert r.returncode == 0, r.stderr
    with open(os.path.join(out, 'run.json')) as f:
        info = json.load(f)
    assert info['finished'] and info['iterations'] == 5 * epochs
    assert info['config']['model_args'] == changes['model_args']
    assert len(info['mn_paths']) == n_mn
    log = metrics.load_log(out)
    assert [e['epoch'] for e in log] == list(range(1, epochs + 1))
    assert [e['lr'] for e in log] == pytest.approx(lrs)
    assert all(0 <= e['validation/main/accuracy'] <= 1 for e in log)


# ----------------------------------------------------- reports (hand-made)
def _runs(tmp_path, folder, rows, configs=None, **kwargs):
    """Hand-made runs of configs/<folder>/<stem>: {stem: accuracies}
    (``configs``: the folder the stems are under, default ``folder``)."""
    runs = str(tmp_path / 'runs')
    for stem, accs in rows.items():
        tinydata.make_run(runs, os.path.join(
            CONFIGS, folder if configs is None else configs), stem, accs,
            **kwargs)
    return runs


def _build(kind, number, folder, runs, datasets=None):
    assert kind == 'table'
    return tables.build(number, tables.load_rows(
        os.path.join(CONFIGS, folder), runs, datasets))


def test_table4_report(tmp_path):
    runs = _runs(tmp_path, 'table4', {'cifar10/bn1': [88.0, 90.0, 91.0, 90.5],
                                      'cifar10/mn2': [89.0, 92.0, 92.5, 92.6]})
    text = _build('table', 4, 'table4', runs, ('cifar10',))
    assert text.startswith('# Table 4: Inception-V3, maximum test accuracy')
    assert '| 50 ep: paper | ours | diff | 100 ep: paper |' in text
    assert table_row(text, 'MN-2')[:6] == [
        'MN-2', '((red1,red2,inc3/0), 3, 4)', '(0.001, 5e-4)', '89.73',
        '89.00', '-0.73']
    assert table_row(text, 'BN-1')[12:15] == ['91.50', '91.00', '-0.50']
    assert table_row(text, 'MN-3')[-1] == 'not run'
    assert '## CIFAR-100' not in text


def test_table5_report(tmp_path):
    runs = _runs(tmp_path, 'table4', {
        'cifar100/bn1': [60.0, 70.0, 71.0, 70.5],
        'cifar100/mn1': [61.0, 69.0, 70.0, 71.5],
        'cifar100/mn4': [71.0, 71.2, 72.0, 72.1]})
    text = _build('table', 5, 'table4', runs)
    assert text.startswith('# Table 5: Inception-V3, gradient updates')
    assert 'CIFAR-10:' in text  # no runs there: still listed
    assert ('## CIFAR-100: paper target 71.30% (BN-1 in the paper), our '
            'target 71.00% (our BN-1 maximum)') in text
    # paper steps, ours to 71.30, ours to our 71.00, paper max, our max
    assert table_row(text.split('## CIFAR-100')[1], 'BN-1')[1:6] == [
        '7.34e4', '-', '300', '71.30', '71.00']
    assert table_row(text.split('## CIFAR-100')[1], 'MN-1')[1:6] == [
        '-', '400', '400', '70.43', '71.50']
    assert table_row(text.split('## CIFAR-100')[1], 'MN-4')[1:6] == [
        '3.93e4', '300', '100', '72.74', '72.10']
    assert '| BN-5 |' not in text and '| MN-5 |' not in text


def test_table6_targets_come_from_the_same_policy(tmp_path):
    runs = _runs(tmp_path, 'table6', {'bn_drop2': [70.0, 72.0],
                                      'mn_drop2': [71.0, 76.0],
                                      'bn_drop3': [60.0, 65.0],
                                      'mn_drop3': [66.0, 67.0]})
    text = _build('table', 6, 'table6', runs)
    drop2, drop3 = text.split('## lr decay policy')[1:]
    assert drop2.startswith(': (0.1,0.5,0.75): paper target 75.75% (BN in '
                            'the paper), our target 72.00%')
    assert drop3.startswith(': (0.2,0.3,0.6,0.8): paper target 75.20% (BN '
                            'in the paper), our target 65.00%')
    assert table_row(drop2, 'MN')[1:6] == ['1.52e4', '200', '200', '77.30',
                                          '76.00']
    assert table_row(drop3, 'MN')[1:6] == ['1.79e4', '-', '100', '77.32',
                                          '67.00']
    assert table_row(drop3, 'BN')[4] == '75.20'


def _curves(i):
    return {'main/error': 0.5 - 0.1 * i, 'main/loss': 2.0 - 0.3 * i,
            'validation/main/error': 0.6 - 0.05 * i,
            'validation/main/loss': 2.2 - 0.2 * i}


def test_figure5_report_and_curves(tmp_path):
    runs = _runs(tmp_path / 'root', 'densenet',  # root/runs/densenet/<stem>
                 {'densenet/bn_40': [60.0, 70.0, 74.0, 73.0],
                  'densenet/mn_40': [65.0, 74.5, 76.0, 75.8]}, configs='',
                 log_extra=_curves)
    results = tmp_path / 'results'
    assert figures.main(['5', '--configs', CONFIGS, '--runs', runs,
                         '--out', str(results / 'densenet.md')]) == 0
    text = (results / 'densenet.md').read_text()
    assert text.startswith('# Figure 5: DenseNet, best test error (%)')
    l40, l100 = text.split('## DenseNet L=')[1:]
    assert l40.startswith('40, k=12') and l100.startswith('100, k=12')
    assert table_row(l40, 'BN')[3:8] == ['25.10', '26.00', '+0.90',
                                        '27.00', '3']
    assert table_row(l40, 'MN')[1:8] == [
        '((trans1,trans2,final), 5, 2)', '(0.1, 1e-4)', '24.63', '24.00',
        '-0.63', '24.20', '3']
    assert table_row(l100, 'MN')[3:] == ['20.97', 'n/a', 'n/a', 'n/a',
                                         'n/a', 'not run']
    assert '![Figure 5](densenet.png)' in text
    with open(str(results / 'densenet.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_figure5_reduced_runs_go_elsewhere(tmp_path):
    runs = _runs(tmp_path, 'densenet', {'densenet/mn_100': [50.0]},
                 configs='', test_subset=100, log_extra=_curves)
    results = tmp_path / 'results' / 'densenet.md'
    elsewhere = tmp_path / 'runs' / 'densenet.md'
    assert figures.main(['5', '--configs', CONFIGS, '--runs', runs,
                         '--out', str(results), '--reduced-out',
                         str(elsewhere)]) == 0
    assert not (tmp_path / 'results').exists()
    assert 'NOT a reproduction' in elsewhere.read_text()
    assert (tmp_path / 'runs' / 'densenet.png').exists()


def test_report_of_an_unknown_table_is_an_error(tmp_path, capsys):
    assert report_cli.main(['table', '9', '--configs',
                        os.path.join(CONFIGS, 'table6'), '--runs',
                        str(tmp_path)]) == 2
    assert 'no configuration reports table 9' in capsys.readouterr().err


def test_window_std():
    assert metrics.window_std([1.0, 2.0, 3.0, 7.0]) == pytest.approx(
        [0.5, (2 / 3.0) ** 0.5, (14 / 3.0) ** 0.5, 2.0])
    assert metrics.window_std([]) == []
