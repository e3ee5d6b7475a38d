"""Plots of reports and figures, drawn alike: matplotlib without a display
(:func:`pyplot`), a curve shaded by one standard deviation (:func:`band`),
whole-number epoch ticks, and the training loss and test error of runs
against updates (:func:`plot_loss_and_error`: comparisons and studies)."""
import textwrap

from train.metrics.accuracy import ACC_KEY
from train.metrics.accuracy import LOSS_KEY
from train.metrics.spread import epoch_stats
from train.report.markdown import make_dir


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files, no display)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def colour_cycle():
    """The colours of matplotlib's default cycle, in order."""
    return pyplot().rcParams['axes.prop_cycle'].by_key()['color']


def band(ax, x, values, spread, dashed, colour, label, marker=None,
         always=False):
    """One curve (dashed: batch normalization only), shaded by +- spread
    (where any spread is non-zero, or ``always``)."""
    ax.plot(x, values, '--' if dashed else '-', color=colour, marker=marker,
            markersize=3, label=label)
    if always or any(spread):
        ax.fill_between(x, [v - s for v, s in zip(values, spread)],
                        [v + s for v, s in zip(values, spread)],
                        color=colour, alpha=0.2, linewidth=0)


def labels_and_grid(ax, letter, xlabel, ylabel):
    """A panel's title ``(letter) ylabel``, axis labels and grid."""
    ax.set_title('({}) {}'.format(letter, ylabel))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def integer_ticks(ax):
    """Ticks at whole numbers only on the x axis (epochs)."""
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save(fig, path, dpi):
    """Writes ``fig`` to ``path`` (its folder created) and closes it."""
    make_dir(path)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return fig


# the panels of plot_loss_and_error: (y label, value of a log entry)
LOSS_AND_ERROR = (
    ('training loss', lambda e: e.get(LOSS_KEY)),
    ('test error (%)', lambda e: 100.0 * (1 - e[ACC_KEY])))


def plot_loss_and_error(groups, path, title):
    """Writes a PNG of training loss and test error against updates.

    Two panels, (a) training loss and (b) test error (%), against gradient
    updates, each with a legend; one line per group: the mean over its
    runs at each epoch, shaded by one sample standard deviation where two
    or more runs reach that epoch.

    Args:
        groups (list): ``(label, logs, dashed)`` per line; ``dashed`` for
            batch normalization only.
        path (str): The PNG.
        title (str): The figure's title (the budget and the data).

    Returns:
        matplotlib.figure.Figure: The figure written (closed).

    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = colour_cycle()
    for ax, (ylabel, value), letter in zip(axes, LOSS_AND_ERROR, 'ab'):
        for i, (label, logs, dashed) in enumerate(groups):
            stats = epoch_stats(logs, value)
            if not stats:
                continue
            its, means, stds = zip(*stats)
            band(ax, its, means, [s or 0.0 for s in stds], dashed,
                 colours[i % len(colours)], label,
                 marker='o' if len(its) <= 30 else None)
        labels_and_grid(ax, letter, 'gradient updates', ylabel)
        integer_ticks(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize='small')
    fig.suptitle(textwrap.fill(title, 100), fontsize='medium')
    fig.tight_layout()
    return save(fig, path, 100)
