"""Figures 6 and 7 (Section 4.5) from DCGAN runs.

    python -m train.gan_report [--configs configs/dcgan] [--runs runs/dcgan]
        [--out results/dcgan.md] [--reduced-out FILE]

The rows are the GAN configurations directly under ``--configs`` (BN and
MN; their runs are ``<runs>/<stem>``, as ``scripts/dcgan.sh`` writes
them).  The markdown has, per row: the paper's and our best FID, the update
of our best, the updates needed to reach the batch-normalized row's best
FID (the paper's 60K against 25K), training iterations per second, and the
FID at every evaluation.  Beside it go ``figure6.png`` (FID against
updates, shaded by one standard deviation over 3 adjacent evaluations, as
the paper's Figure 6) and ``figure7.png`` (each run's 8x8 samples at its
lowest FID, Figure 7).

A run short of the paper's protocol (:func:`train.gan.reduced`) makes the
report *reduced*: it says so at the top and goes to ``--reduced-out`` when
given, so that results/ holds full runs only.  FIDs from the proxy features
are labelled :data:`train.fid.PROXY_LABEL` in the text and on both figures.
"""
import argparse
import glob
import json
import os
import sys

from train import config as config_module
from train import fid as fid_module
from train import gan
from train import metrics
from train import report

FIGURE = 6
SAMPLES_FIGURE = 7
WINDOW = 3  # evaluations per shading window (the paper's 30K iterations)
_DATA_CAVEAT = (
    'The real images come from an image-folder copy of CIFAR-10 (such as '
    'cifar10-jpeg.zip, re-encoded as JPEG): the generators learn, and the '
    'FID compares with, those images rather than the original pixels.')


class GANRun(object):

    """A GAN run folder: ``run.json``, the FID curve and the log.

    Args:
        path (str): The folder (may not exist yet).

    """

    def __init__(self, path):
        self.path = path
        self.info = None
        self.log = []
        if os.path.exists(os.path.join(path, 'run.json')):
            with open(os.path.join(path, 'run.json')) as f:
                self.info = json.load(f)
        if os.path.exists(os.path.join(path, 'log')):
            with open(os.path.join(path, 'log')) as f:
                self.log = json.load(f)
        self.iterations, self.fids = gan.fid_curve(path)

    @property
    def exists(self):
        return self.info is not None and bool(self.fids)

    @property
    def reduced(self):
        return bool(self.info) and gan.reduced(self.info)

    @property
    def proxy(self):
        return bool(self.info and self.info.get('proxy'))

    def best(self):
        """``(iteration, FID)`` of the lowest evaluation, or None."""
        return gan.best_fid(self.path) if self.fids else None

    def train_speed(self):
        """Training iterations per second, FID evaluations excluded."""
        if not self.log:
            return None
        last = self.log[-1]
        busy = last.get('elapsed_time', 0) - sum(
            e.get('fid_time', 0) for e in self.log)
        return last['iteration'] / busy if busy > 0 else None

    def status(self):
        if not self.exists:
            return 'not run'
        i = self.info
        done = self.log[-1]['iteration'] if self.log else 0
        text = ('done, {:,} it, {:.0f} s'.format(i['iterations'],
                                                 i.get('wall_time', 0))
                if i.get('finished') else '{:,}/{:,} it'.format(
                    done, i['iterations']))
        if self.reduced:
            text += ', reduced ({:,} training images, FID of {:,} every '\
                '{:,})'.format(i['n_train'], i['fid']['n_samples'],
                               i['fid']['every'])
        return text


def load_rows(configs_dir, runs_dir):
    """``(stem, cfg, GANRun)`` for the GAN configurations of a folder."""
    rows = []
    for path in sorted(glob.glob(os.path.join(configs_dir, '*.yaml'))):
        cfg = config_module.load(path, check_model=False)
        if gan.is_gan(cfg):
            stem = os.path.splitext(os.path.basename(path))[0]
            rows.append((stem, cfg, GANRun(os.path.join(runs_dir, stem))))
    return rows


def label(cfg):
    """The paper's row (DCGAN-BN), else the configuration's name."""
    return (cfg.get('paper') or {}).get('row') or cfg['name']


