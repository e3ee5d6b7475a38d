"""Reports (Tables 2 and 3, run comparison) from hand-made run folders.

The reports of Tables 4-6 and Figure 5 are tested in test_experiments.py.
"""
import os
import textwrap

import pytest
from PIL import Image

from train import metrics, report
from train.common import runfolder, titles
from train.report import compare, markdown, tables
import tinydata
from tinydata import ROOT

CONFIGS = os.path.join(ROOT, 'configs', 'table2')


def make_run(runs, ds, stem, accs, **kwargs):
    """A run of ``configs/table2/<ds>/<stem>.yaml`` (see tinydata)."""
    return tinydata.make_run(runs, CONFIGS, os.path.join(ds, stem), accs,
                             **kwargs)


@pytest.fixture
def runs(tmp_path):
    runs = str(tmp_path / 'runs')
    make_run(runs, 'cifar10', 'bn2', [80.0, 85.0, 87.0, 86.5])
    make_run(runs, 'cifar10', 'mn2', [84.0, 87.5, 88.0, 88.6])
    make_run(runs, 'cifar10', 'bn1', [70.0, 75.0], finished=False)
    return runs


def table(number, runs, dataset):
    """Markdown of Table ``number`` over ``runs`` of one dataset."""
    return tables.build(number, tables.load_rows(CONFIGS, runs, (dataset,)))


_row = tinydata.table_row


def test_table2_paper_ours_and_difference(runs, tmp_path):
    out = str(tmp_path / 'results' / 'table2.md')
    assert report.main(['table', '2', '--configs', CONFIGS, '--runs', runs,
                        '--dataset', 'cifar10', '--out', out]) == 0
    text = open(out).read()
    assert 'NOT a reproduction' not in text
    assert '2-3 points' in text  # image-folder data caveat
    bn2 = _row(text, 'BN-2')
    # 25% of 4 epochs = epoch 1 ... 100% = epoch 4.
    assert bn2[:6] == ['BN-2', '-', '(0.01, 2e-5)', '84.11', '80.00',
                       '-4.11']
    assert bn2[12:15] == ['87.95', '87.00', '-0.95']
    assert bn2[-1] == 'done, 4 ep, 321 s'
    mn2 = _row(text, 'MN-2')
    assert mn2[1] == '(conv3, 3, 2)'
    assert mn2[12:15] == ['88.47', '88.60', '+0.13']
    bn1 = _row(text, 'BN-1')  # interrupted after 2 of 4 epochs
    assert bn1[3:9] == ['79.37', '70.00', '-9.37', '84.34', '75.00',
                        '-9.34']
    assert bn1[9:12] == ['86.24', 'n/a', 'n/a'] and bn1[-1] == '2/4 ep'
    assert _row(text, 'MN-4')[-1] == 'not run'
    assert '## CIFAR-100' not in text


def test_table3_two_targets(runs):
    text = table(3, runs, 'cifar10')
    assert 'paper target 87.95%' in text and 'our target 87.00%' in text
    # BN-2 never reaches the paper's 87.95; MN-2 does at epoch 3 (300).
    assert _row(text, 'BN-2')[1:6] == ['1.95e4', '-', '300', '87.95',
                                       '87.00']
    assert _row(text, 'MN-2')[1:6] == ['1.34e4', '300', '200', '88.47',
                                       '88.60']
    assert '| BN-1 |' not in text  # not a Table 3 row


def test_table3_without_the_target_run(tmp_path):
    runs = str(tmp_path / 'runs')
    make_run(runs, 'cifar100', 'mn5', [60.0, 62.5])
    text = table(3, runs, 'cifar100')
    assert 'our target n/a' in text
    assert _row(text, 'MN-5')[1:6] == ['1.07e4', '200', 'n/a', '62.76',
                                       '62.50']
    assert _row(text, 'MN-8')[2] == 'n/a'


