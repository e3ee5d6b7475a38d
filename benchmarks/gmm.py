"""GMM fit alone: our NumPy EM against scikit-learn's, and our CuPy path.

For each shape (m samples, D dims), K and iteration count, all variants run
in one process on the same float data, alternating, after a warm-up; the
figure is the median over rounds.

* ``ours-np``: :func:`mixnorm.gmm.em` (float32 and float64): n EM
  iterations from a given initialisation.
* ``sklearn-loop``: scikit-learn's GaussianMixture (diagonal) doing the
  same n iterations, its ``_e_step``/``_m_step`` called directly (private
  API): the like-for-like comparison.
* ``sklearn``: ``GaussianMixture(covariance_type='diag', max_iter=n, tol=0)
  .fit`` from the same weights, means and precisions: the public call, which
  also checks its input, computes an initial M-step it then overwrites and
  ends with one more E-step.
* ``ours-cupy`` (``--device @cupy:N``): the kernel path of the same ``em``.
  On a GPU only this variant is timed (the CPU figures that count are the
  development machine's); ``ours-np-f32`` runs once, untimed, as the
  reference of the log-likelihood check.

Both fits must reach the same mean log-likelihood (evaluated in float64)
within 1e-3 per sample; the check is printed.  A second table times the
whole :func:`mixnorm.gmm.fit` (seeding, k-means, EM, pruning); on a GPU it is
compared with the CPU time stored by a full CPU run without ``--out`` in
``benchmarks/results/gmm-cpu.json``.

Usage::

    python -m benchmarks.gmm --quick                # CPU, < 1 minute
    python -m benchmarks.gmm                        # CPU, full grid
    python -m benchmarks.gmm --device @cupy:0       # GPU and CPU-vs-GPU fit
"""
import argparse
import json
import os
import sys
import warnings

import mixnorm  # noqa: F401  (patches the stack before Chainer is imported)
from mixnorm import gmm

import numpy

import chainer

from benchmarks.inputs import activation_rows, initial_gmm
from benchmarks.timing import median_ms, no_sync, report_head, RESULTS
from train.device import get_or_exit
from train.device import device_name

# (m, D): DenseNet's last BN in Table 7 at batch 64/128 (8x8 maps, 196 or
# 448 channels) and the CIFAR CNN's conv3 (batch 256, 128 channels, 8x8)
SHAPES = [(4096, 196), (4096, 448), (8192, 448), (16384, 128)]
QUICK = [((8192, 448), 3, 2), ((4096, 196), 3, 2)]


def mean_loglik(x, model, dtype=numpy.float64):
    """Mean log p(x) under the GMM, evaluated in dtype."""
    x = numpy.asarray(x, dtype)
    w, mu, var = (numpy.asarray(a, dtype) for a in model)
    lp = gmm.log_gaussian(x, mu, var) + numpy.log(numpy.maximum(w, 1e-30))
    top = lp.max(1, keepdims=True)
    return float((top[:, 0] + numpy.log(numpy.exp(lp - top).sum(1))).mean())


def sklearn_variants(x, init, n_iter):
    from sklearn.mixture import GaussianMixture

    def model():
        return GaussianMixture(
            len(init.weights), covariance_type='diag', tol=0,
            max_iter=n_iter, reg_covar=1e-6, init_params='random',
            weights_init=init.weights.astype(numpy.float64),
            means_init=init.means.astype(numpy.float64),
            precisions_init=1 / init.variances.astype(numpy.float64),
            random_state=0)

    def fit():
        ref = model()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ref.fit(x)
        return gmm.GMM(ref.weights_, ref.means_, ref.covariances_)

    loop_model = model()

    def loop():
        ref = loop_model
        ref.weights_ = init.weights.astype(x.dtype)
        ref.means_ = init.means.astype(x.dtype)
        ref.covariances_ = init.variances.astype(x.dtype)
        ref.precisions_cholesky_ = 1 / numpy.sqrt(ref.covariances_)
        for _ in range(n_iter):
            _, log_resp = ref._e_step(x)
            ref._m_step(x, log_resp)
        return gmm.GMM(ref.weights_, ref.means_, ref.covariances_)

    return fit, loop


