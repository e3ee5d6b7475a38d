"""The paper's tables from run folders: Tables 2 and 4 (accuracy after
25/50/75/100% of the epochs) and Tables 3, 5 and 6 (updates to reach the
batch-normalized model's maximum).

A table's rows are the configurations under a folder whose ``paper`` block
names the table (see :mod:`train.config.classifier`); their shape follows
from that block:

* accuracy tables (2, 4): rows with ``paper.table: N`` and ``acc_at``:
  maximum test accuracy after 25/50/75/100% of the epochs, paper | ours |
  difference;
* steps tables (3, 5, 6): rows with ``paper.steps.table: N``: gradient
  updates until test accuracy first reaches the maximum of the group's
  ``target_row``, for the paper's target and for our own run's maximum.

Rows are grouped by ``paper.group`` (default: the dataset), in the natural
order of their files (numbers by value: ``bn_40`` before ``bn_100``).  The
run of ``<configs>/<path>.yaml`` is the folder ``<runs>/<path>`` (what the
scripts write).  :func:`load_rows`, :func:`select` and :func:`groups` serve
Figure 5 too (:mod:`train.figures.curves`).
"""
import glob
import os
import re

from train.common.runfolder import Run
from train.config.classifier import ACC_FRACTIONS
from train.config.loading import load
from train.data.datasets import DATASETS
from train.metrics import accuracy as metrics
from train.report.markdown import epoch_marks
from train.report.markdown import format_diff
from train.report.markdown import format_value
from train.report.markdown import header
from train.report.markdown import mn_setting
from train.report.markdown import models_text
from train.report.markdown import table_lines
from train.report.markdown import training_setting

PERCENTS = ACC_FRACTIONS
# table number -> folder under configs/ and runs/ holding its rows
FOLDERS = {2: 'table2', 3: 'table2', 4: 'table4', 5: 'table4', 6: 'table6'}


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
        cfg = load(path, check_model=False)
        if datasets is None or cfg['dataset'] in datasets:
            rows.append((stem, cfg, Run(os.path.join(runs_dir, stem))))
    return rows


def group_of(cfg):
    """The sub-table a row belongs to: ``paper.group``, else the dataset."""
    return (cfg.get('paper', {}).get('group') or
            DATASETS[cfg['dataset']].title)


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


def groups(rows):
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


def accuracy_table(number, rows):
    """Markdown of an accuracy table (2, 4): paper, ours, difference.

    Args:
        number (int): The paper's table number (for the title).
        rows (list): The table's rows (see :func:`select`).

    """
    marks = epoch_marks({cfg['epochs'] for _, cfg, _ in rows})
    lines = header('Table {}: {}, maximum test accuracy (%) after {}'.format(
        number, models_text(rows), '/'.join(marks)), rows)
    lines.append('Each cell group: paper | ours | ours - paper. "n/a": the '
                 'run has not reached that epoch (or has not run).')
    for group, members in groups(rows):
        head = ['model', 'MN setting (layer, K, EM iter.)',
                '(lr, weight decay)']
        for mark in marks:
            head += ['{}: paper'.format(mark), 'ours', 'diff']
        body = []
        for stem, cfg, run in members:
            paper = cfg['paper']
            ours = (metrics.accuracy_at(run.log, run.info['epochs'])
                    if run.exists else {})
            cells = [paper['row'], mn_setting(cfg), training_setting(cfg)]
            for p in PERCENTS:
                pv = paper['acc_at'].get(p)
                cells += [format_value(pv), format_value(ours.get(p)),
                          format_diff(ours.get(p), pv)]
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
    lines = header('Table {}: {}, gradient updates to reach the maximum '
                    'test accuracy of the batch-normalized model'.format(
                        number, models_text(rows)), rows)
    lines.append('"-": never reached; "n/a": not run (or the target row has '
                 'not run).')
    for group, members in groups(rows):
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


def build(number, rows):
    """Markdown of one of the paper's tables.

    Args:
        number (int): The paper's table number.
        rows (list): Candidate rows (:func:`load_rows`); those of the table
            are chosen by :func:`select`, and the others may hold a steps
            table's target row.

    Returns:
        str

    Raises:
        ValueError: No row reports that table.

    """
    shape, chosen = select(rows, 'table', number)
    if not chosen:
        raise ValueError('no configuration reports table {}'.format(number))
    if shape == 'accuracy':
        return accuracy_table(number, chosen)
    return steps_table(number, chosen, rows)
