#!/usr/bin/env bash
# The device check, one command on a GPU machine, in the repository's root:
#   bash benchmarks/gpu_check.sh [--study STUDY.yaml] [--no-checks]
# installs the wheels carried in .whl/ (Chainer 7.8.1 and what it needs
# beyond the machine's packages) into .site, runs the GPU tests, then the
# layer, convolution, training-step, breakdown and GMM benchmarks (the
# steps' limits add up to 600 s, each far above its expected time;
# --no-checks skips the tests and benchmarks).  With --study FILE, and
# only if the GPU tests passed (or were skipped), it then runs that study
# (scripts/study.sh, sequentially) on .data/cifar10-jpeg.zip in what is
# left of MIXNORM_CHECK_BUDGET (default 570 s, for a 600 s call) less
# 60 s, with runs in runs/studies/<name>/; it is skipped when under 120 s
# are left.  The study's report and plot come back in $OUT, and
# $OUT/study-runs.tgz holds what a later call needs to continue it
# (`python -m train.study pack`: no model.npz, no snapshots of finished
# runs).  A run cut by the budget keeps its finished epochs and resumes
# from them.  Past runs and their durations:
# benchmarks/results/gpu-check-history.md.
#
# Results go to $OUT (default /tmp/mixnorm-gpu-check; at most 8 files come
# back from a GPU machine): gpu_check.log and logs.tgz (every step's log),
# then without --study env.txt and the benchmark tables (*-gpu.md; gmm's
# is in logs.tgz), with --study the report (study-<name>.md, .png) and
# study-runs.tgz, the tables and env.txt then in logs.tgz.
#
# Prepare on the development machine, in the repository's root.  .whl/
# holds Chainer and what it needs beyond what the GPU machine is known to
# have: Python 3.12, NumPy 2, cupy-cuda13x, setuptools, six, filelock,
# pytest, PyYAML, Pillow, matplotlib and scipy.  Chainer 7.8.1 requires
# numpy, six, filelock, setuptools, typing_extensions (its optimizers
# import it) and protobuf (only for chainer.links.caffe and the Caffe
# exporter, which nothing here imports); mixnorm also needs threadpoolctl.
# Chainer is an sdist whose setup.py imports pkg_resources: build it with
# a Python whose setuptools is < 82.
#   py=.venv/pinned/bin/python
#   rm -rf .whl
#   $py -m pip wheel --no-deps --no-build-isolation chainer==7.8.1 -w .whl
#   $py -m pip wheel --no-deps typing_extensions threadpoolctl -w .whl
#
# For --study, also the data, in .data/ (ignored, like .whl/):
#   mkdir -p .data && cp PATH/TO/cifar10-jpeg.zip .data/
#
# On the GPU machine, in a call of at most 600 s that carries .whl/ beside
# the working tree:
#   bash benchmarks/gpu_check.sh
# and a study, in a call of 600 s that carries .whl/ and .data/:
#   bash benchmarks/gpu_check.sh --no-checks --study studies/bn2-mn2.yaml
# To continue that study in a later call, unpack its runs here and carry
# runs/studies/bn2-mn2 with .whl/ and .data/:
#   mkdir -p runs/studies && tar xzf study-runs.tgz -C runs/studies
#
# Other settings: MIXNORM_CHECK_DEVICE (default @cupy:0),
# MIXNORM_CHECK_TRAIN_ARGS (more `python -m train` arguments for the
# study's runs), OUT.  A dry run on a CPU: MIXNORM_CHECK_DEVICE=@numpy;
# then the import step does not require CUDA, the GPU tests are all
# skipped (pytest's exit 5 is accepted) and breakdown.py, which needs
# CuPy, only prints its --help; MIXNORM_CHECK_QUICK=1 passes --quick to
# the other benchmarks.  python3 on PATH: any environment with the
# project's requirements (tests/benchmarks/test_gpu_check.py makes one of
# the GPU machine's packages alone and rehearses both commands above so,
# the study on tiny data, from a copy of the working tree):
#   OUT=/tmp/out MIXNORM_CHECK_DEVICE=@numpy MIXNORM_CHECK_QUICK=1 \
#       bash benchmarks/gpu_check.sh
#   OUT=/tmp/out MIXNORM_CHECK_BUDGET=200 MIXNORM_CHECK_DEVICE=@numpy \
#       MIXNORM_CHECK_TRAIN_ARGS="--train-subset 256 --test-subset 16" \
#       bash benchmarks/gpu_check.sh --no-checks --study studies/bn2-mn2.yaml
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
quick=()
[ "${MIXNORM_CHECK_QUICK:-0}" = 1 ] && quick=(--quick)
dry=0
[ "$device" != "${device#@numpy}" ] && dry=1
OUT=${OUT:-/tmp/mixnorm-gpu-check}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)  # absolute: the cd below
root=$(cd "$(dirname "$0")/.." && pwd)
# the study file as seen from the root (its report names it)
[ -n "$study" ] && [ -f "$study" ] &&
    study=$(realpath --relative-to="$root" "$study")
cd "$root"
data=.data/cifar10-jpeg.zip
# what a call must carry: missing, it would fail only after minutes
if ! compgen -G '.whl/chainer-*.whl' > /dev/null; then
    echo "gpu_check: no .whl/chainer-*.whl: prepare and carry .whl" \
         "(see $0)" >&2
    exit 2
fi
if [ -n "$study" ] && { [ ! -f "$study" ] || [ ! -f "$data" ]; }; then
    echo "gpu_check: --study needs the study file ($study) and $data" \
         "(carry .data)" >&2
    exit 2
