#!/usr/bin/env bash
# Reproduce Table 6 (Inception-V3 on CIFAR-100 with Nesterov's accelerated
# gradient, two learning-rate drop policies; Section 4.3) and write
# results/table6.md.
#
#   bash scripts/table6.sh [drop2|drop3|all] [python -m train args]
#
# drop2: lr x0.1 at 50% and 75% of the epochs; drop3: x0.2 at 30%, 60% and
# 80%.  Trains configs/table6/{bn,mn}_<policy>.yaml into
# ${MIXNORM_RUNS:-runs}/table6/<row>_<policy>: finished rows are skipped,
# interrupted ones resume.  Extra arguments go to every run.  A report over
# runs with fewer epochs or subsets goes to runs/.../table6.md instead.
source "$(dirname "$0")/common.sh"
which=${1:-all}
[ $# -gt 0 ] && shift
policies=$(choose "$which" drop2 drop3) || exit 2
runs=$runs_root/table6
for policy in $policies; do
  train_configs configs/table6/{bn,mn}_"$policy".yaml -- "$@"
done
"$py" -m train.report table 6 --configs configs/table6 --runs "$runs" \
  --out results/table6.md --reduced-out "$runs/table6.md"
