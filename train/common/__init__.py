"""What the trainers share: the run folder and the trainer skeleton.

* :mod:`train.common.runfolder`: the run folder's files and ``run.json``,
  resuming (:func:`open_out`), "reduced" (:func:`is_reduced`), the readers
  (:class:`Run`, :class:`GANRun`) and :func:`load_predictor`.
* :mod:`train.common.skeleton`: :func:`train`, the life of a run (open,
  seed, build, resume, train, close) for any :class:`Job`.
* :mod:`train.common.extensions`: :class:`CheckFinite`,
  :class:`RandomStates` and the seeding they restore.
* :mod:`train.common.console`: the printed log and progress.
* :mod:`train.common.runplot`: :class:`RunPlot`, a run's own plot.
* :mod:`train.common.titles`: how runs are named in titles and headers.
* :mod:`train.common.optim`: the optimizers and learning-rate schedules of
  configurations.
"""
from train.common.extensions import CheckFinite  # NOQA
from train.common.extensions import mixture_links  # NOQA
from train.common.extensions import RandomStates  # NOQA
from train.common.extensions import seed_all  # NOQA
from train.common.runfolder import GANRun  # NOQA
from train.common.runfolder import is_reduced  # NOQA
from train.common.runfolder import load_predictor  # NOQA
from train.common.runfolder import newest_snapshot  # NOQA
from train.common.runfolder import open_out  # NOQA
from train.common.runfolder import Run  # NOQA
from train.common.runfolder import RunError  # NOQA
from train.common.runfolder import RunFolder  # NOQA
from train.common.skeleton import Job  # NOQA
from train.common.skeleton import train  # NOQA
from train.common.titles import budget_text  # NOQA
from train.common.titles import reduced_title  # NOQA
from train.common.titles import REDUCED_TITLE  # NOQA
