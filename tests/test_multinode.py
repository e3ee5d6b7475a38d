"""MultiNodeMixtureNormalization under ``mpiexec -n 2`` (naive communicator).

The checks themselves are in tests/mpi_multinode.py, run as two MPI
processes; this module runs them and reads their report.  They need
mpi4py and an MPI (the ``multinode`` extra: the ``mpi4py`` and ``mpich``
wheels, which the test environments install).
"""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
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
               PYTHONPATH=os.pathsep.join([os.path.dirname(HERE),
                                           os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([mpiexec(), '-n', str(n), sys.executable, script]
                          + list(args), env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_two_processes_equal_one_with_the_whole_batch():
    out = run_mpi(os.path.join(HERE, 'mpi_multinode.py'))
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ('K=1 is batch normalization', 'K=3', 'K=2',
                  'control differs', 'fit'):
        assert 'ok {} on 2 processes\n'.format(check) in out.stdout, \
            (check, out.stdout, out.stderr)
