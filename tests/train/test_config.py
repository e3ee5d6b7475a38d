"""Configuration files: every shipped one validates, mistakes are errors."""
import glob
import os
import warnings

import pytest

from train import config
from tinydata import ROOT, write_config

# Training configurations: every YAML file under configs/ except Table 7's
# throughput grid (benchmarks/table7.py checks that one).
GRID = os.path.join(ROOT, 'configs', 'table7.yaml')
SHIPPED = sorted(p for p in glob.glob(os.path.join(ROOT, 'configs', '**',
                                                   '*.yaml'), recursive=True)
                 if p != GRID)

# Table 2 as printed: row -> (MN layers, K, EM iter., lr, weight decay).
_SETTINGS = {'1': (0.01, 1e-4), '2': (0.01, 2e-5), '3': (0.05, 1e-4),
             '4': (0.05, 2e-5)}
TABLE2 = {
    'cifar10': {
        'BN-1': [79.37, 84.34, 86.24, 86.74],
        'BN-2': [84.11, 86.92, 87.65, 87.95],
        'BN-3': [68.77, 71.68, 75.25, 77.35],
        'BN-4': [73.84, 77.84, 81.43, 82.58],
        'MN-1': [81.91, 85.10, 86.51, 87.08],
        'MN-2': [85.56, 87.28, 88.05, 88.47],
        'MN-3': [67.84, 73.09, 74.80, 77.33],
        'MN-4': [76.70, 80.82, 83.31, 83.87],
    },
    'cifar100': {
        'BN-1': [52.54, 57.83, 60.37, 62.11],
        'BN-2': [56.09, 60.05, 61.46, 62.14],
        'BN-3': [23.13, 28.12, 33.21, 36.80],
        'BN-4': [36.98, 43.89, 46.95, 49.08],
        'MN-1': [55.30, 60.47, 61.46, 62.20],
        'MN-2': [59.04, 60.86, 61.77, 62.29],
        'MN-3': [29.80, 36.30, 40.66, 43.77],
        'MN-4': [42.31, 48.96, 51.98, 52.62],
        'MN-5': [59.05, 61.94, 62.56, 62.76],
        'MN-6': [58.98, 61.83, 62.67, 63.12],
        'MN-7': [57.63, 61.23, 62.15, 62.63],
        'MN-8': [59.79, 61.67, 62.50, 62.96],
    },
}
MN_SETTING = {'MN-5': (['conv3'], 3, 4), 'MN-6': (['conv3'], 3, 8),
              'MN-7': (['conv2'], 3, 2), 'MN-8': (['conv2', 'conv3'], 3, 2)}
TABLE3 = {'cifar10': (87.95, {'BN-2': 1.95e4, 'MN-2': 1.34e4}),
          'cifar100': (62.14, {'BN-2': 1.81e4, 'MN-2': 1.77e4,
                               'MN-5': 1.07e4, 'MN-6': 1.09e4,
                               'MN-7': 1.34e4, 'MN-8': 1.03e4})}


@pytest.mark.parametrize('path', SHIPPED,
                         ids=[os.path.relpath(p, ROOT) for p in SHIPPED])
def test_shipped_config_validates(path):
    cfg = config.load(path)
    # classifiers train for epochs, GANs (configs/dcgan) for iterations
    assert cfg.get('epochs', cfg.get('iterations')) > 0
    assert cfg['batch_size'] > 0


def test_table2_configs_match_the_paper():
    for ds, rows in TABLE2.items():
        paths = sorted(glob.glob(os.path.join(ROOT, 'configs', 'table2', ds,
                                              '*.yaml')))
        cfgs = {c['paper']['row']: c for c in map(config.load, paths)}
        assert sorted(cfgs) == sorted(rows), ds
        for row, accs in rows.items():
            c = cfgs[row]
            assert c['dataset'] == ds and c['model'] == 'cifar_cnn'
            assert (c['epochs'], c['batch_size']) == (100, 256)
            opt = c['optimizer']
            assert (opt['name'], opt['alpha']) == ('rmsprop', 0.9)
            assert (opt['lr'], opt['weight_decay']) == \
                _SETTINGS['2' if row in MN_SETTING else row[-1]]
            assert c['schedule'] == {'name': 'exponential', 'rate': 0.93,
                                     'every_epochs': 2}
            layers, k, em = MN_SETTING.get(
                row, ([] if row.startswith('BN') else ['conv3'], 3, 2))
            assert c['norm']['layers'] == layers
            if layers:
                assert (c['norm']['n_components'], c['norm']['em_iter']) == \
                    (k, em)
            assert [c['paper']['acc_at'][p] for p in (25, 50, 75, 100)] == \
                accs
            target, steps = TABLE3[ds]
            if row in steps:
                s = c['paper']['steps']
                assert (s['table'], s['target'], s['target_row'],
                        s['value']) == (3, target, 'BN-2', steps[row])
            else:
                assert 'steps' not in c['paper']


def test_defaults_and_exponent_floats(tmp_path):
    cfg = config.load(write_config(str(tmp_path / 'c.yaml')))
    assert cfg['norm'] == {'layers': [], 'n_components': 3, 'em_iter': 2}
    assert cfg['model_args'] == {}
    assert cfg['optimizer']['weight_decay'] == 2e-5
    p = tmp_path / 'e.yaml'
    p.write_text(open(write_config(str(tmp_path / 'd.yaml'))).read()
                 .replace('2.0e-5', '1e-4'))
    assert config.load(str(p))['optimizer']['weight_decay'] == 1e-4


