"""Reports built from run folders: the paper's tables, Figure 5, comparisons.

    python -m train.report table N [--configs DIR] [--runs DIR]
        [--dataset cifar10|cifar100|all] [--out FILE] [--reduced-out FILE]
    python -m train.report figure N (same options)
    python -m train.report compare RUN [RUN ...] [--out FILE] [--plot PNG]

A report's rows are the configurations under ``--configs`` whose ``paper``
block names the table or figure (see :mod:`train.config`); their shape
follows from that block:

* accuracy tables (2, 4): rows with ``paper.table: N`` and ``acc_at``:
  maximum test accuracy after 25/50/75/100% of the epochs, paper | ours |
  difference;
* steps tables (3, 5, 6): rows with ``paper.steps.table: N``: gradient
  updates until test accuracy first reaches the maximum of the group's
  ``target_row``, for the paper's target and for our own run's maximum;
* figures (5): rows with ``paper.figure: N``: best test error beside the
  paper's, and a PNG of training and test error and loss against epochs
  (Fig. 5a-d) written beside the markdown file (same name, ``.png``).

Rows are grouped by ``paper.group`` (default: the dataset), in the natural
order of their files (numbers by value: ``bn_40`` before ``bn_100``).  The
run of ``<configs>/<path>.yaml`` is the folder ``<runs>/<path>`` (what the
scripts write); ``--configs`` and ``--runs`` default to
``configs/<folder>`` and ``runs/<folder>`` with the folder of
:data:`FOLDERS`.  A run trained on a subset or for other than the
configured epochs is *reduced*: a report with such a run says so at the
top and goes to ``--reduced-out`` when given, so that results/ holds
full-budget runs only.

``compare`` puts runs side by side, the first as the reference: maximum and
final test accuracy, final training loss, updates to the first run's
maximum, and test accuracy and training loss after each epoch; its plot
shows training loss and test error against updates, titled by the runs'
budget and data (:func:`budget_text`).  :mod:`train.study` builds its
reports from the same pieces.
"""
import argparse
import glob
import json
import os
import re
import sys

from train import config as config_module
from train import metrics

PERCENTS = config_module.ACC_FRACTIONS
# (kind, number) -> folder under configs/ and runs/ holding its rows
FOLDERS = {('table', 2): 'table2', ('table', 3): 'table2',
           ('table', 4): 'table4', ('table', 5): 'table4',
           ('table', 6): 'table6', ('figure', 5): 'densenet'}
MODEL_NAMES = {'cifar_cnn': 'CIFAR CNN', 'inception_v3': 'Inception-V3',
               'densenet': 'DenseNet'}
# in the title of every plot or figure drawn from a reduced run
REDUCED_TITLE = 'reduced: NOT a reproduction'
DATA_CAVEAT = (
    'Runs on an image-folder copy of CIFAR (such as cifar10-jpeg.zip, '
    're-encoded as JPEG) are expected to score about 2-3 points below runs '
    'on the original pixels that the paper used.')


class Run(object):

    """A run folder: its ``run.json`` and ``log`` (either may be missing).

    Args:
        path (str): The folder.

    """

    def __init__(self, path):
        self.path = path
        self.info = None
        self.log = None
        if os.path.exists(os.path.join(path, 'run.json')):
            with open(os.path.join(path, 'run.json')) as f:
                self.info = json.load(f)
        if os.path.exists(os.path.join(path, 'log')):
            self.log = metrics.load_log(path)

    @property
    def exists(self):
        return self.info is not None and bool(self.log)

    @property
    def reduced(self):
        """Trained on a subset or for other than the configured epochs."""
        return bool(self.info) and is_reduced(self.info)

    @property
    def label(self):
        """The paper's row (e.g. BN-2), else the configuration's name."""
        cfg = self.info['config']
        return cfg.get('paper', {}).get('row') or cfg['name']

    def status(self):
        if not self.exists:
            return 'not run'
        i = self.info
        done = self.log[-1]['epoch']
        text = '{}/{} ep'.format(done, i['epochs'])
        if i.get('finished'):
            text = 'done, {} ep, {:.0f} s'.format(i['epochs'],
                                                  i.get('wall_time', 0))
        if self.reduced:
            text += ', reduced ({} train / {} test images)'.format(
                i['n_train'], i['n_test'])
        return text


