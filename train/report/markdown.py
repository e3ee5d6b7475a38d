"""The pieces of every markdown report: numbers as the paper prints them,
table lines, a report's header (its runs, data and devices), and writing a
report where it belongs (a reduced run's report goes elsewhere than
``results/``)."""
import os
import sys

from train.config.classifier import ACC_FRACTIONS

MODEL_NAMES = {'cifar_cnn': 'CIFAR CNN', 'inception_v3': 'Inception-V3',
               'densenet': 'DenseNet'}
DATA_CAVEAT = (
    'Runs on an image-folder copy of CIFAR (such as cifar10-jpeg.zip, '
    're-encoded as JPEG) are expected to score about 2-3 points below runs '
    'on the original pixels that the paper used.')


def format_value(value, signed=False):
    """A number with 2 decimals (``+`` for a signed one), ``n/a`` for
    None."""
    if value is None:
        return 'n/a'
    return ('{:+.2f}' if signed else '{:.2f}').format(value)


def format_diff(ours, paper):
    """``ours - paper`` signed, ``n/a`` when either is None."""
    if ours is None or paper is None:
        return 'n/a'
    return format_value(ours - paper, signed=True)


def format_loss(value):
    """A loss with 4 decimals, ``n/a`` for None."""
    return 'n/a' if value is None else '{:.4f}'.format(value)


def mn_setting(cfg):
    """A row's MN setting as the paper prints it: ``(layer, K, EM iter.)``,
    ``((layer,layer), K, EM iter.)``, or ``-`` for BN."""
    norm = cfg['norm']
    layers = norm['layers']
    if not layers:
        return '-'
    where = layers[0] if len(layers) == 1 else '({})'.format(','.join(layers))
    return '({}, {}, {})'.format(where, norm['n_components'],
                                 norm['em_iter'])


def _number(value):
    """A number as the paper prints it: 0.01, 1e-4, 2e-5."""
    if value == 0 or value >= 1e-3:
        return '{:g}'.format(value)
    mantissa, exponent = '{:e}'.format(value).split('e')
    return '{}e{}'.format(mantissa.rstrip('0').rstrip('.'), int(exponent))


def training_setting(cfg):
    """A row's ``(lr, weight decay)`` as the paper prints it."""
    opt = cfg['optimizer']
    return '({}, {})'.format(_number(opt['lr']),
                             _number(opt.get('weight_decay', 0.0)))


def models_text(rows):
    """The models of ``(stem, cfg, run)`` rows, as the paper names them."""
    names = []
    for _, cfg, _ in rows:
        name = MODEL_NAMES.get(cfg['model'], cfg['model'])
        if name not in names:
            names.append(name)
    return ', '.join(names)


def table_lines(head, body):
    """A markdown table: the header cells, then a row per list of cells."""
    return (['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)] +
            ['| ' + ' | '.join(cells) + ' |' for cells in body])


def header(title, rows):
    """A report's first lines: ``title``, a warning when a run is reduced,
    and the runs, data and devices of ``(stem, cfg, Run)`` rows."""
    runs = [r for _, _, r in rows if r.exists]
    lines = ['# ' + title, '']
    if any(r.reduced for r in runs):
        lines += ['**Reduced-budget runs (subsets or fewer epochs): NOT a '
                  'reproduction of the paper.**', '']
    sources = sorted({r.info.get('data_source', '?') for r in runs})
    devices = sorted({r.info.get('device', '?') for r in runs})
    lines.append('Runs: {} of {} configurations. Data: {}. Devices: {}.'
                 .format(len(runs), len(rows), '; '.join(sources) or
                         'none yet', ', '.join(devices) or 'none yet'))
    if any('chainer.datasets' not in s for s in sources):
        lines.append(DATA_CAVEAT)
    lines.append('')
    return lines


def epoch_marks(epochs, of_epochs='{:g} ep', of_run='{}%',
                percents=ACC_FRACTIONS):
    """Column marks of the maxima after 25/50/75/100% of the epochs: the
    epoch (``of_epochs``) when all runs share their length ``epochs``
    (a set), else the percentage (``of_run``)."""
    if len(epochs) == 1:
        total, = epochs
        return [of_epochs.format(total * p / 100.0) for p in percents]
    return [of_run.format(p) for p in percents]


def make_dir(path):
    """Creates the folder of the file ``path``, if it names one."""
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)


def write_report(text, path, reduced):
    """Writes ``text`` to ``path`` (stdout when None)."""
    if path:
        make_dir(path)
        with open(path, 'w') as f:
            f.write(text)
        print('wrote {}{}'.format(path, ' (reduced-budget runs)'
                                  if reduced else ''), file=sys.stderr)
    else:
        sys.stdout.write(text)
