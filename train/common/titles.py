"""How runs are named in plot titles and report headers, from ``run.json``:
their budget and data, device and seed, and "reduced: NOT a reproduction"
for a run short of the paper's protocol
(:func:`train.common.runfolder.is_reduced`)."""
import os

from train.common.runfolder import is_reduced

# in the title of every plot or figure drawn from a reduced run
REDUCED_TITLE = 'reduced: NOT a reproduction'


def reduced_title(title, reduced):
    """``title``, ending in :data:`REDUCED_TITLE` when ``reduced``."""
    return '{} ({})'.format(title, REDUCED_TITLE) if reduced else title


def data_name(info):
    """The data of a run (``run.json``): a file or folder's base name, or
    ``CIFAR-10 (chainer.datasets)``."""
    source = info.get('data_source') or info.get('data') or '?'
    if os.sep in source:
        return os.path.basename(os.path.normpath(source))
    return source


def budget_text(infos):
    """What classifier runs trained on, from their ``run.json``: epochs,
    images, data.

    Args:
        infos (list of dict): The runs' ``run.json`` contents.

    Returns:
        str: E.g. ``25 epochs (of 100), 50,000 train / 10,000 test images,
        cifar10-jpeg.zip``, or ``reduced budget: 4 epochs (of 100) on a
        2,560-image training subset / a 1,000-image test subset, ...``;
        distinct settings joined by ``; ``.

    """
    texts = []
    for i in infos:
        epochs = '{} epoch{}'.format(i['epochs'],
                                     '' if i['epochs'] == 1 else 's')
        if i['epochs'] != i['config']['epochs']:
            epochs += ' (of {})'.format(i['config']['epochs'])
        if i.get('train_subset') or i.get('test_subset'):
            text = 'reduced budget: {} on {} / {}, {}'.format(
                epochs, ('a {:,}-image training subset' if
                         i.get('train_subset') else '{:,} training images')
                .format(i['n_train']),
                ('a {:,}-image test subset' if i.get('test_subset') else
                 '{:,} test images').format(i['n_test']), data_name(i))
        else:
            text = '{}, {:,} train / {:,} test images, {}'.format(
                epochs, i['n_train'], i['n_test'], data_name(i))
        if text not in texts:
            texts.append(text)
    return '; '.join(texts)


def seed_text(info):
    """The run's seed as text, or None when ``run.json`` has none."""
    return None if info.get('seed') is None else str(info['seed'])


def device_text(info):
    """``@cupy:0 (GPU 0: NVIDIA H100 ...)``: the device and, when
    ``run.json`` names it, the machine."""
    device, machine = info.get('device'), info.get('machine')
    return '{} ({})'.format(device, machine) if device and machine else \
        device


def run_title(info):
    """The title of a classifier run's own plot (``error.png``): the
    configuration and its paper row, the budget and data
    (:func:`budget_text`), the device and seed, and :data:`REDUCED_TITLE`
    when the run is reduced."""
    cfg = info['config']
    row = cfg.get('paper', {}).get('row')
    parts = ['{}{}: {}'.format(cfg['name'], ' ({})'.format(row) if row
                               else '', budget_text([info]))]
    if device_text(info):
        parts.append('device ' + device_text(info))
    if seed_text(info) is not None:
        parts.append('seed ' + seed_text(info))
    return reduced_title('; '.join(parts), is_reduced(info))


def gan_title(info):
    """The title of a GAN run's ``fid.png``: the configuration,
    iterations, images and data, device and seed, and
    :data:`REDUCED_TITLE` when the run is reduced."""
    cfg = info['config']
    text = '{}: {:,} iterations{}, {:,} training images, {}; device {}; ' \
        'seed {}'.format(
            cfg['name'], info['iterations'],
            '' if info['iterations'] == cfg['iterations'] else
            ' (of {:,})'.format(cfg['iterations']), info['n_train'],
            os.path.basename(os.path.normpath(info['data_source'])),
            info['device'], info['seed'])
    return reduced_title(text, is_reduced(info))
