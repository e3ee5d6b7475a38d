#!/usr/bin/env bash
# Issue 4's device check, in one call on a GPU machine (at most 8 minutes:
# the steps' time limits add up to 480 s):
# installs the wheels carried in .whl/ (Chainer 7.8.1 and the pure-Python
# packages it and pytest need) into .site, runs the GPU tests, then the
# layer and GMM benchmarks; results and logs go to $OUT.
#
# From a session with a GPU lease (the machine has Python 3.12, NumPy 2.x and
# cupy-cuda13x, no Chainer, no cuDNN):
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
# Prepare .whl/ first, on the development machine:
#   python -m pip wheel --no-deps --no-build-isolation chainer==7.8.1 -w .whl
#   python -m pip wheel --no-deps six filelock typing_extensions pytest \
#       iniconfig pluggy packaging pygments -w .whl
set -u
# tests/test_gpu.py turns the kernels on itself; the benchmarks need
# MIXNORM_KERNELS=1 (set below): the kernel path is off by default.
OUT=${OUT:-/tmp/mixnorm-gpu-check}
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
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 60 "$OUT/$name.log"
    echo "=== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 --version
    python3 -c 'import numpy, cupy; print("numpy", numpy.__version__,
"cupy", cupy.__version__, "CUDA", cupy.cuda.runtime.runtimeGetVersion())'
    lscpu | grep -E 'Model name|^CPU\(s\)'
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step install 60 python3 -m pip install -q --no-index --no-deps \
    --target .site .whl/*.whl
step import 40 python3 -c 'import mixnorm, chainer
from chainer.backends import cuda
print("chainer", chainer.__version__, "cuda", cuda.available,
      "cudnn", cuda.cudnn_enabled)
assert cuda.available, "Chainer does not see CUDA"'
step tests 180 python3 -m pytest -m gpu -v -rs -p no:cacheprovider \
    tests/test_gpu.py
export MIXNORM_KERNELS=1  # the benchmarks time the kernel path
step layer 100 python3 benchmarks/layer.py --device @cupy:0 \
    --out "$OUT/layer-gpu.md"
step gmm 100 python3 benchmarks/gmm.py --device @cupy:0 \
    --out "$OUT/gmm-gpu.md"
echo "=== done, status $status"
exit $status