def is_reduced(info):
    """Whether a run (its ``run.json``) trained on a subset or for other
    than the configured epochs."""
    return bool(info.get('train_subset') or info.get('test_subset') or
                info['epochs'] != info['config']['epochs'])


def reduced_title(title, reduced):
    """``title``, ending in :data:`REDUCED_TITLE` when ``reduced``."""
    return '{} ({})'.format(title, REDUCED_TITLE) if reduced else title


def format_value(value, signed=False):
    if value is None:
        return 'n/a'
    return ('{:+.2f}' if signed else '{:.2f}').format(value)


def _diff(ours, paper):
    if ours is None or paper is None:
        return 'n/a'
    return format_value(ours - paper, signed=True)


def _mn_setting(cfg):
    norm = cfg['norm']
    layers = norm['layers']
    if not layers:
        return '-'
    where = layers[0] if len(layers) == 1 else '({})'.format(','.join(layers))
    return '({}, {}, {})'.format(where, norm['n_components'],
                                 norm['em_iter'])


def _number(value):
    """A number as the paper prints it: 0.01, 1e-4, 2e-5."""
    if value == 0 or value >= 1e-3:
        return '{:g}'.format(value)
    mantissa, exponent = '{:e}'.format(value).split('e')
    return '{}e{}'.format(mantissa.rstrip('0').rstrip('.'), int(exponent))


def _training_setting(cfg):
    opt = cfg['optimizer']
    return '({}, {})'.format(_number(opt['lr']),
                             _number(opt.get('weight_decay', 0.0)))


def _natural(path):
    """Sort key that orders numbers by value: bn_40 before bn_100."""
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', path)]


def load_rows(configs_dir, runs_dir, datasets=None):
    """Configurations under ``configs_dir`` (recursively) and their runs.

    Args:
        configs_dir (str): Folder of YAML configurations.
        runs_dir (str): Folder of their runs (same relative paths).
        datasets (tuple): Keep only these datasets (default: all).

    Returns:
        list: ``(stem, cfg, Run)`` in natural path order; ``stem`` is the
        path relative to ``configs_dir`` without ``.yaml``.

    """
    rows = []
    pattern = os.path.join(configs_dir, '**', '*.yaml')
    for path in sorted(glob.glob(pattern, recursive=True), key=_natural):
        stem = os.path.splitext(os.path.relpath(path, configs_dir))[0]
        cfg = config_module.load(path, check_model=False)
        if datasets is None or cfg['dataset'] in datasets:
            rows.append((stem, cfg, Run(os.path.join(runs_dir, stem))))
    return rows


def group_of(cfg):
    """The sub-table a row belongs to: ``paper.group``, else the dataset."""
    return (cfg.get('paper', {}).get('group') or
            config_module.DATASETS[cfg['dataset']].title)


def select(rows, kind, number):
    """The rows of a table or figure and the report's shape.

    Args:
        rows (list): From :func:`load_rows`.
        kind (str): ``table`` or ``figure``.
        number (int): The paper's table or figure number.

    Returns:
        tuple: ``(shape, rows)`` with shape ``accuracy``, ``steps`` or
        ``figure``; ``rows`` is empty when none matches.

    """
    def paper(cfg):
        return cfg.get('paper', {})

    if kind == 'figure':
        return 'figure', [r for r in rows if paper(r[1]).get('figure') ==
                          number]
    steps = [r for r in rows
             if paper(r[1]).get('steps', {}).get('table') == number]
    if steps:
        return 'steps', steps
    return 'accuracy', [r for r in rows if paper(r[1]).get('table') ==
                        number and 'acc_at' in paper(r[1])]


def _groups(rows):
    """``[(group, [row, ...]), ...]`` in order of first appearance."""
    order, members = [], {}
    for row in rows:
        name = group_of(row[1])
        if name not in members:
            order.append(name)
            members[name] = []
        members[name].append(row)
    return [(name, members[name]) for name in order]


