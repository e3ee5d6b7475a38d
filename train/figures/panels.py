"""Which runs each figure reads, whether they are there, and the text every
figure shares (its title, header and notes).

Figures 1-4, 8 and 9 are made of panels (:func:`panels`): each names the
configurations it shows, paths under ``configs/`` without ``.yaml``, and
the run of ``<configs>/<path>.yaml`` is ``<runs>/<path>``, as the scripts
train them.  A missing run is a :class:`FigureError` that names it
(:func:`load_panels`).  Figures 5, 6 and 7 read every configuration of one
folder (:data:`FOLDERS`: ``<configs>/densenet`` and ``<configs>/dcgan``;
their runs ``<runs>/<folder>/...``) and show the runs not there yet as
"not run".
"""
import collections
import datetime
import glob
import os

from train.common.runfolder import Run
from train.common.titles import reduced_title
from train.config.loading import load
from train.config.schema import ConfigError
from train.data.datasets import check_available
from train.data.datasets import DATASETS
from train.data.imagefolder import DataError
from train.report.markdown import header as report_header
from train.report.markdown import mn_setting

FIGURES = (1, 2, 3, 4, 5, 6, 7, 8, 9)
DATASET_ORDER = ('cifar10', 'cifar100')
PAPER_DATASET = 'cifar100'  # Figures 1 and 8 of the paper
# figures whose rows are the configurations of one folder (default)
FOLDERS = {5: 'densenet', 6: 'dcgan', 7: 'dcgan'}
TITLES = {
    1: 'activation densities of conv2, BN against MN:2 and MN:3',
    2: 'CIFAR CNN test error, BN against MN for each (lr, weight decay)',
    3: 'CIFAR CNN test error: EM iterations (left) and MN layers (right)',
    4: 'Inception-V3 test error curves',
    5: 'DenseNet, training and test error and loss',
    6: 'DCGAN on CIFAR-10, FID against generator updates',
    7: 'DCGAN on CIFAR-10, samples at the lowest FID',
    8: 'evolution of the mixture components of one MN layer',
    9: 'number of active mixture components of the MN modules',
}

Panel = collections.namedtuple('Panel', ['title', 'dataset', 'stems'])
Panel.__doc__ = """A panel: its title (None: made from its rows), dataset
and configurations (paths under ``configs/`` without ``.yaml``)."""


class FigureError(Exception):
    """A figure cannot be made as asked; the message names what is missing."""


def _table4(ds, rows):
    return ['table4/{}/{}'.format(ds, r) for r in rows]


def panels(number, datasets):
    """The panels of Figure ``number`` (1-4, 8, 9) for the chosen datasets.

    Args:
        number (int): One of :data:`FIGURES` but 5-7.
        datasets (tuple): Among ``cifar10``, ``cifar100``.

    Returns:
        list of Panel: Figures 1 and 8 show one run: CIFAR-100's (the
        paper's) when chosen, else CIFAR-10's.

    """
    if number == 2:
        return [Panel(None, ds, ['table2/{}/bn{}'.format(ds, i),
                                 'table2/{}/mn{}'.format(ds, i)])
                for ds in datasets for i in range(1, 5)]
    if number == 3:
        out = []
        for ds in datasets:
            base = ['table2/{}/bn2'.format(ds), 'table2/{}/mn2'.format(ds)]
            more = ('table2/cifar100/' if ds == 'cifar100' else
                    'figure3/{}/'.format(ds))
            out += [Panel('EM iterations', ds, base + [more + 'mn5',
                                                       more + 'mn6']),
                    Panel('MN layers', ds, base + [more + 'mn7',
                                                   more + 'mn8'])]
        return out
    if number == 4:
        return [p for p in (
            Panel('(a) CIFAR-10, small learning rate', 'cifar10',
                  _table4('cifar10', ['bn1', 'mn1', 'mn2', 'mn3', 'mn4'])),
            Panel('(b) CIFAR-100, small learning rate', 'cifar100',
                  _table4('cifar100', ['bn1', 'mn1', 'mn2', 'mn4'])),
            Panel('(c) CIFAR-100, large learning rate', 'cifar100',
                  _table4('cifar100', ['bn5', 'mn5'])),
            Panel('(d) CIFAR-100, Nesterov, two drop policies', 'cifar100',
                  ['table6/bn_drop2', 'table6/mn_drop2', 'table6/bn_drop3',
                   'table6/mn_drop3'])) if p.dataset in datasets]
    if number == 9:
        return [Panel(None, ds, _table4(ds, ['mn4'])) for ds in datasets]
    ds = PAPER_DATASET if PAPER_DATASET in datasets else datasets[0]
    stem = 'table2/{}/bn2' if number == 1 else 'table4/{}/mn4'
    return [Panel(None, ds, [stem.format(ds)])]


