"""TensorFlow-style RMSprop (optimizer.name: rmsprop_tf) on the CPU.

The update rule against a direct NumPy evaluation of its three equations,
its learning rate under the schedules, its state in snapshots, its
configuration keys and a short training run.  A CuPy check runs where
CuPy and a CUDA device are present.
"""
import io
import os
import types

import chainer
import numpy
import pytest

from train import config
from train.classifier import runner
from train.common import optim
from tinydata import make_folder, write_config

DEFAULTS = {'decay': 0.9, 'momentum': 0.9, 'eps': 1.0}


def _reference(w, grads, lr, decay=0.9, momentum=0.9, eps=1.0):
    """The equations in float64, ms from ones and mom from zeros.

    ``lr`` is a number or a list with one learning rate per step.
    """
    w = numpy.array(w, dtype=numpy.float64)
    ms, mom = numpy.ones_like(w), numpy.zeros_like(w)
    lrs = lr if isinstance(lr, list) else [lr] * len(grads)
    for g, step_lr in zip(grads, lrs):
        g = numpy.asarray(g, dtype=numpy.float64)
        ms = decay * ms + (1 - decay) * g * g
        mom = momentum * mom + step_lr * g / numpy.sqrt(ms + eps)
        w = w - mom
    return w, ms, mom


class _Weights(chainer.Link):
    def __init__(self, w):
        super(_Weights, self).__init__()
        with self.init_scope():
            self.w = chainer.Parameter(w.copy())


def _setup(w, **hyper):
    link = _Weights(w)
    opt = optim.RMSpropTF(**hyper)
    opt.setup(link)
    return link, opt


def _step(link, opt, grad):
    link.w.grad = grad.astype(link.w.dtype)
    opt.update()


def _grads(n, shape=(3, 4), seed=0):
    # Mixed magnitudes, so that eps = 1 matters on some entries and not on
    # others.
    rng = numpy.random.RandomState(seed)
    return [rng.randn(*shape) * 10.0 ** rng.uniform(-2, 2, shape)
            for _ in range(n)]


@pytest.mark.parametrize('dtype, tol', [(numpy.float64, 1e-12),
                                        (numpy.float32, 1e-5)])
@pytest.mark.parametrize('hyper', [
    {},  # the Inception recipe: decay 0.9, momentum 0.9, eps 1.0
    {'decay': 0.5, 'momentum': 0.0, 'eps': 1e-3},
    {'decay': 0.99, 'momentum': 0.5, 'eps': 0.1},
])
def test_update_follows_the_three_equations(dtype, tol, hyper):
    w0 = numpy.random.RandomState(1).randn(3, 4).astype(dtype)
    grads = _grads(6)
    link, opt = _setup(w0, lr=0.05, **hyper)
    for k, g in enumerate(grads):
        _step(link, opt, g)
        w, ms, mom = _reference(w0, grads[:k + 1], 0.05,
                                **dict(DEFAULTS, **hyper))
        state = opt.target.w.update_rule.state
        numpy.testing.assert_allclose(link.w.array, w, rtol=tol, atol=tol)
        numpy.testing.assert_allclose(state['ms'], ms, rtol=tol, atol=tol)
        numpy.testing.assert_allclose(state['mom'], mom, rtol=tol, atol=tol)
        assert link.w.dtype == state['ms'].dtype == state['mom'].dtype


def test_first_step_uses_the_ones_initialised_average():
    """Step 1: ms = decay + (1 - decay) g^2 (not (1 - decay) g^2), so a
    small gradient moves w by about lr g / sqrt(decay + eps)."""
    g = numpy.array([1e-3, -2.0, 30.0])
    link, opt = _setup(numpy.zeros(3), lr=0.1)
    _step(link, opt, g)
    ms = 0.9 + 0.1 * g * g
    numpy.testing.assert_allclose(link.w.array,
                                  -0.1 * g / numpy.sqrt(ms + 1.0),
                                  rtol=1e-12)
    numpy.testing.assert_allclose(link.w.array[0], -0.1 * 1e-3 /
                                  numpy.sqrt(1.9), rtol=1e-6)
    # Chainer's RMSprop (ms from zeros, eps outside the root) would step by
    # about lr / sqrt(1 - decay) = 0.32 on every entry instead.
    assert abs(link.w.array[0]) < 1e-4


