#!/usr/bin/env bash
# The device check, in one call on a GPU machine:
#   bash benchmarks/gpu_check.sh [--study STUDY.yaml] [--no-checks]
# installs the wheels carried in .whl/ (Chainer 7.8.1 and the pure-Python
# packages it and pytest need) into .site, runs the GPU tests, then the
# layer, convolution, training-step, breakdown and GMM benchmarks (the
# steps' limits add up to 600 s, each far above its expected time;
# --no-checks skips the tests and benchmarks).  With --study FILE, and
# only if the GPU tests passed (or were skipped), it then runs that study
# (scripts/study.sh, sequentially) on .data/cifar10-jpeg.zip (copy the zip
# there, an ignored folder, for that call only) in what is left of
# MIXNORM_CHECK_BUDGET (default 570 s, for a 600 s call) less 60 s, with
# runs in runs/studies/<name>/; it is skipped when under 120 s are left.
# The study's report and plot come back in $OUT, and $OUT/study-runs.tgz
# holds what a later call needs to continue it (`python -m train.study
# pack`: no model.npz, no snapshots of finished runs): unpack it with
# `tar xzf study-runs.tgz -C runs/studies` and carry runs/studies/<name>.
# A run cut by the budget keeps its finished epochs and resumes from them.
# Past runs and their durations: benchmarks/results/gpu-check-history.md.
# Dry run on a CPU, with python3 on PATH running an environment of
# scripts/setup_env.sh (the GPU steps fail, the rest runs; 2 min):
#   OUT=/tmp/out MIXNORM_CHECK_BUDGET=200 MIXNORM_CHECK_DEVICE=@numpy \
#   MIXNORM_CHECK_TRAIN_ARGS="--train-subset 256 --test-subset 16" \
#   bash benchmarks/gpu_check.sh --no-checks --study studies/bn2-mn2.yaml
# Results go to $OUT (at most 8 files come back: step logs are in logs.tgz,
# and so is env.txt with --study).
#
# From a session with a GPU lease (the machine has Python 3.12, NumPy 2.x and
# cupy-cuda13x, no Chainer, no cuDNN):
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=480)
#   run(command="bash benchmarks/gpu_check.sh --no-checks --study "
#               "studies/bn2-mn2.yaml", carry=[".whl", ".data"],
#       timeout_s=600)
# Prepare .whl/ first, on the development machine:
#   python -m pip wheel --no-deps --no-build-isolation chainer==7.8.1 -w .whl
#   python -m pip wheel --no-deps six filelock typing_extensions pytest \
#       iniconfig pluggy packaging pygments -w .whl
set -u
study=
checks=1
while [ $# -gt 0 ]; do
    case $1 in
        --study) study=${2:?--study needs a study file}; shift ;;
        --no-checks) checks=0 ;;
        *) echo "usage: $0 [--study STUDY.yaml] [--no-checks]" >&2; exit 2 ;;
    esac
    shift
done
budget=${MIXNORM_CHECK_BUDGET:-570}  # seconds for the whole call
device=${MIXNORM_CHECK_DEVICE:-@cupy:0}
read -r -a train_args <<< "${MIXNORM_CHECK_TRAIN_ARGS:-}"
OUT=${OUT:-/tmp/mixnorm-gpu-check}
LOGS=$(mktemp -d)
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONPATH=.site:.
export PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR=/tmp/mixnorm-cupy-cache
status=0

# warnings that every Python step prints on this machine
noise='UserWarning|warnings.warn|cuDNN is not|reinstall CuPy|install-cudnn|_bootstrap._gcd'

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log it
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s)"
    timeout -k 10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
    local rc=$?
    grep -v -E "$noise" "$LOGS/$name.log" | tail -n 70
    echo "=== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
    return "$rc"
}

# with a study, env.txt goes into logs.tgz: at most 8 files come back
envfile=$OUT/env.txt
[ -n "$study" ] && envfile=$LOGS/env.txt
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 --version
    python3 -c 'import numpy, cupy; print("numpy", numpy.__version__,
"cupy", cupy.__version__, "CUDA", cupy.cuda.runtime.runtimeGetVersion())'
    lscpu | grep -E 'Model name|^CPU\(s\)'
    date -u +%Y-%m-%dT%H:%M:%SZ
} > "$envfile" 2>&1
cat "$envfile"

step install 60 python3 -m pip install -q --no-index --no-deps \
    --target .site .whl/*.whl
step import 40 python3 -c 'import mixnorm, chainer
from chainer.backends import cuda
print("chainer", chainer.__version__, "cuda", cuda.available,
      "cudnn", cuda.cudnn_enabled)
assert cuda.available, "Chainer does not see CUDA"'
tests_ok=0
if [ "$checks" = 1 ]; then
    # tests/test_gpu.py turns the kernels on itself
    step tests 150 python3 -m pytest -m gpu -v -rs -p no:cacheprovider \
        --tb=short --durations=8 tests/test_gpu.py
    tests_ok=$?
    # a CPU dry run has no GPU test to run (pytest exit 5: all skipped)
    [ "$device" != "${device#@numpy}" ] && [ "$tests_ok" -eq 5 ] && tests_ok=0
    export MIXNORM_KERNELS=1  # the benchmarks time the kernel path (the default)
    step layer 90 python3 benchmarks/layer.py --device "$device" \
        --out "$OUT/layer-gpu.md"
    step conv 50 python3 benchmarks/conv.py --device "$device" \
        --out "$OUT/conv-gpu.md"
    step step 130 python3 benchmarks/step.py --device "$device" \
        --out "$OUT/step-gpu.md"
    step breakdown 40 python3 benchmarks/breakdown.py --device "$device" \
        --out "$OUT/breakdown-gpu.md"
    step gmm 40 python3 benchmarks/gmm.py --device "$device" \
        --out "$LOGS/gmm-gpu.md"
    tar czf "$OUT/logs.tgz" -C "$LOGS" .  # again at the end
fi

if [ -n "$study" ] && [ "$tests_ok" -ne 0 ]; then
    echo "=== study skipped: the GPU tests failed"
elif [ -n "$study" ] && [ $((budget - SECONDS)) -lt 120 ]; then
    echo "=== study skipped: under 120 s of the budget left"
elif [ -n "$study" ]; then
    data=.data/cifar10-jpeg.zip
    runs=${MIXNORM_RUNS:-runs}/studies  # as scripts/study.sh
    export MIXNORM_CACHE=/tmp/mixnorm-cache
    step decode 90 python3 -c "from train.data import load_dataset
load_dataset('cifar10', '$data')"
    # what is left of the budget, less 60 s for packing; the study stops
    # its runs 30 s before its own budget ends and writes its report
    limit=$((budget - SECONDS - 60))
    echo "=== study $study, sequential, budget ${limit}s ($(date -u +%H:%M:%S))"
    MIXNORM_PYTHON=python3 timeout -k 10 $((limit + 60)) bash scripts/study.sh \
        "$study" --budget "$limit" --results "$OUT" --data "$data" \
        --device "$device" ${train_args[@]+"${train_args[@]}"} 2>&1 \
        | tee "$LOGS/study.log" | grep -v -E "$noise"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    # a study on subsets reports into its runs folder
    cp "$runs"/*/study-*.md "$runs"/*/study-*.png "$OUT"/ 2> /dev/null
    step pack 30 python3 -m train.study pack "$study" "$OUT/study-runs.tgz" \
        --runs "$runs"
fi
tar czf "$OUT/logs.tgz" -C "$LOGS" .
echo "=== done, status $status"
exit $status