# ------------------------------------------------------------------ runs
def load_rows(panel, configs, runs):
    """``(stem, cfg, Run)`` of each configuration of ``panel``."""
    return [(stem, load(os.path.join(configs, stem + '.yaml'),
                        check_model=False),
             Run(os.path.join(runs, stem))) for stem in panel.stems]


def missing_error(number, missing, configs):
    """The FigureError that names the missing ``(stem, cfg, Run)`` rows."""
    lines = ['Figure {} needs runs that are missing or have no finished '
             'epoch yet:'.format(number)]
    lines += ['  {}  (configuration {})'.format(
        run.path, os.path.join(configs, stem + '.yaml'))
        for stem, _, run in missing]
    lines.append('Train them with `bash scripts/figures.sh {}` (add '
                 '--dataset cifar10 for the CIFAR-10 runs only, --tiny for '
                 'reduced ones) or `python -m train --config CONFIG --out '
                 'RUN`.'.format(number))
    return FigureError('\n'.join(lines))


def load_panels(number, datasets, configs, runs):
    """Figure ``number``'s panels with their rows ``(stem, cfg, Run)``.

    Raises:
        FigureError: A run of a chosen panel is missing; the message names
            every such run and its configuration.

    """
    out = [(p, load_rows(p, configs, runs))
           for p in panels(number, datasets)]
    missing = [row for _, rows in out for row in rows if not row[2].exists]
    if missing:
        raise missing_error(number, missing, configs)
    return out


def single_run(number, args, datasets):
    """The run of Figure 1, 8 or 9: ``--run``, else the figure's default;
    ``(stem, Run)`` (stem None for ``--run``)."""
    if args.run:
        run = Run(args.run)
        if run.info is None:
            raise FigureError('{}: no run.json: --run names the folder of a '
                              'run of `python -m train`'.format(args.run))
        return None, run
    (stem, _, run), = load_rows(panels(number, datasets)[0], args.configs,
                                args.runs)
    if run.info is None:
        raise missing_error(number, [(stem, None, run)], args.configs)
    return stem, run


# ------------------------------------------------------------------ text
def curve_label(cfg):
    """A curve's label: the paper's row and what sets it apart."""
    row = cfg.get('paper', {}).get('row') or cfg['name']
    sched = cfg['schedule']
    if sched['name'] == 'step':  # Fig. 4d: the drop policy
        return '{}, lr x{:g} at {}'.format(row, sched['factor'], '/'.join(
            '{:g}%'.format(100 * d) for d in sched['drops']))
    if cfg['norm']['layers']:
        return '{} {}'.format(row, mn_setting(cfg))
    return row


def is_bn(cfg):
    """Whether a configuration is batch normalization only."""
    return not cfg['norm']['layers']


def header(number, rows):
    """Title, reduced-run label, data and devices (as the tables)."""
    lines = report_header('Figure {}: {}'.format(number, TITLES[number]),
                          rows)
    lines.insert(-1, 'Made on {} by `python -m train.figures {}`.'.format(
        datetime.date.today().isoformat(), number))
    return lines


