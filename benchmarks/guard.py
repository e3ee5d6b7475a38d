"""Cost and benefit of the NumPy EM's float32 guard (``_EXPANSION_LIMIT``).

:func:`mixnorm.gmm.em` takes sums of squares from matrix products and
recomputes them centred where the expanded form would lose more than
log2(limit) bits.  For each limit this times ``em`` alone (median of 21
calls after 3 warm-up calls) on ``benchmarks/gmm.py``'s activation-like
data and prints the largest relative error of its float32 variances
against the float64 fit.

Usage::

    python benchmarks/guard.py [--shape 8192,448] [-K 3] [--n-iter 2]
"""
import argparse
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
sys.path.insert(0, ROOT)

import mixnorm  # noqa: E402,F401  (patches the stack first)
from mixnorm import _gmm_generic, gmm  # noqa: E402

import numpy  # noqa: E402

from benchmarks.gmm import data, initial, median_times  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', default='8192,448')
    parser.add_argument('-K', type=int, default=3)
    parser.add_argument('--n-iter', type=int, default=2)
    parser.add_argument('--limits', default='16,64,256,1e30')
    args = parser.parse_args(argv)
    m, d = (int(s) for s in args.shape.split(','))
    x = data(m, d, args.K).astype(numpy.float32)
    start = initial(x, args.K)
    ref = gmm.em(x.astype(numpy.float64),
                 gmm.GMM(*(a.astype(numpy.float64) for a in start)),
                 args.n_iter)
    kept = _gmm_generic._EXPANSION_LIMIT
    try:
        for limit in (float(v) for v in args.limits.split(',')):
            _gmm_generic._EXPANSION_LIMIT = limit
            out = gmm.em(x, start, args.n_iter)
            err = numpy.abs(out.variances / ref.variances - 1).max()
            ms = 1e3 * median_times(
                {'em': lambda: gmm.em(x, start, args.n_iter)}, 21, 3)['em']
            print('limit {:g}{}: {:.2f} ms, largest relative variance error '
                  '{:.1e}'.format(limit, ' (default)' if limit == kept
                                  else '', ms, err))
    finally:
        _gmm_generic._EXPANSION_LIMIT = kept


if __name__ == '__main__':
    main()
