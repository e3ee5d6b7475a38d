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
source "$(dirname "$0")/common.sh"
dataset_table 2 "$@"
