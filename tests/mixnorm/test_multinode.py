"""MultiNodeMixtureNormalization under ``mpiexec -n 2`` (naive communicator).

The checks themselves are in tests/support/mpi_multinode.py, run as two MPI
processes; this module runs them and reads their report.  They need
mpi4py and an MPI (the ``multinode`` extra: the ``mpi4py`` and ``mpich``
wheels, which the test environments install).
"""
import os
import shutil
import subprocess
import sys

import pytest

from tinydata import make_folder, ROOT, write_config

pytest.importorskip('mpi4py')


def mpiexec():
    """The mpiexec beside this Python (the mpich wheel's), else PATH's."""
    local = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    found = local if os.path.exists(local) else shutil.which('mpiexec')
    if found is None:
        pytest.skip('no mpiexec (pip install mpich)')
    return found


def run_mpi(script, n=2, timeout=600, args=()):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([ROOT,
                                           os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([mpiexec(), '-n', str(n), sys.executable, script]
                          + list(args), env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_two_processes_equal_one_with_the_whole_batch():
    out = run_mpi(os.path.join(ROOT, 'tests', 'support', 'mpi_multinode.py'))
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ('K=1 is batch normalization', 'K=3', 'K=2',
                  'control differs', 'fit'):
        assert 'ok {} on 2 processes\n'.format(check) in out.stdout, \
            (check, out.stdout, out.stderr)


def train_mpi(tmp_path, out, epochs, extra=()):
    """``mpiexec -n 2 python -m train --comm naive`` on a tiny folder."""
    data = tmp_path / 'data'
    if not data.exists():
        make_folder(str(data), n_train=4, n_test=1)
    cfg = write_config(str(tmp_path / 'mn.yaml'), layers=('conv3',),
                       batch_size=8, epochs=2)
    env = dict(os.environ, MIXNORM_CACHE=str(tmp_path / 'cache'))
    env.pop('MIXNORM_DATA', None)
    return subprocess.run(
        [mpiexec(), '-n', '2', sys.executable, '-m', 'train', '--config',
         cfg, '--out', str(out), '--device', '@numpy', '--data', str(data),
         '--comm', 'naive', '--epochs', str(epochs)] + list(extra),
        cwd=ROOT, env=dict(env, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=600)


def test_two_process_training_through_the_cli_and_resume(tmp_path):
    import json
    import numpy
    whole = tmp_path / 'whole'
    r = train_mpi(tmp_path, whole, 2)
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads((whole / 'run.json').read_text())
    assert info['finished'] and info['processes'] == 2
    assert info['iterations'] == 10  # 40 images, 4 per process and step
    log = json.loads((whole / 'log').read_text())
    assert [e['iteration'] for e in log] == [5, 10]
    assert sorted(p.name for p in whole.iterdir()
                  if p.name.startswith('snapshot')) == \
        ['snapshot_iter_10.0', 'snapshot_iter_10.1']
    assert r.stderr.count('finished: max test accuracy') == 1  # rank 0
    # interrupted after epoch 1: the epoch-1 snapshots of a 1-epoch run,
    # the 2-epoch run's settings, then --resume
    first = tmp_path / 'first'
    assert train_mpi(tmp_path, first, 1).returncode == 0
    cut = tmp_path / 'cut'
    cut.mkdir()
    for rank in (0, 1):
        name = 'snapshot_iter_5.{}'.format(rank)
        (cut / name).write_bytes((first / name).read_bytes())
    (cut / 'log').write_text((first / 'log').read_text())
    info['finished'] = False
    (cut / 'run.json').write_text(json.dumps(info))
    r = train_mpi(tmp_path, cut, 2, ['--resume'])
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'resuming' in r.stderr and 'iteration 5' in r.stderr
    resumed, ref = (numpy.load(str(d / 'model.npz')) for d in (cut, whole))
    assert sorted(resumed.files) == sorted(ref.files)
    for name in ref.files:
        numpy.testing.assert_array_equal(resumed[name], ref[name], name)
    r = train_mpi(tmp_path, whole, 2, ['--resume'])
    assert r.returncode == 0 and 'already finished' in r.stderr
