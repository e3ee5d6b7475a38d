"""The report of a study: ``results/study-<name>.md`` and a PNG beside it,
or both in ``<runs>/<name>/`` when a run was trained on a subset
(``--train-subset``, ``--test-subset``: NOT a reproduction).

Per run: the maximum test accuracy after 25/50/75/100% of the run's
epochs, the updates until test accuracy first reaches the best test
accuracy of the BN arm's run *with the same seed* (runs of a seed start
from the same random state, so each is paired with its own BN run rather
than with the mean over seeds; counted at epoch ends), the difference of
the maximum test accuracy to that BN run over the epochs both reached, and
the final training loss (the mean training loss over the last epoch's
updates).  Per variant: the mean and sample standard deviation over its
seeds, beside the paper's numbers of the configuration's ``paper`` block
(``acc_at`` at the same epoch: its percentages are of the configuration's
epochs, so a 25-epoch study of a 100-epoch configuration meets its 25%
column; Table 3's steps).  The plot shows training loss and test error
against updates, one line per variant: the mean over seeds, shaded by one
standard deviation.
"""
import collections
import os
import sys

from train.common.runfolder import on_subset
from train.common.runfolder import Run
from train.common.titles import budget_text
from train.common.titles import data_name
from train.common.titles import reduced_title
from train.config.classifier import ACC_FRACTIONS
from train.metrics import accuracy as metrics
from train.metrics.spread import mean_std
from train.report.markdown import DATA_CAVEAT
from train.report.markdown import epoch_marks
from train.report.markdown import format_loss
from train.report.markdown import format_value
from train.report.markdown import table_lines
from train.report.plotting import plot_loss_and_error
from train.study.spec import setting_text
from train.study.state import last_outcomes
from train.study.state import load_state
from train.study.state import run_dir
from train.study.state import study_dir

PERCENTS = ACC_FRACTIONS


def run_status(run, folder, outcome):
    """How a run stands, in words, for the report."""
    done = (folder.log[-1]['epoch'] if folder.log else 0)
    if folder.info and folder.info.get('finished'):
        return 'done'
    status = (outcome or {}).get('status')
    after = ' after epoch {} of {}'.format(done, run.epochs) if done else ''
    if status == 'cut':
        return 'cut by the budget' + after
    if status == 'skipped':
        return 'skipped: budget spent' + after
    if status == 'failed':
        return 'failed (exit {}){}: {}'.format(
            outcome.get('exit'), after, outcome.get('message', ''))
    if status == 'interrupted':
        return 'interrupted' + after
    if status == 'not started':
        return 'not started: the call was interrupted' + after
    return 'stopped' + after if done else 'not run'


class _Row(object):
    """A run of the study with its folder and numbers for the report."""

    def __init__(self, study, runs_root, run, outcome):
        self.run = run
        self.folder = Run(run_dir(study, runs_root, run))
        self.log = self.folder.log or []
        self.status = run_status(run, self.folder, outcome)
        self.acc_at = (metrics.accuracy_at(self.log, run.epochs, PERCENTS)
                       if self.log else {})
        self.loss = metrics.final_loss(self.log)
        self.wall = (self.log[-1].get('elapsed_time') if self.log else None)
        self.target = self.steps = self.delta = None

    def pair(self, bn):
        """Numbers against the same seed's run of the BN arm (a _Row)."""
        if not (self.log and bn.log):
            return
        self.target = metrics.max_accuracy(bn.log)
        self.steps = metrics.steps_to_reach(self.log, self.target)
        common = min(self.log[-1]['epoch'], bn.log[-1]['epoch'])
        self.delta = (metrics.max_accuracy(self.log, common) -
                      metrics.max_accuracy(bn.log, common))


def _rows(study, runs_root):
    outcomes = last_outcomes(load_state(study, runs_root))
    rows = [_Row(study, runs_root, r, outcomes.get(r.id)) for r in
            study.runs]
    by_key = {(r.run.variant.name, r.run.seed): r for r in rows}
    for r in rows:
        bn = by_key.get((r.run.variant.baseline, r.run.seed))
        if bn is not None:
            r.pair(bn)
    return rows


def _marks(study):
    return epoch_marks({v.epochs for v in study.variants}, 'ep {:g}',
                       '{}% of the epochs')


def paper_accuracy(variant, percent):
    """The paper's ``acc_at`` at ``percent`` of the variant's epochs.

    ``acc_at`` counts percentages of the configuration's epochs; the value
    is None where ``percent`` of the variant's epochs is none of them.
    """
    paper = variant.cfg.get('paper') or {}
    at = 100.0 * variant.epochs * percent / 100.0 / variant.cfg['epochs']
    for p, value in paper.get('acc_at', {}).items():
        if abs(p - at) < 1e-9:
            return value
    return None


