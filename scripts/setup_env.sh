#!/usr/bin/env bash
# Create (or reuse) a virtual environment with Chainer 7.8.1 and mixnorm.
#
#   bash scripts/setup_env.sh pinned   # .venv/pinned: Python 3.11/3.10, NumPy 1.26, setuptools < 74
#   bash scripts/setup_env.sh modern   # .venv/modern: Python >= 3.12, NumPy 2.x, newest setuptools
#
# Chainer 7.8.1 is sdist-only and its setup.py imports pkg_resources, so it is
# built with setuptools < 82 and --no-build-isolation; the modern environment
# then upgrades setuptools to the newest release (mixnorm's compat layer makes
# Chainer import there).  CUDA: set MIXNORM_CUDA=cuda12 or cuda13 to add CuPy.
# Prints the environment's python path on its last line.
set -euo pipefail
kind=${1:-pinned}
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${2:-$root/.venv/$kind}

find_python() {  # find_python 3.11 3.10 ... -> first interpreter found
  local v p
  for v in "$@"; do
    for p in "$(command -v python$v 2>/dev/null)" \
             "$HOME"/.pyenv/versions/$v*/bin/python$v /usr/local/bin/python$v \
             /usr/bin/python$v; do
      [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import venv' 2>/dev/null \
        && { echo "$p"; return 0; }
    done
  done
  return 1
}

case $kind in
  pinned) py=$(find_python 3.11 3.10) || { echo "setup_env: need Python 3.10 or 3.11" >&2; exit 1; }
          numpy_spec='numpy==1.26.*'; tools_spec='setuptools>=65,<74' ;;
  modern) py=$(find_python 3.12 3.13) || { echo "setup_env: need Python 3.12 or 3.13" >&2; exit 1; }
          numpy_spec='numpy>=2'; tools_spec='setuptools<82' ;;
  *) echo "usage: $0 pinned|modern [DIR]" >&2; exit 2 ;;
esac

if [ "$kind" = pinned ] && [ "${MIXNORM_CUDA:-}" = cuda13 ]; then
  echo "setup_env: CuPy for CUDA 13 (CuPy 14) needs NumPy 2; use the modern" \
       "environment (MIXNORM_ENV=modern for the scripts) or MIXNORM_CUDA=cuda12" >&2
  exit 2
fi
stamp="$kind $(cat "$root/setup.py" "$0" | cksum) ${MIXNORM_CUDA:-}"
if [ -f "$venv/.mixnorm-ready" ] && [ "$(cat "$venv/.mixnorm-ready")" = "$stamp" ]; then
  echo "$venv/bin/python"; exit 0
fi
echo "setup_env: building $venv from $py" >&2
rm -rf "$venv"
"$py" -m venv "$venv"
pip() { "$venv/bin/python" -m pip -q --disable-pip-version-check "$@"; }
pip install "$tools_spec" wheel "$numpy_spec" >&2
pip install --no-build-isolation chainer==7.8.1 >&2
[ "$kind" = modern ] && pip install -U setuptools >&2
extras=test,multinode
# modern: NVRTC, so that the tests compile the CUDA sources without a GPU
[ "$kind" = modern ] && [ "$(uname -sm)" = "Linux x86_64" ] && extras="$extras,nvrtc"
[ -n "${MIXNORM_CUDA:-}" ] && extras="$extras,$MIXNORM_CUDA"
pip install --no-build-isolation -e "$root[$extras]" "$numpy_spec" >&2
echo "$stamp" > "$venv/.mixnorm-ready"
echo "$venv/bin/python"
