"""Studies: many runs (configuration, seed, overrides, epochs) trained in
one invocation within a time budget, and one report over them
(``python -m train.study run | report | pack``).

* :mod:`train.study.spec`: the study file (documented there),
  :func:`load_study`, :class:`StudyError`.
* :mod:`train.study.state`: the study's folder and ``study.json``.
* :mod:`train.study.scheduler`: :func:`run_study`, the runs as child
  processes within the budget; :func:`pack`.
* :mod:`train.study.summary`: :func:`report`, the markdown and the plot.
* :mod:`train.study.cli`: the command.
"""
from train.study.cli import main  # NOQA
from train.study.summary import build_report  # NOQA
from train.study.summary import paper_accuracy  # NOQA
from train.study.summary import report  # NOQA
from train.study.scheduler import pack  # NOQA
from train.study.scheduler import parse_train_args  # NOQA
from train.study.scheduler import run_study  # NOQA
from train.study.spec import apply_overrides  # NOQA
from train.study.spec import load_study  # NOQA
from train.study.spec import Study  # NOQA
from train.study.spec import StudyError  # NOQA
from train.study.state import load_state  # NOQA
from train.study.state import machine  # NOQA