def dataset_note(dataset):
    """Figures 1 and 8: say so when the run is not on the paper's data."""
    if dataset == PAPER_DATASET:
        return []
    return ['The paper shows a CIFAR-100 run; this figure shows a {} run '
            'instead.'.format(DATASETS[dataset].title), '']


def scope_note(number, datasets):
    """Figures 2-4 and 9: the panels left out by ``--dataset``."""
    lines = []
    if len(datasets) < len(DATASET_ORDER):
        lines.append('Only the {} panels (`--dataset {}`); the paper\'s '
                     'other panels need the other dataset\'s runs.'.format(
                         DATASETS[datasets[0]].title, datasets[0]))
    if number == 3 and 'cifar10' in datasets:
        lines.append('The paper shows these rows on CIFAR-100 only; on '
                     'CIFAR-10, MN-5 to MN-8 are our configurations '
                     '`configs/figure3/cifar10/` (BN-2 and MN-2 are Table '
                     '2\'s).')
    return lines + [''] if lines else []


def figure_title(number, reduced):
    """The title drawn above Figure ``number``; from reduced runs it ends
    in "reduced: NOT a reproduction"
    (:data:`train.common.titles.REDUCED_TITLE`)."""
    return reduced_title('Figure {}: {}'.format(number, TITLES[number]),
                         reduced)


# ------------------------------------------------------------ data check
def configs_of(number, datasets, configs, folder=None):
    """The configuration files Figure ``number`` reads, in order (Figures
    5-7: those of ``<configs>/<folder>``, default :data:`FOLDERS`)."""
    if number in FOLDERS:
        folder = os.path.join(configs, folder or FOLDERS[number])
        pattern = ('*.yaml' if number != 5 else os.path.join('**', '*.yaml'))
        return sorted(glob.glob(os.path.join(folder, pattern),
                                recursive=True))
    stems = [s for p in panels(number, datasets) for s in p.stems]
    return [os.path.join(configs, stem + '.yaml')
            for stem in sorted(set(stems), key=stems.index)]


def check_data(number, datasets, configs, data=None, folder=None):
    """Checks that the data holds the dataset of every run of Figure
    ``number`` (:func:`train.data.check_available`; nothing is decoded).

    Returns:
        list of str: Notes (a dataset that chainer.datasets would download).

    Raises:
        FigureError: A dataset cannot be had; the message names it, the
            configurations that need it and the ``--dataset`` to pass.

    """
    needed = collections.OrderedDict()
    for path in configs_of(number, datasets, configs, folder):
        cfg = load(path, check_model=False)
        needed.setdefault(cfg['dataset'], []).append(path)
    notes, missing = [], []
    for ds, paths in needed.items():
        try:
            note = check_available(ds, data)
        except DataError as e:
            missing.append((ds, paths, e))
        else:
            notes += [note] if note else []
    if not missing:
        return notes
    usable = []
    for ds in DATASET_ORDER:
        try:
            check_available(ds, data)
            usable.append(ds)
        except DataError:
            pass
    lines = []
    for ds, paths, error in missing:
        lines.append('Figure {} needs {} runs ({}{}), and the data cannot '
                     'give them: {}.'.format(
                         number, DATASETS[ds].title, paths[0],
                         ' and {} more'.format(len(paths) - 1)
                         if len(paths) > 1 else '', error))
    if usable:
        lines.append('Pass --dataset {} to make the figures from {} runs '
                     'only, or --data with {} images.'.format(
                         usable[0], DATASETS[usable[0]].title,
                         ' and '.join(DATASETS[ds].title
                                      for ds, _, _ in missing)))
    else:
        lines.append('Pass --data with an image folder or .zip of {} '
                     '(README: Data), or --dataset for the dataset you '
                     'have.'.format(' and '.join(
                         DATASETS[ds].title for ds, _, _ in missing)))
    raise FigureError('\n'.join(lines))


# errors a figure's command reports in one message (exit status 2)
ERRORS = (FigureError, ConfigError, DataError)
