"""Inception-V3 (Sec. 4.3) and DenseNet (Sec. 4.4) models: shapes, sizes,
BN addressing, the "last BN of each branch" rule and training steps."""
import numpy
import pytest

import mixnorm

import chainer
import chainer.functions as F
import chainer.links as L

from models import BuildError, build, get_model
from models.densenet import DenseNet
from models.inception_v3 import InceptionV3


SMALL = 0.125  # Inception width multiplier that keeps CPU tests fast

# Table 4 / Table 6 MN settings: layers -> expected replaced BN addresses
RED1 = ['red1/0/0', 'red1/1/2']
RED2 = ['red2/0/1', 'red2/1/3']
INC2_0 = ['inc2/0/0/0', 'inc2/0/1/2', 'inc2/0/2/4', 'inc2/0/3/0']
INC2_1 = ['inc2/1/0/0', 'inc2/1/1/2', 'inc2/1/2/4', 'inc2/1/3/0']
INC3_0 = ['inc3/0/0/0', 'inc3/0/1/1', 'inc3/0/1/2',
          'inc3/0/2/2', 'inc3/0/2/3', 'inc3/0/3/0']
SETTINGS = {
    'table4 MN-1 (red1, red2)': (['red1', 'red2'], RED1 + RED2),
    'table4 MN-2 (red1, red2, inc3/0)': (['red1', 'red2', 'inc3/0'],
                                         RED1 + RED2 + INC3_0),
    'table4 MN-3/4/5 (inc2/0, inc3/0)': (['inc2/0', 'inc3/0'],
                                         INC2_0 + INC3_0),
    'table6 (inc2/1, inc3/0)': (['inc2/1', 'inc3/0'], INC2_1 + INC3_0),
}


@pytest.fixture(scope='module')
def inception():
    return InceptionV3(10, width=SMALL)


def _bn_links(model):
    return {path[1:]: link for path, link in model.namedlinks(skipself=True)
            if isinstance(link, L.BatchNormalization)}


def _images(n=2, n_classes=10, seed=0):
    rng = numpy.random.RandomState(seed)
    x = rng.randn(n, 3, 32, 32).astype(numpy.float32)
    t = rng.randint(0, n_classes, size=n).astype(numpy.int32)
    return x, t


def _train_step(model, x, t):
    """One forward + backward + SGD update; returns the loss."""
    opt = chainer.optimizers.MomentumSGD(lr=0.01)
    opt.setup(model)
    before = {p: param.array.copy() for p, param in model.namedparams()}
    model.cleargrads()
    loss = F.softmax_cross_entropy(model(x), t)
    loss.backward()
    for path, param in model.namedparams():
        assert param.grad is not None, path
        assert numpy.isfinite(param.grad).all(), path
    opt.update()
    changed = sum(not numpy.array_equal(before[p], param.array)
                  for p, param in model.namedparams())
    assert changed == len(before)
    assert numpy.isfinite(float(loss.array))
    return loss


# --- Inception-V3 -----------------------------------------------------------

def test_inception_full_width_shapes():
    model = InceptionV3(100)
    x, _ = _images()
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        h = model.feature_map(x)
        y = model(x)
    assert h.shape == (2, 2048, 3, 3)  # Sec. 4.3: 3x3 before pooling
    assert y.shape == (2, 100)
    # the standard Inception-V3 body without auxiliary head: 21,751,136
    # conv weights and 17,216 BN channels (scale and shift), plus the fc
    convs = [l for l in model.links() if isinstance(l, L.Convolution2D)]
    assert sum(c.W.size for c in convs) == 21751136
    assert sum(b.avg_mean.size for b in _bn_links(model).values()) == 17216
    assert sum(p.size for p in model.params()) == (
        21751136 + 2 * 17216 + 2048 * 100 + 100)


def test_inception_grid_sizes(inception):
    x, _ = _images()
    sizes = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        h = x
        for unit in inception.stem:
            h = unit(h)
        sizes.append(h.shape[2:])
        h = F.max_pooling_2d(h, 3, stride=2, pad=1, cover_all=False)
        for name, layer in inception.layers().items():
            h = layer(h)
            sizes.append(h.shape[2:])
        assert h.shape == inception.feature_map(x).shape
    assert sizes == [(26, 26)] + [(13, 13)] * 3 + [(7, 7)] * 5 + [(3, 3)] * 3


def test_inception_small_shapes(inception):
    x, _ = _images()
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        assert inception.feature_map(x).shape[2:] == (3, 3)
        assert inception(x).shape == (2, 10)
    assert inception.feature_map(x).shape[1] == inception.out_channels