def paper_max_accuracy(paper):
    """The row's maximum test accuracy (%) in the paper, or None."""
    if 'max_acc' in paper:
        return paper['max_acc']
    if 'best_error' in paper:
        return 100.0 - paper['best_error']
    return paper.get('acc_at', {}).get(100)


def _models(rows):
    names = []
    for _, cfg, _ in rows:
        name = MODEL_NAMES.get(cfg['model'], cfg['model'])
        if name not in names:
            names.append(name)
    return ', '.join(names)


def _header(title, rows):
    runs = [r for _, _, r in rows if r.exists]
    lines = ['# ' + title, '']
    if any(r.reduced for r in runs):
        lines += ['**Reduced-budget runs (subsets or fewer epochs): NOT a '
                  'reproduction of the paper.**', '']
    sources = sorted({r.info.get('data_source', '?') for r in runs})
    devices = sorted({r.info.get('device', '?') for r in runs})
    lines.append('Runs: {} of {} configurations. Data: {}. Devices: {}.'
                 .format(len(runs), len(rows), '; '.join(sources) or
                         'none yet', ', '.join(devices) or 'none yet'))
    if any('chainer.datasets' not in s for s in sources):
        lines.append(DATA_CAVEAT)
    lines.append('')
    return lines


def table_lines(head, body):
    return (['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)] +
            ['| ' + ' | '.join(cells) + ' |' for cells in body])


def _marks(rows):
    """Column marks: epochs (``50 ep``) when all rows share their length."""
    epochs = {cfg['epochs'] for _, cfg, _ in rows}
    if len(epochs) == 1:
        total = epochs.pop()
        return ['{:g} ep'.format(total * p / 100.0) for p in PERCENTS]
    return ['{}%'.format(p) for p in PERCENTS]


def accuracy_table(number, rows):
    """Markdown of an accuracy table (2, 4): paper, ours, difference.

    Args:
        number (int): The paper's table number (for the title).
        rows (list): The table's rows (see :func:`select`).

    """
    marks = _marks(rows)
    lines = _header('Table {}: {}, maximum test accuracy (%) after {}'.format(
        number, _models(rows), '/'.join(marks)), rows)
    lines.append('Each cell group: paper | ours | ours - paper. "n/a": the '
                 'run has not reached that epoch (or has not run).')
    for group, members in _groups(rows):
        head = ['model', 'MN setting (layer, K, EM iter.)',
                '(lr, weight decay)']
        for mark in marks:
            head += ['{}: paper'.format(mark), 'ours', 'diff']
        body = []
        for stem, cfg, run in members:
            paper = cfg['paper']
            ours = (metrics.accuracy_at(run.log, run.info['epochs'])
                    if run.exists else {})
            cells = [paper['row'], _mn_setting(cfg), _training_setting(cfg)]
            for p in PERCENTS:
                pv = paper['acc_at'].get(p)
                cells += [format_value(pv), format_value(ours.get(p)),
                          _diff(ours.get(p), pv)]
            body.append(cells + [run.status()])
        lines += ['', '## ' + group, ''] + table_lines(head + ['run'], body)
    return '\n'.join(lines) + '\n'


def steps_table(number, rows, all_rows):
    """Markdown of a steps table (3, 5, 6): updates to reach a maximum.

    Two targets per group: the paper's (e.g. 87.95%, the maximum of the
    paper's ``target_row``) and the maximum that our own run of the
    ``target_row`` of the same group reached.

    Args:
        number (int): The paper's table number (for the title).
        rows (list): The table's rows (see :func:`select`).
        all_rows (list): Rows that may hold the target row's run.

    """
    lines = _header('Table {}: {}, gradient updates to reach the maximum '
                    'test accuracy of the batch-normalized model'.format(
                        number, _models(rows)), rows)
    lines.append('"-": never reached; "n/a": not run (or the target row has '
                 'not run).')
    for group, members in _groups(rows):
        steps = members[0][1]['paper']['steps']
        paper_target, ref_row = steps['target'], steps['target_row']
        ref = [r for _, c, r in all_rows if group_of(c) == group and
               c.get('paper', {}).get('row') == ref_row]
        ours_target = (metrics.max_accuracy(ref[0].log)
                       if ref and ref[0].exists else None)
        lines += ['', '## {}: paper target {:.2f}% ({} in the paper), our '
                  'target {} (our {} maximum)'.format(
                      group, paper_target, ref_row,
                      format_value(ours_target) + '%' if ours_target
                      else 'n/a',
                      ref_row), '']
        head = ['model', 'paper: steps to {:.2f}%'.format(paper_target),
                'ours: steps to {:.2f}%'.format(paper_target),
                'ours: steps to our {} max'.format(ref_row),
                'paper: max acc. (%)', 'ours: max acc. (%)', 'run']
        body = []
        for stem, cfg, run in members:
            paper = cfg['paper']
            if run.exists:
                to_paper = metrics.format_steps(
                    metrics.steps_to_reach(run.log, paper_target))
                to_ours = (metrics.format_steps(metrics.steps_to_reach(
                    run.log, ours_target)) if ours_target else 'n/a')
                best = format_value(metrics.max_accuracy(run.log))
            else:
                to_paper = to_ours = best = 'n/a'
            body.append([paper['row'],
                         metrics.format_steps(paper['steps']['value']),
                         to_paper, to_ours,
                         format_value(paper_max_accuracy(paper)), best,
                         run.status()])
        lines += table_lines(head, body)
    return '\n'.join(lines) + '\n'


def _best_error(run):
    return 100.0 - metrics.max_accuracy(run.log) if run.exists else None


def figure_table(number, rows, plot_name=None):
    """Markdown of a figure's numbers (5): best test error, paper and ours.

    Args:
        number (int): The paper's figure number (for the title).
        rows (list): The figure's rows (see :func:`select`).
        plot_name (str): File name of the curves' PNG to link, if any.

    """
    lines = _header('Figure {}: {}, best test error (%)'.format(
        number, _models(rows)), rows)
    lines.append('Best test error: the minimum over the per-epoch '
                 'evaluations. "n/a": not run.')
    head = ['model', 'MN setting (layer, K, EM iter.)', '(lr, weight decay)',
            'paper: best test error', 'ours', 'diff',
            'ours: final test error', 'ours: epoch of best', 'run']
    for group, members in _groups(rows):
        body = []
        for stem, cfg, run in members:
            paper = cfg['paper']
            ours = _best_error(run)
            final = best_epoch = None
            if run.exists:
                final = 100.0 * (1 - run.log[-1][metrics.ACC_KEY])
                best_epoch = max(run.log,
                                 key=lambda e: e[metrics.ACC_KEY])['epoch']
            body.append([paper['row'], _mn_setting(cfg),
                         _training_setting(cfg),
                         format_value(paper.get('best_error')),
                         format_value(ours),
                         _diff(ours, paper.get('best_error')),
                         format_value(final),
                         'n/a' if best_epoch is None else str(best_epoch),
                         run.status()])
        lines += ['', '## ' + group, ''] + table_lines(head, body)
    if plot_name:
        lines += ['', 'Training and test error and cross-entropy loss '
                  '(Fig. {0}a-d; shaded: one standard deviation within a '
                  'window of 3 epochs, as in the paper):'.format(number), '',
                  '![Figure {}]({})'.format(number, plot_name)]
    return '\n'.join(lines) + '\n'


def _band(ax, x, values, spread, dashed, colour, label, marker=None):
    """One curve (dashed: batch normalization only), shaded by +- spread."""
    ax.plot(x, values, '--' if dashed else '-', color=colour, marker=marker,
            markersize=3, label=label)
    if any(spread):
        ax.fill_between(x, [v - s for v, s in zip(values, spread)],
                        [v + s for v, s in zip(values, spread)],
                        color=colour, alpha=0.2, linewidth=0)


def _labels_and_grid(ax, letter, xlabel, ylabel):
    ax.set_title('({}) {}'.format(letter, ylabel))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


# Fig. 5a-d: (log key, y label, in percent)
_PANELS = (('main/error', 'training error (%)', True),
           ('main/loss', 'training loss', False),
           ('validation/main/error', 'test error (%)', True),
           ('validation/main/loss', 'test loss', False))


def plot_curves(rows, path, title=None):
    """Writes a 2x2 PNG of training/test error and loss against epochs.

    One line per run (dashed: batch normalization only), shaded by one
    standard deviation within a window of 3 epochs (Fig. 5); a legend on
    each panel; ``title`` above (ending in :data:`REDUCED_TITLE` when a
    run is reduced).

    Returns:
        matplotlib.figure.Figure: The figure written (closed).

    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, (key, ylabel, percent), letter in zip(axes.flat, _PANELS,
                                                  'abcd'):
        for i, (stem, cfg, run) in enumerate(rows):
            if not run.exists:
                continue
            epochs, values = metrics.curve(run.log, key, percent)
            if not values:
                continue
            _band(ax, epochs, values, metrics.window_std(values, 3),
                  not cfg['norm']['layers'], colours[i % len(colours)],
                  '{} {}'.format(group_of(cfg), cfg['paper']['row']))
        _labels_and_grid(ax, letter, 'epoch', ylabel)
        _integer_ticks(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize='small')
    if title:
        fig.suptitle(reduced_title(title, any(
            run.reduced for _, _, run in rows)), fontsize='medium')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig


def _integer_ticks(ax):
    """Ticks at whole numbers only on the x axis (epochs)."""
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def build(kind, number, rows, plot_path=None):
    """Markdown of one of the paper's tables or figures.

    Args:
        kind (str): ``table`` or ``figure``.
        number (int): The paper's number.
        rows (list): Candidate rows (:func:`load_rows`); those of the table
            or figure are chosen by :func:`select`, and the others may hold
            a steps table's target row.
        plot_path (str): For a figure, where to write the PNG of its curves
            (linked from the markdown by file name); None: no plot.

    Returns:
        str

    Raises:
        ValueError: No row reports that table or figure.

    """
    shape, chosen = select(rows, kind, number)
    if not chosen:
        raise ValueError('no configuration reports {} {}'.format(kind,
                                                                 number))
    if shape == 'accuracy':
        return accuracy_table(number, chosen)
    if shape == 'steps':
        return steps_table(number, chosen, rows)
    if plot_path:
        _make_dir(plot_path)
        plot_curves(chosen, plot_path, 'Figure {}: {}, training and test '
                    'error and loss'.format(number, _models(chosen)))
    return figure_table(number, chosen, plot_path and
                        os.path.basename(plot_path))


def _labels(runs):
    """Row labels, or folder names where two runs share a label."""
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):
        labels = [os.path.basename(os.path.normpath(r.path)) for r in runs]
    return labels


LOSS_KEY = 'main/loss'  # mean training loss over an epoch's updates


def final_loss(log):
    """The training loss of the last epoch in ``log``, or None."""
    return log[-1].get(LOSS_KEY) if log else None


def data_name(info):
    """The data of a run (``run.json``): a file or folder's base name, or
    ``CIFAR-10 (chainer.datasets)``."""
    source = info.get('data_source') or info.get('data') or '?'
    if os.sep in source:
        return os.path.basename(os.path.normpath(source))
    return source


def budget_text(infos):
    """What runs trained on, from their ``run.json``: epochs, images, data.

    Args:
        infos (list of dict): The runs' ``run.json`` contents.

    Returns:
        str: E.g. ``25 epochs (of 100), 50,000 train / 10,000 test images,
        cifar10-jpeg.zip``, or ``reduced budget: 4 epochs (of 100) on a
        2,560-image training subset / a 1,000-image test subset, ...``;
        distinct settings joined by ``; ``.

    """
    texts = []
    for i in infos:
        epochs = '{} epoch{}'.format(i['epochs'],
                                     '' if i['epochs'] == 1 else 's')
        if i['epochs'] != i['config']['epochs']:
            epochs += ' (of {})'.format(i['config']['epochs'])
        if i.get('train_subset') or i.get('test_subset'):
            text = 'reduced budget: {} on {} / {}, {}'.format(
                epochs, ('a {:,}-image training subset' if
                         i.get('train_subset') else '{:,} training images')
                .format(i['n_train']),
                ('a {:,}-image test subset' if i.get('test_subset') else
                 '{:,} test images').format(i['n_test']), data_name(i))
        else:
            text = '{}, {:,} train / {:,} test images, {}'.format(
                epochs, i['n_train'], i['n_test'], data_name(i))
        if text not in texts:
            texts.append(text)
    return '; '.join(texts)


def compare(runs):
    """Markdown comparing runs side by side; the first is the reference.

    Training loss stands beside test accuracy: training speed is the
    paper's claim.

    Args:
        runs (list of Run): Finished or running runs with logs.

    """
    labels = _labels(runs)
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
                         label, config_module.norm_label(paths),
                         metrics.max_accuracy(run.log),
                         100 * last[metrics.ACC_KEY],
                         format_loss(final_loss(run.log)),
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
                                 format_loss(e.get(LOSS_KEY)))
            if e else ' | ' for e in entries) + ' |')
    return '\n'.join(lines) + '\n'


def format_loss(value):
    return 'n/a' if value is None else '{:.4f}'.format(value)


def mean_std(values):
    """Mean and sample standard deviation of the values that are not None.

    Returns:
        tuple: ``(mean, std, n)``; ``mean`` is None without values and
        ``std`` is None with fewer than two.

    """
    values = [v for v in values if v is not None]
    n = len(values)
    if not n:
        return None, None, 0
    mean = sum(values) / n
    if n < 2:
        return mean, None, n
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5, n


def epoch_stats(logs, value):
    """One value per epoch averaged over several runs' logs.

    Args:
        logs (list of list): Logs (:func:`train.metrics.load_log`).
        value: ``value(entry)`` gives a number, or None to skip the entry.

    Returns:
        list: ``(iteration, mean, std)`` per epoch that a log reaches, in
        order, over the logs that reach it (see :func:`mean_std`;
        ``iteration`` is the mean of theirs).

    """
    per_epoch = {}
    for log in logs:
        for e in log:
            v = value(e)
            if v is not None:
                per_epoch.setdefault(e['epoch'], []).append(
                    (e['iteration'], v))
    out = []
    for epoch in sorted(per_epoch):
        its, vals = zip(*per_epoch[epoch])
        mean, std, _ = mean_std(vals)
        out.append((sum(its) / len(its), mean, std))
    return out


_LOSS_AND_ERROR = (
    ('training loss', lambda e: e.get(LOSS_KEY)),
    ('test error (%)', lambda e: 100.0 * (1 - e[metrics.ACC_KEY])))


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
    import textwrap

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, (ylabel, value), letter in zip(axes, _LOSS_AND_ERROR, 'ab'):
        for i, (label, logs, dashed) in enumerate(groups):
            stats = epoch_stats(logs, value)
            if not stats:
                continue
            its, means, stds = zip(*stats)
            _band(ax, its, means, [s or 0.0 for s in stds], dashed,
                  colours[i % len(colours)], label,
                  marker='o' if len(its) <= 30 else None)
        _labels_and_grid(ax, letter, 'gradient updates', ylabel)
        _integer_ticks(ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize='small')
    fig.suptitle(textwrap.fill(title, 100), fontsize='medium')
    fig.tight_layout()
    _make_dir(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig


def compare_title(runs):
    """The title of :func:`plot`: the runs' budget and data, device and
    seeds, and :data:`REDUCED_TITLE` when a run is reduced."""
    labels = _labels(runs)
    parts = ['Comparison: {}'.format(budget_text([r.info for r in runs]))]
    for one, many, value in (('device', 'devices', _device_text),
                             ('seed', 'seeds', _seed_text)):
        pairs = [(label, value(r.info)) for label, r in zip(labels, runs)
                 if value(r.info) is not None]
        if len({v for _, v in pairs}) == 1:
            parts.append('{} {}'.format(one, pairs[0][1]))
        elif pairs:
            parts.append('{}: {}'.format(many, ', '.join(
                '{} {}'.format(label, v) for label, v in pairs)))
    return reduced_title('; '.join(parts), any(r.reduced for r in runs))


def _seed_text(info):
    return None if info.get('seed') is None else str(info['seed'])


def _device_text(info):
    """``@cupy:0 (GPU 0: NVIDIA H100 ...)``: the device and, when
    ``run.json`` names it, the machine."""
    device, machine = info.get('device'), info.get('machine')
    return '{} ({})'.format(device, machine) if device and machine else \
        device


def run_title(info):
    """The title of a run's own plot (``error.png``): the configuration
    and its paper row, the budget and data (:func:`budget_text`), the
    device and seed, and :data:`REDUCED_TITLE` when the run is reduced."""
    cfg = info['config']
    row = cfg.get('paper', {}).get('row')
    parts = ['{}{}: {}'.format(cfg['name'], ' ({})'.format(row) if row
                               else '', budget_text([info]))]
    if _device_text(info):
        parts.append('device ' + _device_text(info))
    if _seed_text(info) is not None:
        parts.append('seed ' + _seed_text(info))
    return reduced_title('; '.join(parts), is_reduced(info))


def plot(runs, path):
    """Writes :func:`plot_loss_and_error` of runs compared side by side,
    titled by :func:`compare_title`; returns the figure."""
    groups = [(label, [run.log], not run.info.get('mn_paths'))
              for label, run in zip(_labels(runs), runs)]
    return plot_loss_and_error(groups, path, compare_title(runs))


def _make_dir(path):
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)


def _write(text, path, reduced):
    """Writes ``text`` to ``path`` (stdout when None)."""
    if path:
        _make_dir(path)
        with open(path, 'w') as f:
            f.write(text)
        print('wrote {}{}'.format(path, ' (reduced-budget runs)'
                                  if reduced else ''), file=sys.stderr)
    else:
        sys.stdout.write(text)


def _add_rows_options(s):
    s.add_argument('number', type=int, help="the paper's number")
    s.add_argument('--configs', default=None,
                   help='folder of the configurations (default: configs/'
                        '<folder of FOLDERS>)')
    s.add_argument('--runs', default=None,
                   help='folder of their runs (default: runs/<folder>)')
    s.add_argument('--dataset', default='all',
                   choices=('all', 'cifar10', 'cifar100'))
    s.add_argument('--out', default=None, help='default: stdout')
    s.add_argument('--reduced-out', default=None,
                   help='where to write instead when a run is reduced')


def _report(args):
    """Builds a table or figure report; returns the exit status."""
    folder = FOLDERS.get((args.command, args.number))
    configs = args.configs or (folder and os.path.join('configs', folder))
    runs = args.runs or (folder and os.path.join('runs', folder))
    if not configs or not runs:
        print('train.report: no default folder for {} {}; pass --configs '
              'and --runs'.format(args.command, args.number), file=sys.stderr)
        return 2
    datasets = (None if args.dataset == 'all' else (args.dataset,))
    rows = load_rows(configs, runs, datasets)
    reduced = any(r.reduced for _, _, r in select(
        rows, args.command, args.number)[1])
    path = args.reduced_out if (reduced and args.reduced_out) else args.out
    png = (os.path.splitext(path)[0] + '.png'
           if path and args.command == 'figure' else None)
    try:
        text = build(args.command, args.number, rows, png)
    except ValueError as e:
        print('train.report: {} under {}'.format(e, configs),
              file=sys.stderr)
        return 2
    _write(text, path, reduced)
    if png:
        print('wrote {}'.format(png), file=sys.stderr)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m train.report')
    sub = p.add_subparsers(dest='command', required=True)
    _add_rows_options(sub.add_parser(
        'table', help="build one of the paper's tables from runs"))
    _add_rows_options(sub.add_parser(
        'figure', help="build a figure's numbers and curves from runs"))
    s = sub.add_parser('compare', help='compare runs side by side')
    s.add_argument('runs', nargs='+', help='run folders; the first is the '
                                           'reference')
    s.add_argument('--out', default=None, help='markdown file (and stdout)')
    s.add_argument('--plot', default=None,
                   help='PNG of training loss and test error')
    args = p.parse_args(argv)

    if args.command != 'compare':
        return _report(args)
    runs = [Run(r) for r in args.runs]
    missing = [r.path for r in runs if not r.exists]
    if missing:
        print('train.report: no finished epoch in {}'.format(
            ', '.join(missing)), file=sys.stderr)
        return 2
    text = compare(runs)
    sys.stdout.write(text)
    if args.out:
        _write(text, args.out, False)
    if args.plot:
        plot(runs, args.plot)
        print('wrote {}'.format(args.plot), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
