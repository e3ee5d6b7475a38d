"""Reports built from run folders: the paper's tables, runs compared.

* :mod:`train.report.tables`: Tables 2-6 (``python -m train.report table
  N``) and the rows of configurations and runs they read.
* :mod:`train.report.compare`: runs side by side (``python -m
  train.report compare RUN ...``).
* :mod:`train.report.markdown`: numbers, table lines, headers and writing
  a report, for every report (studies and figures too).
* :mod:`train.report.plotting`: matplotlib without a display, shaded
  curves, training loss and test error against updates.
* :mod:`train.report.cli`: the command.

The figures are :mod:`train.figures`'s; the readers of run folders
:mod:`train.common.runfolder`'s.
"""
from train.report.cli import main  # NOQA
from train.report.compare import compare_title  # NOQA
from train.report.markdown import format_loss  # NOQA
from train.report.markdown import format_value  # NOQA
from train.report.markdown import table_lines  # NOQA
from train.report.markdown import write_report  # NOQA
from train.report.plotting import plot_loss_and_error  # NOQA
from train.report.tables import build  # NOQA
from train.report.tables import load_rows  # NOQA
from train.report.tables import select  # NOQA
