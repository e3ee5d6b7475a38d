"""benchmarks/step.py: quick CPU runs of the training-step benchmark.

The CIFAR CNN and DenseNet-40 at batch 2 (about 10 s on a 2-core CPU),
each with its three variants (on NumPy, ``BN (kernels)`` and ``MN`` run
mixnorm's NumPy convolution and pooling, :mod:`mixnorm.cpu`; this checks
the script, not their speed).
"""
import re

import pytest

import mixnorm

KINDS = ('conv', 'linear', 'BN', 'MN', 'pooling', 'other', 'update')
NUMBER = r'(-?[0-9.]+)'


def step_rows(text):
    """{variant: (step ms, host ms, steps/s, ratio, ratio)} of the step
    table (the ratios to BN (Chainer) and to BN (kernels))."""
    rows = re.findall(r'^\| ((?:BN|MN)[^|]*?) \| {0} \| {0} \| {0} \| {0} '
                      r'\| {0} \|$'.format(NUMBER), text, re.M)
    return {r[0]: tuple(float(v) for v in r[1:]) for r in rows}


def breakdowns(text):
    """{variant: (profiled step ms, {kind: (ms, share %, floor ms)})}."""
    out = {}
    for part in re.split(r'\n(?=[^\n|]+: profiled step )', text)[1:]:
        label, whole = re.match(r'(.+): profiled step {} ms'.format(NUMBER),
                                part).groups()
        kinds = {}
        for kind, ms, share, floor in re.findall(
                r'^\| ([^|]+?) \| {0} \| {0}% \| ([-0-9.]+) \|'.format(
                    NUMBER), part, re.M):
            kinds[kind] = (float(ms), float(share),
                           0.0 if floor == '-' else float(floor))
            if kind == 'step':
                break
        out[label] = (float(whole), kinds)
    return out


def check(text, variants):
    assert 'NOT the paper batch size' in text
    rows = step_rows(text)
    assert sorted(rows) == sorted(variants)
    assert rows['BN (Chainer)'][3] == 1.0 and rows['BN (kernels)'][4] == 1.0
    for step_ms, host_ms, per_s, _, _ in rows.values():
        assert step_ms > 0 and host_ms > 0
        # steps/s is printed with 2 decimals
        assert per_s == pytest.approx(1e3 / step_ms, rel=0.01, abs=0.005)
    parts = breakdowns(text)
    assert sorted(parts) == sorted(variants)
    for label, (whole, kinds) in parts.items():
        assert list(kinds) == list(KINDS) + ['rest (between ops)', 'step']
        assert kinds['step'][0] == whole
        # the timed ops and the update cover most of the step, no more
        spent = sum(kinds[k][0] for k in KINDS)
        assert 0.5 * whole <= spent <= 1.5 * whole, (label, kinds)
        assert all(kinds[k][0] > 0 for k in ('conv', 'BN', 'update'))
        assert all(kinds[k][2] > 0 for k in ('conv', 'linear', 'update'))
        assert (kinds['MN'][0] > 0) == (label == 'MN')
    return parts


def test_cifar_cnn_all_variants(monkeypatch, tmp_path):
    import benchmarks.step as step
    monkeypatch.setattr(mixnorm.cuda, 'bn_kernels', True)
    out = tmp_path / 'step.md'
    text = step.main(['--quick', '--models', 'cifar_cnn', '--out', str(out)])
    assert out.read_text() == text + '\n'
    assert mixnorm.cuda.bn_kernels is True  # restored after the run
    assert mixnorm.cuda.conv_kernels is True
    assert mixnorm.cuda.pool_kernels is True
    assert '## cifar_cnn at batch 4 (NOT the paper batch size, 256)' in text
    assert 'MN at conv3/bn (K = 3, EM iter. 2)' in text
    assert '- device: CPU' in text and 'chainer 7.8.1' in text
    check(text, ['BN (Chainer)', 'BN (kernels)', 'MN'])


def test_densenet():
    import benchmarks.step as step
    text = step.main(['--quick', '--batch', '2', '--models', 'densenet'])
    assert '## densenet at batch 2 (NOT the paper batch size, 64)' in text
    assert 'configs/densenet/mn_40.yaml' in text
    parts = check(text, ['BN (Chainer)', 'BN (kernels)', 'MN'])
    assert parts['MN'][1]['pooling'][0] > 0  # transitions: average pooling


def test_conv_benchmark_quick():
    import benchmarks.conv as conv
    text = conv.main(['--quick'])
    rows = [r for r in text.splitlines() if r.startswith(('| CIFAR',
                                                           '| DCGAN'))]
    assert len(rows) == 2 and '| 2x64x16x16 | 128, 5, 1, 2 |' in rows[0]
    assert '| DCGAN dc1 transposed | 2x512x4x4 | 256, 4, 2, 1 |' in rows[1]
    assert conv.flops((2, 64, 16, 16), 128, 5, 1, 2) == \
        3 * 2 * 2 * 256 * 64 * 25 * 128
    # a transposed convolution costs the convolution of its output
    assert conv.transposed_flops((2, 512, 4, 4), 256, 4, 2, 1) == \
        conv.flops((2, 256, 8, 8), 512, 4, 2, 1)
