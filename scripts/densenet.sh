#!/usr/bin/env bash
# Reproduce Figure 5 (DenseNet on CIFAR-100, Section 4.4): train BN and MN
# DenseNets and write results/densenet.md (best test errors beside the
# paper's) with results/densenet.png (training and test error and loss
# curves, BN vs MN, as in Fig. 5a-d).
#
#   bash scripts/densenet.sh [40|100|all] [python -m train args]
#
# Trains configs/densenet/{bn,mn}_<depth>.yaml into
# ${MIXNORM_RUNS:-runs}/densenet/<row>_<depth>: finished rows are skipped,
# interrupted ones resume.  Extra arguments go to every run.  A report over
# runs with fewer epochs or subsets goes to runs/.../densenet.{md,png}.
source "$(dirname "$0")/common.sh"
which=${1:-all}
[ $# -gt 0 ] && shift
depths=$(choose "$which" 40 100) || exit 2
runs=$runs_root/densenet
for depth in $depths; do
  train_configs configs/densenet/{bn,mn}_"$depth".yaml -- "$@"
done
"$py" -m train.figures 5 --runs "$runs_root" --out results/densenet.md \
  --reduced-out "$runs/densenet.md"