def have_sklearn():
    try:
        import sklearn  # NOQA
    except ImportError:
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='@numpy')
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--out', default=None,
                        help='markdown file (default results/gmm-<dev>.md)')
    args = parser.parse_args(argv)
    device = get_or_exit(args.device, parser.prog)
    on_gpu = device.xp is not numpy
    rounds = args.rounds or (5 if args.quick else 9)
    if args.quick:
        grid = QUICK
    else:
        grid = [(s, k, n) for s in SHAPES for k in (3, 5) for n in (2, 8)]
    dev_name = device_name(device)
    if on_gpu:
        import cupy
        sync = cupy.cuda.Device(device.device.id).synchronize
    tag = 'gpu' if on_gpu else 'cpu'

    em_rows = []
    for (m, d), k, n_iter in grid:
        x64 = activation_rows(m, d, k)
        x32 = x64.astype(numpy.float32)
        init = initial_gmm(x32, k)
        init64 = gmm.GMM(*(a.astype(numpy.float64) for a in init))
        variants, results = {}, {}

        def ours(x, start, key):
            def run():
                results[key] = gmm.em(x, start, n_iter)
            return run

        if on_gpu:  # the NumPy figures that count are this CPU's own
            ours(x32, init, 'ours-np-f32')()  # untimed: the dLL reference
        else:
            variants['ours-np-f32'] = ours(x32, init, 'ours-np-f32')
            variants['ours-np-f64'] = ours(x64, init64, 'ours-np-f64')
        cpu_refs = (('f32', x32), ('f64', x64)) if have_sklearn() else ()
        for dt, xx in () if on_gpu else cpu_refs:
            fit, loop = sklearn_variants(xx, init, n_iter)
            variants['sklearn-' + dt] = (
                lambda fit=fit, dt=dt: results.__setitem__(
                    'sklearn-' + dt, fit()))
            variants['sklearn-loop-' + dt] = (
                lambda loop=loop, dt=dt: results.__setitem__(
                    'sklearn-loop-' + dt, loop()))
        if on_gpu:
            xg = device.send(x32)
            initg = gmm.GMM(*(device.send(a) for a in init))

            def gpu():
                results['ours-cupy'] = gmm.em(xg, initg, n_iter)
                sync()
            variants['ours-cupy'] = gpu
        t = median_ms(variants, rounds, warmup=2)
        ll = {name: mean_loglik(x64, gmm.GMM(*(
            chainer.backend.CpuDevice().send(a) for a in model)))
            for name, model in results.items()}
        em_rows.append(((m, d), k, n_iter, t, ll))
        print_em_row(em_rows[-1], on_gpu)
        sys.stdout.flush()

    fit_rows = time_full_fit(device, on_gpu, args.quick, rounds)
    text = report(em_rows, fit_rows, device, on_gpu, args, argv)
    out = args.out or os.path.join(RESULTS, 'gmm-{}.md'.format(tag))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        f.write(text)
    if not on_gpu and not args.quick and args.out is None:
        with open(os.path.join(RESULTS, 'gmm-cpu.json'), 'w') as f:
            json.dump({'machine': dev_name, 'fit_ms': {
                '{}x{} K={} n_iter={}'.format(m, d, k, n): ms
                for (m, d), k, n, ms, _ in fit_rows}}, f, indent=1)
    print('wrote', out)


FIT_GRID = [((8192, 448), 5, 8), ((4096, 448), 3, 2), ((16384, 128), 3, 2)]


def time_full_fit(device, on_gpu, quick, rounds):
    """Median ms of gmm.fit on this device (and on NumPy when on a GPU)."""
    baseline = {}
    path = os.path.join(RESULTS, 'gmm-cpu.json')
    if on_gpu and os.path.exists(path):
        with open(path) as f:
            baseline = json.load(f)['fit_ms']
    rows = []
    for (m, d), k, n_iter in (FIT_GRID[:1] if quick else FIT_GRID):
        x = activation_rows(m, d, k).astype(numpy.float32)
        xd = device.send(x)
        if on_gpu:
            import cupy
            sync = cupy.cuda.Device(device.device.id).synchronize
        else:
            sync = no_sync

        def run():
            gmm.fit(xd, k, n_iter)
            sync()
        ms = median_ms({'fit': run}, rounds, warmup=2)['fit']
        key = '{}x{} K={} n_iter={}'.format(m, d, k, n_iter)
        rows.append(((m, d), k, n_iter, ms, baseline.get(key)))
        print('fit {:>12s} K={} n_iter={}: {:.2f} ms{}'.format(
            '{}x{}'.format(m, d), k, n_iter, ms,
            '' if baseline.get(key) is None else
            '  (CPU {:.1f} ms, {:.1f}x)'.format(baseline[key],
                                                 baseline[key] / ms)))
    return rows