def steps_to_reach(iterations, fids, target):
    """Updates until the FID first falls to ``target`` or below.

    Returns:
        tuple: ``(evaluated, interpolated)``: the first evaluation at or
        below the target, and the update where the straight line from the
        evaluation before it crosses the target (the paper's 25K between
        evaluations every 10K reads as such); ``(None, None)`` if never.

    """
    for i, (it, value) in enumerate(zip(iterations, fids)):
        if value <= target + 1e-9:
            if i == 0 or fids[i - 1] == value:
                return it, float(it)
            prev_it, prev = iterations[i - 1], fids[i - 1]
            return it, prev_it + (it - prev_it) * (prev - target) / (
                prev - value)
    return None, None


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
    """The report's markdown.

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
            fid_module.PROXY_LABEL[0].upper() + fid_module.PROXY_LABEL[1:],
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
        lines.append(_DATA_CAVEAT)
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
        ours_steps = _steps(steps_to_reach(
            run.iterations, run.fids, ref_best[1])) if best and ref_best \
            else 'n/a'
        speed = run.train_speed() if run.exists else None
        body.append([label(cfg), report._mn_setting(cfg),
                     _fmt(paper.get('best_fid')), _fmt(best and best[1]),
                     '{:,}'.format(best[0]) if best else 'n/a',
                     '{:,.0f}'.format(paper['steps_to_target'])
                     if 'steps_to_target' in paper else 'n/a',
                     ours_steps, _fmt(speed), run.status()])
    lines += report.table_lines(head, body)
    its = sorted(set().union(*[r.iterations for r in runs])) if runs else []
    if its:
        by_run = [dict(zip(r.iterations, r.fids)) for _, _, r in rows]
        lines += ['', 'FID at each evaluation:', ''] + report.table_lines(
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
    return '\n'.join(lines) + '\n'


def _title_note(rows):
    runs = [r for _, _, r in rows if r.exists]
    notes = []
    if any(r.reduced for r in runs):
        notes.append(report.REDUCED_TITLE)
    if any(r.proxy for r in runs):
        notes.append(fid_module.PROXY_LABEL)
    return '\n'.join(notes)


def plot_fid(rows, path):
    """Figure 6: FID against updates, one line per run, shaded by one
    standard deviation within a window of 3 evaluations."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    runs = [(cfg, run) for _, cfg, run in rows if run.exists]
    final = max([max(r.iterations) for _, r in runs] or [0])
    scale, unit = (1000.0, ' (thousands)') if final >= 10000 else (1.0, '')
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = {True: 'tab:blue', False: 'tab:red'}  # BN, MN
    for cfg, run in runs:
        bn = not cfg['norm']['layers']
        x = [it / scale for it in run.iterations]
        std = metrics.window_std(run.fids, WINDOW)
        colour = colours[bn]
        ax.plot(x, run.fids, '--' if bn else '-', marker='o', markersize=3,
                color=colour, label=label(cfg))
        ax.fill_between(x, [v - s for v, s in zip(run.fids, std)],
                        [v + s for v, s in zip(run.fids, std)],
                        color=colour, alpha=0.2, linewidth=0)
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
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(rows, path):
    """Figure 7: each run's sample grid at its lowest evaluated FID."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 4.8),
                             squeeze=False)
    proxy = any(r.proxy for _, _, r in rows if r.exists)
    for ax, (letter, (_, cfg, run)) in zip(axes.flat,
                                           zip('abcdefgh', rows)):
        ax.set_axis_off()
        best = run.best() if run.exists else None
        sample = best and gan.sample_path(run.path, best[0])
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
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build(rows, out=None):
    """The markdown, with the figures written beside ``out`` (if given)."""
    names = (None, None)
    if out:
        folder = os.path.dirname(out)
        if folder:
            os.makedirs(folder, exist_ok=True)
        names = ('figure{}.png'.format(FIGURE),
                 'figure{}.png'.format(SAMPLES_FIGURE))
        plot_fid(rows, os.path.join(folder, names[0]))
        plot_samples(rows, os.path.join(folder, names[1]))
    return markdown(rows, *names)


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m train.gan_report')
    p.add_argument('--configs', default=os.path.join('configs', 'dcgan'),
                   help='folder of the GAN configurations (default: '
                        'configs/dcgan)')
    p.add_argument('--runs', default=os.path.join('runs', 'dcgan'),
                   help='folder of their runs (default: runs/dcgan)')
    p.add_argument('--out', default=None,
                   help='markdown file; the figures go beside it (default: '
                        'stdout, no figures)')
    p.add_argument('--reduced-out', default=None,
                   help='where to write instead when a run is reduced')
    args = p.parse_args(argv)
    rows = load_rows(args.configs, args.runs)
    if not rows:
        print('train.gan_report: no GAN configuration under {}'.format(
            args.configs), file=sys.stderr)
        return 2
    reduced = any(r.reduced for _, _, r in rows if r.exists)
    out = args.reduced_out if (reduced and args.reduced_out) else args.out
    report._write(build(rows, out), out, reduced)
    return 0


if __name__ == '__main__':
    sys.exit(main())
