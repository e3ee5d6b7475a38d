"""``python -m train.report``: the paper's tables, and runs compared.

    python -m train.report table N [--configs DIR] [--runs DIR]
        [--dataset cifar10|cifar100|all] [--out FILE] [--reduced-out FILE]
    python -m train.report compare RUN [RUN ...] [--out FILE] [--plot PNG]

``table N`` (N = 2..6, :mod:`train.report.tables`): ``--configs`` and
``--runs`` default to ``configs/<folder>`` and ``runs/<folder>`` with the
folder of :data:`train.report.tables.FOLDERS`.  A run trained on a subset
or for other than the configured epochs is *reduced*: a report with such a
run says so at the top and goes to ``--reduced-out`` when given, so that
results/ holds full-budget runs only.  ``compare``
(:mod:`train.report.compare`) puts runs side by side.  The figures,
Figure 5's numbers and curves included, are ``python -m train.figures N``.
"""
import argparse
import os
import sys

from train.common.runfolder import Run
from train.report import compare
from train.report import tables
from train.report.markdown import write_report


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


def table(args):
    """Builds a table report; returns the exit status."""
    folder = tables.FOLDERS.get(args.number)
    configs = args.configs or (folder and os.path.join('configs', folder))
    runs = args.runs or (folder and os.path.join('runs', folder))
    if not configs or not runs:
        print('train.report: no default folder for table {}; pass '
              '--configs and --runs'.format(args.number), file=sys.stderr)
        return 2
    datasets = (None if args.dataset == 'all' else (args.dataset,))
    rows = tables.load_rows(configs, runs, datasets)
    reduced = any(r.reduced for _, _, r in tables.select(
        rows, 'table', args.number)[1])
    path = args.reduced_out if (reduced and args.reduced_out) else args.out
    try:
        text = tables.build(args.number, rows)
    except ValueError as e:
        print('train.report: {} under {}'.format(e, configs),
              file=sys.stderr)
        return 2
    write_report(text, path, reduced)
    return 0


def compare_runs(args):
    """Compares run folders; returns the exit status."""
    runs = [Run(r) for r in args.runs]
    missing = [r.path for r in runs if not r.exists]
    if missing:
        print('train.report: no finished epoch in {}'.format(
            ', '.join(missing)), file=sys.stderr)
        return 2
    text = compare.compare(runs)
    sys.stdout.write(text)
    if args.out:
        write_report(text, args.out, False)
    if args.plot:
        compare.plot(runs, args.plot)
        print('wrote {}'.format(args.plot), file=sys.stderr)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m train.report')
    sub = p.add_subparsers(dest='command', required=True)
    _add_rows_options(sub.add_parser(
        'table', help="build one of the paper's tables from runs"))
    moved = sub.add_parser('figure', help='moved: python -m train.figures N')
    moved.add_argument('rest', nargs=argparse.REMAINDER)
    s = sub.add_parser('compare', help='compare runs side by side')
    s.add_argument('runs', nargs='+', help='run folders; the first is the '
                                           'reference')
    s.add_argument('--out', default=None, help='markdown file (and stdout)')
    s.add_argument('--plot', default=None,
                   help='PNG of training loss and test error')
    args = p.parse_args(argv)
    if args.command == 'figure':
        print('train.report: error: the figures, Figure 5 included, are made '
              'by python -m train.figures N (Figure 5: --runs ROOT, the '
              'folder that holds densenet/)', file=sys.stderr)
        return 2
    if args.command == 'table':
        return table(args)
    return compare_runs(args)
