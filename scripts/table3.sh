#!/usr/bin/env bash
# Build Table 3 (steps to reach BN-2's maximum) from the Table 2 runs and
# write results/table3.md; run scripts/table2.sh first.
#
#   bash scripts/table3.sh [cifar10|cifar100|all]
#
# Two targets per dataset: the maximum of our own BN-2 run and the paper's
# BN-2 maximum.  A report over reduced runs goes to runs/.../table3.md.
source "$(dirname "$0")/common.sh"
which=${1:-all}
choose "$which" cifar10 cifar100 > /dev/null || exit 2
runs=$runs_root/table2
"$py" -m train.report table 3 --dataset "$which" \
  --configs configs/table2 --runs "$runs" \
  --out results/table3.md --reduced-out "$runs/table3.md"
