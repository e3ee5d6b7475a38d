"""The paper's Figures 1, 2, 3, 4, 8 and 9, drawn from our own runs.

    python -m train.figures N [--runs DIR] [--configs DIR]
        [--dataset cifar10|cifar100|all] [--out FILE] [--reduced-out FILE]
        [--list-configs] [--check-data [--data PATH]]
    Figure 1: [--run RUN] [--snapshot FILE] [--at F] [--layer conv2]
              [--channels 128] [--columns 16] [--components 2 3]
              [--em-iter 2] [--seed S]
    Figure 8: [--run RUN] [--layer inc2/0/2/4] [--channels 192] [--seed S]
    Figure 9: [--run RUN] [--window N]

Each command reads the runs of the configurations the figure is made of
(the run of ``<configs>/<path>.yaml`` is ``<runs>/<path>``, as the scripts
train them), writes ``results/figureN.png`` and ``results/figureN.md``
(the runs used, their budget and the figure's numbers), and stops with
exit status 2 and a message that names the runs it still needs.  As for
the tables (:mod:`train.report`), a figure built from a reduced run (a
subset, or fewer epochs than configured) is labelled "NOT a reproduction"
and goes to ``--reduced-out`` (default ``<runs>/figures/figureN.md``)
instead.  ``--list-configs`` prints the configurations the figure reads,
one a line (``scripts/figures.sh`` trains them); ``--check-data`` checks,
without decoding anything, that the data (``--data``, else
``$MIXNORM_DATA``, else chainer.datasets) holds the dataset of each of
them, and otherwise stops with exit status 2 and a message that names the
``--dataset`` the data can make (``scripts/figures.sh`` asks before it
trains anything).

* Figure 1 (Sec. 3.2): one training mini-batch through the model saved
  halfway through a CIFAR CNN run (``records/model_iter_<N>.npz``, which
  ``record.models_at: [0.5]`` saves; ``--snapshot`` takes any
  ``model.npz``, ``model_iter_*`` or trainer ``snapshot_iter_*``); the
  input of ``conv2``'s normalization (the convolution's output) of 128
  random channels: its histogram with BN's single Gaussian, the MN:2 and
  MN:3 fits of :func:`mixnorm.gmm.fit` (solid p(x), dashed lambda_k
  N(mu_k, sigma_k^2)), and the BN- against the MN-normalized activations.
  The paper uses CIFAR-100; with ``--dataset cifar10`` the CIFAR-10 run.
* Figure 2 (Sec. 4.2): test error against epochs of the Table 2 runs, BN-i
  (dashed) against MN-i for each (lr, weight decay), shaded by one
  standard deviation within a window of 10 epochs.
* Figure 3: left, the EM iterations (MN-2, MN-5, MN-6: 2, 4, 8); right, MN
  at conv3, conv2 and both (MN-2, MN-7, MN-8); BN-2 dashed in both.  The
  paper's rows are CIFAR-100's; the same settings on CIFAR-10 are
  ``configs/figure3/cifar10/`` (not in the paper).
* Figure 4 (Sec. 4.3): Inception-V3 test error, (a) CIFAR-10 and (b)
  CIFAR-100 at the small learning rate, (c) the large one, (d) Nesterov
  with both drop policies (Table 6).
* Figure 8 (Sec. 5.2): the fits of one MN link (``inc2/0/2/4`` of MN-4) at
  20/40/60/80/100% of training (``record.fits_at``), 192 random channels:
  lambda_k N(x; mu_kc, sigma_kc^2) per component, coloured by the rank of
  lambda_k (the largest in olive), and the sorted lambda_k.
* Figure 9 (Sec. 5.3): the number of active components (lambda_k >=
  ``min_weight``) of every MN link of MN-4 through training
  (``record.active_components``), a running average over ``--window`` log
  entries (default: a twentieth of them) with one standard deviation of
  the per-step counts in the window shaded.
"""
import argparse
import collections
import datetime
import math
import os
import sys

import numpy

from train import config as config_module
from train import extensions as records
from train import metrics
from train import report

FIGURES = (1, 2, 3, 4, 8, 9)
DATASET_ORDER = ('cifar10', 'cifar100')
PAPER_DATASET = 'cifar100'  # Figures 1 and 8 of the paper
WINDOW = 10  # epochs: Fig. 2's standard-deviation window
FIT_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)  # Fig. 8
TEAL = '#008080'  # Fig. 1: p(x)
# Fig. 8: components by rank of lambda_k, the dominant one olive
RANK_COLOURS = ('tab:olive', 'tab:blue', 'tab:orange', 'tab:purple',
                'tab:red', 'tab:cyan', 'tab:brown', 'tab:pink')
