"""Reports built from run folders: Tables 2 and 3, and run comparisons.

    python -m train.report table2 --configs configs/table2 --runs runs/table2
        [--dataset cifar10|cifar100|all] --out results/table2.md
        [--reduced-out runs/table2/table2.md]
    python -m train.report table3 (same options) --out results/table3.md
    python -m train.report compare RUN [RUN ...] [--out FILE] [--plot PNG]

The run of configuration ``<configs>/<dataset>/<stem>.yaml`` is the folder
``<runs>/<dataset>/<stem>`` (what ``scripts/table2.sh`` writes).  A run
trained on a subset or for other than the configured epochs is *reduced*:
a report with such a run says so at the top and goes to ``--reduced-out``
when given, so that results/ holds full-budget runs only.
"""
import argparse
import glob
import json
import os
import sys

from train import config as config_module
from train import metrics

PERCENTS = config_module.ACC_FRACTIONS
_DATA_CAVEAT = (
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
        i = self.info
        return bool(i and (i.get('train_subset') or i.get('test_subset') or
                           i['epochs'] != i['config']['epochs']))

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


def _fmt(value, signed=False):
    if value is None:
        return 'n/a'
    return ('{:+.2f}' if signed else '{:.2f}').format(value)


def _diff(ours, paper):
    if ours is None or paper is None:
        return 'n/a'
    return _fmt(ours - paper, signed=True)


def _mn_setting(cfg):
    norm = cfg['norm']
    layers = norm['layers']
    if not layers:
        return '-'
    where = layers[0] if len(layers) == 1 else '({})'.format(','.join(layers))
    return '({}, {}, {})'.format(where, norm['n_components'], norm['n_iter'])


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


def load_table(configs_dir, runs_dir, datasets):
    """Configurations and their runs, grouped by dataset folder.

    Returns:
        list: ``(dataset, [(stem, cfg, Run), ...])`` in sorted order.

    """
    groups = []
    for ds in datasets:
        rows = []
        for path in sorted(glob.glob(os.path.join(configs_dir, ds, '*.yaml'))):
            stem = os.path.splitext(os.path.basename(path))[0]
            cfg = config_module.load(path, check_model=False)
            rows.append((stem, cfg, Run(os.path.join(runs_dir, ds, stem))))
        if rows:
            groups.append((ds, rows))
    return groups


def _header(title, groups):
    runs = [r for _, rows in groups for _, _, r in rows if r.exists]
    lines = ['# ' + title, '']
    if any(r.reduced for r in runs):
        lines += ['**Reduced-budget runs (subsets or fewer epochs): NOT a '
                  'reproduction of the paper.**', '']
    sources = sorted({r.info.get('data_source', '?') for r in runs})
    devices = sorted({r.info.get('device', '?') for r in runs})
    lines.append('Runs: {} of {} configurations. Data: {}. Devices: {}.'
                 .format(len(runs), sum(len(rows) for _, rows in groups),
                         '; '.join(sources) or 'none yet',
                         ', '.join(devices) or 'none yet'))
    if any('chainer.datasets' not in s for s in sources):
        lines.append(_DATA_CAVEAT)
    lines.append('')
    return lines


def table2(groups):
    """Markdown of Table 2: paper values, measured values, differences."""
    lines = _header('Table 2: CIFAR CNN, maximum test accuracy (%) after '
                    '25/50/75/100% of the epochs', groups)
    lines.append('Each cell group: paper | ours | ours - paper. "n/a": the '
                 'run has not reached that epoch (or has not run).')
    for ds, rows in groups:
        lines += ['', '## ' + {'cifar10': 'CIFAR-10', 'cifar100': 'CIFAR-100'}
                  .get(ds, ds), '']
        head = ['model', 'MN setting (layer, K, EM iter.)',
                '(lr, weight decay)']
        for p in PERCENTS:
            head += ['{}%: paper'.format(p), 'ours', 'diff']
        head.append('run')
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|' + '---|' * len(head))
        for stem, cfg, run in rows:
            paper = cfg.get('paper', {})
            row = paper.get('row', stem)
            ours = (metrics.accuracy_at(run.log, run.info['epochs'])
                    if run.exists else {})
            cells = [row, _mn_setting(cfg), _training_setting(cfg)]
            for p in PERCENTS:
                pv = paper.get('acc_at', {}).get(p)
                cells += [_fmt(pv), _fmt(ours.get(p)),
                          _diff(ours.get(p), pv)]
            cells.append(run.status())
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def table3(groups, table=3):
    """Markdown of Table 3: steps to reach the BN model's maximum.

    Two targets per dataset: the paper's (e.g. 87.95%) and the maximum
    that our own run of the target row (BN-2) reached.
    """
    lines = _header('Table 3: CIFAR CNN, gradient updates to reach the '
                    'maximum test accuracy of the batch-normalized model',
                    groups)
    lines.append('"-": never reached; "n/a": not run (or the target row has '
                 'not run).')
    for ds, rows in groups:
        chosen = [(s, c, r) for s, c, r in rows
                  if c.get('paper', {}).get('steps', {}).get('table') == table]
        if not chosen:
            continue
        steps = chosen[0][1]['paper']['steps']
        paper_target = steps['target']
        ref = [r for _, c, r in rows
               if c.get('paper', {}).get('row') == steps['target_row']]
        ours_target = (metrics.max_accuracy(ref[0].log)
                       if ref and ref[0].exists else None)
        name = {'cifar10': 'CIFAR-10', 'cifar100': 'CIFAR-100'}.get(ds, ds)
        lines += ['', '## {}: paper target {:.2f}% ({} in the paper), our '
                  'target {} (our {} maximum)'.format(
                      name, paper_target, steps['target_row'],
                      _fmt(ours_target) + '%' if ours_target else 'n/a',
                      steps['target_row']), '']
        head = ['model', 'paper: steps to {:.2f}%'.format(paper_target),
                'ours: steps to {:.2f}%'.format(paper_target),
                'ours: steps to our {} max'.format(steps['target_row']),
                'paper: max acc. (%)', 'ours: max acc. (%)', 'run']
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|' + '---|' * len(head))
        for stem, cfg, run in chosen:
            paper = cfg['paper']
            if run.exists:
                to_paper = metrics.format_steps(
                    metrics.steps_to_reach(run.log, paper_target))
                to_ours = (metrics.format_steps(metrics.steps_to_reach(
                    run.log, ours_target)) if ours_target else 'n/a')
                best = _fmt(metrics.max_accuracy(run.log))
            else:
                to_paper = to_ours = best = 'n/a'
            lines.append('| ' + ' | '.join([
                paper['row'], metrics.format_steps(paper['steps']['value']),
                to_paper, to_ours, _fmt(paper['acc_at'][100]), best,
                run.status()]) + ' |')
    return '\n'.join(lines) + '\n'


def _labels(runs):
    """Row labels, or folder names where two runs share a label."""
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):
        labels = [os.path.basename(os.path.normpath(r.path)) for r in runs]
    return labels


