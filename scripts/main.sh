#!/usr/bin/env bash
# The main job: BN-2 against MN-2 of the CIFAR CNN (Table 2, CIFAR-10),
# trained one after the other and compared side by side.
#
#   bash scripts/main.sh [--quick | --25ep | --full] [--data PATH]
#                        [other python -m train args]
#
# The device: a GPU when there is one.  scripts/common.sh reads the NVIDIA
# driver's CUDA version (nvidia-smi) and builds the matching environment
# (CUDA 12: pinned + CuPy 13; CUDA 13: modern + CuPy 14); the device is
# then the trainer's default (a GPU when CuPy sees one), or --device.
# An unusable --device (e.g. @cupy:0 without CuPy) stops it with one line
# and exit status 2.  The budget follows the usable device unless given:
#   --quick (the default on a CPU, ~11 min on 2 cores): 4 epochs on a fixed
#       10,240-image training subset (160 updates), evaluated on a fixed
#       2,000-image test subset;
#   --25ep (the default on a GPU): 25 of the paper's 100 epochs on all
#       50,000/10,000 images, Table 2's 25% column;
#   --full: the paper's budget, 100 epochs on all images.
# Data: --data PATH or MIXNORM_DATA (image folder or .zip), else CIFAR-10
# through chainer.datasets.  Runs go to runs/main/<budget>/ (or
# $MIXNORM_RUNS/main/<budget>/); re-running resumes or skips them.
# Python: see scripts/common.sh (MIXNORM_ENV, MIXNORM_CUDA, MIXNORM_PYTHON).
# MIXNORM_DRY_RUN=1 prints the device, the budget and the commands, and
# builds, trains and writes nothing.
source "$(dirname "$0")/common.sh"
budget=
device=
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) budget=quick ;;
    --25ep) budget=25ep ;;
    --full) budget=full ;;
    --device) device=${2:?--device needs a value}; args+=("$1" "$2"); shift ;;
    --device=*) device=${1#--device=}; args+=("$1") ;;
    *) args+=("$1") ;;
  esac
  shift
done
dry_run=${MIXNORM_DRY_RUN:-0}

# The device: --device, else the trainer's default, as the chosen Python
# finds it usable (python -m train.device: one line and exit 2 when it is
# not).  A dry run builds no Python: a GPU when the driver is new enough
# for CuPy here, or --device, unchecked.
checked=", the device usable here"
if [ "$dry_run" = 1 ]; then
  checked=" (dry run: the device is not checked)"
  if [ -z "$device" ]; then
    device=@numpy
    if [ "${gpu_cuda:-0}" -ge 12 ] && { [ -n "${MIXNORM_PYTHON:-}" ] || [ -n "$env_cuda" ]; }; then
      device=@cupy:0
    fi
  fi
else
  if ! found=$("$py" -m train.device ${device:+"$device"} 2>&1); then
    found=${found##*$'\n'}
    echo "main.sh: error: ${found#train.device: error: }" >&2
    exit 2
  fi
  device=${found##*$'\n'}
fi
case $device in
  @cupy*) device_text="$device, $gpu_text" ;;
  *) device_text="$device (CPU; NVIDIA: $gpu_text)"
     if [ "${gpu_cuda:-0}" -ge 12 ]; then
       device_text="$device_text; CuPy does not see the GPU in $py"
     elif [ -n "$gpu_cuda" ]; then
       device_text="$device_text; CuPy here needs a CUDA 12 or 13 driver"
     fi ;;
esac
if [ -z "$budget" ]; then
  case $device in @cupy*) budget=25ep ;; *) budget=quick ;; esac
  budget_why="chosen for $device$checked; choose with --quick, --25ep or --full"
else
  budget_why="as asked"
fi
case $budget in
  quick) limits=(--epochs 4 --train-subset 10240 --test-subset 2000)
         budget_text="quick: 4 epochs on a fixed 10,240-image training subset (160 updates), tested on a fixed 2,000-image subset (early training on a CPU; not a reproduction)" ;;
  25ep) limits=(--epochs 25)
        budget_text="25ep: 25 of the paper's 100 epochs on all training and test images (Table 2's 25% column)" ;;
  full) limits=()
        budget_text="full: the paper's 100 epochs on all training and test images" ;;
esac
out=$runs_root/main/$budget
echo "main.sh: device $device_text"
echo "main.sh: $budget budget: $budget_why"
echo "main.sh: budget $budget_text; runs in $out"

step() {  # step COMMAND...: run it, or print it in a dry run
  if [ "$dry_run" = 1 ]; then echo "main.sh: would run: $*"; else "$@"; fi
}
start=$SECONDS
for row in bn2 mn2; do
  step "$py" -m train --config "configs/table2/cifar10/$row.yaml" \
    --out "$out/$row" --resume ${limits[@]+"${limits[@]}"} \
    ${args[@]+"${args[@]}"}
done
step "$py" -m train.report compare "$out/bn2" "$out/mn2" \
  --out "$out/compare.md" --plot "$out/compare.png"
[ "$dry_run" = 1 ] && exit 0
echo "main.sh: $budget budget on $device done in $((SECONDS - start)) s; table: $out/compare.md, plot: $out/compare.png"
