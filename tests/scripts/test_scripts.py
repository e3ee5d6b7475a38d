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

import pytest

from train import config
from train.classifier import runner
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
    # measured MN/BN ratios (over both BNs) beside the paper's 14.46 / 16.40
    assert all(float(c) > 0 for c in cells[4:7])
    assert cells[7:] == ['64x196 (nearest)', '14.46', '0.882']
    assert '| BN | 1 | 2 | 52 | ' in text and '| - | - | - |' in text
    assert '| BN (Chainer) | - | 4 | 196 | ' in text
    assert _results() == before


def test_scripts_reject_unknown_choices(tmp_path):
    for name, arg in (('table2.sh', 'mnist'), ('table3.sh', 'mnist'),
                      ('table4.sh', 'mnist'), ('table5.sh', 'mnist'),
                      ('table6.sh', 'drop9'), ('densenet.sh', '50')):
        r = _script(name, [arg], str(tmp_path))
        assert r.returncode == 2 and 'usage' in r.stderr, name


# ------------------------------------------- main.sh: the device it finds
def _fake_nvidia_smi(folder, header=None, driver='580.95.05',
                     name='NVIDIA H200', fails=False):
    """An nvidia-smi that answers the two questions scripts/common.sh asks
    (the GPU's name and driver; the header with "CUDA Version"), or fails
    as when the driver is not loaded."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'nvidia-smi')
    if fails:
        body = ('echo "NVIDIA-SMI has failed because it couldn\'t '
                'communicate with the NVIDIA driver." >&2; exit 9')
    else:
        table = '| NVIDIA-SMI {0}   Driver Version: {0}{1} |'.format(
            driver, '   CUDA Version: ' + header if header else '')
        body = ('case "$*" in\n  *--query-gpu=name,driver_version*) echo '
                '"{}, {}" ;;\n  "") echo "{}" ;;\n  *) exit 2 ;;\nesac'
                .format(name, driver, table))
    with open(path, 'w') as f:
        f.write('#!/bin/bash\n' + body + '\n')
    os.chmod(path, 0o755)
    return folder


def _path_without_nvidia_smi(folder):
    """A PATH of one folder linking every program of PATH but nvidia-smi."""
    os.makedirs(folder)
    for d in os.environ['PATH'].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            src, dst = os.path.join(d, name), os.path.join(folder, name)
            if (name != 'nvidia-smi' and not os.path.lexists(dst) and
                    os.path.isfile(src) and os.access(src, os.X_OK)):
                os.symlink(src, dst)
    return folder


def _main(tmp_path, path, args=(), dry_run=True, **variables):
    """Runs scripts/main.sh with PATH and the MIXNORM_* variables given."""
    e = env(tmp_path / 'cache')
    for key in ('MIXNORM_PYTHON', 'MIXNORM_ENV', 'MIXNORM_CUDA',
                'MIXNORM_RUNS', 'MIXNORM_DRY_RUN'):
        e.pop(key, None)
    e.update(PATH=path, MIXNORM_RUNS=str(tmp_path / 'runs'), **variables)
    if dry_run:
        e['MIXNORM_DRY_RUN'] = '1'
    r = subprocess.run(['bash', os.path.join('scripts', 'main.sh')] +
                       list(args), cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


def _train_commands(stdout):
    return [line.split(' -m train ', 1)[1] for line in stdout.splitlines()
            if line.startswith('main.sh: would run: ') and ' -m train ' in
            line]


_25EP = '--resume --epochs 25'
# Without CuPy the scripts take modern where a Python 3.12/3.13 is installed
CPU_KIND = 'modern' if subprocess.run(
    ['bash', os.path.join(ROOT, 'scripts', 'setup_env.sh'), '--find',
     'modern'], capture_output=True).returncode == 0 else 'pinned'
_QUICK = '--resume --epochs 4 --train-subset 10240 --test-subset 2000'


@pytest.mark.parametrize('smi, variables, python, device, limits', [
    # the header's CUDA version; CUDA 13 -> modern + CuPy 14
    (dict(header='13.0'), {}, 'modern, MIXNORM_CUDA=cuda13', '@cupy:0',
     _25EP),
    (dict(header='12.4', driver='550.54.15'), {},
     'pinned, MIXNORM_CUDA=cuda12', '@cupy:0', _25EP),
    # no CUDA version in the header: from the driver's version
    (dict(driver='580.65.06'), {}, 'modern, MIXNORM_CUDA=cuda13', '@cupy:0',
     _25EP),
    (dict(driver='535.104.05'), {}, 'pinned, MIXNORM_CUDA=cuda12', '@cupy:0',
     _25EP),
    # what the user sets wins; a CUDA 13 driver runs CuPy for CUDA 12 too
    (dict(header='13.0'), {'MIXNORM_ENV': 'pinned'},
     'pinned, MIXNORM_CUDA=cuda12', '@cupy:0', _25EP),
    (dict(header='13.0'), {'MIXNORM_CUDA': ''},
     CPU_KIND + ', MIXNORM_CUDA=none', '@numpy', _QUICK),
    (dict(header='13.0'), {'MIXNORM_CUDA': '', 'MIXNORM_ENV': 'pinned'},
     'pinned, MIXNORM_CUDA=none', '@numpy', _QUICK),
    (dict(header='12.2', driver='535.104.05'), {'MIXNORM_ENV': 'modern'},
     'modern, MIXNORM_CUDA=cuda12', '@cupy:0', _25EP),
    # too old for the CuPy builds here, or no driver answering
    (dict(header='11.4', driver='470.82.01'), {},
     CPU_KIND + ', MIXNORM_CUDA=none', '@numpy', _QUICK),
    (dict(fails=True), {}, CPU_KIND + ', MIXNORM_CUDA=none', '@numpy',
     _QUICK),
])
def test_main_chooses_environment_device_and_budget(tmp_path, smi,
                                                    variables, python,
                                                    device, limits):
    fake = _fake_nvidia_smi(str(tmp_path / 'bin'), **smi)
    r = _main(tmp_path, fake + os.pathsep + os.environ['PATH'], **variables)
    kind = python.split(',')[0]
    assert 'Python: .venv/{0} (scripts/setup_env.sh {1})'.format(
        kind, python) in r.stderr
    assert 'main.sh: device {}'.format(device) in r.stdout
    budget = '25ep' if limits == _25EP else 'quick'
    assert 'main.sh: budget {}: '.format(budget) in r.stdout
    runs = os.path.join(str(tmp_path / 'runs'), 'main', budget)
    assert _train_commands(r.stdout) == [
        '--config configs/table2/cifar10/{0}.yaml --out {1}/{0} {2}'.format(
            row, runs, limits) for row in ('bn2', 'mn2')]
    assert ('{}/.venv/{}/bin/python -m train.report compare'.format(
        ROOT, kind)) in r.stdout
    assert not os.path.exists(runs)


def test_main_names_the_gpu_and_driver(tmp_path):
    fake = _fake_nvidia_smi(str(tmp_path / 'bin'), header='13.0')
    r = _main(tmp_path, fake + os.pathsep + os.environ['PATH'])
    assert ('main.sh: device @cupy:0, NVIDIA H200 (driver 580.95.05, CUDA '
            '13.0)') in r.stdout
    assert ("budget 25ep: 25 of the paper's 100 epochs on all training and "
            "test images (Table 2's 25% column)") in r.stdout
    fake = _fake_nvidia_smi(str(tmp_path / 'old'), driver='535.104.05')
    r = _main(tmp_path, fake + os.pathsep + os.environ['PATH'])
    assert ('NVIDIA H200 (driver 535.104.05, CUDA 12 (from the driver\'s '
            'version))') in r.stderr


def test_main_without_nvidia_smi_keeps_the_quick_budget(tmp_path):
    path = _path_without_nvidia_smi(str(tmp_path / 'bin'))
    r = _main(tmp_path, path)
    assert ('main.sh: device @numpy (CPU; NVIDIA: no NVIDIA driver '
            '(nvidia-smi is not on PATH))') in r.stdout
    assert 'Python: .venv/{0} (scripts/setup_env.sh {0}, ' \
        'MIXNORM_CUDA=none)'.format(CPU_KIND) in r.stderr
    assert 'main.sh: budget quick: 4 epochs on a fixed 10,240-image' in \
        r.stdout
    assert _train_commands(r.stdout)[0].endswith(_QUICK)
    # the budget can still be chosen; other arguments go to python -m train
    r = _main(tmp_path, path, args=['--25ep', '--data', '/x.zip'])
    assert _train_commands(r.stdout)[1].endswith(_25EP + ' --data /x.zip')


def _stub_python(folder, device):
    """A python that records its arguments; asked for the device
    (``-m train.device [SPEC]``), it answers SPEC, else ``device``."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'python')
    calls = os.path.join(folder, 'calls')
    with open(path, 'w') as f:
        f.write('#!/bin/bash\necho "$*" >> {}\n[ "$1 $2" = "-m train.device"'
                ' ] && echo "${{3:-{}}}"\nexit 0\n'.format(calls, device))
    os.chmod(path, 0o755)
    return path, calls