def _pm(values, total, digits=2):
    """``mean ± std`` over the values that are not None; ``(n=k)`` where
    fewer than ``total`` of them are there."""
    mean, std, n = mean_std(values)
    if mean is None:
        return 'n/a'
    fmt = '{:.%df}' % digits
    text = fmt.format(mean)
    if std is not None:
        text += ' ± ' + fmt.format(std)
    if n < total:
        text += ' (n={})'.format(n)
    return text


def _steps_cell(steps, target):
    if target is None:
        return 'n/a'
    return metrics.format_steps(steps)


def _accuracy_table(study, rows, marks):
    head = ['variant', 'paper row', 'setting', 'runs']
    for mark in marks:
        head += ['{}: ours'.format(mark), 'paper']
    body = []
    for v in study.variants:
        mine = [r for r in rows if r.run.variant is v]
        logged = [r for r in mine if r.log]
        cells = [v.name, (v.cfg.get('paper') or {}).get('row', '-'),
                 setting_text(v), '{} of {}'.format(len(logged), len(mine))]
        for p in PERCENTS:
            cells += [_pm([r.acc_at.get(p) for r in logged], len(mine)),
                      format_value(paper_accuracy(v, p))]
        body.append(cells)
    return table_lines(head, body)


def _speed_table(study, rows):
    head = ['variant', 'BN arm', 'max acc. - BN arm (same seed)',
            "updates to the BN arm's best (same seed)", 'reached',
            "paper: updates to BN-2's max (Table 3)", 'final training loss']
    body = []
    for v in study.variants:
        mine = [r for r in rows if r.run.variant is v]
        paired = [r for r in mine if r.target is not None]
        reached = [r.steps for r in paired if r.steps is not None]
        steps = (v.cfg.get('paper') or {}).get('steps') or {}
        paper_steps = ('{} (to {:.2f}%)'.format(
            metrics.format_steps(steps['value']), steps['target'])
            if steps else 'n/a')
        body.append([v.name, v.baseline,
                     _pm([r.delta for r in paired], len(mine)),
                     _pm(reached, len(mine), digits=0),
                     '{} of {}'.format(len(reached), len(paired)),
                     paper_steps,
                     _pm([r.loss for r in mine], len(mine), digits=4)])
    return table_lines(head, body)


def _run_table(rows, marks):
    head = (['run', 'status', 'epochs', 'iterations'] +
            ['max acc. by {}'.format(m) for m in marks] +
            ["BN arm's best", 'updates to it', 'max acc. - BN arm',
             'final training loss', 'wall time (s)'])
    body = []
    for r in rows:
        last = r.log[-1] if r.log else {}
        body.append(
            [r.run.id, r.status,
             '{}/{}'.format(last.get('epoch', 0), r.run.epochs),
             str(last.get('iteration', 0))] +
            [format_value(r.acc_at.get(p)) for p in PERCENTS] +
            [format_value(r.target),
             _steps_cell(r.steps, r.target),
             format_value(r.delta, signed=True),
             format_loss(r.loss),
             '{:.0f}'.format(r.wall) if r.wall is not None else 'n/a'])
    return table_lines(head, body)


def _invocation_table(state):
    head = ['started', 'ended', 'device', 'host', 'versions', 'budget (s)',
            'at a time', 'outcomes']
    body = []
    for inv in state['invocations']:
        counts = collections.Counter(o['status'] for o in
                                     inv['outcomes'].values())
        body.append([inv['started'], inv['ended'] or 'did not end',
                     inv['device'], inv['host'], ', '.join(
                         '{} {}'.format(k, v)
                         for k, v in inv['versions'].items()),
                     '{:g}'.format(inv['budget']) if inv['budget'] else
                     'none', str(inv['parallel']),
                     ', '.join('{} {}'.format(n, s) for s, n in
                               sorted(counts.items())) or 'none'])
    return table_lines(head, body)


