"""``python -m train.study``: see :mod:`train.study.cli`."""
import sys

from train.study.cli import main

if __name__ == '__main__':
    sys.exit(main())
