"""Metrics: pure functions of logs, curves and feature sets (NumPy only).

* :mod:`train.metrics.accuracy`: test accuracy from a classifier run's
  log, the maximum after fractions of the epochs, the updates to reach a
  target (Tables 2-6), the paper's way of printing them; the final
  training loss.
* :mod:`train.metrics.fid`: the Fréchet distance of two Gaussians fitted
  to feature sets (the FID, Section 4.5), the 2,048-sample rule, and the
  updates a GAN run needs to reach an FID.
* :mod:`train.metrics.spread`: standard deviations within a window of a
  curve, over seeds, and per epoch over several runs.

This package imports nothing else from :mod:`train`.
"""
from train.metrics.accuracy import ACC_KEY  # NOQA
from train.metrics.accuracy import accuracy_at  # NOQA
from train.metrics.accuracy import accuracy_curve  # NOQA
from train.metrics.accuracy import curve  # NOQA
from train.metrics.accuracy import final_loss  # NOQA
from train.metrics.accuracy import format_steps  # NOQA
from train.metrics.accuracy import load_log  # NOQA
from train.metrics.accuracy import LOSS_KEY  # NOQA
from train.metrics.accuracy import max_accuracy  # NOQA
from train.metrics.accuracy import steps_to_reach  # NOQA
from train.metrics.fid import best_fid  # NOQA
from train.metrics.fid import FIDError  # NOQA
from train.metrics.fid import frechet_distance  # NOQA
from train.metrics.fid import MIN_SAMPLES  # NOQA
from train.metrics.fid import statistics  # NOQA
from train.metrics.fid import steps_to_fid  # NOQA
from train.metrics.spread import epoch_stats  # NOQA
from train.metrics.spread import mean_std  # NOQA
from train.metrics.spread import window_std  # NOQA