def build_report(study, runs_root, plot_name=None):
    """Markdown of a study's report (see the module's docstring).

    Args:
        study (Study): From :func:`load_study`.
        runs_root (str): Where the runs are (``<runs_root>/<name>/``).
        plot_name (str): File name of the PNG to link, if any.

    Returns:
        tuple: ``(markdown, rows)``; ``rows`` are the runs with their
        numbers (for the plot).

    """
    rows = _rows(study, runs_root)
    infos = [r.folder.info for r in rows if r.folder.info]
    marks = _marks(study)
    reduced = any(on_subset(i) for i in infos)
    lines = ['# Study {}{}'.format(study.name, ': ' + study.description
                                   if study.description else ''), '']
    if reduced:
        lines += ['**Runs on training or test subsets: NOT a reproduction '
                  'of the paper.**', '']
    lines += ['Study file `{}`; runs in `{}/<run>/`, {} of {} with at '
              'least one epoch.'.format(
                  study.path, study_dir(study, runs_root),
                  sum(1 for r in rows if r.log), len(rows)), '',
              'Runs: {}.'.format(budget_text(infos) or
                                 'none yet')]
    if any('chainer.datasets' not in data_name(i)
           for i in infos):
        lines.append(DATA_CAVEAT)
    lines += ['', '## Invocations', '',
              'Each call of the study: when (UTC), where, with what, and '
              'what became of its runs.', ''] + \
        _invocation_table(load_state(study, runs_root))
    lines += [
        '', '## Definitions', '',
        '- *BN arm*: the variant a variant is compared with (its '
        '`baseline`, default the study\'s: `{}`), run with the same seed. '
        '*BN arm\'s best*: the maximum test accuracy of that run over all '
        'the epochs it logged.'.format(study.baseline),
        '- *max acc. by ep e*: the maximum of the per-epoch test accuracies '
        '(%) up to epoch e, at 25/50/75/100% of the epochs of the run; n/a '
        'where the run has not reached epoch e.',
        '- *updates to the BN arm\'s best*: gradient updates (iterations) '
        'until test accuracy first reaches the BN arm\'s best, counted at '
        'epoch ends (test accuracy is measured once per epoch); "-": never '
        'reached. *max acc. - BN arm*: the run\'s maximum test accuracy '
        'minus the BN arm\'s, both over the epochs that both runs reached.',
        '- *final training loss*: the mean training cross-entropy over the '
        'updates of the last epoch logged.',
        '- Per variant: mean ± sample standard deviation (n - 1) over its '
        'seeds; "(n=k)": only k runs have the value. "updates to the BN '
        'arm\'s best" averages the runs that reached it.',
        '- *paper*: the configuration\'s `paper` block. Its `acc_at` '
        'percentages are of the configuration\'s epochs, so a value stands '
        'only where the column\'s epoch is one of them (a 25-epoch study of '
        'a 100-epoch configuration meets its 25% column); Table 3 counts '
        'updates to the paper\'s BN-2 maximum over 100 epochs.']
    lines += ['', '## Maximum test accuracy (%) per variant', ''] + \
        _accuracy_table(study, rows, marks)
    lines += ['', '## Training speed per variant', ''] + \
        _speed_table(study, rows)
    lines += ['', '## Runs', '', 'In the order they start (every variant\'s '
              'first seed, then every variant\'s second seed, ...).',
              ''] + _run_table(rows, marks)
    if plot_name:
        lines += ['', '## Curves', '', 'Training loss and test error against '
                  'gradient updates, one line per variant (dashed: batch '
                  'normalization only): the mean over its seeds at each '
                  'epoch, shaded by one sample standard deviation where two '
                  'or more seeds reached that epoch.', '',
                  '![study {0}]({1})'.format(study.name, plot_name)]
    return '\n'.join(lines) + '\n', rows


def report(study, runs_root, results_dir, log=sys.stderr):
    """Writes a study's report and plot (see the module's docstring).

    Returns:
        tuple: The markdown's and the PNG's paths (the PNG's is None when
        no run has logged an epoch).

    """
    rows = _rows(study, runs_root)
    reduced = any(r.folder.info and on_subset(r.folder.info) for r in rows)
    folder = study_dir(study, runs_root) if reduced else results_dir
    md = os.path.join(folder, 'study-{}.md'.format(study.name))
    png = os.path.splitext(md)[0] + '.png'
    if not any(r.log for r in rows):
        png = None
    text, rows = build_report(study, runs_root,
                              png and os.path.basename(png))
    os.makedirs(folder, exist_ok=True)
    with open(md, 'w') as f:
        f.write(text)
    if png:
        infos = [r.folder.info for r in rows if r.folder.info]
        groups = [(v.name, [r.log for r in rows if r.run.variant is v and
                            r.log], not v.cfg['norm']['layers'])
                  for v in study.variants]
        plot_loss_and_error(
            [g for g in groups if g[1]], png, reduced_title(
                'Study {}: mean over seeds, shaded ± 1 std; {}'.format(
                    study.name, budget_text(infos)), reduced))
    print('wrote {}{}{}'.format(md, ' and ' + png if png else '',
                                ' (runs on subsets)' if reduced else ''),
          file=log)
    return md, png
