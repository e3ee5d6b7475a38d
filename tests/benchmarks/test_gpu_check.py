"""A rehearsal of the device check (benchmarks/gpu_check.sh) on the CPU.

A GPU machine gets the working tree (tracked files and untracked ones git
does not ignore) and the carried .whl/ and .data/; its python3 has NumPy,
pytest, PyYAML, Pillow, matplotlib, ... but no Chainer.  Here: a copy of
those files, .whl/ made by the commands of the script's header, .data/
with a tiny study and data set, and a python3 on PATH whose environment
holds only the GPU machine's packages, so that Chainer imports only through
the wheels the script installs into .site.  Both commands of the header
run in the script's dry-run mode (MIXNORM_CHECK_DEVICE=@numpy,
MIXNORM_CHECK_QUICK=1), as they would on the GPU machine otherwise.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata

import pytest

from tinydata import ROOT, make_folder, make_zip, write_config

SCRIPT = os.path.join(ROOT, 'benchmarks', 'gpu_check.sh')

# What the GPU machine's python3 has that the check may use (its image
# holds many more packages, Chainer not among them); their requirements
# come along (_gpu_machine_packages).  protobuf, which Chainer requires
# only for its Caffe support, stays out.
GPU_MACHINE = ('pip', 'setuptools', 'numpy', 'six', 'filelock', 'PyYAML',
               'Pillow', 'matplotlib', 'pytest', 'scipy', 'mpi4py', 'mpich',
               'cupy-cuda13x', 'cupy-cuda12x')


def _header_wheel_commands():
    """The header's commands that prepare .whl/: from the line "py=..." to
    the next empty comment line."""
    lines, block = [], False
    with open(SCRIPT) as f:
        for line in f:
            if line.startswith('#   py='):
                block = True
            elif block and line.strip() == '#':
                break
            if block:
                lines.append(line[len('#   '):].rstrip('\n'))
    assert lines and any('-w .whl' in line for line in lines), lines
    return lines


def _wheel_python():
    """A Python to build Chainer's sdist with: setuptools < 82 (it imports
    pkg_resources); else this one (pip's wheel cache may hold Chainer)."""
    check = ('import setuptools, sys; '
             'sys.exit(int(setuptools.__version__.split(".")[0]) >= 82)')
    for python in (sys.executable,
                   os.path.join(ROOT, '.venv', 'pinned', 'bin', 'python')):
        if os.path.exists(python) and subprocess.run(
                [python, '-c', check], capture_output=True).returncode == 0:
            return python
    return sys.executable


def _wheels():
    """The header's .whl/, made once per version of its commands and kept
    in the temporary folder (pip needs an index or its cache for them)."""
    commands = _header_wheel_commands()
    key = hashlib.sha256('\n'.join(commands).encode()).hexdigest()[:16]
    cache = os.path.join(tempfile.gettempdir(), 'mixnorm-gpu-check-wheels',
                         key)
    if os.path.isdir(cache):
        return cache
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    build = tempfile.mkdtemp(dir=os.path.dirname(cache))
    python = _wheel_python()
    script = '\n'.join('py=' + python if line.startswith('py=') else line
                       for line in commands)
    r = subprocess.run(['bash', '-euc', script], cwd=build,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, 'the header\'s wheel commands failed ' \
        '({}):\n{}\n{}'.format(python, script, r.stdout + r.stderr)
    try:
        os.rename(os.path.join(build, '.whl'), cache)
    except OSError:  # made meanwhile by another run
        assert os.path.isdir(cache)
    shutil.rmtree(build, ignore_errors=True)
    return cache


def _gpu_machine_packages():
    """This interpreter's distributions of GPU_MACHINE and everything they
    require (not extras), by name."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    found, todo = {}, list(GPU_MACHINE)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(req.name)
    return found


def _gpu_machine_python(folder):
    """A venv whose site-packages links the GPU machine's packages from
    this interpreter's environment, and nothing else.

    Why a venv: its python3 has its own sys.prefix, so it and every Python
    it starts (sys.executable: the study's runs) see that site-packages
    alone, whatever PYTHONPATH the script sets; links instead of copies:
    fast, and no package is built.  Returns the venv's bin folder."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', folder],
                   check=True, timeout=120)
    python = os.path.join(folder, 'bin', 'python3')
    site = subprocess.run(
        [python, '-c', 'import sysconfig; print(sysconfig.get_paths()'
         '["purelib"])'], check=True, capture_output=True,
        text=True).stdout.strip()
    dists = _gpu_machine_packages()
    assert 'chainer' not in dists and 'numpy' in dists
    for dist in dists.values():
        for entry in {f.parts[0] for f in dist.files or ()}:
            src = str(dist.locate_file(entry))
            dst = os.path.join(site, entry)
            if (entry not in ('..', '__pycache__') and os.path.exists(src)
                    and not os.path.lexists(dst)):
                os.symlink(src, dst)
    return os.path.dirname(python)


def _copy_of_the_working_tree(dest):
    """What a call sends: tracked files as they are in the working tree
    (deleted ones left out) and untracked files git does not ignore; a git
    index of them, to see afterwards what the script changed."""
    names = subprocess.run(
        ['git', 'ls-files', '-z', '--cached', '--others',
         '--exclude-standard'], cwd=ROOT, check=True,
        capture_output=True).stdout.decode().split('\0')
    for name in filter(None, names):
        src = os.path.join(ROOT, name)
        if os.path.isfile(src) and not os.path.islink(src):
            os.makedirs(os.path.join(dest, os.path.dirname(name)),
                        exist_ok=True)
            shutil.copy2(src, os.path.join(dest, name))
    git = ['git', '-c', 'core.autocrlf=false']
    subprocess.run(git + ['init', '-q'], cwd=dest, check=True)
    subprocess.run(git + ['add', '-A'], cwd=dest, check=True)
    return dest


def _changed(repo):
    """Files the script changed or left that git would not ignore."""
    def git(*args):
        return subprocess.run(['git'] + list(args), cwd=repo, check=True,
                              capture_output=True, text=True).stdout.split()
    return git('diff', '--name-only') + git('ls-files', '--others',
                                            '--exclude-standard')


@pytest.fixture(scope='module')
def machine(tmp_path_factory):
    """The copy of the working tree with .whl/ and .data/ (a tiny study of
    a BN and an MN variant on 10 classes of 4 + 1 images), and the
    environment of the GPU machine's python3."""
    base = tmp_path_factory.mktemp('gpu-check')
    repo = _copy_of_the_working_tree(str(base / 'repo'))
    for stale in ('.venv', '.site', 'runs', '.whl', '.data'):
        assert not os.path.exists(os.path.join(repo, stale)), stale
    shutil.copytree(_wheels(), os.path.join(repo, '.whl'))
    data = os.path.join(repo, '.data')
    os.makedirs(data)
    make_zip(make_folder(str(base / 'images'), n_train=4, n_test=1),
             os.path.join(data, 'cifar10-jpeg.zip'))
    bn = write_config(os.path.join(data, 'bn.yaml'), batch_size=8)
    mn = write_config(os.path.join(data, 'mn.yaml'), layers=('conv3',),
                      batch_size=8)
    with open(os.path.join(data, 'tiny.yaml'), 'w') as f:
        f.write('name: tiny\nbaseline: bn\nepochs: 1\nseeds: [0]\n'
                'variants:\n  - {name: bn, config: %s}\n'
                '  - {name: mn, config: %s}\n' % (os.path.relpath(bn, repo),
                                                 os.path.relpath(mn, repo)))
    bin_dir = _gpu_machine_python(str(base / 'python'))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('MIXNORM_', 'PYTHON', 'PIP_', 'VIRTUAL_ENV',
                                'OMP_'))}
    env.update(PATH=bin_dir + os.pathsep + env['PATH'], PYTHONNOUSERSITE='1',
               PIP_CONFIG_FILE=os.devnull, TMPDIR=str(base),
               OMP_NUM_THREADS='1', MIXNORM_CACHE=str(base / 'cache'),
               MIXNORM_CHECK_DEVICE='@numpy', MIXNORM_CHECK_QUICK='1')
    # the premise: Chainer is not there but through .whl/
    r = subprocess.run(['python3', '-c', 'import chainer'], env=env,
                       capture_output=True, text=True)
    assert 'No module named' in r.stderr, r.stderr
    return {'repo': repo, 'env': env, 'base': base}


