"""Figures 2-4 (test error against epochs) and Figure 5 (DenseNet's
training and test error and loss, with its best test errors).

* Figure 2 (Sec. 4.2): test error against epochs of the Table 2 runs, BN-i
  (dashed) against MN-i for each (lr, weight decay), shaded by one
  standard deviation within a window of 10 epochs.
* Figure 3: left, the EM iterations (MN-2, MN-5, MN-6: 2, 4, 8); right, MN
  at conv3, conv2 and both (MN-2, MN-7, MN-8); BN-2 dashed in both.  The
  paper's rows are CIFAR-100's; the same settings on CIFAR-10 are
  ``configs/figure3/cifar10/`` (not in the paper).
* Figure 4 (Sec. 4.3): Inception-V3 test error, (a) CIFAR-10 and (b)
  CIFAR-100 at the small learning rate, (c) the large one, (d) Nesterov
  with both drop policies (Table 6).
* Figure 5 (Sec. 4.4): the rows of ``configs/densenet`` with ``paper.figure:
  5``: best test error beside the paper's, and training and test error and
  loss against epochs (Fig. 5a-d), shaded by one standard deviation within
  a window of 3 epochs; runs not there yet are "not run".
"""
import os

from train.common.titles import reduced_title
from train.data.datasets import DATASETS
from train.figures.panels import curve_label
from train.figures.panels import FigureError
from train.figures.panels import figure_title
from train.figures.panels import FOLDERS
from train.figures.panels import header
from train.figures.panels import is_bn
from train.figures.panels import load_panels
from train.figures.panels import scope_note
from train.metrics import accuracy as metrics
from train.metrics.spread import window_std
from train.report import tables
from train.report.markdown import format_diff
from train.report.markdown import format_value
from train.report.markdown import header as report_header
from train.report.markdown import mn_setting
from train.report.markdown import models_text
from train.report.markdown import table_lines
from train.report.markdown import training_setting
from train.report.plotting import band
from train.report.plotting import colour_cycle
from train.report.plotting import integer_ticks
from train.report.plotting import labels_and_grid
from train.report.plotting import pyplot
from train.report.plotting import save

WINDOW = 10  # epochs: Fig. 2's standard-deviation window
FIGURE5_WINDOW = 3  # epochs: Fig. 5's


# ------------------------------------------------------- Figures 2, 3, 4
def _test_error(run):
    _, epochs, accs = metrics.accuracy_curve(run.log)
    return epochs, [100.0 - a for a in accs]


def _panel_title(panel, rows):
    title = DATASETS[panel.dataset].title
    if panel.title is None:  # Fig. 2: one (lr, weight decay) setting
        return '{}, (lr, weight decay) = {}'.format(
            title, training_setting(rows[0][1]))
    if panel.title.startswith('('):
        return panel.title
    return '{}: {}'.format(title, panel.title)