def test_inception_bn_address_fig8(inception):
    links = _bn_links(inception)
    assert inception.norm_paths(['inc2/0/2/4']) == ['inc2/0/2/4/bn']
    assert isinstance(links['inc2/0/2/4/bn'], L.BatchNormalization)
    # fifth and last BN of the third (double 7x7) branch: a 1x7 conv
    branch = inception.layer('inc2/0')[2]
    assert len(branch) == 5
    assert branch[4].conv.ksize == (1, 7)
    assert inception.bn_address('/inc2/0/2/4/bn') == 'inc2/0/2/4'
    with pytest.raises(ValueError):
        inception.bn_address('stem/0/bn')


def test_inception_every_bn_addressable(inception):
    links = _bn_links(inception)
    addressed = [inception.bn_path(a) for a in inception.bn_addresses()]
    assert len(addressed) == len(set(addressed))
    stem = sorted(p for p in links if p.startswith('stem/'))
    assert stem == ['stem/%d/bn' % i for i in range(5)]
    assert sorted(addressed + stem) == sorted(links)
    for a in inception.bn_addresses():
        assert inception.bn_address(inception.bn_path(a)) == a
    # 94 convolutions in the standard network, 5 in the stem
    assert len(links) == 94


@pytest.mark.parametrize('layer,n_last', [
    ('inc1/0', 4), ('inc1/2', 4), ('red1', 2), ('inc2/0', 4), ('inc2/3', 4),
    ('red2', 2), ('inc3/0', 6), ('inc3/1', 6)])