def _check(machine, name, args=(), cwd='', **variables):
    """Runs the script from the folder ``cwd`` of the copy, its OUT the
    folder ``name`` beside the copy (given relative to ``cwd``)."""
    out = str(machine['base'] / name)
    cwd = os.path.join(machine['repo'], cwd)
    script = os.path.relpath(os.path.join(machine['repo'], 'benchmarks',
                                          'gpu_check.sh'), cwd)
    env = dict(machine['env'], OUT=os.path.relpath(out, cwd), **variables)
    r = subprocess.run(['bash', script] + list(args), cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=900)
    with open(os.path.join(out, 'gpu_check.log')) as f:
        log = f.read()
    assert r.stdout == log  # the whole output, tee finished
    assert r.returncode == 0, log
    assert log.endswith('=== done, status 0\n'), log
    with tarfile.open(os.path.join(out, 'logs.tgz')) as t:
        logs = {os.path.normpath(n) for n in t.getnames()} - {'.'}
    return log, sorted(os.listdir(out)), logs


def _exits(log):
    return dict(re.findall(r'^=== (\w+): exit (\d+.*)$', log, re.M))


def _installed_chainer(machine, log):
    site = os.path.join(machine['repo'], '.site')
    assert os.path.isfile(os.path.join(site, 'chainer', '__init__.py'))
    assert os.path.isfile(os.path.join(site, 'typing_extensions.py'))
    assert os.path.isfile(os.path.join(site, 'threadpoolctl.py'))
    assert 'chainer 7.8.1 from {}\ncuda False'.format(
        os.path.join(site, 'chainer')) in log


