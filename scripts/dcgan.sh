#!/usr/bin/env bash
# Reproduce Section 4.5 (Figures 6 and 7): train DCGAN-BN and DCGAN-MN on
# CIFAR-10 and write results/dcgan.md with results/figure6.png (FID against
# updates) and results/figure7.png (samples at each model's best FID).
#
#   bash scripts/dcgan.sh [--tiny] [--fid-weights NPZ | --fid-proxy RUN]
#                         [--proxy-epochs N] [python -m train args]
#
# FID features:
#   --fid-weights NPZ (or MIXNORM_FID_WEIGHTS=NPZ): the standard FID, with
#       Inception weights converted by python -m train.fid convert (README);
#   --fid-proxy RUN: the proxy FID of a finished CIFAR CNN run;
#   neither: the proxy FID of a CIFAR CNN that this script trains first,
#       the Table 2 BN-2 configuration: its full run
#       (${MIXNORM_RUNS:-runs}/table2/cifar10/bn2, reused if there), or
#       N epochs with --proxy-epochs N (runs/dcgan/proxy-cnn-<N>ep).
#   The proxy FID is labelled "proxy FID (CIFAR CNN features), not
#   comparable with the paper" in every report.
# --tiny: configs/dcgan/tiny/{bn,mn}.yaml (1/8 of the channels, 60
#   iterations, the proxy FID of 512 images every 10) on a 2,048-image
#   training subset, the proxy CNN trained for 1 epoch on 2,560 images:
#   a few minutes on a 2-core CPU, into runs/dcgan/tiny/.
# Finished runs are skipped, interrupted ones resume.  Other arguments go
# to every GAN run (e.g. --device @cupy:0, --data PATH, --iterations N,
# --fid-every N); --data and --device go to the proxy CNN's run too.  A
# report over reduced runs (fewer iterations or evaluations, a subset,
# --tiny) goes to runs/dcgan[/tiny]/dcgan.md with its figures.
source "$(dirname "$0")/common.sh"
tiny=0 weights=${MIXNORM_FID_WEIGHTS:-} proxy= proxy_epochs=
common=() args=()
usage() {
  echo "usage: $(basename "$0") [--tiny] [--fid-weights NPZ | --fid-proxy" \
       "RUN] [--proxy-epochs N] [train args...]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=1 ;;
    --fid-weights|--fid-proxy|--proxy-epochs|--data|--device)
      [ $# -ge 2 ] || usage
      case $1 in
        --fid-weights) weights=$2 ;;
        --fid-proxy) proxy=$2 ;;
        --proxy-epochs) proxy_epochs=$2 ;;
        *) common+=("$1" "$2") ;;
      esac
      shift ;;
    -h|--help) usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ -n "$weights" ] && [ -n "$proxy" ] && usage

if [ "$tiny" = 1 ]; then
  folder=dcgan/tiny
  configs=configs/dcgan/tiny
  runs=$runs_root/dcgan/tiny
  args=(--train-subset 2048 "${args[@]}")
else
  folder=dcgan
  configs=configs/dcgan
  runs=$runs_root/dcgan
fi

if [ -n "$weights" ]; then
  features=(--fid-weights "$weights")
else
  if [ -z "$proxy" ]; then
    cnn=(--config configs/table2/cifar10/bn2.yaml --resume "${common[@]}")
    if [ "$tiny" = 1 ]; then
      proxy=$runs/proxy-cnn
      cnn+=(--epochs "${proxy_epochs:-1}" --train-subset 2560
            --test-subset 500)
    elif [ -n "$proxy_epochs" ]; then
      proxy=$runs/proxy-cnn-${proxy_epochs}ep
      cnn+=(--epochs "$proxy_epochs")
    else
      proxy=$runs_root/table2/cifar10/bn2
    fi
    echo "$(basename "$0"): proxy FID features: the CIFAR CNN run $proxy" >&2
    "$py" -m train "${cnn[@]}" --out "$proxy"
  fi
  features=(--fid-proxy "$proxy")
fi

for cfg in "$configs"/bn.yaml "$configs"/mn.yaml; do
  "$py" -m train --config "$cfg" --out "$runs/$(basename "$cfg" .yaml)" \
    --resume "${features[@]}" "${common[@]}" "${args[@]}"
done
# Figures 6 and 7: results/dcgan.md with figure6.png and figure7.png
# beside it, or the runs folder's over reduced runs (--tiny: always)
out=results/dcgan.md
[ "$tiny" = 1 ] && out=$runs/dcgan.md
"$py" -m train.figures 6 --folder "$folder" --runs "$runs_root" \
  --out "$out" --reduced-out "$runs/dcgan.md"
