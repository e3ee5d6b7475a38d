"""A run's own plot (``error.png``, ``fid.png``), redrawn from its log.

:class:`RunPlot` replaces Chainer's ``PlotReport`` in the trainers: the
plot has a title (the run, its budget and data, and "reduced: NOT a
reproduction" for a reduced run), values in the unit the reports use
(error in percent, as ``compare.png``) and whole-number ticks on the
epoch or iteration axis.  Its title is
:func:`train.common.titles.run_title` (classifiers) or
:func:`train.common.titles.gan_title`.
"""
import os

from chainer import training

from train.output.files import replace_file

# error.png of a classifier run: (log key, label)
ERROR_CURVES = (('main/error', 'training error'),
                ('validation/main/error', 'test error'))


def available():
    """Whether matplotlib imports (else runs write no plot)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def figure(log, title, curves=ERROR_CURVES, x_key='epoch',
           ylabel='error (%)', scale=100.0):
    """The plot of ``curves`` of a LogReport log.

    Args:
        log (list of dict): Log entries.
        title (str): The figure's title.
        curves (tuple): ``(key, label)`` per line; entries without the key
            are skipped.
        x_key (str): The x axis (``epoch`` or ``iteration``).
        ylabel (str): The y axis's label, with its unit.
        scale (float): Factor on the logged values (100: percent).

    Returns:
        matplotlib.figure.Figure

    """
    import textwrap

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    for key, label in curves:
        points = [(e[x_key], scale * e[key]) for e in log
                  if key in e and x_key in e]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker='o' if len(xs) <= 30 else None,
                    markersize=3, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x_key)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize='small')
    ax.set_title(textwrap.fill(title, 70), fontsize='small')
    fig.tight_layout()
    return fig


class RunPlot(training.Extension):

    """Redraws ``<out>/<filename>`` from the trainer's LogReport.

    Args:
        title (str): The plot's title.
        filename (str): File name in the run's folder.
        kwargs: For :func:`figure` (``curves``, ``x_key``, ``ylabel``,
            ``scale``).

    """

    trigger = 1, 'epoch'
    priority = training.PRIORITY_READER  # after LogReport has written

    def __init__(self, title, filename='error.png', **kwargs):
        self.title = title
        self.filename = filename
        self.kwargs = kwargs

    def __call__(self, trainer):
        log = trainer.get_extension('LogReport').log
        if not log:
            return
        fig = figure(log, self.title, **self.kwargs)
        replace_file(os.path.join(trainer.out, self.filename),  # atomic
                     lambda f: fig.savefig(f, dpi=90, format='png'))