fi
LOGS=$(mktemp -d)
exec > >(tee "$OUT/gpu_check.log") 2>&1
tee_pid=$!
export PYTHONPATH=.site:.
export PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR=/tmp/mixnorm-cupy-cache
status=0

# warnings that every Python step prints on this machine
noise='UserWarning|warnings.warn|cuDNN is not|reinstall CuPy|install-cudnn|_bootstrap._gcd'

step() {  # step NAME SECONDS [--accept RC] COMMAND...: run with a limit, log
    local name=$1 limit=$2 accept=0 note=
    shift 2
    if [ "$1" = --accept ]; then accept=$2; shift 2; fi
    echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s)"
    timeout -k 10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
    local rc=$?
    grep -v -E "$noise" "$LOGS/$name.log" | tail -n 70
    if [ "$rc" -ne 0 ] && [ "$rc" -eq "$accept" ]; then
        note=" (accepted in a dry run)"
    elif [ "$rc" -ne 0 ]; then
        status=1
    fi
    echo "=== $name: exit $rc$note"
    return "$rc"
}

# with a study, env.txt and the tables go into logs.tgz: at most 8 files
# come back
res=$OUT
[ -n "$study" ] && res=$LOGS
[ "$dry" = 1 ] && echo "=== dry run on $device: CUDA not required, GPU" \
    "tests skipped, breakdown.py --help only"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 --version
    python3 -c 'import numpy, cupy; print("numpy", numpy.__version__,
"cupy", cupy.__version__, "CUDA", cupy.cuda.runtime.runtimeGetVersion())'
    lscpu | grep -E 'Model name|^CPU\(s\)'
    date -u +%Y-%m-%dT%H:%M:%SZ
} > "$res/env.txt" 2>&1
cat "$res/env.txt"

# --upgrade: a warm machine keeps .site (ignored) from the last call
step install 60 python3 -m pip install -q --no-index --no-deps --upgrade \
    --target .site .whl/*.whl
step import 40 env MIXNORM_CHECK_DRY=$dry python3 -c 'import os
import mixnorm, chainer
from chainer.backends import cuda
print("chainer", chainer.__version__, "from",
      os.path.dirname(chainer.__file__))
print("cuda", cuda.available, "cudnn", cuda.cudnn_enabled)
assert cuda.available or os.environ["MIXNORM_CHECK_DRY"] == "1", \
    "Chainer does not see CUDA"'
tests_ok=0
if [ "$checks" = 1 ]; then
    accept=0
    # a CPU dry run has no GPU test to run (pytest exit 5: none collected)
    [ "$dry" = 1 ] && accept=5
    # tests/mixnorm/test_gpu.py turns the kernels on itself
    step tests 150 --accept "$accept" python3 -m pytest -m gpu -v -rs \
        -p no:cacheprovider --tb=short --durations=8 tests/mixnorm/test_gpu.py
    tests_ok=$?
    [ "$tests_ok" -eq "$accept" ] && tests_ok=0
    export MIXNORM_KERNELS=1  # the benchmarks time the kernel path (the default)
    step layer 90 python3 -m benchmarks.layer --device "$device" \
        ${quick[@]+"${quick[@]}"} --out "$res/layer-gpu.md"
    step conv 50 python3 -m benchmarks.conv --device "$device" \
        ${quick[@]+"${quick[@]}"} --out "$res/conv-gpu.md"
    step step 130 python3 -m benchmarks.step --device "$device" \
        ${quick[@]+"${quick[@]}"} --out "$res/step-gpu.md"
    if [ "$dry" = 1 ]; then  # CUDA events and graphs: GPU only
        step breakdown 40 python3 -m benchmarks.breakdown --help
    else
        step breakdown 40 python3 -m benchmarks.breakdown --device "$device" \
            --out "$res/breakdown-gpu.md"
    fi
    step gmm 40 python3 -m benchmarks.gmm --device "$device" \
        ${quick[@]+"${quick[@]}"} --out "$LOGS/gmm-gpu.md"
    tar czf "$OUT/logs.tgz" -C "$LOGS" .  # again at the end
fi

if [ -n "$study" ] && [ "$tests_ok" -ne 0 ]; then
    echo "=== study skipped: the GPU tests failed"
elif [ -n "$study" ] && [ $((budget - SECONDS)) -lt 120 ]; then
    echo "=== study skipped: under 120 s of the budget left"
elif [ -n "$study" ]; then
    runs=${MIXNORM_RUNS:-runs}/studies  # as scripts/study.sh
    export MIXNORM_CACHE=${MIXNORM_CACHE:-/tmp/mixnorm-cache}
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
    rc=${PIPESTATUS[0]}
    echo "=== study: exit $rc"
    [ "$rc" -eq 0 ] || status=1
    # a study on subsets reports into its runs folder
    cp "$runs"/*/study-*.md "$runs"/*/study-*.png "$OUT"/ 2> /dev/null
    step pack 30 python3 -m train.study pack "$study" "$OUT/study-runs.tgz" \
        --runs "$runs"
fi
tar czf "$OUT/logs.tgz" -C "$LOGS" .
rm -rf "$LOGS"
echo "=== done, status $status"
# $OUT/gpu_check.log is complete once tee has read everything: close its
# input, then wait for it (at most 10 s)
exec > /dev/null 2>&1
for _ in $(seq 100); do
    kill -0 "$tee_pid" 2> /dev/null || break
    sleep 0.1
done
exit $status
