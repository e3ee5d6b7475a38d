"""scripts/table2.sh and table3.sh over runs that are already finished.

The runs are made by hand with the settings the CLI records, so the script
skips training, and they are reduced (test subset), so that the reports go
to the runs folder and never to the repository's results/.
"""
import json
import os
import subprocess
import sys

from train import config, runner
from tinydata import ROOT, env

ROWS = ['bn1', 'bn2', 'bn3', 'bn4', 'mn1', 'mn2', 'mn3', 'mn4']


def _finished_runs(runs, accs_by_row):
    for stem in ROWS:
        path = os.path.join('configs', 'table2', 'cifar10', stem + '.yaml')
        cfg = config.load(os.path.join(ROOT, path), check_model=False)
        info = runner.settings(cfg, epochs=2, test_subset=500,
                               config_path=path)
        info.update(finished=True, wall_time=1.0, data_source='CIFAR-10',
                    device='@numpy', n_train=50000, n_test=500,
                    mn_paths=[])
        out = os.path.join(runs, 'table2', 'cifar10', stem)
        os.makedirs(out)
        with open(os.path.join(out, 'run.json'), 'w') as f:
            json.dump(info, f)
        log = [{'epoch': e + 1, 'iteration': 100 * (e + 1),
                'validation/main/accuracy': a}
               for e, a in enumerate(accs_by_row.get(stem, [0.5, 0.6]))]
        with open(os.path.join(out, 'log'), 'w') as f:
            json.dump(log, f)


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
    _finished_runs(runs, {'bn2': [0.80, 0.86], 'mn2': [0.86, 0.88]})
    before = results_listing()

    r = _script('table2.sh', ['cifar10', '--test-subset', '500',
                              '--epochs', '2'], runs)
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
    assert results_listing() == before


def test_scripts_reject_an_unknown_dataset(tmp_path):
    for name in ('table2.sh', 'table3.sh'):
        r = _script(name, ['mnist'], str(tmp_path))
        assert r.returncode == 2 and 'usage' in r.stderr
