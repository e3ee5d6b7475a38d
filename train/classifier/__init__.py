"""Training the classifiers of Tables 2-6 and Figures 1-5, 8 and 9.

* :mod:`train.classifier.runner`: :func:`run`, one configuration through
  the trainer skeleton; :class:`Classifier` (softmax cross-entropy with
  accuracy and error); :func:`settings` as ``run.json`` records them.
* :mod:`train.classifier.multinode`: several ChainerMN processes training
  one run (``--comm``), and the single-process stand-in.
* :mod:`train.classifier.records`: trainer extensions that record models,
  MN fits and active-component counts for Figures 1, 8 and 9, and their
  readers.
* :mod:`train.classifier.evaluate`: ``python -m
  train.classifier.evaluate RUN``, a finished run's test metrics under
  each inference rule of mixture normalization.
"""
from train.classifier.runner import Classifier  # NOQA
from train.classifier.runner import RESUME_KEYS  # NOQA
from train.classifier.runner import run  # NOQA
from train.classifier.runner import settings  # NOQA
