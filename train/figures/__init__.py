"""The paper's Figures 1-9, drawn from our own runs
(``python -m train.figures N``).

* :mod:`train.figures.panels`: which runs each figure reads, the checks
  that they (and their data) are there, the text figures share.
* :mod:`train.figures.activations`: Figure 1, activation densities of one
  layer, BN against MN.
* :mod:`train.figures.curves`: Figures 2-4 (test error against epochs) and
  Figure 5 (DenseNet's error and loss, best test errors).
* :mod:`train.figures.dcgan`: Figures 6 and 7, the DCGAN's FID against
  updates and samples at the lowest FID.
* :mod:`train.figures.fits`: Figure 8, one MN link's fits through
  training.
* :mod:`train.figures.components`: Figure 9, active components of the MN
  links.
* :mod:`train.figures.cli`: the command.
"""
from train.figures.activations import conv_activations  # NOQA
from train.figures.activations import figure1_fits  # NOQA
from train.figures.cli import main  # NOQA
from train.figures.components import smooth_counts  # NOQA
from train.figures.fits import FIT_FRACTIONS  # NOQA
from train.figures.panels import check_data  # NOQA
from train.figures.panels import configs_of  # NOQA
from train.figures.panels import DATASET_ORDER  # NOQA
from train.figures.panels import FigureError  # NOQA
from train.figures.panels import FIGURES  # NOQA
