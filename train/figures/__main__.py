"""``python -m train.figures N``: see :mod:`train.figures.cli`."""
import sys

from train.figures.cli import main

if __name__ == '__main__':
    sys.exit(main())
