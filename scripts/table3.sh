#!/usr/bin/env bash
# Build Table 3 (steps to reach BN-2's maximum) from the Table 2 runs and
# write results/table3.md; run scripts/table2.sh first.
#
#   bash scripts/table3.sh [cifar10|cifar100|all]
#
# Two targets per dataset: the maximum of our own BN-2 run and the paper's
# BN-2 maximum.  A report over reduced runs goes to runs/.../table3.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
which=${1:-all}
case $which in
  cifar10|cifar100|all) ;;
  *) echo "usage: $0 [cifar10|cifar100|all]" >&2; exit 2 ;;
esac
py=${MIXNORM_PYTHON:-$(bash scripts/setup_env.sh pinned | tail -n 1)}
runs=${MIXNORM_RUNS:-runs}/table2
"$py" -m train.report table3 --dataset "$which" --runs "$runs" \
  --out results/table3.md --reduced-out "$runs/table3.md"
