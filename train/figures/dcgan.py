"""Figures 6 and 7 (Section 4.5) from DCGAN runs.

The rows are the GAN configurations directly under a folder
(``configs/dcgan``; their runs ``<runs>/dcgan/<stem>``, as
``scripts/dcgan.sh`` writes them).  The markdown has, per row: the paper's
and our best FID, the update of our best, the updates needed to reach the
batch-normalized row's best FID (the paper's 60K against 25K), training
iterations per second, and the FID at every evaluation.  Beside it go
``figure6.png`` (FID against updates, shaded by one standard deviation
over 3 adjacent evaluations, as the paper's Figure 6) and ``figure7.png``
(each run's 8x8 samples at its lowest FID, Figure 7).

A run short of the paper's protocol
(:func:`train.common.runfolder.is_reduced`) makes the report *reduced*: it
says so at the top.  FIDs from the proxy features are labelled
:data:`train.fid.PROXY_LABEL` in the text and on both figures.
"""
import glob
import os

from train.common.runfolder import GANRun
from train.common.runfolder import sample_path
from train.common.titles import REDUCED_TITLE
from train.config.gan import is_gan
from train.config.loading import load
from train.fid.features import PROXY_LABEL
from train.figures.panels import FigureError
from train.figures.panels import FOLDERS
from train.metrics.fid import steps_to_fid
from train.metrics.spread import window_std
from train.report.markdown import mn_setting
from train.report.markdown import table_lines
from train.report.plotting import band
from train.report.plotting import pyplot
from train.report.plotting import save

FIGURE = 6
SAMPLES_FIGURE = 7
WINDOW = 3  # evaluations per shading window (the paper's 30K iterations)
DATA_CAVEAT = (
    'The real images come from an image-folder copy of CIFAR-10 (such as '
    'cifar10-jpeg.zip, re-encoded as JPEG): the generators learn, and the '
    'FID compares with, those images rather than the original pixels.')


def load_rows(configs_dir, runs_dir):
    """``(stem, cfg, GANRun)`` for the GAN configurations of a folder."""
    rows = []
    for path in sorted(glob.glob(os.path.join(configs_dir, '*.yaml'))):
        cfg = load(path, check_model=False)
        if is_gan(cfg):
            stem = os.path.splitext(os.path.basename(path))[0]
            rows.append((stem, cfg, GANRun(os.path.join(runs_dir, stem))))
    return rows


def label(cfg):
    """The paper's row (DCGAN-BN), else the configuration's name."""
    return (cfg.get('paper') or {}).get('row') or cfg['name']


def _steps(pair):
    evaluated, interpolated = pair
    if evaluated is None:
        return '-'
    if abs(interpolated - evaluated) < 0.5:
        return '{:,}'.format(evaluated)
    return '{:,} (interp. {:,.0f})'.format(evaluated, interpolated)


def _reference(rows):
    """The row whose best FID is the target: the paper's target_row, else
    the first BN row."""
    for _, cfg, run in rows:
        target = (cfg.get('paper') or {}).get('target_row')
        if target:
            for _, c, r in rows:
                if label(c) == target:
                    return c, r
    for _, cfg, run in rows:
        if not cfg['norm']['layers']:
            return cfg, run
    return rows[0][1], rows[0][2]


def _fmt(value):
    return 'n/a' if value is None else '{:.2f}'.format(value)


