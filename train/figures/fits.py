"""Figure 8 (Sec. 5.2): the fits of one MN link through training.

The fits (lambda_k, mu_k, sigma_k^2 of Eq. 35-36) that one MN link
(``inc2/0/2/4`` of MN-4) pushed into its queue at 20/40/60/80/100% of
training (``record.fits_at``, :mod:`train.classifier.records`), 192 random
channels: lambda_k N(x; mu_kc, sigma_kc^2) per component, coloured by the
rank of lambda_k (the largest in olive), and the sorted lambda_k.
"""
import numpy

from train.classifier.records import read_fits
from train.classifier.records import RECORDS
from train.config.loading import build_model
from train.figures.activations import gauss_log
from train.figures.panels import dataset_note
from train.figures.panels import FigureError
from train.figures.panels import header
from train.figures.panels import single_run
from train.report.markdown import table_lines
from train.report.plotting import pyplot
from train.report.plotting import save

FIT_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)
# components by rank of lambda_k, the dominant one olive
RANK_COLOURS = ('tab:olive', 'tab:blue', 'tab:orange', 'tab:purple',
                'tab:red', 'tab:cyan', 'tab:brown', 'tab:pink')


def _fit_path(cfg, layer):
    """The link path of ``layer`` in ``cfg``'s model (``inc2/0/2/4/bn``)."""
    predictor, _ = build_model(cfg)
    try:
        paths = predictor.norm_paths([layer])
    except ValueError as e:
        raise FigureError('--layer: {}'.format(e))
    return paths[0]


def figure8(args, datasets):
    """Figure 8; returns ``(markdown lines, rows, png writer)``."""
    stem, run = single_run(8, args, datasets)
    cfg = run.info['config']
    path = _fit_path(cfg, args.layer)
    fits = [f for f in read_fits(run.path) if path in f['layers']]
    if not fits:
        raise FigureError(
            '{}: no fits of {} saved ({}/fits_iter_*.npz). Figure 8 needs '
            'the run trained with `record: {{fits_at: [0.2, 0.4, 0.6, 0.8, '
            '1.0], fits_layers: [{}]}}` in its configuration '
            '(configs/table4/*/mn4.yaml have it)'.format(
                run.path, path, RECORDS, args.layer))
    done = {f for fit in fits for f in fit['fractions']}
    wanted = (cfg.get('record') or {}).get('fits_at') or FIT_FRACTIONS
    missing = [f for f in wanted if f not in done]
    size = fits[0]['layers'][path][0].means.shape[1]
    rng = numpy.random.RandomState(args.seed)
    channels = sorted(rng.choice(size, min(args.channels, size),
                                 replace=False))
    rows = [(stem, cfg, run)]
    lines = header(8, rows) + dataset_note(cfg['dataset'])
    lines += ['The fit (lambda_k, mu_k, sigma_k^2 of Eq. 35-36) of `{}` '
              'that training pushed into the layer\'s queue at each '
              'fraction of the run, {} random channels of {}: each '
              'component\'s lambda_k N(x; mu_kc, sigma_kc^2 + eps) per '
              'channel, coloured by the rank of lambda_k (the largest in '
              'olive), and below the sorted lambda_k.'.format(
                  path, len(channels), size), '']
    if missing:
        lines += ['Not saved yet: {} of training (the run has not got '
                  'there).'.format(', '.join('{:g}%'.format(100 * f)
                                             for f in missing)), '']
    body = []
    for fit in fits:
        gmm, eps = fit['layers'][path]
        order = numpy.argsort(-gmm.weights)
        lo, hi = _fit_range(gmm, eps, channels)
        body.append([', '.join('{:g}%'.format(100 * f)
                               for f in fit['fractions']),
                     '{} of {}'.format(fit['iteration'],
                                       fit['final_iteration']),
                     ' '.join('{:.3f}'.format(gmm.weights[k])
                              for k in order),
                     str(int((gmm.weights >= min_weight(cfg)).sum())),
                     '[{:.2f}, {:.2f}]'.format(lo, hi)])
    lines += table_lines(
        ['fraction', 'iteration', 'lambda_k, sorted', 'active components',
         'x range shown (mu -+ 3 sigma)'], body)
    lines += ['', 'Run: `{}` ({}).'.format(run.path, run.status())]

    def draw(png, title=None):
        return plot_figure8(fits, path, channels, png, title)
    return lines, rows, draw


def min_weight(cfg):
    """An MN setting's ``min_weight`` (its default, 0.01, if unset)."""
    return cfg['norm'].get('min_weight', 0.01)


def _fit_range(gmm, eps, channels):
    """x range covering mu_kc -+ 3 sigma_kc of the live components."""
    live = gmm.weights > 0
    mu = gmm.means[live][:, channels]
    sd = numpy.sqrt(gmm.variances[live][:, channels] + eps)
    return float((mu - 3 * sd).min()), float((mu + 3 * sd).max())


def plot_figure8(fits, path, channels, png, title=None):
    """Fig. 8: component densities (top) and sorted lambda_k (bottom),
    under ``title``; returns the figure written (closed)."""
    from matplotlib.collections import LineCollection
    plt = pyplot()

    fig, axes = plt.subplots(2, len(fits), figsize=(3.4 * len(fits), 5.2),
                             squeeze=False,
                             gridspec_kw={'height_ratios': (3, 1.2)})
    for col, fit in enumerate(fits):
        gmm, eps = fit['layers'][path]
        order = numpy.argsort(-gmm.weights)
        lo, hi = _fit_range(gmm, eps, channels)
        grid = numpy.linspace(lo, hi, 300)
        ax = axes[0, col]
        peaks = []  # the dominant component drawn last, on top
        for rank, k in reversed(list(enumerate(order))):
            if gmm.weights[k] <= 0:
                continue
            mu = gmm.means[k, channels][:, None]
            var = gmm.variances[k, channels][:, None] + eps
            dens = gmm.weights[k] * numpy.exp(gauss_log(grid[None], mu,
                                                         var))
            peaks.append(dens.max(axis=1))
            ax.add_collection(LineCollection(
                [numpy.column_stack([grid, d]) for d in dens],
                colors=RANK_COLOURS[rank % len(RANK_COLOURS)],
                linewidths=0.5, alpha=0.5))
        top = numpy.percentile(numpy.concatenate(peaks), 95)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.05 * top)
        ax.set_title('{} of training\n(iteration {})'.format(
            ', '.join('{:g}%'.format(100 * f) for f in fit['fractions']),
            fit['iteration']), fontsize='medium')
        ax.set_xlabel('activation')
        ax.set_yticks([])
        bars = axes[1, col]
        bars.bar(range(len(order)), gmm.weights[order],
                 color=[RANK_COLOURS[r % len(RANK_COLOURS)]
                        for r in range(len(order))])
        bars.set_ylim(0, 1)
        bars.set_xticks(range(len(order)))
        bars.set_xticklabels(['{}'.format(r + 1)
                              for r in range(len(order))])
        bars.set_xlabel('component, by lambda_k')
        if col == 0:
            ax.set_ylabel('lambda_k N(x; mu_k, sigma_k^2)')
            bars.set_ylabel('lambda_k')
    fig.suptitle('{}{}: {} channels'.format(
        title + '\n' if title else '', path, len(channels)))
    fig.tight_layout()
    return save(fig, png, 90)
