#!/usr/bin/env bash
# Run the whole test suite at both ends of the supported stack:
#   pinned: Python 3.11/3.10 + NumPy 1.26 + setuptools < 74
#   modern: Python 3.12+    + NumPy 2.x  + newest setuptools
# Environments are built on first use (scripts/setup_env.sh) and reused.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k gmm`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
status=0
for kind in pinned modern; do
  py=$(bash scripts/setup_env.sh "$kind" | tail -n 1)
  echo "== tests in the $kind environment: $("$py" -c 'import sys, numpy, setuptools; print("Python", sys.version.split()[0], "NumPy", numpy.__version__, "setuptools", setuptools.__version__)')"
  "$py" -m pytest -q tests "$@" || status=1
done
exit $status
