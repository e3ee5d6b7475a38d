#!/usr/bin/env bash
# Reproduce Table 7 (Section 5.1): iterations per second of the whole
# DenseNet, BN vs MN at the last BN (K = 2..5; batch 64 and 128; 196 and
# 448 channels), and write results/table7.md with each MN/BN ratio beside
# the paper's.
#
#   bash scripts/table7.sh [--quick] [benchmarks.throughput args]
#
# The grid and the paper's numbers are in configs/table7.yaml.  All
# variants of a setting share one process and alternate in timing rounds
# after a warm-up (python -m benchmarks.throughput).  The paper's absolute
# it/s are from a Titan X (Pascal); only its ratios compare.  --quick (a
# small CPU size) and other departures from the grid are reduced runs:
# their table goes to ${MIXNORM_RUNS:-runs}/table7/table7.md, not results/.
source "$(dirname "$0")/common.sh"
"$py" -m benchmarks.throughput --out results/table7.md \
  --reduced-out "$runs_root/table7/table7.md" "$@"
