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

# choose WHICH CHOICE...: print WHICH if it is one of the choices, all of
# them for "all", else the usage error (exit 2).
choose() {
  local which=$1 c
  shift
  [ "$which" = all ] && { echo "$*"; return; }
  for c in "$@"; do [ "$c" = "$which" ] && { echo "$c"; return; }; done
  usage_error "$(IFS='|'; echo "$*")|all"
}

# dataset_table N [cifar10|cifar100|all] [TRAIN_ARGS...]: train every
# configs/tableN/<dataset>/*.yaml (train_configs) and report Table N into
# results/tableN.md, or into the runs folder for reduced runs.
dataset_table() {
  local n=$1 which=${2:-all} sets ds
  [ $# -gt 1 ] && shift 2 || shift
  sets=$(choose "$which" cifar10 cifar100) || exit 2
  for ds in $sets; do
    train_configs configs/table"$n"/"$ds"/*.yaml -- "$@"
  done
  "$py" -m train.report table "$n" --dataset "$which" \
    --configs configs/table"$n" --runs "$runs_root/table$n" \
    --out results/table"$n".md --reduced-out "$runs_root/table$n/table$n.md"
}
