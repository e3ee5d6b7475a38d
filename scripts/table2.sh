#!/usr/bin/env bash
# Reproduce Table 2 (CIFAR CNN, Section 4.2) and write results/table2.md.
#
#   bash scripts/table2.sh [cifar10|cifar100|all] [python -m train args]
#
# Trains every configs/table2/<dataset>/*.yaml into
# ${MIXNORM_RUNS:-runs}/table2/<dataset>/<row>: finished rows are skipped,
# interrupted ones resume from their last epoch.  Extra arguments go to
# every run (e.g. --device @cupy:0, --data PATH).  A report over runs with
# fewer epochs or subsets goes to runs/.../table2.md instead of results/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
which=${1:-all}
[ $# -gt 0 ] && shift
case $which in
  cifar10|cifar100) sets=$which ;;
  all) sets="cifar10 cifar100" ;;
  *) echo "usage: $0 [cifar10|cifar100|all] [train args...]" >&2; exit 2 ;;
esac
py=${MIXNORM_PYTHON:-$(bash scripts/setup_env.sh pinned | tail -n 1)}
runs=${MIXNORM_RUNS:-runs}/table2
for ds in $sets; do
  for cfg in configs/table2/"$ds"/*.yaml; do
    "$py" -m train --config "$cfg" --out "$runs/$ds/$(basename "$cfg" .yaml)" \
      --resume "$@"
  done
done
"$py" -m train.report table2 --dataset "$which" --runs "$runs" \
  --out results/table2.md --reduced-out "$runs/table2.md"