def test_the_check(machine):
    """`bash benchmarks/gpu_check.sh`: install, import, the GPU tests (all
    skipped here), the five benchmarks (breakdown: --help)."""
    log, out, logs = _check(machine, 'out-check')
    assert '=== dry run on @numpy: CUDA not required, GPU tests skipped, ' \
        'breakdown.py --help only' in log
    exits = _exits(log)
    # pytest collects no test without CuPy (exit 5), skips them all with it
    assert exits.pop('tests') in ('5 (accepted in a dry run)', '0')
    assert exits == {'install': '0', 'import': '0', 'layer': '0', 'conv': '0',
                     'step': '0', 'breakdown': '0', 'gmm': '0'}
    _installed_chainer(machine, log)
    assert 'usage: breakdown.py' in log
    assert out == ['conv-gpu.md', 'env.txt', 'gpu_check.log', 'layer-gpu.md',
                   'logs.tgz', 'step-gpu.md']
    assert logs == {'install.log', 'import.log', 'tests.log', 'layer.log',
                    'conv.log', 'step.log', 'breakdown.log', 'gmm.log',
                    'gmm-gpu.md'}
    assert _changed(machine['repo']) == []


def test_the_study(machine):
    """`bash benchmarks/gpu_check.sh --no-checks --study FILE` on subsets
    (the report comes from the runs folder), over a stale .site, as a warm
    machine keeps it from the call before; from another folder, OUT and
    the study file given relative to it."""
    stale = os.path.join(machine['repo'], '.site', 'chainer')
    os.makedirs(stale, exist_ok=True)
    with open(os.path.join(stale, '__init__.py'), 'w') as f:
        f.write('raise ImportError("a stale .site")\n')
    log, out, logs = _check(
        machine, 'out-study', ['--no-checks', '--study',
                               '../.data/tiny.yaml'], cwd='benchmarks',
        MIXNORM_CHECK_BUDGET='900',
        MIXNORM_CHECK_TRAIN_ARGS='--train-subset 20 --test-subset 10')
    assert _exits(log) == {'install': '0', 'import': '0', 'decode': '0',
                           'study': '0', 'pack': '0'}
    _installed_chainer(machine, log)
    assert out == ['gpu_check.log', 'logs.tgz', 'study-runs.tgz',
                   'study-tiny.md', 'study-tiny.png']
    assert logs == {'env.txt', 'install.log', 'import.log', 'decode.log',
                    'study.log', 'pack.log'}
    out = os.path.join(machine['base'], 'out-study')
    with open(os.path.join(out, 'study-tiny.md')) as f:
        assert 'Study file `.data/tiny.yaml`' in f.read()
    with tarfile.open(os.path.join(out, 'study-runs.tgz')) as t:
        names = set(t.getnames())
    assert {'tiny/bn-s0/log', 'tiny/mn-s0/log'} <= names, names
    assert _changed(machine['repo']) == []


def test_without_what_a_call_carries_it_stops_at_once(machine, tmp_path):
    """No study file, no data or no wheels: it says so and runs no step."""
    repo = machine['repo']
    env = dict(machine['env'], OUT=str(tmp_path / 'out'))

    def check(*args):
        r = subprocess.run(['bash', 'benchmarks/gpu_check.sh'] + list(args),
                           cwd=repo, env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and r.stdout == '', r.stdout + r.stderr
        assert not os.path.exists(tmp_path / 'out' / 'gpu_check.log')
        return r.stderr

    assert '--study needs the study file (studies/none.yaml) and ' \
        '.data/cifar10-jpeg.zip (carry .data)' in check('--study',
                                                      'studies/none.yaml')
    zip_path = os.path.join(repo, '.data', 'cifar10-jpeg.zip')
    os.rename(zip_path, zip_path + '.away')
    try:
        assert '--study needs' in check('--study', 'studies/bn2-mn2.yaml')
    finally:
        os.rename(zip_path + '.away', zip_path)
    os.rename(os.path.join(repo, '.whl'), os.path.join(repo, '.whl.away'))
    try:
        assert 'no .whl/chainer-*.whl: prepare and carry .whl' in check()
    finally:
        os.rename(os.path.join(repo, '.whl.away'), os.path.join(repo, '.whl'))