def _broken(tmp_path, old, new, **kwargs):
    path = write_config(str(tmp_path / 'bad.yaml'), **kwargs)
    text = open(path).read()
    assert old in text
    with open(path, 'w') as f:
        f.write(text.replace(old, new, 1))
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert str(e.value).startswith(path + ': ')
    return str(e.value)


def test_unknown_top_level_key_names_key_and_suggests(tmp_path):
    msg = _broken(tmp_path, 'epochs:', 'epoch:')
    assert "unknown key 'epoch'" in msg and "did you mean 'epochs'" in msg


def test_unknown_nested_key(tmp_path):
    msg = _broken(tmp_path, '  lr:', '  lrr:')
    assert 'optimizer' in msg and "'lrr'" in msg


def test_wrong_type(tmp_path):
    msg = _broken(tmp_path, 'batch_size: 4', 'batch_size: four')
    assert 'batch_size' in msg and 'integer' in msg
    msg = _broken(tmp_path, 'lr: 0.01', 'lr: fast')
    assert 'optimizer.lr' in msg and 'number' in msg


def test_missing_required_key(tmp_path):
    msg = _broken(tmp_path, 'dataset: cifar10\n', '')
    assert 'dataset: required key is missing' in msg


def test_bad_choice(tmp_path):
    msg = _broken(tmp_path, 'dataset: cifar10', 'dataset: mnist')
    assert 'dataset' in msg and 'cifar100' in msg


def test_unknown_mn_layer_names_key(tmp_path):
    msg = _broken(tmp_path, 'layers: [conv3]', 'layers: [conv5]',
                  layers=['conv3'])
    assert 'norm.layers' in msg and 'conv5' in msg


def test_bad_mn_argument_is_an_error(tmp_path):
    msg = _broken(tmp_path, 'em_iter: 2', "em_iter: 2\n  inference: magic",
                  layers=['conv3'])
    assert 'norm' in msg and 'magic' in msg


def test_bad_model_argument_value_names_model_args(tmp_path):
    msg = _broken(tmp_path, 'model: cifar_cnn',
                  'model: densenet\nmodel_args: {depth: 41}')
    assert msg.split(': ')[1] == 'model_args' and '3n + 4' in msg


def test_deprecated_n_iter_is_read_as_em_iter_with_a_warning(tmp_path):
    path = write_config(str(tmp_path / 'old.yaml'), layers=['conv3'])
    text = open(path).read()
    with open(path, 'w') as f:
        f.write(text.replace('  em_iter: 2\n', '  n_iter: 4\n', 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        cfg = config.load(path)
    mentions = [w for w in caught if 'n_iter' in str(w.message)]
    assert len(mentions) == 1  # ours; the model was built with em_iter
    assert issubclass(mentions[0].category, FutureWarning)
    assert str(mentions[0].message).startswith(path + ': norm.n_iter: ')
    assert 'norm.em_iter' in str(mentions[0].message)
    assert cfg['norm'] == {'layers': ['conv3'], 'n_components': 2,
                           'em_iter': 4}
    assert 'n_iter' in open(path).read()  # the file is not rewritten


def test_em_iter_and_its_deprecated_name_together(tmp_path):
    msg = _broken(tmp_path, '  em_iter: 2\n', '  em_iter: 2\n  n_iter: 2\n',
                  layers=['conv3'])
    assert msg.split(': ')[1] == 'norm.n_iter' and 'norm.em_iter' in msg


def test_option_of_another_optimizer(tmp_path):
    msg = _broken(tmp_path, 'alpha: 0.9', 'momentum: 0.9')
    assert 'optimizer.momentum' in msg and 'rmsprop' in msg


def test_schedule_needs_its_keys(tmp_path):
    msg = _broken(tmp_path, '  every_epochs: 2\n', '')
    assert 'schedule.every_epochs' in msg


def test_unknown_model(tmp_path):
    msg = _broken(tmp_path, 'model: cifar_cnn', 'model: lenet')
    assert 'model' in msg and 'lenet' in msg and 'cifar_cnn' in msg


def test_unreadable_yaml(tmp_path):
    msg = _broken(tmp_path, 'epochs: 2', 'epochs: [2')
    assert 'bad.yaml' in msg


def test_mn_variant_keys_reach_the_layers(tmp_path):
    import numpy
    path = write_config(str(tmp_path / 'variant.yaml'), layers=['conv2'])
    text = open(path).read().replace(
        'em_iter: 2', 'em_iter: 2\n  activation: relu\n  affine: components'
        '\n  weight_scaling: false')
    with open(path, 'w') as f:
        f.write(text)
    cfg = config.load(path)
    model, paths = config.build_model(cfg, path)
    mn = model.conv2.bn
    assert paths == ['conv2/bn'] and mn.fuses_relu
    assert (mn.affine, mn.weight_scaling) == ('components', False)
    y = model(numpy.random.RandomState(0).randn(4, 3, 32, 32).astype(
        numpy.float32))
    assert y.shape == (4, 10) and numpy.isfinite(y.array).all()
    msg = _broken(tmp_path, 'em_iter: 2', 'em_iter: 2\n  activation: tanh',
                  layers=['conv3'])
    assert 'norm.activation' in msg and 'relu' in msg


def test_norm_relu_leaves_a_fused_relu_to_the_layer():
    import numpy
    from models.layers import norm_relu

    class Fused(object):
        fuses_relu = True

        def __call__(self, x):
            return -x

    x = numpy.ones((2, 3), numpy.float32)
    numpy.testing.assert_array_equal(norm_relu(Fused(), x), -x)
    numpy.testing.assert_array_equal(norm_relu(lambda v: -v, x).array, 0)
