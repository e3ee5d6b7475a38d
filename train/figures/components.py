"""Figure 9 (Sec. 5.3): the number of active components of MN modules.

The number of active components (lambda_k >= ``min_weight``) of every MN
link of MN-4 through training (``record.active_components``,
:mod:`train.classifier.records`), a running average over ``--window`` log
entries (default: a twentieth of them) with one standard deviation of the
per-step counts in the window shaded.
"""
import math

import numpy

from train.classifier.records import ActiveComponents
from train.classifier.records import read_components
from train.data.datasets import DATASETS
from train.figures.fits import min_weight
from train.figures.panels import FigureError
from train.figures.panels import header
from train.figures.panels import load_panels
from train.figures.panels import scope_note
from train.figures.panels import single_run
from train.report.markdown import table_lines
from train.report.plotting import pyplot
from train.report.plotting import save


def smooth_counts(entries, path, window):
    """Running average of a link's active components, and its std.

    Args:
        entries (list): From :func:`train.classifier.records.read_components`.
        path (str): The link.
        window (int): Entries in the centred window (cut short at the
            ends).

    Returns:
        tuple: ``(iterations, mean, std)`` arrays: the mean and standard
        deviation of the per-step counts of all steps in each entry's
        window (pooled over the entries' histograms).

    """
    iters = numpy.array([e['iteration'] for e in entries])
    hist = numpy.array([e['counts'][path] for e in entries], numpy.float64)
    levels = numpy.arange(hist.shape[1])
    s0, s1, s2 = (hist.sum(axis=1), hist @ levels, hist @ levels ** 2)
    half = window // 2
    mean, std = [], []
    for i in range(len(entries)):
        sl = slice(max(0, i - half), i + half + 1)
        n = max(s0[sl].sum(), 1)
        m = s1[sl].sum() / n
        mean.append(m)
        std.append(math.sqrt(max(s2[sl].sum() / n - m * m, 0.0)))
    return iters, numpy.array(mean), numpy.array(std)


def figure9(args, datasets):
    """Figure 9; returns ``(markdown lines, rows, png writer)``."""
    if args.run:
        stem, run = single_run(9, args, datasets)
        rows = [(stem, run.info['config'], run)]
    else:
        rows = [row for _, rs in load_panels(9, datasets, args.configs,
                                             args.runs) for row in rs]
    series = []
    for stem, cfg, run in rows:
        entries = read_components(run.path)
        if not entries:
            raise FigureError(
                '{}: no active-component counts ({}). Figure 9 needs the '
                'run trained with `record: {{active_components: true}}` in '
                'its configuration (configs/table4/*/mn4.yaml have it)'
                .format(run.path, ActiveComponents.path(run.path)))
        window = args.window or max(1, len(entries) // 20)
        series.append((cfg, run, entries, window))
    lines = header(9, rows) + ([] if args.run else
                               scope_note(9, datasets))
    lines += ['Each MN module\'s number of active components (lambda_k >= '
              'min_weight = {:g}, Sec. 5.3), counted on the device at every '
              'training step; a running average over a centred window of '
              'log entries, shaded by one standard deviation of the '
              'per-step counts in the window.'.format(
                  min_weight(rows[0][1])), '']
    body = []
    for cfg, run, entries, window in series:
        k = cfg['norm']['n_components']
        for path in sorted(entries[0]['counts']):
            hist = numpy.array([e['counts'][path] for e in entries])
            first, last = _mean_count(hist[:max(1, len(hist) // 10)]), \
                _mean_count(hist[-max(1, len(hist) // 10):])
            total = hist.sum(axis=0)
            body.append([DATASETS[cfg['dataset']].title,
                         path, str(int(total.sum())),
                         '{:.2f}'.format(first), '{:.2f}'.format(last),
                         '{:.1f}%'.format(100.0 * total[k] / total.sum()),
                         str(window)])
    lines += table_lines(
        ['dataset', 'MN module', 'steps counted',
         'mean, first 10% of entries', 'mean, last 10%',
         'steps using all K', 'window (entries)'], body)
    lines += ['', 'Runs: ' + '; '.join('`{}` ({})'.format(run.path,
                                                          run.status())
                                       for _, run, _, _ in series) + '.']

    def draw(png, title=None):
        return plot_figure9(series, png, title)
    return lines, rows, draw


def _mean_count(hist):
    total = hist.sum(axis=0)
    return float(total @ numpy.arange(len(total)) / max(total.sum(), 1))


def plot_figure9(series, png, title=None):
    """Fig. 9: one panel per run, one smoothed curve per MN module, under
    ``title``; returns the figure written (closed)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(6.5 * len(series),
                                                      4.2), squeeze=False)
    colours = plt.get_cmap('tab10').colors
    for ax, (cfg, run, entries, window) in zip(axes.flat, series):
        k = cfg['norm']['n_components']
        for i, path in enumerate(sorted(entries[0]['counts'])):
            iters, mean, std = smooth_counts(entries, path, window)
            colour = colours[i % len(colours)]
            ax.plot(iters, mean, color=colour, linewidth=1,
                    marker='o' if len(iters) <= 12 else None, markersize=3,
                    label=path[:-3] if path.endswith('/bn') else path)
            ax.fill_between(iters, mean - std, mean + std, color=colour,
                            alpha=0.15, linewidth=0)
        ax.set_ylim(0.5, k + 0.5)
        ax.set_xlabel('iteration')
        ax.set_ylabel('active components')
        ax.set_title('{}, {} (K = {})'.format(
            DATASETS[cfg['dataset']].title,
            cfg.get('paper', {}).get('row') or cfg['name'], k))
        ax.grid(alpha=0.3)
        ax.legend(fontsize='x-small', ncol=2, loc='lower left')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, png, 90)
