"""``python -m train.report``: see :mod:`train.report.cli`."""
import sys

from train.report.cli import main

if __name__ == '__main__':
    sys.exit(main())
