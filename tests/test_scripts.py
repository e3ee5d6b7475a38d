"""The table and figure scripts end to end, over runs already finished.

The runs are made by hand with the settings that the CLI records for the
arguments the test passes, so each script starts ``python -m train`` for
every row, which finds the run finished and skips it; the report follows.
The runs are reduced (test subset, fewer epochs), so the reports go to the
runs folder and never to the repository's results/.  table7.sh runs the
throughput benchmark for real, at a tiny size.
"""
import json
import os
import subprocess
import sys

from train import config, runner
from tinydata import ROOT, env, table_row

ROWS = ['bn1', 'bn2', 'bn3', 'bn4', 'mn1', 'mn2', 'mn3', 'mn4']
REDUCED = ['--test-subset', '500', '--epochs', '2']  # as the runs below


def _finished_runs(runs, folder, stems, accs_by_stem, log_extra=None):
    """Finished reduced runs of configs/<folder>/<stem> (2 epochs, 500 test
    images) in <runs>/<folder>/<stem>, as the CLI would record them."""
    for stem in stems:
        path = os.path.join('configs', folder, stem + '.yaml')
        cfg = config.load(os.path.join(ROOT, path), check_model=False)
        info = runner.settings(cfg, epochs=2, test_subset=500,
                               config_path=path)
        info.update(finished=True, wall_time=1.0, data_source='CIFAR-10',
                    device='@numpy', n_train=50000, n_test=500,
                    mn_paths=[])
        out = os.path.join(runs, folder, stem)
        os.makedirs(out)
        with open(os.path.join(out, 'run.json'), 'w') as f:
            json.dump(info, f)
        log = [{'epoch': e + 1, 'iteration': 100 * (e + 1),
                'validation/main/accuracy': a}
               for e, a in enumerate(accs_by_stem.get(stem, [0.5, 0.6]))]
        for i, entry in enumerate(log):
            entry.update(log_extra(i) if log_extra else {})
        with open(os.path.join(out, 'log'), 'w') as f:
            json.dump(log, f)


def _results():
    return sorted(os.listdir(os.path.join(ROOT, 'results')))


def _script(name, args, runs):
    e = env(os.path.join(runs, 'cache'))
    e.update(MIXNORM_RUNS=runs, MIXNORM_PYTHON=sys.executable)
    return subprocess.run(['bash', os.path.join('scripts', name)] + args,
                          cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=300)


def results_listing():
    path = os.path.join(ROOT, 'results')
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_table2_and_table3_scripts_skip_finished_runs(tmp_path):
    runs = str(tmp_path / 'runs')
    _finished_runs(runs, 'table2/cifar10', ROWS,
                   {'bn2': [0.80, 0.86], 'mn2': [0.86, 0.88]})
    before = _results()

    r = _script('table2.sh', ['cifar10'] + REDUCED, runs)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('already finished') == len(ROWS)
    text = open(os.path.join(runs, 'table2', 'table2.md')).read()
    assert 'NOT a reproduction' in text
    # 25% of 2 epochs: no epoch yet; 50%: epoch 1.
    assert ('| MN-2 | (conv3, 3, 2) | (0.01, 2e-5) | 85.56 | n/a | n/a | '
            '87.28 | 86.00 | -1.28 |') in text

    r = _script('table3.sh', ['cifar10'], runs)
    assert r.returncode == 0, r.stderr
    text = open(os.path.join(runs, 'table2', 'table3.md')).read()
    assert 'our target 86.00%' in text
    assert '| MN-2 | 1.34e4 | 200 | 100 | 88.47 | 88.00 |' in text
    assert _results() == before


