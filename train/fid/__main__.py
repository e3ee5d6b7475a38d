"""``python -m train.fid``: see :mod:`train.fid.cli`."""
import sys

from train.fid.cli import main

if __name__ == '__main__':
    sys.exit(main())
