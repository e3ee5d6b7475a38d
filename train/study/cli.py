"""``python -m train.study``: many runs trained in one invocation within a
time budget, and one report over them.

    python -m train.study run STUDY.yaml [--budget SECONDS] [--reserve S]
        [--parallel N] [--runs DIR] [--results DIR] [--dry-run]
        [TRAIN ARGS ...]
    python -m train.study report STUDY.yaml [--runs DIR] [--results DIR]
    python -m train.study pack STUDY.yaml FILE.tgz [--runs DIR]

``bash scripts/study.sh STUDY.yaml ...`` is ``run`` in the project's
environment.  TRAIN ARGS go to every ``python -m train`` (``--data``,
``--device``, ``--train-subset``, ``--test-subset``); the study sets
``--config``, ``--out``, ``--seed``, ``--epochs`` and ``--resume`` itself.
The study file is :mod:`train.study.spec`'s, the runs
:mod:`train.study.scheduler`'s, the report :mod:`train.study.summary`'s.
"""
import argparse
import os
import sys

from train.study.summary import report
from train.study.scheduler import pack
from train.study.scheduler import parse_train_args
from train.study.scheduler import run_study
from train.study.spec import load_study
from train.study.spec import setting_text
from train.study.spec import StudyError
from train.study.state import run_dir


def _plan(study, runs_root, train_args, log):
    for run in study.runs:
        v = run.variant
        print('{}: {} seed {}, {} epochs, {} -> {}'.format(
            run.id, v.config_path, run.seed, run.epochs, setting_text(v),
            run_dir(study, runs_root, run)), file=log)
    print('TRAIN ARGS: {}'.format(' '.join(train_args) or 'none'), file=log)


def main(argv=None):
    """Entry point; returns the process exit status."""
    p = argparse.ArgumentParser(prog='python -m train.study',
                                allow_abbrev=False)
    sub = p.add_subparsers(dest='command', required=True)
    for name, text in (('run', 'train a study\'s runs (resuming them), '
                               'then report'),
                       ('report', 'write the report of a study\'s runs'),
                       ('pack', 'a .tgz of what resuming the study needs')):
        s = sub.add_parser(name, help=text, allow_abbrev=False)
        s.add_argument('study', help='study file (YAML)')
        s.add_argument('--runs', default=os.path.join('runs', 'studies'),
                       help='runs folder (default runs/studies)')
        if name != 'pack':
            s.add_argument('--results', default='results',
                           help='folder of the report (default results; '
                                'runs on subsets: the study\'s runs folder)')
    sub.choices['pack'].add_argument('tgz', help='the file to write')
    s = sub.choices['run']
    s.add_argument('--budget', type=float, default=None, metavar='SECONDS',
                   help='time for the whole invocation (default: none)')
    s.add_argument('--reserve', type=float, default=30.0, metavar='SECONDS',
                   help='seconds of the budget kept for stopping runs and '
                        'the report (default 30)')
    s.add_argument('--parallel', type=int, default=1, metavar='N',
                   help='runs at a time (default 1: sequential)')
    s.add_argument('--dry-run', action='store_true',
                   help='print the runs and exit')
    args, train_args = p.parse_known_args(argv)
    if args.command != 'run' and train_args:
        p.error('unrecognized arguments: {}'.format(' '.join(train_args)))
    if args.command == 'run' and args.parallel < 1:
        p.error('--parallel must be at least 1')
    try:
        study = load_study(args.study)
        if args.command == 'pack':
            names = pack(study, args.runs, args.tgz)
            print('wrote {} ({} files)'.format(args.tgz, len(names)),
                  file=sys.stderr)
            return 0
        if args.command == 'run' and args.dry_run:
            parse_train_args(train_args)
            _plan(study, args.runs, train_args, sys.stdout)
            return 0
        status = 0
        if args.command == 'run':
            record = run_study(study, args.runs, train_args, args.budget,
                               args.reserve, args.parallel)
            statuses = {o['status'] for o in record['outcomes'].values()}
            status = (130 if record.get('interrupted') else
                      1 if 'failed' in statuses else 0)
        report(study, args.runs, args.results)
    except StudyError as e:
        print('train.study: error: {}'.format(e), file=sys.stderr)
        return 2
    return status