def test_inception_last_bn_per_branch(inception, layer, n_last):
    paths = inception.norm_paths([layer])
    assert len(paths) == n_last
    links = _bn_links(inception)
    # the last BNs are exactly the BNs whose outputs reach the concatenation
    module = inception.layer(layer)
    passthrough = module[0][0].conv.W.shape[1] if module.max_pool else 0
    assert (sum(links[p].avg_mean.size for p in paths)
            == module.out_channels - passthrough)
    x = numpy.zeros((1, module[0][0].conv.W.shape[1], 7, 7), numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        assert module(x).shape[1] == module.out_channels


@pytest.mark.parametrize('name', sorted(SETTINGS))
def test_inception_paper_settings(inception, name):
    layers, expected = SETTINGS[name]
    paths = inception.norm_paths(layers)
    assert paths == [a + '/bn' for a in expected]
    links = _bn_links(inception)
    assert all(p in links for p in paths)


def test_inception_norm_paths_errors(inception):
    for bad in ('inc4/0', 'red3', 'inc2/0/2/5', 'inc2/4', 'stem/0', 'inc2'):
        with pytest.raises(ValueError) as err:
            inception.norm_paths(['red1', bad])
        assert repr(bad) in str(err.value)
        assert 'inc3/1' in str(err.value)
    # layer name and one of its addresses: no duplicates
    assert inception.norm_paths(['red1', 'red1/0/0']) == [
        a + '/bn' for a in RED1]


def test_inception_train_step(inception):
    model = InceptionV3(10, width=SMALL, dropout=0.2)
    x, t = _images()
    _train_step(model, x, t)


# --- DenseNet ---------------------------------------------------------------

@pytest.mark.parametrize('depth,n_classes,expected,paper', [
    (40, 10, 1019722, 1.0e6), (40, 100, 1060132, 1.0e6),
    (100, 10, 6979642, 7.0e6), (100, 100, 7084852, 7.0e6)])
def test_densenet_parameter_count(depth, n_classes, expected, paper):
    model = DenseNet(n_classes, depth=depth)
    n_params = sum(p.size for p in model.params())
    assert n_params == expected
    assert abs(n_params - paper) / paper < 0.07


@pytest.mark.parametrize('depth,channels', [(19, 196), (40, 448),
                                            (100, 1168)])
def test_densenet_final_channels(depth, channels):
    model = DenseNet(100, depth=depth)
    assert model.final_channels == channels
    assert model.final.bn.avg_mean.size == channels
    assert model.trans1.bn.avg_mean.size == 16 + (depth - 4) // 3 * 12


def test_densenet_bad_depth():
    for depth in (41, 4, 0):
        with pytest.raises(ValueError):
            DenseNet(10, depth=depth)


def test_densenet_norm_paths():
    model = DenseNet(100, depth=19)
    paths = model.norm_paths(['trans1', 'trans2', 'final'])
    assert paths == ['trans1/bn', 'trans2/bn', 'final/bn']
    links = _bn_links(model)
    assert all(p in links for p in paths)
    assert len(links) == 3 * 5 + 3
    assert sorted(model.norm_paths(model.bn_addresses())) == sorted(links)
    assert model.norm_paths('block2/4') == ['block2/4/bn']
    for bad in ('trans3', 'block2/5', 'block0/0', 'final/bn'):
        with pytest.raises(ValueError) as err:
            model.norm_paths([bad])
        assert repr(bad) in str(err.value) and 'trans1' in str(err.value)


def test_densenet_train_step():
    model = DenseNet(100, depth=40)
    x, t = _images(n_classes=100)
    loss = _train_step(model, x, t)
    assert model(x).shape == (2, 100)
    assert loss.array.shape == ()


def test_densenet_dropout():
    model = DenseNet(10, depth=10, dropout=0.2)
    x, _ = _images()
    with chainer.no_backprop_mode():
        with chainer.using_config('train', False):
            a, b = model(x).array, model(x).array
        numpy.testing.assert_array_equal(a, b)
        with chainer.using_config('train', True):
            a, b = model(x).array, model(x).array
        assert not numpy.array_equal(a, b)


# --- Registry ---------------------------------------------------------------

def test_registry():
    model = get_model('inception_v3')(10, width=SMALL)
    assert isinstance(model, InceptionV3)
    model = get_model('densenet')(100, depth=19)
    assert isinstance(model, DenseNet) and model.final_channels == 196


@pytest.mark.parametrize('name, args', [
    ('cifar_cnn', {}), ('densenet', {'depth': 10}),
    ('inception_v3', {'width': SMALL})])
def test_build_puts_mn_at_every_layer_name(name, args):
    """Every model lists its layer names as ``layer_names``."""
    layers = list(get_model(name).layer_names)
    model, paths = build(name, 10, args, {'layers': layers,
                                          'n_components': 2, 'em_iter': 4})
    assert paths == model.norm_paths(layers) and len(paths) >= len(layers)
    links = dict(model.namedlinks(skipself=True))
    assert all(isinstance(links['/' + p], mixnorm.MixtureNormalization) and
               links['/' + p].em_iter == 4 for p in paths)
    model, paths = build(name, 10, args)
    assert paths == [] and not any(
        isinstance(link, mixnorm.MixtureNormalization)
        for _, link in model.namedlinks())


@pytest.mark.parametrize('args, key', [
    (('lenet', 10), 'model'),
    (('densenet', 10, {'depth': 41}), 'model_args'),
    (('densenet', 10, {'colour': 1}), 'model_args'),
    (('cifar_cnn', 10, {}, {'layers': ['conv5']}), 'norm.layers'),
    (('cifar_cnn', 10, {}, {'layers': ['conv3'], 'inference': 'magic'}),
     'norm'),
])
def test_build_errors_name_the_argument(args, key):
    with pytest.raises(BuildError) as e:
        build(*args)
    assert e.value.key == key


# --- Mixture normalization placed by norm_paths ------------------------------

@pytest.mark.parametrize('layers', [['red1', 'red2', 'inc3/0'],
                                    ['inc2/0', 'inc3/0']])
def test_inception_with_mn(layers):
    model = InceptionV3(10, width=SMALL)
    paths = model.norm_paths(layers)
    replaced = mixnorm.replace_bn(model, paths, n_components=5, em_iter=2)
    assert replaced == paths
    links = dict(model.namedlinks(skipself=True))
    assert all(isinstance(links['/' + p], mixnorm.MixtureNormalization)
               for p in paths)
    assert len(_bn_links(model)) == 94 - len(paths)
    x, t = _images(4)
    _train_step(model, x, t)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        assert numpy.isfinite(model(x).array).all()


def test_densenet_with_mn():
    model = DenseNet(100, depth=19)
    paths = model.norm_paths(['trans1', 'trans2', 'final'])
    replaced = mixnorm.replace_bn(model, paths, n_components=5, em_iter=2)
    assert replaced == paths
    assert isinstance(model.final.bn, mixnorm.MixtureNormalization)
    assert isinstance(model.trans1.bn, mixnorm.MixtureNormalization)
    assert model.final.bn.n_components == 5 and model.final.bn.em_iter == 2
    x, t = _images(2, n_classes=100)
    _train_step(model, x, t)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        assert numpy.isfinite(model(x).array).all()


# --- Table 7 throughput benchmark (smoke) -----------------------------------

def test_throughput_benchmark_smoke(tmp_path):
    import benchmarks.throughput as tp
    from benchmarks.table7 import depth_for_channels
    assert depth_for_channels(196) == 19
    assert depth_for_channels(448) == 40
    with pytest.raises(ValueError):
        depth_for_channels(200)
    out = tmp_path / 'table7.md'
    results = tp.main(['--quick', '--settings', '2x52', '--ks', '2',
                       '--out', str(out)])
    (batch, dim, rates), = results
    assert (batch, dim) == (2, 52)
    assert sorted(rates) == [0, 1, 2]  # 0: BN on Chainer's code
    assert all(r > 0 for r in rates.values())
    text = out.read_text()
    assert 'NumPy %s' % numpy.__version__ in text
    assert 'Chainer %s' % chainer.__version__ in text
    assert '| BN | 1 | 2 | 52 |' in text
    assert '| BN (Chainer) | - | 2 | 52 |' in text
    rows = [line for line in text.splitlines() if line.startswith('| MN ')]
    assert len(rows) == len(rates) - 2
