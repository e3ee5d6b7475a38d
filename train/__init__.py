"""Training pipeline for the CIFAR experiments: data, configurations,
the Chainer Trainer entry point (``python -m train``), metrics and reports.
"""
