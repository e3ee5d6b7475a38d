"""What a trainer prints while it runs: the log's keys at its trigger and
the progress between (Chainer's ProgressBar on a terminal, else a plain
line every 30 s, so that a log file stays readable)."""
from chainer import training
from chainer.training import extensions

from train.output.progress import is_tty
from train.output.progress import Progress


class PlainText(object):
    """Stream wrapper that drops the terminal escape PrintReport writes."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        self._stream.write(text.replace('\033[J', ''))

    def flush(self):
        self._stream.flush()


class LogProgress(training.Extension):

    """A line every ``interval`` seconds of training, for logs that are not
    a terminal (a terminal has Chainer's ProgressBar):
    ``training NAME: I of N iterations (P%), S s``.

    Args:
        name (str): The run's name.
        final_iteration (int): The iteration the run ends at.
        log: The stream.
        interval (float): Seconds between lines.

    """

    trigger = 1, 'iteration'
    priority = training.PRIORITY_READER

    def __init__(self, name, final_iteration, log, interval=30.0):
        self.progress = Progress('training ' + name, final_iteration,
                                 'iterations', stream=log, interval=interval)

    def __call__(self, trainer):
        self.progress.update(trainer.updater.iteration)


def add_console_reports(trainer, keys, log, name, final_iteration,
                        trigger=(1, 'epoch')):
    """Prints the log's ``keys`` at ``trigger`` to ``log``, and progress
    between: Chainer's ProgressBar on a terminal, else
    :class:`LogProgress` (the log stays plain text)."""
    tty = is_tty(log)
    trainer.extend(extensions.PrintReport(
        keys, out=log if tty else PlainText(log)), trigger=trigger)
    if tty:
        trainer.extend(extensions.ProgressBar(update_interval=10, out=log))
    else:
        trainer.extend(LogProgress(name, final_iteration, log))