def test_zero_gradient_still_decays_and_moves():
    """As TensorFlow's dense update: a zero gradient (what the optimizer
    gives a parameter without one) decays ms and mom, and mom still moves
    the parameter."""
    link, opt = _setup(numpy.ones(2), lr=0.1)
    grads = [numpy.array([1.0, -1.0]), numpy.zeros(2)]
    for g in grads:
        _step(link, opt, g)
    w, ms, mom = _reference(numpy.ones(2), grads, 0.1)
    numpy.testing.assert_allclose(link.w.array, w, rtol=1e-12)
    numpy.testing.assert_allclose(link.w.update_rule.state['ms'], ms,
                                  rtol=1e-12)
    link.w.grad = None  # the rule itself skips a missing gradient
    link.w.update_rule.update(link.w)
    numpy.testing.assert_allclose(link.w.array, w, rtol=1e-12)
    numpy.testing.assert_allclose(link.w.update_rule.state['mom'], mom,
                                  rtol=1e-12)


def test_eps_too_small_for_the_dtype_is_an_error():
    link, opt = _setup(numpy.ones(2, dtype=numpy.float16), lr=0.1,
                       eps=1e-10)
    with pytest.raises(ValueError, match='too small for float16'):
        _step(link, opt, numpy.ones(2))


def test_float16_with_fp32_update():
    w0 = numpy.random.RandomState(2).randn(3, 4)
    grads = _grads(3)
    link, opt = _setup(w0.astype(numpy.float16), lr=0.01)
    opt.use_fp32_update()
    for g in grads:
        _step(link, opt, g)
    assert link.w.dtype == numpy.float16
    w, _, _ = _reference(w0.astype(numpy.float16), grads, 0.01)
    numpy.testing.assert_allclose(link.w.array, w, rtol=2e-3, atol=2e-3)


def test_schedule_changes_lr():
    """The schedule sets ``lr`` (make_optimizer's lr_attr); the next steps
    use it."""
    opt, attr = optim.make_optimizer(dict(DEFAULTS, name='rmsprop_tf',
                                          lr=0.1))
    assert attr == 'lr'
    w0 = numpy.linspace(-1, 1, 6)
    link = _Weights(w0)
    opt.setup(link)

    # what LRSchedule reads of a Trainer
    trainer = types.SimpleNamespace(updater=types.SimpleNamespace(
        epoch=0, get_optimizer=lambda name: opt))
    ext = optim.LRSchedule({'name': 'exponential', 'rate': 0.5,
                            'every_epochs': 1}, 0.1, attr, 10)
    grads = _grads(4, shape=(6,), seed=3)
    lrs = []
    ext.initialize(trainer)
    for epoch, g in enumerate(grads):
        trainer.updater.epoch = epoch
        ext(trainer)
        lrs.append(opt.lr)
        _step(link, opt, g)
    assert lrs == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert link.w.update_rule.hyperparam.lr == pytest.approx(0.0125)
    w, _, _ = _reference(w0, grads, lrs)
    numpy.testing.assert_allclose(link.w.array, w, rtol=1e-12)


def test_state_survives_save_and_load(tmp_path):
    """Both slots (and t) go through save_npz/load_npz into a fresh
    optimizer, which then continues exactly as the original."""
    w0 = numpy.random.RandomState(4).randn(5)
    grads = _grads(5, shape=(5,), seed=5)
    link, opt = _setup(w0, lr=0.03)
    for g in grads[:3]:
        _step(link, opt, g)
    path = str(tmp_path / 'opt.npz')
    chainer.serializers.save_npz(path, opt)
    with numpy.load(path) as saved:
        assert {'w/ms', 'w/mom', 'w/t'} <= set(saved.files)
        assert not numpy.all(saved['w/ms'] == 1)  # not the initial state

    link2, opt2 = _setup(link.w.array.copy(), lr=0.03)
    chainer.serializers.load_npz(path, opt2)
    assert link2.w.update_rule.t == 3
    for g in grads[3:]:
        _step(link, opt, g)
        _step(link2, opt2, g)
    numpy.testing.assert_array_equal(link2.w.array, link.w.array)
    w, _, _ = _reference(w0, grads, 0.03)
    numpy.testing.assert_allclose(link2.w.array, w, rtol=1e-12)


# ------------------------------------------------------------ configuration
_TF = '  name: rmsprop_tf\n  lr: 0.01\n'
_CHAINER = '  name: rmsprop\n  lr: 0.01\n  alpha: 0.9\n'


def _config(tmp_path, optimizer=_TF, **kwargs):
    path = write_config(str(tmp_path / 'c.yaml'), **kwargs)
    text = open(path).read()
    assert _CHAINER in text
    with open(path, 'w') as f:
        f.write(text.replace(_CHAINER, optimizer, 1))
    return path


def _error(path):
    with pytest.raises(config.ConfigError) as e:
        config.load(path, check_model=False)
    return str(e.value)