def markdown(rows, figure6=None, figure7=None):
    """The report's markdown, as lines.

    Args:
        rows (list): From :func:`load_rows`.
        figure6, figure7 (str): File names of the figures to link.

    """
    runs = [r for _, _, r in rows if r.exists]
    ref_cfg, ref_run = _reference(rows)
    ref = label(ref_cfg)
    ref_best = ref_run.best() if ref_run.exists else None
    paper_target = (ref_cfg.get('paper') or {}).get('best_fid')
    lines = ['# Figure {}: DCGAN on CIFAR-10, FID against generator '
             'updates (Section 4.5)'.format(FIGURE), '']
    if any(r.reduced for r in runs):
        lines += ['**Reduced runs (fewer iterations or FID evaluations, a '
                  'training subset, or a smoke-test configuration): NOT a '
                  'reproduction of the paper.**', '']
    if any(r.proxy for r in runs):
        lines += ['**{}.** Its features: {}.'.format(
            PROXY_LABEL[0].upper() + PROXY_LABEL[1:],
            '; '.join(sorted({r.info['features'] for r in runs
                              if r.proxy}))), '']
    sources = sorted({r.info.get('data_source', '?') for r in runs})
    lines.append('Runs: {} of {} configurations. Data: {}. Devices: {}.'
                 .format(len(runs), len(rows), '; '.join(sources) or
                         'none yet', '; '.join(sorted(
                             {r.info.get('machine') or r.info.get('device',
                                                                  '?')
                              for r in runs})) or 'none yet'))
    dated = ['{} on {} ({})'.format(label(c), r.info['date'], ', '.join(
        '{} {}'.format(k, v) for k, v in sorted(r.info['versions'].items())))
        for _, c, r in rows if r.exists and r.info.get('date')]
    if dated:
        lines.append('Started: {}.'.format('; '.join(dated)))
    if any('chainer.datasets' not in s for s in sources):
        lines.append(DATA_CAVEAT)
    lines += ['', 'Best FID: the lowest evaluated FID (generator in test '
              'mode). Updates to reach {0}\'s best: the first evaluation at '
              'or below it (and where the line between evaluations crosses '
              'it). "-": never reached; "n/a": not run.'.format(ref), '']
    head = ['model', 'MN setting (layers, K, EM iter.)', 'paper: best FID',
            'ours: best FID', 'ours: at update',
            'paper: updates to {}\'s best ({})'.format(ref, _fmt(
                paper_target)),
            'ours: updates to our {}\'s best ({})'.format(
                ref, _fmt(ref_best and ref_best[1])),
            'ours: training it/s', 'run']
    body = []
    for stem, cfg, run in rows:
        paper = cfg.get('paper') or {}
        best = run.best() if run.exists else None
        ours_steps = _steps(steps_to_fid(
            run.iterations, run.fids, ref_best[1])) if best and ref_best \
            else 'n/a'
        speed = run.train_speed() if run.exists else None
        body.append([label(cfg), mn_setting(cfg),
                     _fmt(paper.get('best_fid')), _fmt(best and best[1]),
                     '{:,}'.format(best[0]) if best else 'n/a',
                     '{:,.0f}'.format(paper['steps_to_target'])
                     if 'steps_to_target' in paper else 'n/a',
                     ours_steps, _fmt(speed), run.status()])
    lines += table_lines(head, body)
    its = sorted(set().union(*[r.iterations for r in runs])) if runs else []
    if its:
        by_run = [dict(zip(r.iterations, r.fids)) for _, _, r in rows]
        lines += ['', 'FID at each evaluation:', ''] + table_lines(
            ['update'] + [label(c) for _, c, _ in rows],
            [['{:,}'.format(it)] + [_fmt(b.get(it)) for b in by_run]
             for it in its])
    for number, name, what in ((FIGURE, figure6, 'FID against updates; '
                                'shaded: one standard deviation over {} '
                                'adjacent evaluations'.format(WINDOW)),
                               (SAMPLES_FIGURE, figure7, 'samples at each '
                                'run\'s lowest FID')):
        if name:
            lines += ['', 'Figure {}: {}.'.format(number, what), '',
                      '![Figure {}]({})'.format(number, name)]
    return lines


def _title_note(rows):
    runs = [r for _, _, r in rows if r.exists]
    notes = []
    if any(r.reduced for r in runs):
        notes.append(REDUCED_TITLE)
    if any(r.proxy for r in runs):
        notes.append(PROXY_LABEL)
    return '\n'.join(notes)


