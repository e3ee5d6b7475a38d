"""A run's own plot (error.png): title, percent, whole-number epochs."""
import io
import json
import os

import pytest
from matplotlib.figure import Figure

from train import config
from train.classifier import runner
from train.common import runfolder, runplot, titles
from train.figures import curves
from tinydata import ROOT, make_folder, make_run, write_config

LOG = [{'epoch': e, 'iteration': 5 * e, 'main/error': 0.9 - 0.1 * e,
        'validation/main/error': 0.85 - 0.1 * e} for e in (1, 2, 3)]


def _lines(fig):
    ax, = fig.axes
    return {line.get_label(): (list(line.get_xdata()),
                               list(line.get_ydata()))
            for line in ax.get_lines()}


def test_error_in_percent_against_whole_epochs():
    fig = runplot.figure(LOG, 'bn2: 3 epochs')
    ax, = fig.axes
    assert ax.get_title() == 'bn2: 3 epochs'
    assert ax.get_ylabel() == 'error (%)' and ax.get_xlabel() == 'epoch'
    lines = _lines(fig)
    assert lines['training error'] == ([1, 2, 3], pytest.approx(
        [80.0, 70.0, 60.0]))
    assert lines['test error'][1] == pytest.approx([75.0, 65.0, 55.0])
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        'training error', 'test error']


def test_a_run_draws_error_png_titled_with_run_budget_and_data(
        tmp_path, monkeypatch):
    monkeypatch.setenv('MIXNORM_CACHE', str(tmp_path / 'cache'))
    data = make_folder(str(tmp_path / 'data'), n_train=2, n_test=1)
    cfg = config.load(write_config(str(tmp_path / 'c.yaml'), batch_size=8,
                                   epochs=3), check_model=False)
    drawn = []
    figure = runplot.figure

    def spy(*args, **kwargs):
        drawn.append(figure(*args, **kwargs))
        return drawn[-1]
    monkeypatch.setattr(runplot, 'figure', spy)
    out = str(tmp_path / 'run')
    runner.run(cfg, out, device='@numpy', epochs=2, seed=4, data=data,
               train_subset=16, log=io.StringIO())
    assert len(drawn) == 2 and isinstance(drawn[-1], Figure)  # each epoch
    with open(os.path.join(out, 'run.json')) as f:
        info = json.load(f)
    assert info['machine'].startswith('CPU: ')
    title = ' '.join(drawn[-1].axes[0].get_title().split())  # unwrapped
    assert title == titles.run_title(info)
    assert title.startswith('tiny: reduced budget: 2 epochs (of 3) on a '
                            '16-image training subset / 10 test images, '
                            'data; device @numpy (CPU: ')
    assert title.endswith('seed 4 (reduced: NOT a reproduction)')
    assert _lines(drawn[-1])['test error'][0] == [1, 2]
    with open(os.path.join(out, 'error.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert not [n for n in os.listdir(out) if '.tmp' in n]


def test_gan_fid_plot_title_says_reduced():
    from train import gan
    cfg = config.load(os.path.join(ROOT, 'configs', 'dcgan', 'bn.yaml'),
                      check_model=False)
    info = gan.settings(cfg, iterations=600, fid={'every': 300,
                                                  'n_samples': 500}, seed=2)
    info.update(n_train=640, data_source='/data/cifar10-jpeg.zip',
                device='@numpy')
    assert titles.gan_title(info) == (
        'dcgan-bn: 600 iterations (of 100,000), 640 training images, '
        'cifar10-jpeg.zip; device @numpy; seed 2 (reduced: NOT a '
        'reproduction)')


def test_figure5_plot_has_a_title_and_a_legend_on_each_panel(tmp_path):
    configs = os.path.join(ROOT, 'configs')
    rows = []
    for stem in ('densenet/bn_40', 'densenet/mn_40'):
        out = make_run(str(tmp_path), configs, stem, [60.0, 70.0], epochs=2,
                       train_subset=256, log_extra=lambda i: {
                           'main/error': 0.5 - 0.1 * i, 'main/loss': 1.5 - i,
                           'validation/main/error': 0.4,
                           'validation/main/loss': 1.2})
        rows.append((stem, config.load(os.path.join(configs, stem + '.yaml'),
                                       check_model=False), runfolder.Run(out)))
    fig = curves.plot_figure5(rows, str(tmp_path / 'f5.png'), 'Figure 5: x')
    assert fig.get_suptitle() == 'Figure 5: x (reduced: NOT a reproduction)'
    for ax in fig.axes:
        assert len(ax.get_legend().get_texts()) == 2
