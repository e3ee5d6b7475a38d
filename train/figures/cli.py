"""``python -m train.figures N``: one of the paper's figures, from runs.

    python -m train.figures N [--runs DIR] [--configs DIR]
        [--dataset cifar10|cifar100|all] [--out FILE] [--reduced-out FILE]
        [--list-configs] [--check-data [--data PATH]]
    Figure 1: [--run RUN] [--snapshot FILE] [--at F] [--layer conv2]
              [--channels 128] [--columns 16] [--components 2 3]
              [--em-iter 2] [--seed S]
    Figures 5, 6, 7: [--folder densenet | dcgan | dcgan/tiny]
    Figure 8: [--run RUN] [--layer inc2/0/2/4] [--channels 192] [--seed S]
    Figure 9: [--run RUN] [--window N]

Each command reads the runs of the configurations the figure is made of
(the run of ``<configs>/<path>.yaml`` is ``<runs>/<path>``, as the scripts
train them; :mod:`train.figures.panels`), writes ``results/figureN.png``
and ``results/figureN.md`` (the runs used, their budget and the figure's
numbers), and stops with exit status 2 and a message that names the runs
it still needs (Figures 5-7 show those as "not run").  As for the tables
(:mod:`train.report`), a figure built from a reduced run (a subset, or
fewer epochs than configured) is labelled "NOT a reproduction" and goes to
``--reduced-out`` (default ``<runs>/figures/figureN.md``) instead.
Figures 6 and 7 come together: ``figure6.png`` and ``figure7.png`` beside
the markdown.  ``--list-configs`` prints the configurations the figure
reads, one a line (``scripts/figures.sh`` trains them); ``--check-data``
checks, without decoding anything, that the data (``--data``, else
``$MIXNORM_DATA``, else chainer.datasets) holds the dataset of each of
them, and otherwise stops with exit status 2 and a message that names the
``--dataset`` the data can make (``scripts/figures.sh`` asks before it
trains anything).
"""
import argparse
import os
import sys

from train.figures import activations
from train.figures import components
from train.figures import curves
from train.figures import dcgan
from train.figures import fits
from train.figures.panels import check_data
from train.figures.panels import configs_of
from train.figures.panels import DATASET_ORDER
from train.figures.panels import ERRORS
from train.figures.panels import figure_title
from train.figures.panels import FIGURES

# figure number -> its builder: (args, datasets) -> (markdown lines, rows,
# draw), where draw(png, title) writes the picture
BUILDERS = {1: activations.figure1, 5: curves.figure5, 6: dcgan.figure6,
            7: dcgan.figure6, 8: fits.figure8, 9: components.figure9}
DCGAN_FIGURES = (6, 7)  # their markdown links their own two PNGs


def build(number, args, datasets):
    """Builds Figure ``number``.

    Returns:
        tuple: ``(markdown lines, rows, draw)``; ``draw(png_path, title)``
        writes the picture.

    Raises:
        FigureError: Runs or records it needs are missing.

    """
    if number in BUILDERS:
        return BUILDERS[number](args, datasets)
    return curves.figure2to4(number, args, datasets)


