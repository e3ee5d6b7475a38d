"""Progress of a long step (decoding images, training an epoch).

On a terminal a counter is rewritten in place; elsewhere (a log file, a
pipe) a plain line is written every ``interval`` seconds, so that a log
shows the step advancing and stays readable.  This module does not import
Chainer (image decoding uses it).
"""
import sys
import time


def is_tty(stream):
    """Whether ``stream`` is a terminal."""
    return getattr(stream, 'isatty', lambda: False)()


class Progress(object):

    """Reports ``done`` of ``total`` items of one step.

    Args:
        label (str): What is being done (e.g. ``decoding data.zip``).
        total (int): Items in all.
        unit (str): What the items are (e.g. ``images``).
        stream: Where to write (default: ``sys.stderr`` at creation).
        interval (float): Seconds between lines when ``stream`` is not a
            terminal (a terminal's counter is redrawn every half second).
        clock: Returns seconds (tests pass a fake one).

    """

    def __init__(self, label, total, unit, stream=None, interval=15.0,
                 clock=time.monotonic):
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.tty = is_tty(self.stream)
        self.interval = 0.5 if self.tty else interval
        self.clock = clock
        self.start = self.last = clock()

    def text(self, done):
        """``LABEL: DONE of TOTAL UNIT (P%), S s``."""
        return '{}: {:,} of {:,} {} ({:.0f}%), {:.0f} s'.format(
            self.label, done, self.total, self.unit,
            100.0 * done / max(self.total, 1), self.clock() - self.start)

    def update(self, done):
        """Reports ``done`` items when the interval has passed."""
        now = self.clock()
        if now - self.last < self.interval:
            return
        self.last = now
        self._write(self.text(done), end='' if self.tty else '\n')

    def finish(self, note=''):
        """Reports the step done (all items), with ``note`` appended."""
        self._write(self.text(self.total) + note, end='\n')

    def _write(self, line, end):
        self.stream.write(('\r\033[K' if self.tty else '') + line + end)
        self.stream.flush()