def test_table4_and_table5_scripts(tmp_path):
    runs = str(tmp_path / 'runs')
    stems = ['bn1', 'mn1', 'mn2', 'mn3', 'mn4']
    _finished_runs(runs, 'table4/cifar10', stems,
                   {'bn1': [0.85, 0.90], 'mn2': [0.90, 0.93]})
    before = _results()
    r = _script('table4.sh', ['cifar10'] + REDUCED, runs)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('already finished') == len(stems)
    text = open(os.path.join(runs, 'table4', 'table4.md')).read()
    assert 'NOT a reproduction' in text and '## CIFAR-100' not in text
    # 50 of 200 epochs ~ 25% of the 2-epoch runs: none yet; 50%: epoch 1.
    assert table_row(text, 'MN-2')[3:9] == ['89.73', 'n/a', 'n/a', '91.69',
                                           '90.00', '-1.69']

    r = _script('table5.sh', ['cifar10'], runs)
    assert r.returncode == 0, r.stderr
    text = open(os.path.join(runs, 'table4', 'table5.md')).read()
    assert 'paper target 91.50%' in text and 'our target 90.00%' in text
    assert table_row(text, 'MN-2')[1:6] == ['3.86e4', '200', '100', '92.55',
                                           '93.00']
    assert _results() == before


def test_table6_script(tmp_path):
    runs = str(tmp_path / 'runs')
    _finished_runs(runs, 'table6', ['bn_drop2', 'mn_drop2'],
                   {'bn_drop2': [0.70, 0.74], 'mn_drop2': [0.745, 0.78]})
    before = _results()
    r = _script('table6.sh', ['drop2'] + REDUCED, runs)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('already finished') == 2
    text = open(os.path.join(runs, 'table6', 'table6.md')).read()
    assert 'NOT a reproduction' in text
    drop2 = text.split('## lr decay policy: (0.1,0.5,0.75)')[1].split(
        '## ')[0]
    assert 'our target 74.00%' in drop2
    assert table_row(drop2, 'MN')[1:6] == ['1.52e4', '200', '100', '77.30',
                                          '78.00']
    assert _results() == before


def test_densenet_script(tmp_path):
    runs = str(tmp_path / 'runs')
    _finished_runs(runs, 'densenet', ['bn_40', 'mn_40'],
                   {'bn_40': [0.70, 0.72], 'mn_40': [0.71, 0.755]},
                   log_extra=lambda i: {
                       'main/error': 0.4 - 0.1 * i, 'main/loss': 1.5 - i,
                       'validation/main/error': 0.3, 'validation/main/loss':
                       1.2})
    before = _results()
    r = _script('densenet.sh', ['40'] + REDUCED, runs)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('already finished') == 2
    text = open(os.path.join(runs, 'densenet', 'densenet.md')).read()
    assert 'NOT a reproduction' in text
    l40 = text.split('## DenseNet L=40, k=12')[1].split('## ')[0]
    assert table_row(l40, 'MN')[3:6] == ['24.63', '24.50', '-0.13']
    assert '![Figure 5](densenet.png)' in text
    with open(os.path.join(runs, 'densenet', 'densenet.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert _results() == before


def test_table7_script_measures_and_prints_ratios(tmp_path):
    runs = str(tmp_path / 'runs')
    before = _results()
    r = _script('table7.sh', ['--quick', '--settings', '2x52', '4x196',
                              '--ks', '2', '--device', '@numpy'], runs)
    assert r.returncode == 0, r.stderr
    text = open(os.path.join(runs, 'table7', 'table7.md')).read()
    assert text in r.stdout
    assert 'NOT a reproduction' in text
    bn, mn = [line for line in text.splitlines()
              if line.startswith('| BN | 1 | 4 | 196 |') or
              line.startswith('| MN | 2 | 4 | 196 |')]
    cells = [c.strip() for c in mn.strip('|').split('|')]
    # measured MN/BN ratio beside the paper's 14.46 / 16.40
    assert float(cells[4]) > 0 and float(cells[5]) > 0
    assert cells[6:] == ['64x196 (nearest)', '14.46', '0.882']
    assert '| BN | 1 | 2 | 52 | ' in text and '| - | - | - |' in text
    assert _results() == before


def test_scripts_reject_unknown_choices(tmp_path):
    for name, arg in (('table2.sh', 'mnist'), ('table3.sh', 'mnist'),
                      ('table4.sh', 'mnist'), ('table5.sh', 'mnist'),
                      ('table6.sh', 'drop9'), ('densenet.sh', '50')):
        r = _script(name, [arg], str(tmp_path))
        assert r.returncode == 2 and 'usage' in r.stderr, name