def parser():
    p = argparse.ArgumentParser(
        prog='python -m train.figures',
        description="Draw one of the paper's figures from runs.")
    p.add_argument('number', type=int, choices=FIGURES)
    p.add_argument('--runs', default='runs',
                   help='root of the runs (default: runs)')
    p.add_argument('--configs', default='configs',
                   help='root of the configurations (default: configs)')
    p.add_argument('--dataset', default='all',
                   choices=('all',) + DATASET_ORDER)
    p.add_argument('--out', default=None,
                   help='markdown file (default: results/figureN.md); the '
                        'PNG goes beside it')
    p.add_argument('--reduced-out', default=None,
                   help='where to write instead when a run is reduced '
                        '(default: <runs>/figures/figureN.md)')
    p.add_argument('--list-configs', action='store_true',
                   help='print the configurations the figure reads and '
                        'exit')
    p.add_argument('--check-data', action='store_true',
                   help='check that the data holds the dataset of every '
                        'run the figure reads (nothing is decoded) and '
                        'exit; status 2 and the --dataset to pass if not')
    p.add_argument('--data', default=None,
                   help='with --check-data: the image folder or .zip the '
                        'runs train on (default $MIXNORM_DATA, else '
                        'chainer.datasets)')
    p.add_argument('--folder', default=None,
                   help='Figures 5-7: the folder under --configs and --runs '
                        'whose configurations are the rows (default: '
                        'densenet for 5, dcgan for 6 and 7)')
    p.add_argument('--run', default=None,
                   help='Figures 1, 8, 9: the run folder (default: the '
                        "figure's runs under --runs)")
    p.add_argument('--layer', default=None,
                   help='Figure 1: the layer whose normalization input is '
                        'shown (default conv2); Figure 8: the MN layer '
                        '(default inc2/0/2/4)')
    p.add_argument('--snapshot', default=None,
                   help='Figure 1: a model.npz, model_iter_* or '
                        'snapshot_iter_* to read instead of the saved '
                        'model nearest --at')
    p.add_argument('--at', type=float, default=0.5,
                   help='Figure 1: fraction of training of the model '
                        '(default 0.5)')
    p.add_argument('--channels', type=int, default=None,
                   help='random channels shown (Figure 1: 128, 8: 192)')
    p.add_argument('--columns', type=int, default=16,
                   help='Figure 1: channels per row block (default 16)')
    p.add_argument('--components', type=int, nargs='+', default=[2, 3],
                   help='Figure 1: the K of the MN fits (default 2 3)')
    p.add_argument('--em-iter', type=int, default=2,
                   help='Figure 1: EM iter. of the MN fits (default 2)')
    p.add_argument('--window', type=int, default=None,
                   help='Figure 9: log entries per running average '
                        '(default: a twentieth of them)')
    p.add_argument('--seed', type=int, default=0,
                   help='Figures 1, 8: seed of the batch and channel '
                        'choice')
    return p


def main(argv=None):
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    n = args.number
    datasets = DATASET_ORDER if args.dataset == 'all' else (args.dataset,)
    if args.list_configs:
        for path in configs_of(n, datasets, args.configs, args.folder):
            print(path)
        return 0
    if args.check_data:
        try:
            notes = check_data(n, datasets, args.configs, args.data,
                               args.folder)
        except ERRORS as e:
            print('train.figures: {}'.format(e), file=sys.stderr)
            return 2
        for note in notes:
            print('train.figures: Figure {}: {}'.format(n, note),
                  file=sys.stderr)
        return 0
    args.layer = args.layer or ('conv2' if n == 1 else 'inc2/0/2/4')
    args.channels = args.channels or (128 if n == 1 else 192)
    try:
        lines, rows, draw = build(n, args, datasets)
    except ERRORS as e:
        print('train.figures: {}'.format(e), file=sys.stderr)
        return 2
    reduced = any(r.exists and r.reduced for _, _, r in rows)
    md = (args.reduced_out or os.path.join(
        args.runs, 'figures', 'figure{}.md'.format(n))) if reduced else (
        args.out or os.path.join('results', 'figure{}.md'.format(n)))
    png = os.path.splitext(md)[0] + '.png'
    if os.path.dirname(md):
        os.makedirs(os.path.dirname(md), exist_ok=True)
    if n in DCGAN_FIGURES:
        pngs = draw(png, None)
    else:
        draw(png, figure_title(n, reduced))
        pngs = [png]
        lines += ['', '![Figure {}]({})'.format(n, os.path.basename(png))]
    with open(md, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('wrote {} and {}{}'.format(md, ', '.join(pngs),
                                     ' (reduced-budget runs)'
                                     if reduced else ''), file=sys.stderr)
    return 0
