"""README.md's Install block, run as written in a new virtual environment
with pip's cache off (a warm cache hides a failing build of Chainer)."""
import os
import re
import subprocess
import sys

import pytest

from tinydata import ROOT

VENV = '.venv/lib'


def install_block():
    """The first bash block of README.md's Install section."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    section = text.split('\n## Install\n', 1)[1].split('\n## ', 1)[0]
    return re.search(r'```bash\n(.*?)```', section, re.S).group(1)


def test_readme_install_block_works_without_pip_cache(tmp_path):
    block = install_block()
    assert 'pip install -e .' in block and VENV in block
    # the block as written, but its environment under tmp_path and made by
    # this interpreter's Python (pinned: 3.10/3.11, modern: 3.12+)
    script = block.replace(VENV, str(tmp_path / 'venv')).replace(
        'python3 -m venv', '"$BASE_PYTHON" -m venv')
    base = os.path.join(sys.base_prefix, 'bin', 'python3')
    if not os.path.exists(base):
        pytest.skip('no base interpreter at ' + base)
    env = dict(os.environ, PIP_NO_CACHE_DIR='1', BASE_PYTHON=base,
               PIP_DISABLE_PIP_VERSION_CHECK='1')
    env.pop('PYTHONPATH', None)
    done = subprocess.run(['bash', '-euo', 'pipefail', '-c', script],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'mixnorm 0.1.0 chainer 7.8.1' in done.stdout