def test_reduced_runs_do_not_go_to_results(runs, tmp_path):
    make_run(runs, 'cifar10', 'mn1', [50.0], epochs=1, train_subset=1000)
    results = str(tmp_path / 'results' / 'table2.md')
    elsewhere = str(tmp_path / 'runs' / 'table2.md')
    assert report.main(['table', '2', '--configs', CONFIGS, '--runs', runs,
                        '--dataset', 'cifar10', '--out', results,
                        '--reduced-out', elsewhere]) == 0
    assert not os.path.exists(results)
    text = open(elsewhere).read()
    assert 'NOT a reproduction' in text
    assert 'reduced (50000 train / 10000 test images)' in \
        _row(text, 'MN-1')[-1]


def _quick_runs(tmp_path):
    """BN-2 and MN-2 as the quick main job leaves them, training loss
    logged."""
    runs = str(tmp_path / 'runs')
    quick = dict(train_subset=2560, test_subset=1000, n_train=2560,
                 n_test=1000, seed=0)
    bn2 = make_run(runs, 'cifar10', 'bn2', [80.0, 85.0, 87.0, 86.5],
                   log_extra=lambda i: {'main/loss': 1.5 - 0.25 * i}, **quick)
    mn2 = make_run(runs, 'cifar10', 'mn2', [84.0, 87.5, 88.0, 88.6],
                   log_extra=lambda i: {'main/loss': 1.6 - 0.3 * i}, **quick)
    return bn2, mn2


def test_compare_table_and_plot(tmp_path, capsys, monkeypatch):
    md = str(tmp_path / 'cmp.md')
    png = str(tmp_path / 'cmp.png')
    bn2, mn2 = _quick_runs(tmp_path)
    plotted = []
    real_plot = compare.plot_loss_and_error

    def plot(groups, path, title):
        fig = real_plot(groups, path, title)
        plotted.append((groups, title, fig))
        return fig
    monkeypatch.setattr(compare, 'plot_loss_and_error', plot)
    assert report.main(['compare', bn2, mn2, '--out', md,
                        '--plot', png]) == 0
    text = open(md).read()
    assert text in capsys.readouterr().out
    budget = ('reduced budget: 4 epochs on a 2,560-image training subset / '
              'a 1,000-image test subset, cifar10-jpeg.zip')
    assert text.startswith('Runs: {}.'.format(budget))
    assert "| final training loss | steps to BN-2's max (87.00%) |" in text
    # final training loss 1.5 - 0.25 * 3 and 1.6 - 0.3 * 3
    assert _row(text, 'BN-2')[1:6] == ['BN', '87.00', '86.50', '0.7500',
                                       '300']
    assert _row(text, 'MN-2')[1:6] == ['MN at conv3/bn', '88.60', '88.60',
                                       '0.7000', '200']
    assert ('| epoch | iteration | BN-2: test acc. | BN-2: training loss | '
            'MN-2: test acc. | MN-2: training loss |') in text
    assert '| 3 | 300 | 87.00 | 1.0000 | 88.00 | 1.0000 |' in text
    # two panels against updates, each with a legend, titled by the budget,
    # the data, the device and the seed, and as reduced
    (groups, title, fig), = plotted
    assert title == ('Comparison: {}; device @cupy:0; seed 0 (reduced: NOT '
                     'a reproduction)'.format(budget))
    assert [t.get_text() for t in fig.texts] == [textwrap.fill(title, 100)]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            'BN-2', 'MN-2']
    assert [(label, dashed) for label, _, dashed in groups] == [
        ('BN-2', True), ('MN-2', False)]
    assert [[e['main/loss'] for e in logs[0]] for _, logs, _ in groups] == [
        [1.5, 1.25, 1.0, 0.75], pytest.approx([1.6, 1.3, 1.0, 0.7])]
    with Image.open(png) as img:
        assert img.format == 'PNG' and img.size == (1100, 460)


