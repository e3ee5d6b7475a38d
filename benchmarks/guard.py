"""Cost and benefit of the NumPy EM's float32 guard (``_EXPANSION_LIMIT``).

:func:`mixnorm.gmm.em` takes sums of squares from matrix products and
recomputes them centred where the expanded form would lose more than
log2(limit) bits.  For each limit this times ``em`` alone (median of 21
calls after 3 warm-up calls) on the activation-like rows that
:mod:`benchmarks.gmm` fits (:func:`benchmarks.inputs.activation_rows`) and
prints the largest relative error of its float32 variances against the
float64 fit.

Usage::

    python -m benchmarks.guard [--shape 8192,448] [-K 3] [--n-iter 2]
"""
import argparse

import mixnorm  # noqa: F401  (patches the stack first)
from mixnorm import _gmm_generic, gmm

import numpy

from benchmarks.inputs import activation_rows, initial_gmm
from benchmarks.timing import median_ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', default='8192,448')
    parser.add_argument('-K', type=int, default=3)
    parser.add_argument('--n-iter', type=int, default=2)
    parser.add_argument('--limits', default='16,64,256,1e30')
    args = parser.parse_args(argv)
    m, d = (int(s) for s in args.shape.split(','))
    x = activation_rows(m, d, args.K).astype(numpy.float32)
    start = initial_gmm(x, args.K)
    ref = gmm.em(x.astype(numpy.float64),
                 gmm.GMM(*(a.astype(numpy.float64) for a in start)),
                 args.n_iter)
    kept = _gmm_generic._EXPANSION_LIMIT
    try:
        for limit in (float(v) for v in args.limits.split(',')):
            _gmm_generic._EXPANSION_LIMIT = limit
            out = gmm.em(x, start, args.n_iter)
            err = numpy.abs(out.variances / ref.variances - 1).max()
            ms = median_ms({'em': lambda: gmm.em(x, start, args.n_iter)},
                           21, warmup=3)['em']
            print('limit {:g}{}: {:.2f} ms, largest relative variance error '
                  '{:.1e}'.format(limit, ' (default)' if limit == kept
                                  else '', ms, err))
    finally:
        _gmm_generic._EXPANSION_LIMIT = kept


if __name__ == '__main__':
    main()