def plot_fid(rows, path):
    """Figure 6: FID against updates, one line per run, shaded by one
    standard deviation within a window of 3 evaluations."""
    plt = pyplot()
    runs = [(cfg, run) for _, cfg, run in rows if run.exists]
    final = max([max(r.iterations) for _, r in runs] or [0])
    scale, unit = (1000.0, ' (thousands)') if final >= 10000 else (1.0, '')
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = {True: 'tab:blue', False: 'tab:red'}  # BN, MN
    for cfg, run in runs:
        bn = not cfg['norm']['layers']
        x = [it / scale for it in run.iterations]
        band(ax, x, run.fids, window_std(run.fids, WINDOW), bn,
             colours[bn], label(cfg), marker='o', always=True)
    _, ref_run = _reference(rows)
    if ref_run.exists:
        best = ref_run.best()
        ax.axhline(best[1], color='0.5', linewidth=0.8, linestyle=':')
        ax.annotate('best of {}: {:.2f}'.format(label(_reference(rows)[0]),
                                                best[1]),
                    (0.01, best[1]), xycoords=('axes fraction', 'data'),
                    ha='left', va='bottom', fontsize='small', color='0.35')
    proxy = any(r.proxy for _, r in runs)
    ax.set_xlabel('generator updates' + unit)
    ax.set_ylabel('proxy FID (CIFAR CNN features)' if proxy else 'FID')
    note = _title_note(rows)
    ax.set_title('Figure {}: DCGAN on CIFAR-10'.format(FIGURE) +
                 ('\n({})'.format('; '.join(note.split('\n'))) if note
                  else ''), fontsize='medium')
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(loc='best')
    fig.tight_layout()
    save(fig, path, 100)


def plot_samples(rows, path):
    """Figure 7: each run's sample grid at its lowest evaluated FID."""
    from PIL import Image

    plt = pyplot()
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 4.8),
                             squeeze=False)
    proxy = any(r.proxy for _, _, r in rows if r.exists)
    for ax, (letter, (_, cfg, run)) in zip(axes.flat,
                                           zip('abcdefgh', rows)):
        ax.set_axis_off()
        best = run.best() if run.exists else None
        sample = best and sample_path(run.path, best[0])
        if not sample or not os.path.exists(sample):
            ax.set_title('({}) {}: not run'.format(letter, label(cfg)))
            continue
        ax.imshow(Image.open(sample), interpolation='nearest')
        ax.set_title('({}) {}\n{}FID {:.2f} at {:,} updates'.format(
            letter, label(cfg), 'proxy ' if proxy else '', best[1],
            best[0]), fontsize='medium')
    note = _title_note(rows)
    fig.suptitle('Figure {}: samples at the lowest FID'.format(
        SAMPLES_FIGURE) + ('\n({})'.format('; '.join(note.split('\n')))
                           if note else ''), fontsize='medium')
    fig.tight_layout(rect=(0, 0, 1, 0.88 if note else 0.93))
    save(fig, path, 100)


def figure6(args, datasets):
    """Figures 6 and 7 from the GAN configurations of ``<configs>/<folder>``
    (``--folder``, default ``dcgan``) and their runs under
    ``<runs>/<folder>``; returns ``(markdown lines, rows, png writer)``:
    the writer puts ``figure6.png`` and ``figure7.png`` beside the PNG it
    is given (the markdown links them), under their own titles."""
    folder = args.folder or FOLDERS[6]
    configs = os.path.join(args.configs, folder)
    rows = load_rows(configs, os.path.join(args.runs, folder))
    if not rows:
        raise FigureError('no GAN configuration under {}'.format(configs))
    names = ['figure{}.png'.format(n) for n in (FIGURE, SAMPLES_FIGURE)]

    def draw(png, title=None):
        folder = os.path.dirname(png)
        paths = [os.path.join(folder, name) for name in names]
        plot_fid(rows, paths[0])
        plot_samples(rows, paths[1])
        return paths
    return markdown(rows, *names), rows, draw
