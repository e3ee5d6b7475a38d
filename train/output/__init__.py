"""What the pipeline writes to a terminal or a log, and files written whole.

* :mod:`train.output.progress`: :class:`Progress` of a long step (decoding
  images, training), a counter on a terminal and plain lines in a log.
* :mod:`train.output.files`: :func:`replace_file` and :func:`write_json`,
  a file replaced atomically, so that a killed run leaves the previous file
  or the new one, never a part.

This package imports nothing else from :mod:`train`.
"""
from train.output.files import replace_file  # NOQA
from train.output.files import write_json  # NOQA
from train.output.progress import is_tty  # NOQA
from train.output.progress import Progress  # NOQA
