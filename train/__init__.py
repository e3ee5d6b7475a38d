"""The CIFAR and DCGAN experiments of the paper: ``python -m train``.

Packages from the bottom up; each imports only its own modules and those
listed before it (``tests/project/test_layering.py`` checks it):

* :mod:`train.output`: progress lines; files replaced atomically.
* :mod:`train.device`: the device checked before use, the machine.
* :mod:`train.metrics`: accuracy metrics of logs, the FID's Fréchet
  distance, standard deviations.
* :mod:`train.data`: datasets and batches.
* :mod:`train.config`: configuration files and their schemas.
* :mod:`train.common`: the run folder and the trainer skeleton the
  trainers share.
* :mod:`train.fid`: the FID's features and statistics.
* :mod:`train.classifier`, :mod:`train.gan`: the trainers.
* :mod:`train.report`: the tables and run comparisons.
* :mod:`train.figures`: Figures 1-9.
* :mod:`train.cli`: ``python -m train`` / ``mixnorm-train``.
* :mod:`train.study`: many runs within a budget, one report.

Importing this package imports :mod:`mixnorm` first, which makes Chainer
importable on current stacks; the modules here need nothing more.
"""
import mixnorm  # noqa: F401
