"""Runs side by side: ``python -m train.report compare RUN [RUN ...]``.

The first run is the reference: maximum and final test accuracy, final
training loss, updates to the first run's maximum, and test accuracy and
training loss after each epoch; the plot shows training loss and test
error against updates (:func:`train.report.plotting.plot_loss_and_error`),
titled by the runs' budget and data
(:func:`train.common.titles.budget_text`), devices and seeds.
"""
import os

from train.common.titles import budget_text
from train.common.titles import device_text
from train.common.titles import reduced_title
from train.common.titles import seed_text
from train.config.loading import norm_label
from train.metrics import accuracy as metrics
from train.report.markdown import format_loss
from train.report.plotting import plot_loss_and_error


def labels_of(runs):
    """Row labels, or folder names where two runs share a label."""
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):
        labels = [os.path.basename(os.path.normpath(r.path)) for r in runs]
    return labels


def compare(runs):
    """Markdown comparing runs side by side; the first is the reference.

    Training loss stands beside test accuracy: training speed is the
    paper's claim.

    Args:
        runs (list of Run): Finished or running runs with logs.

    """
    labels = labels_of(runs)
    target = metrics.max_accuracy(runs[0].log)
    lines = ['Runs: {}.'.format(budget_text([r.info for r in runs])), '',
             '| run | normalization | max test acc. (%) | final test acc. '
             '(%) | final training loss | steps to {}\'s max ({:.2f}%) | '
             'epochs | iterations | wall time (s) |'.format(
                 labels[0], target),
             '|---|---|---|---|---|---|---|---|---|']
    for label, run in zip(labels, runs):
        paths = run.info.get('mn_paths')
        last = run.log[-1]
        lines.append('| {} | {} | {:.2f} | {:.2f} | {} | {} | {} | {} | '
                     '{:.0f} |'.format(
                         label, norm_label(paths),
                         metrics.max_accuracy(run.log),
                         100 * last[metrics.ACC_KEY],
                         format_loss(metrics.final_loss(run.log)),
                         metrics.steps_to_reach(run.log, target) or '-',
                         last['epoch'], last['iteration'],
                         last.get('elapsed_time', 0)))
    lines += ['', 'Test accuracy (%) and training loss after each epoch:',
              '', '| epoch | iteration | ' + ' | '.join(
                  '{0}: test acc. | {0}: training loss'.format(label)
                  for label in labels) + ' |',
              '|---|---|' + '---|---|' * len(runs)]
    by_epoch = [{e['epoch']: e for e in r.log} for r in runs]
    for epoch in sorted(set().union(*by_epoch)):
        entries = [b.get(epoch) for b in by_epoch]
        it = next(e['iteration'] for e in entries if e)
        lines.append('| {} | {} | '.format(epoch, it) + ' | '.join(
            '{:.2f} | {}'.format(100 * e[metrics.ACC_KEY],
                                 format_loss(e.get(metrics.LOSS_KEY)))
            if e else ' | ' for e in entries) + ' |')
    return '\n'.join(lines) + '\n'


def compare_title(runs):
    """The title of :func:`plot`: the runs' budget and data, device and
    seeds, and :data:`REDUCED_TITLE` when a run is reduced."""
    labels = labels_of(runs)
    parts = ['Comparison: {}'.format(budget_text([r.info for r in runs]))]
    for one, many, value in (('device', 'devices', device_text),
                             ('seed', 'seeds', seed_text)):
        pairs = [(label, value(r.info)) for label, r in zip(labels, runs)
                 if value(r.info) is not None]
        if len({v for _, v in pairs}) == 1:
            parts.append('{} {}'.format(one, pairs[0][1]))
        elif pairs:
            parts.append('{}: {}'.format(many, ', '.join(
                '{} {}'.format(label, v) for label, v in pairs)))
    return reduced_title('; '.join(parts), any(r.reduced for r in runs))


def plot(runs, path):
    """Writes :func:`plot_loss_and_error` of runs compared side by side,
    titled by :func:`compare_title`; returns the figure."""
    groups = [(label, [run.log], not run.info.get('mn_paths'))
              for label, run in zip(labels_of(runs), runs)]
    return plot_loss_and_error(groups, path, compare_title(runs))
