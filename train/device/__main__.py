"""``python -m train.device [SPEC]``: see :func:`train.device.choice.main`."""
import sys

from train.device.choice import main

if __name__ == '__main__':
    sys.exit(main())
