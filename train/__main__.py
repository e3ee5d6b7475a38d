"""``python -m train``: see :mod:`train.cli`."""
import sys

from train.cli import main

if __name__ == '__main__':
    sys.exit(main())