RATIOS = [('loop/ours f32', 'sklearn-loop-f32', 'ours-np-f32'),
          ('loop-f64/ours f32', 'sklearn-loop-f64', 'ours-np-f32'),
          ('loop/ours f64', 'sklearn-loop-f64', 'ours-np-f64'),
          ('fit/ours f32', 'sklearn-f32', 'ours-np-f32'),
          ('fit/ours f64', 'sklearn-f64', 'ours-np-f64'),
          ('ours-np f32/cupy', 'ours-np-f32', 'ours-cupy')]
LL_DIFFS = [('dLL f32', 'ours-np-f32', 'sklearn-f32'),
            ('dLL f64', 'ours-np-f64', 'sklearn-f64'),
            ('dLL cupy', 'ours-cupy', 'ours-np-f32')]


def derived(t, ll):
    """Ratios of times and log-likelihood differences present in a row."""
    out = [(name, '{:.2f}x'.format(t[a] / t[b])) for name, a, b in RATIOS
           if a in t and b in t]
    out += [(name, '{:.1e}'.format(abs(ll[a] - ll[b])))
            for name, a, b in LL_DIFFS if a in ll and b in ll]
    return out


def print_em_row(row, on_gpu):
    (m, d), k, n_iter, t, ll = row
    print('em {}x{} K={} n_iter={}: '.format(m, d, k, n_iter) + ', '.join(
        '{} {:.2f} ms'.format(name, v) for name, v in t.items()))
    print('   ' + ', '.join('{} {}'.format(*p) for p in derived(t, ll)))


def report(em_rows, fit_rows, device, on_gpu, args, argv):
    lines = [
        '# GMM fit benchmark ({})'.format('GPU' if on_gpu else 'CPU'), '']
    lines += report_head(device, 'gmm', argv,
                         ('numpy', 'chainer', 'sklearn', 'cupy'))
    lines += [
        '- timing: all variants in one process on the same data, '
        'alternating, median of {} rounds after 2 warm-up calls'.format(
            args.rounds or (5 if args.quick else 9)), '',
        '## EM iterations from the same initialisation', '',
        'ms per call. `ours-np`: `gmm.em` (n iterations); `sklearn-loop`: '
        'GaussianMixture\'s `_e_step`/`_m_step`, n times (like for like); '
        '`sklearn`: `GaussianMixture.fit` (n iterations plus input checks, '
        'an initial M-step and a final E-step). dLL: difference of the mean '
        'log-likelihoods per sample of the fitted GMMs (float64 '
        'evaluation).', '']
    names = list(em_rows[0][3])
    extra = [p[0] for p in derived(em_rows[0][3], em_rows[0][4])]
    lines.append('| m x D | K | iter | ' + ' | '.join(names + extra) + ' |')
    lines.append('|' + '---|' * (len(names) + len(extra) + 3))
    for (m, d), k, n_iter, t, ll in em_rows:
        cells = ['{:.2f}'.format(t[n]) for n in names] + [
            p[1] for p in derived(t, ll)]
        lines.append('| {}x{} | {} | {} | '.format(m, d, k, n_iter) +
                     ' | '.join(cells) + ' |')
    lines += ['', '## Whole `gmm.fit` (float32: seeding, k-means, EM, '
              'pruning)', '', '| m x D | K | n_iter | ms | CPU ms (from '
              'gmm-cpu.json) | CPU/this |', '|---|---|---|---|---|---|']
    for (m, d), k, n_iter, ms, cpu in fit_rows:
        lines.append('| {}x{} | {} | {} | {:.2f} | {} | {} |'.format(
            m, d, k, n_iter, ms, '-' if cpu is None else '{:.1f}'.format(cpu),
            '-' if cpu is None else '{:.1f}x'.format(cpu / ms)))
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
