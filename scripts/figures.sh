#!/usr/bin/env bash
# Regenerate the paper's Figures 1, 2, 3, 4, 8 and 9 from our runs and write
# results/figureN.png with results/figureN.md (python -m train.figures).
#
#   bash scripts/figures.sh [--tiny] [--dataset cifar10|cifar100|all]
#                           [1|2|3|4|8|9|all] [python -m train args]
#
# For each figure, trains the configurations it reads (printed by
# `python -m train.figures N --list-configs`: the Table 2/4/6 rows, the
# CIFAR-10 rows of configs/figure3/) into ${MIXNORM_RUNS:-runs}/<path>,
# skipping finished runs and resuming interrupted ones, then draws it.
# Figure 1 reads the model that `record.models_at` saved halfway through
# BN-2, Figures 8 and 9 the fits and component counts of Table 4's MN-4
# (train/classifier/records.py).  --dataset picks the panels (default all;
# use cifar10 where CIFAR-100 is missing).  Extra arguments go to every run
# (e.g. --device @cupy:0, --data PATH, --epochs 25).
#
# Before it trains anything, it checks that the data (--data, else
# MIXNORM_DATA, else chainer.datasets) holds the dataset of every run the
# figures need (`python -m train.figures N --check-data`), and otherwise
# stops with exit status 2 and the --dataset to pass.  It prints a line
# before each run it trains or skips (run i of n).
#
# --tiny: reduced runs for a CPU (2 epochs on 256 training / 64 test
# images; later arguments override these) into ${MIXNORM_RUNS:-runs/tiny},
# so that they never mix with full ones.  Figures over reduced runs are
# labelled "NOT a reproduction" and go to <runs>/figures/figureN.{md,png},
# not to results/.
source "$(dirname "$0")/common.sh"
limits=()
dataset=all
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) limits=(--epochs 2 --train-subset 256 --test-subset 64)
            runs_root=${MIXNORM_RUNS:-runs/tiny}; shift ;;
    --dataset) dataset=${2:-}; shift; [ $# -gt 0 ] && shift ;;
    *) break ;;
  esac
done
case $dataset in
  cifar10|cifar100|all) ;;
  *) echo "figures.sh: --dataset must be cifar10, cifar100 or all" >&2
     exit 2 ;;
esac
which=${1:-all}
[ $# -gt 0 ] && shift
figures=$(choose "$which" 1 2 3 4 8 9) || exit 2
data=${MIXNORM_DATA:-}
prev=
for a in "$@"; do  # the --data that the runs will get
  case $a in --data=*) data=${a#--data=} ;; esac
  [ "$prev" = --data ] && data=$a
  prev=$a
done
for n in $figures; do
  "$py" -m train.figures "$n" --dataset "$dataset" --check-data \
    ${data:+--data "$data"} || {
    echo "figures.sh: stopped before training anything" >&2; exit 2; }
done
for n in $figures; do
  mapfile -t cfgs < <("$py" -m train.figures "$n" --dataset "$dataset" \
    --list-configs)
  echo "figures.sh: Figure $n: ${#cfgs[@]} runs (finished ones are skipped)" >&2
  train_configs "${cfgs[@]}" -- ${limits[@]+"${limits[@]}"} "$@"
  "$py" -m train.figures "$n" --dataset "$dataset" --runs "$runs_root" \
    --out "results/figure$n.md" --reduced-out "$runs_root/figures/figure$n.md"
done
