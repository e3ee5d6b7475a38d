#!/usr/bin/env bash
# The main job: BN-2 against MN-2 of the CIFAR CNN (Table 2, CIFAR-10),
# trained one after the other and compared side by side.
#
#   bash scripts/main.sh [--full] [--data PATH] [other python -m train args]
#
# Quick budget (default, ~10 min on 2 CPU cores): 4 epochs on a fixed
# 2,560-image training subset, evaluated on a fixed 1,000-image test subset.
# --full: the paper's budget (all 50,000/10,000 images, 100 epochs; a GPU
# run).  Data: --data PATH or MIXNORM_DATA (image folder or .zip), else
# CIFAR-10 through chainer.datasets.  Runs go to runs/main/<budget>/ (or
# $MIXNORM_RUNS/main/<budget>/); re-running resumes or skips them.
# Python: see scripts/common.sh (MIXNORM_ENV, MIXNORM_CUDA, MIXNORM_PYTHON).
source "$(dirname "$0")/common.sh"
budget=quick
args=()
for a in "$@"; do
  case $a in
    --full) budget=full ;;
    *) args+=("$a") ;;
  esac
done
case $budget in
  quick) limits=(--epochs 4 --train-subset 2560 --test-subset 1000) ;;
  full) limits=() ;;
esac
out=$runs_root/main/$budget
start=$SECONDS
for row in bn2 mn2; do
  "$py" -m train --config "configs/table2/cifar10/$row.yaml" --out "$out/$row" \
    --resume ${limits[@]+"${limits[@]}"} ${args[@]+"${args[@]}"}
done
"$py" -m train.report compare "$out/bn2" "$out/mn2" \
  --out "$out/compare.md" --plot "$out/compare.png"
echo "main.sh: $budget budget done in $((SECONDS - start)) s; table: $out/compare.md, plot: $out/compare.png"
