#!/usr/bin/env bash
# The device check, in one call on a GPU machine:
#   bash benchmarks/gpu_check.sh [--train EPOCHS]
# installs the wheels carried in .whl/ (Chainer 7.8.1 and the pure-Python
# packages it and pytest need) into .site, runs the GPU tests, then the
# layer, GMM and breakdown benchmarks (the steps' limits add up to 510 s).
# With --train N, and only if the GPU tests passed, it then trains BN-2 and
# MN-2 of the CIFAR CNN (Table 2, CIFAR-10) side by side for N epochs on
# .data/cifar10-jpeg.zip (copy the zip there, an ignored folder, for that
# call only), compares them and re-evaluates both under every inference
# rule.  The training gets what is left of MIXNORM_CHECK_BUDGET (default
# 570 s, for a 600 s call) after the checks, less 150 s for the comparison;
# it is skipped when under 330 s are left.  A run cut by the budget keeps
# its finished epochs in its log (in logs.tgz).  Past runs and their
# durations: benchmarks/results/gpu-check-history.md.
# Dry run on a CPU (needs Pillow; the GPU steps fail, the rest runs):
#   OUT=/tmp/out MIXNORM_CHECK_BUDGET=1500 MIXNORM_CHECK_DEVICE=@numpy \
#   MIXNORM_CHECK_TRAIN_ARGS="--train-subset 256 --test-subset 128" \
#   bash benchmarks/gpu_check.sh --train 1
# Results go to $OUT (at most 8 files come back: step logs are in logs.tgz).
#
# From a session with a GPU lease (the machine has Python 3.12, NumPy 2.x and
# cupy-cuda13x, no Chainer, no cuDNN):
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=480)
#   run(command="bash benchmarks/gpu_check.sh --train 25",
#       carry=[".whl", ".data"], timeout_s=600)
# Prepare .whl/ first, on the development machine:
#   python -m pip wheel --no-deps --no-build-isolation chainer==7.8.1 -w .whl
#   python -m pip wheel --no-deps six filelock typing_extensions pytest \
#       iniconfig pluggy packaging pygments -w .whl
set -u
epochs=0
[ "${1:-}" = --train ] && epochs=${2:?--train needs a number of epochs}
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

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log it
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s)"
    timeout -k 10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
    local rc=$?
    grep -v -E 'UserWarning|warnings.warn|cuDNN is not|reinstall CuPy|install-cudnn|_bootstrap._gcd' \
        "$LOGS/$name.log" | tail -n 70
    echo "=== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
    return "$rc"
}

any_alive() {  # any_alive PID...: whether one of them still runs
    local p
    for p in "$@"; do kill -0 "$p" 2> /dev/null && return 0; done
    return 1
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 --version
    python3 -c 'import numpy, cupy; print("numpy", numpy.__version__,
"cupy", cupy.__version__, "CUDA", cupy.cuda.runtime.runtimeGetVersion())'
    lscpu | grep -E 'Model name|^CPU\(s\)'
    date -u +%Y-%m-%dT%H:%M:%SZ
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step install 60 python3 -m pip install -q --no-index --no-deps \
    --target .site .whl/*.whl
step import 40 python3 -c 'import mixnorm, chainer
from chainer.backends import cuda
print("chainer", chainer.__version__, "cuda", cuda.available,
      "cudnn", cuda.cudnn_enabled)
assert cuda.available, "Chainer does not see CUDA"'
# tests/test_gpu.py turns the kernels on itself
step tests 150 python3 -m pytest -m gpu -v -rs -p no:cacheprovider \
    --tb=short --durations=8 tests/test_gpu.py
tests_ok=$?
# a CPU dry run has no GPU test to run (pytest exit 5: all skipped)
[ "$device" != "${device#@numpy}" ] && [ "$tests_ok" -eq 5 ] && tests_ok=0
export MIXNORM_KERNELS=1  # the benchmarks time the kernel path (the default)
step layer 90 python3 benchmarks/layer.py --device "$device" \
    --out "$OUT/layer-gpu.md"
step gmm 90 python3 benchmarks/gmm.py --device "$device" \
    --out "$OUT/gmm-gpu.md"
step breakdown 40 python3 benchmarks/breakdown.py --device "$device" \
    --out "$OUT/breakdown-gpu.md"
MIXNORM_KERNELS=0 step breakdown-generic 40 python3 benchmarks/breakdown.py \
    --device "$device" --out "$LOGS/breakdown-gpu-generic.md"

tar czf "$OUT/logs.tgz" -C "$LOGS" .  # again at the end
if [ "$epochs" -gt 0 ] && [ "$tests_ok" -ne 0 ]; then
    echo "=== training skipped: the GPU tests failed"
elif [ "$epochs" -gt 0 ] && [ $((budget - SECONDS)) -lt 330 ]; then
    echo "=== training skipped: under 330 s of the budget left"
elif [ "$epochs" -gt 0 ]; then
    data=.data/cifar10-jpeg.zip
    runs=/tmp/mixnorm-runs
    export MIXNORM_CACHE=/tmp/mixnorm-cache
    step decode 90 python3 -c "from train.data import load_dataset
load_dataset('cifar10', '$data')"
    # what is left of the budget, less 150 s for the comparison and the
    # re-evaluations; a run cut short keeps the epochs it finished
    limit=$((budget - SECONDS - 150))
    echo "=== training BN-2 and MN-2 side by side, $epochs epochs, at most ${limit}s ($(date -u +%H:%M:%S))"
    pids=()
    for row in bn2 mn2; do
        timeout -k 10 "$limit" python3 -m train \
            --config "configs/table2/cifar10/$row.yaml" --out "$runs/$row" \
            --epochs "$epochs" --data "$data" --device "$device" \
            ${train_args[@]+"${train_args[@]}"} > "$LOGS/train-$row.log" 2>&1 &
        pids+=($!)
    done
    # progress, in case the call is cut; wait on the runs' pids only (a
    # bare `wait` also waits for the tee above, which never ends)
    while any_alive "${pids[@]}"; do
        sleep 30
        for row in bn2 mn2; do
            echo "[$row $(date -u +%H:%M:%S)] $(tail -n 1 "$LOGS/train-$row.log")"
        done
    done
    wait "${pids[@]}"
    echo "=== training done ($(date -u +%H:%M:%S))"
    for row in bn2 mn2; do
        tail -n 3 "$LOGS/train-$row.log"
        cp "$runs/$row/log" "$LOGS/log-$row.json" 2>/dev/null
    done
    step compare 30 python3 -m train.report compare "$runs/bn2" \
        "$runs/mn2" --out "$OUT/compare.md" --plot "$LOGS/compare.png"
    for row in bn2 mn2; do
        step "evaluate-$row" 45 python3 -m train.evaluate "$runs/$row" \
            --out "$LOGS/inference-$row.md"
        cat "$LOGS/inference-$row.md" 2>/dev/null
    done
fi
tar czf "$OUT/logs.tgz" -C "$LOGS" .
echo "=== done, status $status"
exit $status