def compare(runs):
    """Markdown comparing runs side by side; the first is the reference.

    Args:
        runs (list of Run): Finished or running runs with logs.

    """
    labels = _labels(runs)
    target = metrics.max_accuracy(runs[0].log)
    lines = ['| run | normalization | max test acc. (%) | final test acc. '
             '(%) | steps to {}\'s max ({:.2f}%) | epochs | iterations | '
             'wall time (s) |'.format(labels[0], target),
             '|---|---|---|---|---|---|---|---|']
    for label, run in zip(labels, runs):
        paths = run.info.get('mn_paths') or []
        last = run.log[-1]
        lines.append('| {} | {} | {:.2f} | {:.2f} | {} | {} | {} | {:.0f} |'
                     .format(label,
                             'MN at ' + ', '.join(paths) if paths else 'BN',
                             metrics.max_accuracy(run.log),
                             100 * last[metrics.ACC_KEY],
                             metrics.steps_to_reach(run.log, target) or '-',
                             last['epoch'], last['iteration'],
                             last.get('elapsed_time', 0)))
    lines += ['', 'Test accuracy (%) after each epoch:', '',
              '| epoch | iteration | ' + ' | '.join(labels) +
              ' |', '|---|---|' + '---|' * len(runs)]
    by_epoch = [{e['epoch']: e for e in r.log} for r in runs]
    for epoch in sorted(set().union(*by_epoch)):
        entries = [b.get(epoch) for b in by_epoch]
        it = next(e['iteration'] for e in entries if e)
        lines.append('| {} | {} | '.format(epoch, it) + ' | '.join(
            '{:.2f}'.format(100 * e[metrics.ACC_KEY]) if e else ''
            for e in entries) + ' |')
    return '\n'.join(lines) + '\n'


def plot(runs, path):
    """Writes a PNG of test error (%) against gradient updates."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, run in zip(_labels(runs), runs):
        its, _, accs = metrics.accuracy_curve(run.log)
        ax.plot(its, [100 - a for a in accs], marker='o', label=label)
    ax.set_xlabel('gradient updates')
    ax.set_ylabel('test error (%)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write(text, out, reduced_out, reduced):
    path = reduced_out if (reduced and reduced_out) else out
    if path:
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
        print('wrote {}{}'.format(path, ' (reduced-budget runs)'
                                  if reduced else ''), file=sys.stderr)
    else:
        sys.stdout.write(text)


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m train.report')
    sub = p.add_subparsers(dest='command', required=True)
    for name in ('table2', 'table3'):
        s = sub.add_parser(name, help='build Table {} from runs'.format(
            name[-1]))
        s.add_argument('--configs', default='configs/table2')
        s.add_argument('--runs', default='runs/table2')
        s.add_argument('--dataset', default='all',
                       choices=('all', 'cifar10', 'cifar100'))
        s.add_argument('--out', default=None, help='default: stdout')
        s.add_argument('--reduced-out', default=None,
                       help='where to write instead when a run is reduced')
    s = sub.add_parser('compare', help='compare runs side by side')
    s.add_argument('runs', nargs='+', help='run folders; the first is the '
                                           'reference')
    s.add_argument('--out', default=None, help='markdown file (and stdout)')
    s.add_argument('--plot', default=None, help='PNG of test error')
    args = p.parse_args(argv)

    if args.command == 'compare':
        runs = [Run(r) for r in args.runs]
        missing = [r.path for r in runs if not r.exists]
        if missing:
            print('train.report: no finished epoch in {}'.format(
                ', '.join(missing)), file=sys.stderr)
            return 2
        text = compare(runs)
        sys.stdout.write(text)
        if args.out:
            _write(text, args.out, None, False)
        if args.plot:
            plot(runs, args.plot)
            print('wrote {}'.format(args.plot), file=sys.stderr)
        return 0
    datasets = (('cifar10', 'cifar100') if args.dataset == 'all'
                else (args.dataset,))
    groups = load_table(args.configs, args.runs, datasets)
    text = (table2 if args.command == 'table2' else table3)(groups)
    reduced = any(r.reduced for _, rows in groups for _, _, r in rows)
    _write(text, args.out, args.reduced_out, reduced)
    return 0


if __name__ == '__main__':
    sys.exit(main())
