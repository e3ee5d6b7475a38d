#!/usr/bin/env bash
# A study in one call: its runs (configuration, seed, overrides, epochs)
# one after the other within a time budget, then its report.
#
#   bash scripts/study.sh STUDY.yaml [--budget SECONDS] [--reserve SECONDS]
#       [--parallel N] [--dry-run] [--results DIR] [python -m train args]
#
# Study files: studies/*.yaml (the format: train/study/spec.py).  Runs go to
# runs/studies/<name>/<variant>-s<seed>/ (or $MIXNORM_RUNS/studies/...);
# calling it again resumes cut runs and passes over finished ones.  The
# report: results/study-<name>.md and .png (in the runs folder for runs on
# subsets).  python -m train args (--data PATH, --device, --train-subset,
# --test-subset) go to every run.  Python: see scripts/common.sh.
source "$(dirname "$0")/common.sh"
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: $(basename "$0") STUDY.yaml [--budget SECONDS] [--parallel N] [train args...]" >&2
  exit 2
fi
exec "$py" -m train.study run "$1" --runs "$runs_root/studies" "${@:2}"
