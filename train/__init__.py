"""Training pipeline for the CIFAR experiments: data, configurations,
the Chainer Trainer entry point (``python -m train``), metrics and reports.

Importing this package imports :mod:`mixnorm` first, which makes Chainer
importable on current stacks; the modules here need nothing more.
"""
import mixnorm  # noqa: F401
