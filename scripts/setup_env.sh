#!/usr/bin/env bash
# Create (or reuse) a virtual environment with Chainer 7.8.1 and mixnorm.
#
#   bash scripts/setup_env.sh pinned   # .venv/pinned: Python 3.11/3.10, NumPy 1.26, setuptools < 74
#   bash scripts/setup_env.sh modern   # .venv/modern: Python >= 3.12, NumPy 2.x, newest setuptools
#   bash scripts/setup_env.sh --find modern   # the interpreter it would use, or exit 1
#
# Chainer 7.8.1 is sdist-only and its setup.py imports pkg_resources, so it is
# built with setuptools < 82 and --no-build-isolation; the modern environment
# then upgrades setuptools to the newest release (mixnorm's compat layer makes
# Chainer import there).  CUDA: set MIXNORM_CUDA=cuda12 or cuda13 to add CuPy.
# Prints the environment's python path on its last line.
set -euo pipefail
find_only=0
[ "${1:-}" = --find ] && { find_only=1; shift; }
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
  *) echo "usage: $0 [--find] pinned|modern [DIR]" >&2; exit 2 ;;
esac
[ "$find_only" = 1 ] && { echo "$py"; exit 0; }

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
step() {  # step TEXT COMMAND...: a line now and every 20 s while it runs
  local text=$1 ticker rc=0
  shift
  echo "setup_env: $text" >&2
  ( while sleep 20 > /dev/null 2>&1 < /dev/null; do
      echo "setup_env: $text: still running (${SECONDS} s so far)"
    done ) >&2 &
  ticker=$!
  "$@" || rc=$?
  kill "$ticker" 2> /dev/null || true
  return "$rc"
}
step "[1/3] setuptools, wheel, NumPy" pip install "$tools_spec" wheel "$numpy_spec" >&2
step "[2/3] Chainer 7.8.1 (built from source, a few minutes)" pip install --no-build-isolation chainer==7.8.1 >&2
[ "$kind" = modern ] && pip install -U setuptools >&2
extras=test,multinode
# modern: NVRTC, so that the tests compile the CUDA sources without a GPU
[ "$kind" = modern ] && [ "$(uname -sm)" = "Linux x86_64" ] && extras="$extras,nvrtc"
[ -n "${MIXNORM_CUDA:-}" ] && extras="$extras,$MIXNORM_CUDA"
step "[3/3] mixnorm with extras $extras" pip install --no-build-isolation -e "$root[$extras]" "$numpy_spec" >&2
echo "$stamp" > "$venv/.mixnorm-ready"
echo "setup_env: $venv ready in ${SECONDS} s" >&2
echo "$venv/bin/python"
