import chainer
import chainer.links as L
import numpy
import pytest

from mixnorm import MixtureNormalization, batch_normalizations, replace_bn
from mixnorm.replace import replace_links


class Block(chainer.Chain):
    def __init__(self, c):
        super(Block, self).__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(None, c, 3, pad=1)
            self.bn = L.BatchNormalization(c)

    def forward(self, x):
        return chainer.functions.relu(self.bn(self.conv(x)))


class Net(chainer.Chain):
    def __init__(self):
        super(Net, self).__init__()
        with self.init_scope():
            self.conv1 = Block(4)
            self.conv2 = Block(6)
            self.stack = chainer.ChainList(L.BatchNormalization(6),
                                           L.Linear(6, 6))

    def forward(self, x):
        h = self.conv2(self.conv1(x))
        return self.stack[0](h)


def test_replace_by_path_keeps_size_params_and_forward():
    net = Net()
    net.conv2.bn.gamma.array[...] = 2.0
    replaced = replace_bn(net, ['conv2/bn', 'stack.0'], n_components=2,
                          em_iter=4)
    assert replaced == ['conv2/bn', 'stack/0']
    mn = net.conv2.bn
    assert isinstance(mn, MixtureNormalization)
    assert mn.n_components == 2 and mn.em_iter == 4 and mn.size == 6
    numpy.testing.assert_array_equal(mn.gamma.array, 2.0)
    assert isinstance(net.stack[0], MixtureNormalization)
    assert isinstance(net.conv1.bn, L.BatchNormalization)
    names = [n for n, _ in net.namedparams()]
    assert '/conv2/bn/gamma' in names and '/stack/0/beta' in names
    assert batch_normalizations(net) == ['conv1/bn']
    y = net(numpy.random.randn(4, 3, 5, 5).astype(numpy.float32))
    assert y.shape == (4, 6, 5, 5)
    opt = chainer.optimizers.SGD()
    opt.setup(net)
    assert any(p is mn.gamma for p in net.params())


def test_unknown_or_non_bn_names_list_valid_ones():
    net = Net()
    with pytest.raises(ValueError, match='conv9/bn.*no link.*conv1/bn, '
                                         'conv2/bn, stack/0'):
        replace_bn(net, ['conv9/bn'])
    with pytest.raises(ValueError, match='Convolution2D, not a '
                                         'BatchNormalization'):
        replace_bn(net, ['conv1/conv'])
    with pytest.raises(ValueError):
        replace_bn(net, ['conv1'])


# ------------------------------------------------ replace_bn and the optimizer
def loss_of(net, seed=0):
    rng = numpy.random.RandomState(seed)
    x = rng.randn(4, 3, 5, 5).astype(numpy.float32)
    w = rng.randn(4, 6, 5, 5).astype(numpy.float32)
    return chainer.functions.sum(net(x) * w)


def step(opt, net):
    """One real optimizer step; gamma of conv2/bn before and after."""
    before = net.conv2.bn.gamma.array.copy()
    opt.update(loss_of, net)
    return before, net.conv2.bn.gamma.array.copy()


def test_replace_before_setup_trains():
    net = Net()
    replace_bn(net, ['conv2/bn'], n_components=2)
    opt = chainer.optimizers.SGD(lr=0.1).setup(net)
    before, after = step(opt, net)
    assert isinstance(net.conv2.bn, MixtureNormalization)
    assert not numpy.array_equal(before, after)


def test_replace_after_setup_without_the_optimizer_raises():
    net = Net()
    chainer.optimizers.SGD(lr=0.1).setup(net)
    with pytest.raises(RuntimeError, match=r'before optimizer\.setup\(model\)'
                                           r'.*optimizer=optimizer'):
        replace_bn(net, ['conv2/bn'], n_components=2)
    assert isinstance(net.conv2.bn, L.BatchNormalization)  # left as it was


def test_replace_after_setup_with_the_optimizer_trains():
    net = Net()
    opt = chainer.optimizers.Adam(alpha=0.01).setup(net)
    opt.use_fp32_update()
    net.conv1.conv.W.update_rule.hyperparam.alpha = 0.5  # per parameter
    step(opt, net)
    kept = net.conv1.conv.W.update_rule
    state = kept.state['m'].copy()
    replace_bn(net, ['conv2/bn', 'stack/0'], n_components=2, optimizer=opt)
    mn = net.conv2.bn
    for param in mn.params():
        rule = param.update_rule
        assert isinstance(rule, chainer.optimizers.adam.AdamRule)
        assert rule.hyperparam.parent is opt.hyperparam
        assert rule._use_fp32_update and rule.state is None
    assert net.stack[0].gamma.update_rule is not None
    before, after = step(opt, net)
    assert not numpy.array_equal(before, after)
    assert opt.t == 2  # the optimizer goes on: its count, hooks, states
    assert net.conv1.conv.W.update_rule is kept
    assert kept.hyperparam.alpha == 0.5 and kept.t == 2
    assert not numpy.array_equal(kept.state['m'], state)


def test_optimizer_hooks_reach_the_new_parameters():
    net = Net()
    opt = chainer.optimizers.SGD(lr=1.0).setup(net)
    opt.add_hook(chainer.optimizer_hooks.WeightDecay(0.5))
    replace_bn(net, ['conv2/bn'], optimizer=opt)
    net.conv2.bn.gamma.array[...] = 4.0
    net.cleargrads()
    opt.update()  # no loss: zero gradients, so only the decay moves gamma
    numpy.testing.assert_allclose(net.conv2.bn.gamma.array, 2.0)


def test_replace_links_with_any_make_after_setup():
    net = Net()
    opt = chainer.optimizers.MomentumSGD(lr=0.1).setup(net)
    replace_links(net, ['conv2/bn'],
                  lambda bn: L.BatchNormalization(bn.avg_mean.shape[0]),
                  optimizer=opt)
    assert all(p.update_rule is not None for p in net.params())
    before, after = step(opt, net)
    assert not numpy.array_equal(before, after)


def test_multi_node_optimizer():
    chainermn = pytest.importorskip('chainermn')

    class Comm(object):  # one process: nothing to send
        def bcast_data(self, model):
            pass

        def multi_node_mean_grad(self, model, zero_fill=False):
            pass

    opt = chainermn.create_multi_node_optimizer(
        chainer.optimizers.SGD(lr=0.1), Comm())
    net = Net()
    opt.setup(net)
    step(opt, net)  # ChainerMN's first update broadcasts, no step
    replace_bn(net, ['conv2/bn'], n_components=2, optimizer=opt)
    before, after = step(opt, net)
    assert not numpy.array_equal(before, after)

    double = object.__new__(chainermn.optimizers._DoubleBufferingOptimizer)
    object.__setattr__(double, 'actual_optimizer', opt.actual_optimizer)
    with pytest.raises(RuntimeError, match='double-buffering.*before'):
        replace_bn(net, ['conv1/bn'], optimizer=double)


def test_an_optimizer_of_another_model_is_refused():
    net, other = Net(), Net()
    chainer.optimizers.SGD().setup(net)
    with pytest.raises(ValueError, match='not the one that Net is set up'):
        replace_bn(net, ['conv2/bn'],
                   optimizer=chainer.optimizers.SGD().setup(other))
    with pytest.raises(ValueError, match='not set up'):
        replace_bn(net, ['conv2/bn'], optimizer=chainer.optimizers.SGD())
    assert isinstance(net.conv2.bn, L.BatchNormalization)


def test_a_name_twice_is_refused():
    with pytest.raises(ValueError, match='named twice'):
        replace_bn(Net(), ['stack.0', 'stack/0'])