def plot_curves(loaded, path, ncols, title=None):
    """Test error against epochs, one panel per entry of ``loaded``.

    BN runs dashed, MN runs solid, each shaded by one standard deviation
    within a window of :data:`WINDOW` epochs (Fig. 2; centred, cut short at
    the ends: :func:`train.metrics.window_std`); ``title`` above.

    Returns:
        matplotlib.figure.Figure: The figure written (closed).

    """
    plt = pyplot()
    ncols = min(ncols, len(loaded))
    nrows = -(-len(loaded) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols,
                                                    3.6 * nrows),
                             squeeze=False)
    colours = colour_cycle()
    for ax, (panel, rows) in zip(axes.flat, loaded):
        policies = [tuple(cfg['schedule'].get('drops', ())) for _, cfg, _ in
                    rows]
        n_mn = 0
        for (stem, cfg, run), policy in zip(rows, policies):
            epochs, err = _test_error(run)
            if len(set(policies)) > 1:  # Fig. 4d: a colour per drop policy
                colour = colours[sorted(set(policies)).index(policy)]
            elif is_bn(cfg):
                colour = 'black' if len(rows) > 2 else colours[0]
            else:
                n_mn += 1
                colour = colours[n_mn % len(colours)]
            band(ax, epochs, err, window_std(err, WINDOW), is_bn(cfg),
                 colour, curve_label(cfg),
                 marker='o' if len(epochs) <= 12 else None, always=True)
        ax.set_title(_panel_title(panel, rows), fontsize='medium')
        ax.set_xlabel('epoch')
        integer_ticks(ax)
        ax.set_ylabel('test error (%)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    for ax in list(axes.flat)[len(loaded):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path, 90)


def curves_figure(number, loaded, datasets):
    """Markdown of Figures 2-4: the runs, best and final test error."""
    rows = [row for _, rs in loaded for row in rs]
    lines = header(number, rows) + scope_note(number, datasets)
    lines += ['Test error (%) against epochs, evaluated once per epoch; BN '
              'dashed, MN solid; shaded: one standard deviation within a '
              'window of {} epochs (Sec. 4.2: "computed within a window of '
              '10 epochs"; `train.metrics.window_std`: centred on the '
              'epoch, 5 epochs either side, cut short at the ends).'
              .format(WINDOW), '']
    body = []
    for panel, rs in loaded:
        for stem, cfg, run in rs:
            epochs, err = _test_error(run)
            best = min(range(len(err)), key=err.__getitem__)
            body.append([_panel_title(panel, rs), curve_label(cfg),
                         format_value(err[best]),
                         str(epochs[best]), format_value(err[-1]),
                         format_value(window_std(err, WINDOW)[-1]),
                         '`{}`'.format(run.path), run.status()])
    lines += table_lines(
        ['panel', 'run', 'best test error', 'epoch of best',
         'final test error', 'final std (window)', 'folder', 'status'],
        body)
    return lines


def figure2to4(number, args, datasets):
    """Figures 2-4; returns ``(markdown lines, rows, png writer)``."""
    loaded = load_panels(number, datasets, args.configs, args.runs)
    rows = [row for _, rs in loaded for row in rs]
    ncols = 4 if number == 2 else 2

    def draw(png, title=None):
        return plot_curves(loaded, png, ncols, title)
    return curves_figure(number, loaded, datasets), rows, draw


# --------------------------------------------------------------- Figure 5
def _best_error(run):
    return 100.0 - metrics.max_accuracy(run.log) if run.exists else None


def figure_table(number, rows):
    """Markdown of a figure's numbers (5): best test error, paper and ours,
    ending with the caption of its curves.

    Args:
        number (int): The paper's figure number (for the title).
        rows (list): The figure's rows (:func:`train.report.tables.select`).

    """
    lines = report_header('Figure {}: {}, best test error (%)'.format(
        number, models_text(rows)), rows)
    lines.append('Best test error: the minimum over the per-epoch '
                 'evaluations. "n/a": not run.')
    head = ['model', 'MN setting (layer, K, EM iter.)', '(lr, weight decay)',
            'paper: best test error', 'ours', 'diff',
            'ours: final test error', 'ours: epoch of best', 'run']
    for group, members in tables.groups(rows):
        body = []
        for stem, cfg, run in members:
            paper = cfg['paper']
            ours = _best_error(run)
            final = best_epoch = None
            if run.exists:
                final = 100.0 * (1 - run.log[-1][metrics.ACC_KEY])
                best_epoch = max(run.log,
                                 key=lambda e: e[metrics.ACC_KEY])['epoch']
            body.append([paper['row'], mn_setting(cfg),
                         training_setting(cfg),
                         format_value(paper.get('best_error')),
                         format_value(ours),
                         format_diff(ours, paper.get('best_error')),
                         format_value(final),
                         'n/a' if best_epoch is None else str(best_epoch),
                         run.status()])
        lines += ['', '## ' + group, ''] + table_lines(head, body)
    lines += ['', 'Training and test error and cross-entropy loss '
              '(Fig. {0}a-d; shaded: one standard deviation within a '
              'window of 3 epochs, as in the paper):'.format(number)]
    return lines


# Fig. 5a-d: (log key, y label, in percent)
FIGURE5_PANELS = (('main/error', 'training error (%)', True),
                  ('main/loss', 'training loss', False),
                  ('validation/main/error', 'test error (%)', True),
                  ('validation/main/loss', 'test loss', False))


def plot_figure5(rows, path, title=None):
    """Writes a 2x2 PNG of training/test error and loss against epochs.

    One line per run (dashed: batch normalization only), shaded by one
    standard deviation within a window of 3 epochs (Fig. 5); a legend on
    each panel; ``title`` above (ending in
    :data:`train.common.titles.REDUCED_TITLE` when a run is reduced).

    Returns:
        matplotlib.figure.Figure: The figure written (closed).

    """
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    colours = colour_cycle()
    for ax, (key, ylabel, percent), letter in zip(axes.flat, FIGURE5_PANELS,
                                                  'abcd'):
        for i, (stem, cfg, run) in enumerate(rows):
            if not run.exists:
                continue
            epochs, values = metrics.curve(run.log, key, percent)
            if not values:
                continue
            band(ax, epochs, values, window_std(values, FIGURE5_WINDOW),
                 is_bn(cfg), colours[i % len(colours)],
                 '{} {}'.format(tables.group_of(cfg), cfg['paper']['row']))
        labels_and_grid(ax, letter, 'epoch', ylabel)
        integer_ticks(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize='small')
    if title:
        fig.suptitle(reduced_title(title, any(
            run.reduced for _, _, run in rows)), fontsize='medium')
    fig.tight_layout()
    return save(fig, path, 100)


def figure5(args, datasets):
    """Figure 5 from the configurations of ``<configs>/<folder>``
    (``--folder``, default ``densenet``) and their runs under
    ``<runs>/<folder>``; returns ``(markdown lines, rows, png writer)``."""
    folder = args.folder or FOLDERS[5]
    configs = os.path.join(args.configs, folder)
    rows = tables.select(tables.load_rows(
        configs, os.path.join(args.runs, folder), datasets), 'figure', 5)[1]
    if not rows:
        raise FigureError('no configuration reports figure 5 under {}'
                          .format(configs))

    def draw(png, title=None):
        # the title's "reduced" comes from the rows, as the table's
        return plot_figure5(rows, png, figure_title(5, False))
    return figure_table(5, rows), rows, draw