def test_compare_title_names_each_runs_device_and_seed(tmp_path):
    runs = str(tmp_path / 'runs')
    full = dict(n_train=50000, n_test=10000)
    a = runfolder.Run(make_run(runs, 'cifar10', 'bn2', [80.0], epochs=100,
                               seed=0, device='@cupy:0',
                               machine='GPU 0: NVIDIA H100', **full))
    b = runfolder.Run(make_run(runs, 'cifar10', 'mn2', [81.0], epochs=100,
                               seed=1, device='@numpy', **full))
    title = report.compare_title([a, b])
    assert title == (
        'Comparison: 100 epochs, 50,000 train / 10,000 test images, '
        'cifar10-jpeg.zip; devices: BN-2 @cupy:0 (GPU 0: NVIDIA H100), MN-2 '
        '@numpy; seeds: BN-2 0, MN-2 1')
    assert 'NOT a reproduction' not in title


def test_run_title_names_run_budget_data_device_and_seed(tmp_path):
    run = runfolder.Run(make_run(str(tmp_path), 'cifar10', 'mn2', [50.0],
                                 epochs=2, train_subset=256, test_subset=64,
                                 n_train=256, n_test=64, seed=3,
                                 device='@numpy'))
    run.info['config']['epochs'] = 100  # as configured; the run did 2
    assert titles.run_title(run.info) == (
        'table2-cifar10-mn2 (MN-2): reduced budget: 2 epochs (of 100) on a '
        '256-image training subset / a 64-image test subset, '
        'cifar10-jpeg.zip; device @numpy; seed 3 (reduced: NOT a '
        'reproduction)')


def test_budget_text_names_epochs_images_and_data():
    cfg = {'epochs': 100}
    full = {'config': cfg, 'epochs': 25, 'n_train': 50000, 'n_test': 10000,
            'data_source': '/data/cifar10-jpeg.zip'}
    assert titles.budget_text([full, dict(full)]) == (
        '25 epochs (of 100), 50,000 train / 10,000 test images, '
        'cifar10-jpeg.zip')
    paper = dict(full, epochs=100, data_source='CIFAR-10 (chainer.datasets)')
    assert titles.budget_text([paper]) == (
        '100 epochs, 50,000 train / 10,000 test images, CIFAR-10 '
        '(chainer.datasets)')
    subset = dict(full, epochs=4, train_subset=2560, n_train=2560)
    assert titles.budget_text([full, subset]) == (
        '25 epochs (of 100), 50,000 train / 10,000 test images, '
        'cifar10-jpeg.zip; reduced budget: 4 epochs (of 100) on a '
        '2,560-image training subset / 10,000 test images, cifar10-jpeg.zip')


def test_epoch_stats_average_over_the_runs_that_reach_an_epoch():
    def log(losses, per_epoch=10):
        return [{'epoch': i + 1, 'iteration': per_epoch * (i + 1),
                 'main/loss': v} for i, v in enumerate(losses)]
    stats = metrics.epoch_stats([log([2.0, 1.0, 0.5]), log([1.0, 3.0])],
                                lambda e: e.get('main/loss'))
    assert stats == [(10, 1.5, pytest.approx(0.5 ** 0.5)),
                     (20, 2.0, pytest.approx(2 ** 0.5)), (30, 0.5, None)]
    assert metrics.mean_std([1.0, None, 3.0]) == (2.0, pytest.approx(
        2 ** 0.5), 2)
    assert metrics.mean_std([None]) == (None, None, 0)


def test_compare_needs_logs(tmp_path):
    assert report.main(['compare', str(tmp_path / 'nothing')]) == 2


@pytest.mark.parametrize('value, text', [
    (0.01, '0.01'), (0.05, '0.05'), (1e-4, '1e-4'), (2e-5, '2e-5'),
    (5e-4, '5e-4'), (1.5e-4, '1.5e-4'), (0.14, '0.14'), (0.0, '0')])
def test_numbers_print_as_in_the_paper(value, text):
    assert markdown._number(value) == text
