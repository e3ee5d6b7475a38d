#!/usr/bin/env bash
# Build Table 5 (steps to reach BN-1's maximum, Inception-V3) from the
# Table 4 runs and write results/table5.md; run scripts/table4.sh first.
#
#   bash scripts/table5.sh [cifar10|cifar100|all]
#
# Two targets per dataset: the maximum of our own BN-1 run and the paper's
# BN-1 maximum.  A report over reduced runs goes to runs/.../table5.md.
source "$(dirname "$0")/common.sh"
which=${1:-all}
choose "$which" cifar10 cifar100 > /dev/null || exit 2
runs=$runs_root/table4
"$py" -m train.report table 5 --dataset "$which" \
  --configs configs/table4 --runs "$runs" \
  --out results/table5.md --reduced-out "$runs/table5.md"
