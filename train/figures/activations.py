"""Figure 1 (Sec. 3.2): activation densities of one layer, BN against MN.

One training mini-batch through the model saved halfway through a CIFAR
CNN run (``records/model_iter_<N>.npz``, which ``record.models_at: [0.5]``
saves; ``--snapshot`` takes any ``model.npz``, ``model_iter_*`` or trainer
``snapshot_iter_*``), in training mode; the input of ``conv2``'s
normalization (the convolution's output), captured by a link hook, of 128
random channels: its histogram with BN's single Gaussian, the MN:2 and
MN:3 fits of :func:`mixnorm.gmm.fit` (solid p(x), dashed lambda_k
N(mu_k, sigma_k^2)), and the BN- against the MN-normalized activations.
The paper uses CIFAR-100; with ``--dataset cifar10`` the CIFAR-10 run.
"""
import os

import numpy

import mixnorm
import chainer
from mixnorm.functions import to_rows

from train.classifier.records import model_files
from train.classifier.records import RECORDS
from train.common.runfolder import load_predictor
from train.common.runfolder import snapshot_iteration
from train.data.batches import Preprocess
from train.data.datasets import load_cifar
from train.data.datasets import load_dataset
from train.data.datasets import subset
from train.figures.panels import dataset_note
from train.figures.panels import FigureError
from train.figures.panels import header
from train.figures.panels import single_run
from train.report.markdown import table_lines
from train.report.plotting import pyplot
from train.report.plotting import save

TEAL = '#008080'  # p(x)


class _Captured(Exception):
    """Raised by the link hook of :func:`_capture_input` to stop the
    forward pass once it has the input it wanted."""


def _capture_input(predictor, link, x):
    """The first input of ``link`` when ``predictor(x)`` runs in training
    mode (the layers before it see the batch as in training); the layers
    after it are not run."""
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


def _model_file(run, snapshot, at):
    """``(path, iteration)`` of the model Figure 1 reads."""
    final = run.info.get('final_iteration') or run.info.get('iterations')
    if snapshot:
        it = snapshot_iteration(snapshot)
        if it is None and os.path.basename(snapshot) == 'model.npz':
            it = run.info.get('iterations')
        return snapshot, it
    saved = model_files(run.path)
    if not saved:
        raise FigureError(
            '{}: no model saved during training ({}/model_iter_*.npz). '
            'Figure 1 needs the model halfway through training: train the '
            'run with `record: {{models_at: [0.5]}}` in its configuration '
            '(configs/table2/*/bn2.yaml have it), or pass --snapshot FILE '
            '(a model_iter_*.npz, snapshot_iter_* or model.npz)'.format(
                run.path, RECORDS))
    it = min(saved, key=lambda i: abs(i - at * (final or i)))
    return saved[it], it


def _training_batch(cfg, info, seed):
    """One augmented training mini-batch of the run's data, as it trains."""
    source = info.get('data')
    if source == cfg['dataset']:  # chainer.datasets, not an image folder
        dataset = load_cifar(source)
    else:
        dataset = load_dataset(cfg['dataset'], source)
    x, y = subset(dataset['train_x'], dataset['train_y'],
                  info.get('train_subset'), seed=0)
    rng = numpy.random.RandomState(seed)
    idx = rng.choice(len(x), min(cfg['batch_size'], len(x)), replace=False)
    numpy.random.seed(seed)  # the augmentation draws from it
    convert = Preprocess(dataset['mean'], dataset['std'], augment=True)
    batch, _ = convert(list(zip(x[idx], y[idx])),
                       chainer.get_device('@numpy'))
    return batch


def gauss_log(x, mean, var):
    """log N(x; mean, var), elementwise."""
    return -0.5 * (numpy.log(2 * numpy.pi * var) + (x - mean) ** 2 / var)


def _mixture_log(x, weights, means, variances):
    """log sum_k lambda_k N(x; mu_k, sigma_k^2) of 1-D samples ``x``."""
    terms = [numpy.log(w) + gauss_log(x, m, v)
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
    predictor, _, _ = load_predictor(run.path, path)
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
    plt = pyplot()
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
                ax.plot(zl, numpy.exp(gauss_log(zl, 0, 1)), ':',
                        color='black', linewidth=0.8, label='N(0, 1)')
            else:
                ax.stairs(counts, edges, fill=True, color='0.85')
                if name == 'BN':
                    ax.plot(grid, numpy.exp(gauss_log(grid, mean[c],
                                                       var[c])),
                            color=TEAL, linewidth=1)
                else:
                    gmm = fits['mn'][ks[j - 1]][0]
                    ax.plot(grid, numpy.exp(_mixture_log(
                        grid, gmm.weights, gmm.means[:, c],
                        gmm.variances[:, c])), color=TEAL, linewidth=1)
                    for k, w in enumerate(gmm.weights):
                        if w > 0:
                            ax.plot(grid, w * numpy.exp(gauss_log(
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
    return save(fig, path, 72)


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
        out['ll']['BN'].append(gauss_log(v, mean[c], var[c] + eps).mean())
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
    stem, run = single_run(1, args, datasets)
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
    lines = header(1, rows) + dataset_note(cfg['dataset'])
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
    lines += table_lines(head, body)
    lines += ['', 'Run: `{}` ({}).'.format(run.path, run.status())]

    def draw(path, title=None):
        return plot_figure1(x, fits, channels, args.columns, path, title)
    return lines, rows, draw
