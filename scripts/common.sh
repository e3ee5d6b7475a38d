# Sourced by the scripts: repo root as working directory, the NVIDIA driver
# found, the Python to use, and the one loop that trains a list of
# configurations.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# gpu_detect: what the NVIDIA driver offers, from nvidia-smi.  Sets
# gpu_cuda, the CUDA major version the driver supports (the "CUDA Version"
# in the header of `nvidia-smi`, else mapped from the driver's version:
# >= 580 -> 13, >= 525 -> 12, >= 450 -> 11), empty without a driver that
# lists a GPU; and gpu_text, the GPU and driver in words, or why there is
# none.
gpu_detect() {
  local query smi driver major version=unknown
  gpu_cuda=
  if ! command -v nvidia-smi > /dev/null 2>&1; then
    gpu_text="no NVIDIA driver (nvidia-smi is not on PATH)"
    return 0
  fi
  query=$(timeout 60 nvidia-smi --query-gpu=name,driver_version \
          --format=csv,noheader 2> /dev/null) || query=
  query=${query%%$'\n'*}  # the first GPU
  if [ -z "$query" ]; then
    gpu_text="no usable NVIDIA GPU (nvidia-smi lists none)"
    return 0
  fi
  driver=${query##*, }
  smi=$(timeout 60 nvidia-smi 2> /dev/null) || smi=
  if [[ $smi =~ CUDA\ Version:\ *(([0-9]+)\.[0-9]+) ]]; then
    gpu_cuda=${BASH_REMATCH[2]}
    version=${BASH_REMATCH[1]}
  elif [[ $driver =~ ^([0-9]+)\. ]]; then
    major=${BASH_REMATCH[1]}
    if [ "$major" -ge 580 ]; then gpu_cuda=13
    elif [ "$major" -ge 525 ]; then gpu_cuda=12
    elif [ "$major" -ge 450 ]; then gpu_cuda=11
    fi
    version="${gpu_cuda:-unknown} (from the driver's version)"
  fi
  gpu_text="${query%%,*} (driver $driver, CUDA $version)"
}

# The Python: the interpreter named by MIXNORM_PYTHON, else the environment
# that `scripts/setup_env.sh $MIXNORM_ENV` builds with CuPy for
# $MIXNORM_CUDA (cuda12 | cuda13 | empty: none).  What the user leaves
# unset follows the driver: CUDA 13 or newer -> modern + cuda13 (pinned +
# cuda12 with MIXNORM_ENV=pinned: the driver runs CUDA 12 code too), CUDA
# 12 -> pinned + cuda12, no driver or an older one -> no CuPy, and modern
# where a Python 3.12/3.13 is installed, else pinned.  On the CPU modern is
# the faster one: NumPy 2's OpenBLAS knows newer processors, where NumPy
# 1.26's (0.3.23) may fall back to generic kernels (benchmarks/results/
# step-cpu.md: 46 against 252 GFLOP/s on the development machine).
# MIXNORM_DRY_RUN=1 makes the choice but builds nothing (main.sh only).
gpu_detect
if [ -n "${MIXNORM_PYTHON:-}" ]; then
  py=$MIXNORM_PYTHON
  env_text="MIXNORM_PYTHON=$py"
else
  env_kind=${MIXNORM_ENV:-}
  if [ -n "${MIXNORM_CUDA+set}" ]; then env_cuda=$MIXNORM_CUDA
  elif [ "${gpu_cuda:-0}" -ge 13 ] && [ "$env_kind" != pinned ]; then
    env_cuda=cuda13
  elif [ "${gpu_cuda:-0}" -ge 12 ]; then env_cuda=cuda12
  else env_cuda=
  fi
  if [ -z "$env_kind" ]; then
    if [ "$env_cuda" = cuda13 ]; then env_kind=modern
    elif [ -z "$env_cuda" ] && bash scripts/setup_env.sh --find modern > /dev/null 2>&1; then
      env_kind=modern
    else env_kind=pinned
    fi
  fi
  env_text=".venv/$env_kind (scripts/setup_env.sh $env_kind, MIXNORM_CUDA=${env_cuda:-none})"
  if [ "${MIXNORM_DRY_RUN:-0}" = 1 ]; then
    py=$PWD/.venv/$env_kind/bin/python
  else
    py=$(MIXNORM_CUDA=$env_cuda bash scripts/setup_env.sh "$env_kind" | tail -n 1)
  fi
fi
echo "$(basename "$0"): NVIDIA: $gpu_text; Python: $env_text" >&2
runs_root=${MIXNORM_RUNS:-runs}

# train_configs CONFIG... [-- TRAIN_ARGS...]
# Trains configs/<path>.yaml into $runs_root/<path>, skipping finished runs
# and resuming interrupted ones; TRAIN_ARGS go to every `python -m train`.
# Prints "run i of n: CONFIG" before each.
train_configs() {
  local cfgs=() cfg rel i=0
  while [ $# -gt 0 ] && [ "$1" != -- ]; do cfgs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for cfg in "${cfgs[@]}"; do
    rel=${cfg#configs/}
    i=$((i + 1))
    echo "$(basename "$0"): run $i of ${#cfgs[@]}: $cfg" >&2
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
