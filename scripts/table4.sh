#!/usr/bin/env bash
# Reproduce Table 4 (Inception-V3, Section 4.3) and write results/table4.md.
#
#   bash scripts/table4.sh [cifar10|cifar100|all] [python -m train args]
#
# Trains every configs/table4/<dataset>/*.yaml into
# ${MIXNORM_RUNS:-runs}/table4/<dataset>/<row>: finished rows are skipped,
# interrupted ones resume from their last epoch.  Extra arguments go to
# every run (e.g. --device @cupy:0, --data PATH).  A report over runs with
# fewer epochs or subsets goes to runs/.../table4.md instead of results/.
# Table 5 is built from the same runs by scripts/table5.sh.
source "$(dirname "$0")/common.sh"
dataset_table 4 "$@"