def test_config_fills_the_recipe_defaults(tmp_path):
    cfg = config.load(_config(tmp_path), check_model=False)
    assert cfg['optimizer'] == dict(DEFAULTS, name='rmsprop_tf', lr=0.01,
                                    weight_decay=2e-5)
    opt, attr = optim.make_optimizer(cfg['optimizer'])
    assert type(opt) is optim.RMSpropTF and attr == 'lr'
    assert (opt.lr, opt.decay, opt.momentum, opt.eps) == (0.01, 0.9, 0.9,
                                                          1.0)


def test_config_keeps_given_values(tmp_path):
    cfg = config.load(_config(tmp_path, _TF + '  decay: 0.95\n'
                              '  momentum: 0.0\n  eps: 1e-3\n'),
                      check_model=False)
    opt, _ = optim.make_optimizer(cfg['optimizer'])
    assert (opt.decay, opt.momentum, opt.eps) == (0.95, 0.0, 1e-3)


def test_chainer_rmsprop_is_unchanged(tmp_path):
    """The default reading gets no decay/momentum keys filled in."""
    cfg = config.load(write_config(str(tmp_path / 'c.yaml')),
                      check_model=False)
    assert cfg['optimizer'] == {'name': 'rmsprop', 'lr': 0.01, 'alpha': 0.9,
                                'weight_decay': 2e-5}
    assert type(optim.make_optimizer(cfg['optimizer'])[0]) is \
        chainer.optimizers.RMSprop


@pytest.mark.parametrize('optimizer, key, words', [
    (_CHAINER + '  decay: 0.9\n', 'optimizer.decay', "'rmsprop'"),
    (_TF + '  alpha: 0.9\n', 'optimizer.alpha', "'rmsprop_tf'"),
    (_TF + '  betas: [0.9, 0.99]\n', 'optimizer.betas', "'rmsprop_tf'"),
    (_TF + '  decay: 1.5\n', 'optimizer.decay', '[0, 1]'),
    (_TF + '  momentum: 1.0\n', 'optimizer.momentum', '[0, 1)'),
    (_TF + '  eps: 0\n', 'optimizer.eps', '> 0'),
    (_TF + '  decay: fast\n', 'optimizer.decay', 'number'),
])
def test_config_errors_name_the_key(tmp_path, optimizer, key, words):
    path = _config(tmp_path, optimizer)
    msg = _error(path)
    assert msg.startswith('{}: {}: '.format(path, key)), msg
    assert words in msg


# ------------------------------------------------------------------ training
def test_training_run_and_its_snapshot(tmp_path, monkeypatch):
    """runner.run with rmsprop_tf: 2 epochs of 2 updates; the snapshot holds
    the slots that --resume loads."""
    monkeypatch.setenv('MIXNORM_CACHE', str(tmp_path / 'cache'))
    data = make_folder(str(tmp_path / 'data'), n_train=4, n_test=1)
    cfg = config.load(_config(tmp_path, batch_size=20, epochs=2),
                      check_model=False)
    out = str(tmp_path / 'run')
    info = runner.run(cfg, out, device='@numpy', data=data,
                      log=io.StringIO())
    assert info['finished'] and info['iterations'] == 4
    assert info['config']['optimizer']['eps'] == 1.0
    snaps = [f for f in os.listdir(out) if f.startswith('snapshot')]
    with numpy.load(os.path.join(out, snaps[0])) as s:
        slots = [k for k in s.files if k.startswith('updater/optimizer:main')
                 and k.endswith(('/ms', '/mom'))]
        assert slots and all(numpy.isfinite(s[k]).all() for k in slots)
        assert not numpy.all(s[slots[0]] == 1)  # trained, not initial


# ---------------------------------------------------------------------- GPU
def _cuda_device():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, or a driver too old
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_device(), reason='needs CuPy and a CUDA device')
@pytest.mark.parametrize('dtype, tol', [(numpy.float32, 1e-5),
                                        (numpy.float64, 1e-12)])
def test_cupy_kernel_matches_numpy(dtype, tol):
    w0 = numpy.random.RandomState(6).randn(7, 3).astype(dtype)
    grads = _grads(4, shape=(7, 3), seed=7)
    cpu, cpu_opt = _setup(w0, lr=0.02)
    gpu, gpu_opt = _setup(w0, lr=0.02)
    gpu.to_device('@cupy:0')
    for g in grads:
        _step(cpu, cpu_opt, g)
        gpu.w.grad = gpu.xp.asarray(g.astype(dtype))
        gpu_opt.update()
    pairs = [(gpu.w.array, cpu.w.array)] + [
        (gpu.w.update_rule.state[k], cpu.w.update_rule.state[k])
        for k in ('ms', 'mom')]
    for a, b in pairs:
        numpy.testing.assert_allclose(chainer.backend.CpuDevice().send(a), b,
                                      rtol=tol, atol=tol)