@pytest.mark.parametrize('gpu', [True, False])
def test_main_trains_with_the_budget_of_the_device_it_finds(tmp_path, gpu):
    """Not a dry run: the Python (a stub here, MIXNORM_PYTHON) says which
    device the trainer would take, and the budget follows."""
    python, calls = _stub_python(str(tmp_path / 'py'),
                                 '@cupy:0' if gpu else '@numpy')
    if gpu:
        path = _fake_nvidia_smi(str(tmp_path / 'bin'), header='13.0') + \
            os.pathsep + os.environ['PATH']
    else:
        path = _path_without_nvidia_smi(str(tmp_path / 'bin'))
    r = _main(tmp_path, path, dry_run=False, MIXNORM_PYTHON=python)
    budget, limits = ('25ep', _25EP) if gpu else ('quick', _QUICK)
    runs = os.path.join(str(tmp_path / 'runs'), 'main', budget)
    with open(calls) as f:
        lines = f.read().splitlines()
    assert lines[0] == '-m train.device'
    assert lines[1:] == [
        '-m train --config configs/table2/cifar10/{0}.yaml --out {1}/{0} {2}'
        .format(row, runs, limits) for row in ('bn2', 'mn2')] + [
        '-m train.report compare {0}/bn2 {0}/mn2 --out {0}/compare.md --plot '
        '{0}/compare.png'.format(runs)]
    device = '@cupy:0' if gpu else '@numpy'
    assert 'main.sh: {} budget on {} done'.format(budget, device) in r.stdout
    assert ('main.sh: {} budget: chosen for {}, the device usable here; '
            'choose with --quick, --25ep or --full'.format(
                budget, device)) in r.stdout
    # --device decides, as the Python finds it usable
    r = _main(tmp_path, path, args=['--device', '@numpy'], dry_run=False,
              MIXNORM_PYTHON=python)
    assert 'main.sh: device @numpy (CPU;' in r.stdout
    with open(calls) as f:
        lines = f.read().splitlines()
    assert lines[-4] == '-m train.device @numpy'
    assert lines[-3].endswith(_QUICK + ' --device @numpy')


def test_study_script_needs_a_study_file(tmp_path):
    r = _script('study.sh', ['--budget', '10'], str(tmp_path))
    assert r.returncode == 2 and 'usage: study.sh STUDY.yaml' in r.stderr