_TITLES = {
    1: 'activation densities of conv2, BN against MN:2 and MN:3',
    2: 'CIFAR CNN test error, BN against MN for each (lr, weight decay)',
    3: 'CIFAR CNN test error: EM iterations (left) and MN layers (right)',
    4: 'Inception-V3 test error curves',
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
    """The panels of Figure ``number`` for the chosen datasets.

    Args:
        number (int): One of :data:`FIGURES`.
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
def _load_rows(panel, configs, runs):
    return [(stem, config_module.load(
        os.path.join(configs, stem + '.yaml'), check_model=False),
        report.Run(os.path.join(runs, stem))) for stem in panel.stems]


def _missing_error(number, missing, configs):
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
    out = [(p, _load_rows(p, configs, runs))
           for p in panels(number, datasets)]
    missing = [row for _, rows in out for row in rows if not row[2].exists]
    if missing:
        raise _missing_error(number, missing, configs)
    return out


def _label(cfg):
    """A curve's label: the paper's row and what sets it apart."""
    row = cfg.get('paper', {}).get('row') or cfg['name']
    sched = cfg['schedule']
    if sched['name'] == 'step':  # Fig. 4d: the drop policy
        return '{}, lr x{:g} at {}'.format(row, sched['factor'], '/'.join(
            '{:g}%'.format(100 * d) for d in sched['drops']))
    if cfg['norm']['layers']:
        return '{} {}'.format(row, report._mn_setting(cfg))
    return row


def _is_bn(cfg):
    return not cfg['norm']['layers']


def _header(number, rows):
    """Title, reduced-run label, data and devices (as the tables)."""
    lines = report._header('Figure {}: {}'.format(number, _TITLES[number]),
                           rows)
    lines.insert(-1, 'Made on {} by `python -m train.figures {}`.'.format(
        datetime.date.today().isoformat(), number))
    return lines


def _dataset_note(dataset):
    """Figures 1 and 8: say so when the run is not on the paper's data."""
    if dataset == PAPER_DATASET:
        return []
    return ['The paper shows a CIFAR-100 run; this figure shows a {} run '
            'instead.'.format(config_module.DATASETS[dataset].title), '']


def _scope_note(number, datasets):
    """Figures 2-4 and 9: the panels left out by ``--dataset``."""
    lines = []
    if len(datasets) < len(DATASET_ORDER):
        lines.append('Only the {} panels (`--dataset {}`); the paper\'s '
                     'other panels need the other dataset\'s runs.'.format(
                         config_module.DATASETS[datasets[0]].title,
                         datasets[0]))
    if number == 3 and 'cifar10' in datasets:
        lines.append('The paper shows these rows on CIFAR-100 only; on '
                     'CIFAR-10, MN-5 to MN-8 are our configurations '
                     '`configs/figure3/cifar10/` (BN-2 and MN-2 are Table '
                     '2\'s).')
    return lines + [''] if lines else []


# ------------------------------------------------------- Figures 2, 3, 4
def _test_error(run):
    _, epochs, accs = metrics.accuracy_curve(run.log)
    return epochs, [100.0 - a for a in accs]


def _panel_title(panel, rows):
    title = config_module.DATASETS[panel.dataset].title
    if panel.title is None:  # Fig. 2: one (lr, weight decay) setting
        return '{}, (lr, weight decay) = {}'.format(
            title, report._training_setting(rows[0][1]))
    if panel.title.startswith('('):
        return panel.title
    return '{}: {}'.format(title, panel.title)


def plot_curves(loaded, path, ncols, title=None):
    """Test error against epochs, one panel per entry of ``loaded``.

    BN runs dashed, MN runs solid, each shaded by one standard deviation
    within a window of :data:`WINDOW` epochs (Fig. 2; centred, cut short at
    the ends: :func:`train.metrics.window_std`); ``title`` above.

    Returns:
        matplotlib.figure.Figure: The figure written (closed).

    """
    from matplotlib.ticker import MaxNLocator
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    ncols = min(ncols, len(loaded))
    nrows = -(-len(loaded) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols,
                                                    3.6 * nrows),
                             squeeze=False)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, (panel, rows) in zip(axes.flat, loaded):
        policies = [tuple(cfg['schedule'].get('drops', ())) for _, cfg, _ in
                    rows]
        n_mn = 0
        for (stem, cfg, run), policy in zip(rows, policies):
            epochs, err = _test_error(run)
            style = '--' if _is_bn(cfg) else '-'
            if len(set(policies)) > 1:  # Fig. 4d: a colour per drop policy
                colour = colours[sorted(set(policies)).index(policy)]
            elif _is_bn(cfg):
                colour = 'black' if len(rows) > 2 else colours[0]
            else:
                n_mn += 1
                colour = colours[n_mn % len(colours)]
            std = metrics.window_std(err, WINDOW)
            ax.plot(epochs, err, style, color=colour, label=_label(cfg),
                    marker='o' if len(epochs) <= 12 else None, markersize=3)
            ax.fill_between(epochs, [e - s for e, s in zip(err, std)],
                            [e + s for e, s in zip(err, std)],
                            color=colour, alpha=0.2, linewidth=0)
        ax.set_title(_panel_title(panel, rows), fontsize='medium')
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel('test error (%)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    for ax in list(axes.flat)[len(loaded):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return fig


def curves_figure(number, loaded, datasets):
    """Markdown of Figures 2-4: the runs, best and final test error."""
    rows = [row for _, rs in loaded for row in rs]
    lines = _header(number, rows) + _scope_note(number, datasets)
    lines += ['Test error (%) against epochs, evaluated once per epoch; BN '
              'dashed, MN solid; shaded: one standard deviation within a '
              'window of {} epochs (Sec. 4.2: "computed within a window of '
              '10 epochs"; `train.metrics.window_std`: centred on the '
              'epoch, 5 epochs either side, cut short at the ends).'
              .format(WINDOW), '']
    body = []
    for panel, rs in loaded:
        for stem, cfg, run in rs:
            epochs, err = _test_error(run)
            best = min(range(len(err)), key=err.__getitem__)
            body.append([_panel_title(panel, rs), _label(cfg),
                         report.format_value(err[best]),
                         str(epochs[best]), report.format_value(err[-1]),
                         report.format_value(metrics.window_std(
                             err, WINDOW)[-1]),
                         '`{}`'.format(run.path), run.status()])
    lines += report.table_lines(
        ['panel', 'run', 'best test error', 'epoch of best',
         'final test error', 'final std (window)', 'folder', 'status'],
        body)
    return lines


# --------------------------------------------------------------- Figure 1
class _Captured(Exception):
    """Raised by the link hook of :func:`_capture_input` to stop the
    forward pass once it has the input it wanted."""


def _capture_input(predictor, link, x):
    """The first input of ``link`` when ``predictor(x)`` runs in training
    mode (the layers before it see the batch as in training); the layers
    after it are not run."""
    import chainer

    class Capture(chainer.LinkHook):
        name = 'figures_capture'

        def forward_preprocess(self, args):
            if args.link is link:
                h = args.args[0]
                self.value = getattr(h, 'array', h)
                raise _Captured()

    hook = Capture()
    with chainer.using_config('train', True), \
            chainer.no_backprop_mode(), hook:
        try:
            predictor(x)
        except _Captured:
            return hook.value
    raise FigureError('the forward pass never reached {}'.format(link.name))


def _iteration_of(path):
    """N of ``model_iter_N.npz`` or ``snapshot_iter_N``, else None."""
    stem = os.path.basename(path).split('.')[0]
    tail = stem.rsplit('_', 1)[-1]
    return int(tail) if '_iter_' in stem and tail.isdigit() else None


def _model_file(run, snapshot, at):
    """``(path, iteration)`` of the model Figure 1 reads."""
    final = run.info.get('final_iteration') or run.info.get('iterations')
    if snapshot:
        it = _iteration_of(snapshot)
        if it is None and os.path.basename(snapshot) == 'model.npz':
            it = run.info.get('iterations')
        return snapshot, it
    saved = records.model_files(run.path)
    if not saved:
        raise FigureError(
            '{}: no model saved during training ({}/model_iter_*.npz). '
            'Figure 1 needs the model halfway through training: train the '
            'run with `record: {{models_at: [0.5]}}` in its configuration '
            '(configs/table2/*/bn2.yaml have it), or pass --snapshot FILE '
            '(a model_iter_*.npz, snapshot_iter_* or model.npz)'.format(
                run.path, records.RECORDS))
    it = min(saved, key=lambda i: abs(i - at * (final or i)))
    return saved[it], it


def _load_weights(path, predictor):
    """Loads a model file or a trainer snapshot into ``predictor``."""
    import chainer
    prefix = 'updater/model:main/predictor/'
    with numpy.load(path) as z:
        in_snapshot = any(k.startswith(prefix) for k in z.files)
    chainer.serializers.load_npz(path, predictor,
                                 path=prefix if in_snapshot else '')


def _training_batch(cfg, info, seed):
    """One augmented training mini-batch of the run's data, as it trains."""
    from train import data as data_module
    source = info.get('data')
    if source == cfg['dataset']:  # chainer.datasets, not an image folder
        dataset = data_module.load_cifar(source)
    else:
        dataset = data_module.load_dataset(cfg['dataset'], source)
    x, y = data_module.subset(dataset['train_x'], dataset['train_y'],
                              info.get('train_subset'), seed=0)
    rng = numpy.random.RandomState(seed)
    idx = rng.choice(len(x), min(cfg['batch_size'], len(x)), replace=False)
    numpy.random.seed(seed)  # the augmentation draws from it
    import chainer
    convert = data_module.Preprocess(dataset['mean'], dataset['std'],
                                     augment=True)
    batch, _ = convert(list(zip(x[idx], y[idx])),
                       chainer.get_device('@numpy'))
    return batch


def _gauss_log(x, mean, var):
    return -0.5 * (numpy.log(2 * numpy.pi * var) + (x - mean) ** 2 / var)


def _mixture_log(x, weights, means, variances):
    """log sum_k lambda_k N(x; mu_k, sigma_k^2) of 1-D samples ``x``."""
    terms = [numpy.log(w) + _gauss_log(x, m, v)
             for w, m, v in zip(weights, means, variances) if w > 0]
    return numpy.logaddexp.reduce(numpy.stack(terms), axis=0)


def _skewness(z):
    z = z - z.mean()
    return float((z ** 3).mean() / max(z.var(), 1e-12) ** 1.5)


def conv_activations(run, layer, snapshot=None, at=0.5, seed=0):
    """The input of ``layer``'s normalization for one training batch.

    Returns:
        tuple: ``(x, model_path, iteration)``; x is (N, C, H, W) float32.

    """
    cfg = run.info['config']
    path, iteration = _model_file(run, snapshot, at)
    predictor, _ = config_module.build_model(cfg)
    _load_weights(path, predictor)
    try:
        norm_paths = predictor.norm_paths([layer])
    except ValueError as e:
        raise FigureError('--layer: {}'.format(e))
    if len(norm_paths) != 1:
        raise FigureError('--layer {} names {} normalizations ({}); name '
                          'one'.format(layer, len(norm_paths),
                                       ', '.join(norm_paths)))
    link = dict(predictor.namedlinks(skipself=True))['/' + norm_paths[0]]
    x = _capture_input(predictor, link, _training_batch(cfg, run.info, seed))
    return numpy.asarray(x, numpy.float32), path, iteration


def figure1_fits(x, components, em_iter, eps, seed):
    """BN's per-channel Gaussian and the MN:K fits of the batch ``x``.

    Returns:
        dict: ``bn``: (mean, var) per channel and BN-normalized ``x``;
        ``mn``: K -> (GMM, MN-normalized ``x``) (Eq. 34 with gamma = 1,
        beta = 0).

    """
    import mixnorm
    from mixnorm.functions import to_rows
    rows = to_rows(x)
    c = x.shape[1]
    mean, var = rows.mean(axis=0), rows.var(axis=0)
    shape = (1, c) + (1,) * (x.ndim - 2)
    out = {'bn': (mean, var, (x - mean.reshape(shape)) /
                  numpy.sqrt(var.reshape(shape) + eps)), 'mn': {}}
    ones, zeros = numpy.ones(c, x.dtype), numpy.zeros(c, x.dtype)
    for k in components:
        gmm, resp = mixnorm.gmm.fit(rows, k, em_iter,
                                    rng=numpy.random.RandomState(seed))
        # NumPy 1.x promotes a fit of >= 65536 rows to float64
        resp = resp.astype(x.dtype, copy=False)
        y = mixnorm.mixture_normalization(x, ones, zeros, resp, eps).array
        out['mn'][k] = (gmm, y)
    return out


def _channel(a, c):
    """All values of channel ``c`` of an (N, C, ...) array."""
    return a[:, c].reshape(-1)


def plot_figure1(x, fits, channels, columns, path, title=None):
    """Fig. 1: per channel, the histogram of the convolution output with
    BN's Gaussian and the MN:K densities (solid teal p(x), dashed
    lambda_k N(mu_k, sigma_k^2)), and the BN- against the MN-normalized
    activations; channels in blocks of ``columns``; ``title`` above the
    key.  Returns the figure written (closed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    ks = sorted(fits['mn'])
    names = ['BN'] + ['MN:{}'.format(k) for k in ks] + ['normalized']
    per = len(names)
    blocks = -(-len(channels) // columns)
    fig, axes = plt.subplots(blocks * per, columns,
                             figsize=(1.25 * columns, 0.95 * blocks * per),
                             squeeze=False)
    comp_colours = ('tab:orange', 'tab:purple', 'tab:red', 'tab:green',
                    'tab:brown')
    mean, var, bn_y = fits['bn']
    for i, c in enumerate(channels):
        col, block = i % columns, i // columns
        v = _channel(x, c)
        lo, hi = numpy.percentile(v, [0.1, 99.9])
        grid = numpy.linspace(lo, hi, 200)
        counts, edges = numpy.histogram(v, bins=40, range=(lo, hi),
                                        density=True)
        for j, name in enumerate(names):
            ax = axes[block * per + j, col]
            if name == 'normalized':
                k = ks[-1]
                zl = numpy.linspace(-4, 4, 200)
                for y, colour in ((bn_y, 'grey'), (fits['mn'][k][1], TEAL)):
                    v = _channel(y, c)
                    h, e = numpy.histogram(v / max(v.std(), 1e-12), bins=40,
                                           range=(-4, 4), density=True)
                    ax.stairs(h, e, color=colour)
                ax.plot(zl, numpy.exp(_gauss_log(zl, 0, 1)), ':',
                        color='black', linewidth=0.8, label='N(0, 1)')
            else:
                ax.stairs(counts, edges, fill=True, color='0.85')
                if name == 'BN':
                    ax.plot(grid, numpy.exp(_gauss_log(grid, mean[c],
                                                       var[c])),
                            color=TEAL, linewidth=1)
                else:
                    gmm = fits['mn'][ks[j - 1]][0]
                    ax.plot(grid, numpy.exp(_mixture_log(
                        grid, gmm.weights, gmm.means[:, c],
                        gmm.variances[:, c])), color=TEAL, linewidth=1)
                    for k, w in enumerate(gmm.weights):
                        if w > 0:
                            ax.plot(grid, w * numpy.exp(_gauss_log(
                                grid, gmm.means[k, c], gmm.variances[k, c])),
                                '--', color=comp_colours[k % 5],
                                linewidth=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name, fontsize='small')
            if j == 0:
                ax.set_title('channel {}'.format(c), fontsize='x-small')
    for i in range(len(channels), blocks * columns):
        for j in range(per):
            axes[(i // columns) * per + j, i % columns].set_visible(False)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    key = [Patch(color='0.85', label='convolution output (histogram)'),
           Line2D([], [], color=TEAL, label='p(x): BN, MN:K'),
           Line2D([], [], color='tab:orange', linestyle='--',
                  label='MN components lambda_k N(mu_k, sigma_k^2)'),
           Line2D([], [], color='grey', label='normalized by BN'),
           Line2D([], [], color=TEAL, label='normalized by MN:{} (in units '
                  'of its std)'.format(ks[-1])),
           Line2D([], [], color='black', linestyle=':', label='N(0, 1)')]
    ncol = 6 if columns >= 12 else 3 if columns >= 6 else 2
    height = fig.get_figheight()
    title_h = 0.0
    if title:
        title_h = 0.3 * len(title.splitlines())
        fig.suptitle(title, y=1 - 0.05 / height, va='top')
    top = 1 - (title_h + 0.2 + 0.22 * -(-len(key) // ncol)) / height
    fig.legend(handles=key, loc='upper center', ncol=ncol,
               bbox_to_anchor=(0.5, 1 - title_h / height),
               fontsize='small', frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return fig


def figure1_stats(x, fits, channels, eps):
    """Per channel shown: the mean log-likelihood per sample of each fit,
    and the |skewness| and standard deviation of the normalized
    activations.

    Returns:
        dict: ``ll``, ``skew``, ``std`` -> {``'BN'`` or K: list}.

    """
    mean, var, bn_y = fits['bn']
    out = {key: {name: [] for name in ['BN'] + sorted(fits['mn'])}
           for key in ('ll', 'skew', 'std')}
    for c in channels:
        v = _channel(x, c).astype(numpy.float64)
        out['ll']['BN'].append(_gauss_log(v, mean[c], var[c] + eps).mean())
        for k, (gmm, _) in fits['mn'].items():
            out['ll'][k].append(_mixture_log(
                v, gmm.weights, gmm.means[:, c],
                gmm.variances[:, c] + eps).mean())
        for name, y in [('BN', bn_y)] + [(k, y) for k, (_, y) in
                                         fits['mn'].items()]:
            out['skew'][name].append(abs(_skewness(_channel(y, c))))
            out['std'][name].append(_channel(y, c).std())
    return out


def figure1(args, datasets):
    """Figure 1; returns ``(markdown, rows, png writer)``."""
    stem, run = _single_run(1, args, datasets)
    cfg = run.info['config']
    x, model_path, iteration = conv_activations(
        run, args.layer, args.snapshot, args.at, args.seed)
    eps = cfg['norm'].get('eps', 2e-5)
    fits = figure1_fits(x, args.components, args.em_iter, eps, args.seed)
    rng = numpy.random.RandomState(args.seed)
    c = x.shape[1]
    channels = sorted(rng.choice(c, min(args.channels, c), replace=False))
    stats = figure1_stats(x, fits, channels, eps)
    rows = [(stem, cfg, run)]
    final = run.info.get('final_iteration')
    lines = _header(1, rows) + _dataset_note(cfg['dataset'])
    lines += [
        'One training mini-batch ({} images, augmented as in training) '
        'through the model `{}` (iteration {}{}), in training mode; '
        'the input of `{}`\'s normalization (the convolution\'s output, '
        '{} channels of {}x{}), {} random channels shown. MN:K is '
        '`mixnorm.gmm.fit` with K components and EM iter. {} on all {} '
        'channels, as the layer would fit it; normalized activations use '
        'MN:{} (Eq. 34, gamma = 1, beta = 0), drawn in units of their '
        'standard deviation over the batch (Eq. 34\'s 1/sqrt(lambda_k) '
        'gives them a variance near K; BN\'s is 1), so that the shapes '
        'compare.'.format(
            x.shape[0], model_path, iteration,
            ' of {}, {:.0f}% of training'.format(
                final, 100.0 * iteration / final)
            if final and iteration else '', args.layer, c, x.shape[2],
            x.shape[3], len(channels), args.em_iter, c,
            max(args.components)), '']
    ks = sorted(fits['mn'])
    head = ['', 'BN'] + ['MN:{}'.format(k) for k in ks]
    body = [[text] + ['{:.3f}'.format(numpy.mean(stats[key][name]))
                      for name in ['BN'] + ks] for key, text in (
        ('ll', 'mean log-likelihood per sample (higher: better fit)'),
        ('skew', 'mean abs. skewness of the normalized activations'),
        ('std', 'mean std of the normalized activations'))]
    better = [sum(a > b for a, b in zip(stats['ll'][k], stats['ll']['BN']))
              for k in ks]
    body.insert(1, ['channels fitted better than by BN', '-'] + [
        '{} of {}'.format(n, len(channels)) for n in better])
    lines += report.table_lines(head, body)
    lines += ['', 'Run: `{}` ({}).'.format(run.path, run.status())]

    def draw(path, title=None):
        return plot_figure1(x, fits, channels, args.columns, path, title)
    return lines, rows, draw


# --------------------------------------------------------------- Figure 8
def _fit_path(cfg, layer):
    """The link path of ``layer`` in ``cfg``'s model (``inc2/0/2/4/bn``)."""
    predictor, _ = config_module.build_model(cfg)
    try:
        paths = predictor.norm_paths([layer])
    except ValueError as e:
        raise FigureError('--layer: {}'.format(e))
    return paths[0]


def _single_run(number, args, datasets):
    """The run of Figure 1 or 8: ``--run``, else the figure's default."""
    if args.run:
        run = report.Run(args.run)
        if run.info is None:
            raise FigureError('{}: no run.json: --run names the folder of a '
                              'run of `python -m train`'.format(args.run))
        return None, run
    (stem, _, run), = _load_rows(panels(number, datasets)[0], args.configs,
                                 args.runs)
    if run.info is None:
        raise _missing_error(number, [(stem, None, run)], args.configs)
    return stem, run


def figure8(args, datasets):
    """Figure 8; returns ``(markdown lines, rows, png writer)``."""
    stem, run = _single_run(8, args, datasets)
    cfg = run.info['config']
    path = _fit_path(cfg, args.layer)
    fits = [f for f in records.read_fits(run.path) if path in f['layers']]
    if not fits:
        raise FigureError(
            '{}: no fits of {} saved ({}/fits_iter_*.npz). Figure 8 needs '
            'the run trained with `record: {{fits_at: [0.2, 0.4, 0.6, 0.8, '
            '1.0], fits_layers: [{}]}}` in its configuration '
            '(configs/table4/*/mn4.yaml have it)'.format(
                run.path, path, records.RECORDS, args.layer))
    done = {f for fit in fits for f in fit['fractions']}
    wanted = (cfg.get('record') or {}).get('fits_at') or FIT_FRACTIONS
    missing = [f for f in wanted if f not in done]
    size = fits[0]['layers'][path][0].means.shape[1]
    rng = numpy.random.RandomState(args.seed)
    channels = sorted(rng.choice(size, min(args.channels, size),
                                 replace=False))
    rows = [(stem, cfg, run)]
    lines = _header(8, rows) + _dataset_note(cfg['dataset'])
    lines += ['The fit (lambda_k, mu_k, sigma_k^2 of Eq. 35-36) of `{}` '
              'that training pushed into the layer\'s queue at each '
              'fraction of the run, {} random channels of {}: each '
              'component\'s lambda_k N(x; mu_kc, sigma_kc^2 + eps) per '
              'channel, coloured by the rank of lambda_k (the largest in '
              'olive), and below the sorted lambda_k.'.format(
                  path, len(channels), size), '']
    if missing:
        lines += ['Not saved yet: {} of training (the run has not got '
                  'there).'.format(', '.join('{:g}%'.format(100 * f)
                                             for f in missing)), '']
    body = []
    for fit in fits:
        gmm, eps = fit['layers'][path]
        order = numpy.argsort(-gmm.weights)
        lo, hi = _fit_range(gmm, eps, channels)
        body.append([', '.join('{:g}%'.format(100 * f)
                               for f in fit['fractions']),
                     '{} of {}'.format(fit['iteration'],
                                       fit['final_iteration']),
                     ' '.join('{:.3f}'.format(gmm.weights[k])
                              for k in order),
                     str(int((gmm.weights >= _min_weight(cfg)).sum())),
                     '[{:.2f}, {:.2f}]'.format(lo, hi)])
    lines += report.table_lines(
        ['fraction', 'iteration', 'lambda_k, sorted', 'active components',
         'x range shown (mu -+ 3 sigma)'], body)
    lines += ['', 'Run: `{}` ({}).'.format(run.path, run.status())]

    def draw(png, title=None):
        return plot_figure8(fits, path, channels, png, title)
    return lines, rows, draw


def _min_weight(cfg):
    return cfg['norm'].get('min_weight', 0.01)


def _fit_range(gmm, eps, channels):
    """x range covering mu_kc -+ 3 sigma_kc of the live components."""
    live = gmm.weights > 0
    mu = gmm.means[live][:, channels]
    sd = numpy.sqrt(gmm.variances[live][:, channels] + eps)
    return float((mu - 3 * sd).min()), float((mu + 3 * sd).max())


def plot_figure8(fits, path, channels, png, title=None):
    """Fig. 8: component densities (top) and sorted lambda_k (bottom),
    under ``title``; returns the figure written (closed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, axes = plt.subplots(2, len(fits), figsize=(3.4 * len(fits), 5.2),
                             squeeze=False,
                             gridspec_kw={'height_ratios': (3, 1.2)})
    for col, fit in enumerate(fits):
        gmm, eps = fit['layers'][path]
        order = numpy.argsort(-gmm.weights)
        lo, hi = _fit_range(gmm, eps, channels)
        grid = numpy.linspace(lo, hi, 300)
        ax = axes[0, col]
        peaks = []  # the dominant component drawn last, on top
        for rank, k in reversed(list(enumerate(order))):
            if gmm.weights[k] <= 0:
                continue
            mu = gmm.means[k, channels][:, None]
            var = gmm.variances[k, channels][:, None] + eps
            dens = gmm.weights[k] * numpy.exp(_gauss_log(grid[None], mu,
                                                         var))
            peaks.append(dens.max(axis=1))
            ax.add_collection(LineCollection(
                [numpy.column_stack([grid, d]) for d in dens],
                colors=RANK_COLOURS[rank % len(RANK_COLOURS)],
                linewidths=0.5, alpha=0.5))
        top = numpy.percentile(numpy.concatenate(peaks), 95)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.05 * top)
        ax.set_title('{} of training\n(iteration {})'.format(
            ', '.join('{:g}%'.format(100 * f) for f in fit['fractions']),
            fit['iteration']), fontsize='medium')
        ax.set_xlabel('activation')
        ax.set_yticks([])
        bars = axes[1, col]
        bars.bar(range(len(order)), gmm.weights[order],
                 color=[RANK_COLOURS[r % len(RANK_COLOURS)]
                        for r in range(len(order))])
        bars.set_ylim(0, 1)
        bars.set_xticks(range(len(order)))
        bars.set_xticklabels(['{}'.format(r + 1)
                              for r in range(len(order))])
        bars.set_xlabel('component, by lambda_k')
        if col == 0:
            ax.set_ylabel('lambda_k N(x; mu_k, sigma_k^2)')
            bars.set_ylabel('lambda_k')
    fig.suptitle('{}{}: {} channels'.format(
        title + '\n' if title else '', path, len(channels)))
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return fig


# --------------------------------------------------------------- Figure 9
def smooth_counts(entries, path, window):
    """Running average of a link's active components, and its std.

    Args:
        entries (list): From :func:`train.extensions.read_components`.
        path (str): The link.
        window (int): Entries in the centred window (cut short at the
            ends).

    Returns:
        tuple: ``(iterations, mean, std)`` arrays: the mean and standard
        deviation of the per-step counts of all steps in each entry's
        window (pooled over the entries' histograms).

    """
    iters = numpy.array([e['iteration'] for e in entries])
    hist = numpy.array([e['counts'][path] for e in entries], numpy.float64)
    levels = numpy.arange(hist.shape[1])
    s0, s1, s2 = (hist.sum(axis=1), hist @ levels, hist @ levels ** 2)
    half = window // 2
    mean, std = [], []
    for i in range(len(entries)):
        sl = slice(max(0, i - half), i + half + 1)
        n = max(s0[sl].sum(), 1)
        m = s1[sl].sum() / n
        mean.append(m)
        std.append(math.sqrt(max(s2[sl].sum() / n - m * m, 0.0)))
    return iters, numpy.array(mean), numpy.array(std)


def figure9(args, datasets):
    """Figure 9; returns ``(markdown lines, rows, png writer)``."""
    if args.run:
        stem, run = _single_run(9, args, datasets)
        rows = [(stem, run.info['config'], run)]
    else:
        rows = [row for _, rs in load_panels(9, datasets, args.configs,
                                             args.runs) for row in rs]
    series = []
    for stem, cfg, run in rows:
        entries = records.read_components(run.path)
        if not entries:
            raise FigureError(
                '{}: no active-component counts ({}). Figure 9 needs the '
                'run trained with `record: {{active_components: true}}` in '
                'its configuration (configs/table4/*/mn4.yaml have it)'
                .format(run.path, records.ActiveComponents.path(run.path)))
        window = args.window or max(1, len(entries) // 20)
        series.append((cfg, run, entries, window))
    lines = _header(9, rows) + ([] if args.run else
                                _scope_note(9, datasets))
    lines += ['Each MN module\'s number of active components (lambda_k >= '
              'min_weight = {:g}, Sec. 5.3), counted on the device at every '
              'training step; a running average over a centred window of '
              'log entries, shaded by one standard deviation of the '
              'per-step counts in the window.'.format(
                  _min_weight(rows[0][1])), '']
    body = []
    for cfg, run, entries, window in series:
        k = cfg['norm']['n_components']
        for path in sorted(entries[0]['counts']):
            hist = numpy.array([e['counts'][path] for e in entries])
            first, last = _mean_count(hist[:max(1, len(hist) // 10)]), \
                _mean_count(hist[-max(1, len(hist) // 10):])
            total = hist.sum(axis=0)
            body.append([config_module.DATASETS[cfg['dataset']].title,
                         path, str(int(total.sum())),
                         '{:.2f}'.format(first), '{:.2f}'.format(last),
                         '{:.1f}%'.format(100.0 * total[k] / total.sum()),
                         str(window)])
    lines += report.table_lines(
        ['dataset', 'MN module', 'steps counted',
         'mean, first 10% of entries', 'mean, last 10%',
         'steps using all K', 'window (entries)'], body)
    lines += ['', 'Runs: ' + '; '.join('`{}` ({})'.format(run.path,
                                                          run.status())
                                       for _, run, _, _ in series) + '.']

    def draw(png, title=None):
        return plot_figure9(series, png, title)
    return lines, rows, draw


def _mean_count(hist):
    total = hist.sum(axis=0)
    return float(total @ numpy.arange(len(total)) / max(total.sum(), 1))


def plot_figure9(series, png, title=None):
    """Fig. 9: one panel per run, one smoothed curve per MN module, under
    ``title``; returns the figure written (closed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(6.5 * len(series),
                                                      4.2), squeeze=False)
    colours = plt.get_cmap('tab10').colors
    for ax, (cfg, run, entries, window) in zip(axes.flat, series):
        k = cfg['norm']['n_components']
        for i, path in enumerate(sorted(entries[0]['counts'])):
            iters, mean, std = smooth_counts(entries, path, window)
            colour = colours[i % len(colours)]
            ax.plot(iters, mean, color=colour, linewidth=1,
                    marker='o' if len(iters) <= 12 else None, markersize=3,
                    label=path[:-3] if path.endswith('/bn') else path)
            ax.fill_between(iters, mean - std, mean + std, color=colour,
                            alpha=0.15, linewidth=0)
        ax.set_ylim(0.5, k + 0.5)
        ax.set_xlabel('iteration')
        ax.set_ylabel('active components')
        ax.set_title('{}, {} (K = {})'.format(
            config_module.DATASETS[cfg['dataset']].title,
            cfg.get('paper', {}).get('row') or cfg['name'], k))
        ax.grid(alpha=0.3)
        ax.legend(fontsize='x-small', ncol=2, loc='lower left')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return fig


# ------------------------------------------------------------ data check
def configs_of(number, datasets, configs):
    """The configuration files Figure ``number`` reads, in order."""
    stems = [s for p in panels(number, datasets) for s in p.stems]
    return [os.path.join(configs, stem + '.yaml')
            for stem in sorted(set(stems), key=stems.index)]


def check_data(number, datasets, configs, data=None):
    """Checks that the data holds the dataset of every run of Figure
    ``number`` (:func:`train.data.check_available`; nothing is decoded).

    Returns:
        list of str: Notes (a dataset that chainer.datasets would download).

    Raises:
        FigureError: A dataset cannot be had; the message names it, the
            configurations that need it and the ``--dataset`` to pass.

    """
    from train import data as data_module
    from train.imagefolder import DataError

    needed = collections.OrderedDict()
    for path in configs_of(number, datasets, configs):
        cfg = config_module.load(path, check_model=False)
        needed.setdefault(cfg['dataset'], []).append(path)
    notes, missing = [], []
    for ds, paths in needed.items():
        try:
            note = data_module.check_available(ds, data)
        except DataError as e:
            missing.append((ds, paths, e))
        else:
            notes += [note] if note else []
    if not missing:
        return notes
    usable = []
    for ds in DATASET_ORDER:
        try:
            data_module.check_available(ds, data)
            usable.append(ds)
        except DataError:
            pass
    lines = []
    for ds, paths, error in missing:
        lines.append('Figure {} needs {} runs ({}{}), and the data cannot '
                     'give them: {}.'.format(
                         number, config_module.DATASETS[ds].title, paths[0],
                         ' and {} more'.format(len(paths) - 1)
                         if len(paths) > 1 else '', error))
    if usable:
        lines.append('Pass --dataset {} to make the figures from {} runs '
                     'only, or --data with {} images.'.format(
                         usable[0], config_module.DATASETS[usable[0]].title,
                         ' and '.join(config_module.DATASETS[ds].title
                                      for ds, _, _ in missing)))
    else:
        lines.append('Pass --data with an image folder or .zip of {} '
                     '(README: Data), or --dataset for the dataset you '
                     'have.'.format(' and '.join(
                         config_module.DATASETS[ds].title
                         for ds, _, _ in missing)))
    raise FigureError('\n'.join(lines))


# ------------------------------------------------------------------- main
def figure_title(number, reduced):
    """The title drawn above Figure ``number``; from reduced runs it ends
    in "reduced: NOT a reproduction" (:data:`train.report.REDUCED_TITLE`).
    """
    return report.reduced_title('Figure {}: {}'.format(
        number, _TITLES[number]), reduced)


def build(number, args, datasets):
    """Builds Figure ``number``.

    Returns:
        tuple: ``(markdown lines, rows, draw)``; ``draw(png_path, title)``
        writes the picture and returns its matplotlib figure.

    Raises:
        FigureError: Runs or records it needs are missing.

    """
    if number == 1:
        return figure1(args, datasets)
    if number == 8:
        return figure8(args, datasets)
    if number == 9:
        return figure9(args, datasets)
    loaded = load_panels(number, datasets, args.configs, args.runs)
    rows = [row for _, rs in loaded for row in rs]
    ncols = 4 if number == 2 else 2

    def draw(png, title=None):
        return plot_curves(loaded, png, ncols, title)
    return curves_figure(number, loaded, datasets), rows, draw


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
        for path in configs_of(n, datasets, args.configs):
            print(path)
        return 0
    if args.check_data:
        from train.imagefolder import DataError
        try:
            notes = check_data(n, datasets, args.configs, args.data)
        except (FigureError, config_module.ConfigError, DataError) as e:
            print('train.figures: {}'.format(e), file=sys.stderr)
            return 2
        for note in notes:
            print('train.figures: Figure {}: {}'.format(n, note),
                  file=sys.stderr)
        return 0
    args.layer = args.layer or ('conv2' if n == 1 else 'inc2/0/2/4')
    args.channels = args.channels or (128 if n == 1 else 192)
    from train.imagefolder import DataError
    try:
        lines, rows, draw = build(n, args, datasets)
    except (FigureError, config_module.ConfigError, DataError) as e:
        print('train.figures: {}'.format(e), file=sys.stderr)
        return 2
    reduced = any(r.exists and r.reduced for _, _, r in rows)
    md = (args.reduced_out or os.path.join(
        args.runs, 'figures', 'figure{}.md'.format(n))) if reduced else (
        args.out or os.path.join('results', 'figure{}.md'.format(n)))
    png = os.path.splitext(md)[0] + '.png'
    if os.path.dirname(md):
        os.makedirs(os.path.dirname(md), exist_ok=True)
    draw(png, figure_title(n, reduced))
    lines += ['', '![Figure {}]({})'.format(n, os.path.basename(png))]
    with open(md, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('wrote {} and {}{}'.format(md, png, ' (reduced-budget runs)'
                                     if reduced else ''), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
