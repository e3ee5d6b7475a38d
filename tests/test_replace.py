import chainer
import chainer.links as L
import numpy
import pytest

from mixnorm import MixtureNormalization, batch_normalizations, replace_bn


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
