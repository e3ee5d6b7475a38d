"""A device that is not usable here: one line that names it, says why and
what to pass instead, exit status 2, from every entry point with --device.

The GPU cases need a machine without a usable GPU (CuPy missing, or no
driver or device); they are skipped where CuPy sees a GPU.
"""
import os
import subprocess
import sys

import pytest

from train import device
from tinydata import ROOT, env, make_folder, write_config

NO_GPU = device.gpu_count() == 0
needs_no_gpu = pytest.mark.skipif(not NO_GPU, reason='CuPy sees a GPU here')


def _run(args, tmp_path, **kwargs):
    return subprocess.run(args, cwd=ROOT, env=env(str(tmp_path / 'cache')),
                          capture_output=True, text=True, timeout=300,
                          **kwargs)


def _one_line(r, prog, spec):
    """The error is one line, exit status 2, naming the device and the
    fix."""
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith('{}: error: --device {}: not usable here: '
                               .format(prog, spec)), lines[0]
    assert 'pass --device @numpy' in lines[0]
    return lines[0]


def test_cpu_is_usable_everywhere():
    assert device.problem('@numpy') is None
    assert str(device.get('@numpy')) == '@numpy'
    assert str(device.get(None)) == device.default()


@pytest.mark.parametrize('spec, why', [
    ('cpu', 'a name without "@" is a ChainerX device'),
    ('cuda:0', 'a name without "@" is a ChainerX device'),
    ('@numpy:1', 'not a Chainer device specifier'),
    ('@tpu:0', 'not a Chainer device specifier'),
])
def test_specifiers_that_are_no_device_here(spec, why):
    with pytest.raises(device.DeviceError) as e:
        device.get(spec)
    text = str(e.value)
    assert text.startswith('--device {}: not usable here: {}'.format(
        spec, why))
    assert text.endswith('pass --device @numpy for the CPU, or @cupy:N '
                         'for GPU N')
    assert '\n' not in text


@needs_no_gpu
@pytest.mark.parametrize('spec', ['@cupy:0', '0'])
def test_gpu_without_cupy_or_gpu(spec):
    with pytest.raises(device.DeviceError) as e:
        device.get(spec)
    text = str(e.value)
    assert any(why in text for why in (
        'CuPy is not installed in ' + sys.executable, 'CuPy does not import',
        'no usable CUDA driver or GPU', 'CuPy sees no GPU'))
    assert 'pass --device @numpy to run on the CPU' in text


@needs_no_gpu
def test_train_cli_fails_in_one_line_before_the_data(tmp_path):
    cfg = write_config(str(tmp_path / 'c.yaml'))
    out = str(tmp_path / 'run')
    for spec in ('@cupy:0', 'cpu'):
        # the data path does not exist: the device is checked first
        r = _run([sys.executable, '-m', 'train', '--config', cfg, '--out',
                  out, '--data', str(tmp_path / 'nowhere'), '--device',
                  spec], tmp_path)
        _one_line(r, 'mixnorm-train', spec)
        assert not os.path.exists(out)


def test_train_cli_gan_config_fails_in_one_line(tmp_path):
    cfg = os.path.join(ROOT, 'configs', 'dcgan', 'bn.yaml')
    assert os.path.exists(cfg)
    r = _run([sys.executable, '-m', 'train', '--config', cfg, '--out',
              str(tmp_path / 'gan'), '--device', 'native:0'], tmp_path)
    _one_line(r, 'mixnorm-train', 'native:0')


def test_train_device_prints_the_usable_device(tmp_path):
    r = _run([sys.executable, '-m', 'train.device'], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == device.default()
    r = _run([sys.executable, '-m', 'train.device', '@numpy'], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == '@numpy'
    _one_line(_run([sys.executable, '-m', 'train.device', 'cpu'], tmp_path),
              'train.device', 'cpu')


@needs_no_gpu
@pytest.mark.parametrize('script', ['layer', 'gmm', 'throughput',
                                    'breakdown'])
def test_benchmarks_fail_in_one_line(tmp_path, script):
    r = _run([sys.executable, '-m', 'benchmarks.' + script,
              '--device', '@cupy:0', '--out', str(tmp_path / 'b.md')],
             tmp_path)
    _one_line(r, script + '.py', '@cupy:0')
    assert not os.path.exists(str(tmp_path / 'b.md'))


def test_evaluate_fid_and_study_fail_in_one_line(tmp_path):
    r = _run([sys.executable, '-m', 'train.classifier.evaluate',
              str(tmp_path), '--device', 'cpu'], tmp_path)
    _one_line(r, 'python -m train.classifier.evaluate', 'cpu')
    r = _run([sys.executable, '-m', 'train.fid', 'stats', '--out',
              str(tmp_path / 's.npz'), '--fid-proxy', str(tmp_path),
              '--device', 'cpu'], tmp_path)
    _one_line(r, 'train.fid', 'cpu')
    from train import study
    with pytest.raises(study.StudyError) as e:
        study.machine('cpu')
    assert str(e.value).startswith('--device cpu: not usable here')


@needs_no_gpu
def test_main_script_stops_before_choosing_a_budget(tmp_path):
    """scripts/main.sh with a GPU device the Python cannot use: the one
    line, exit status 2, no budget and nothing trained."""
    data = make_folder(str(tmp_path / 'data'))
    e = env(str(tmp_path / 'cache'))
    e.update(MIXNORM_PYTHON=sys.executable,
             MIXNORM_RUNS=str(tmp_path / 'runs'))
    e.pop('MIXNORM_DRY_RUN', None)
    r = subprocess.run(['bash', 'scripts/main.sh', '--device', '@cupy:0',
                        '--data', data], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if 'error' in line]
    assert len(errors) == 1
    assert errors[0].startswith('main.sh: error: --device @cupy:0: not '
                                'usable here: ')
    assert 'pass --device @numpy' in errors[0]
    assert 'budget' not in r.stdout
    assert not os.path.exists(str(tmp_path / 'runs'))
