# Sourced by the table scripts: repo root as working directory, the Python
# to use, and the one loop that trains a list of configurations.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# scripts/setup_env.sh ${MIXNORM_ENV:-pinned} (MIXNORM_CUDA=cuda12|cuda13
# adds CuPy; cuda13 needs MIXNORM_ENV=modern), or the interpreter named by
# MIXNORM_PYTHON.
py=${MIXNORM_PYTHON:-$(bash scripts/setup_env.sh "${MIXNORM_ENV:-pinned}" | tail -n 1)}
runs_root=${MIXNORM_RUNS:-runs}

# train_configs CONFIG... [-- TRAIN_ARGS...]
# Trains configs/<path>.yaml into $runs_root/<path>, skipping finished runs
# and resuming interrupted ones; TRAIN_ARGS go to every `python -m train`.
train_configs() {
  local cfgs=() cfg rel
  while [ $# -gt 0 ] && [ "$1" != -- ]; do cfgs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for cfg in "${cfgs[@]}"; do
    rel=${cfg#configs/}
    "$py" -m train --config "$cfg" --out "$runs_root/${rel%.yaml}" \
      --resume "$@"
  done
}

# usage_error CHOICES: print the calling script's usage and exit 2.
usage_error() {
  echo "usage: $(basename "$0") [$1] [train args...]" >&2
  exit 2
}
