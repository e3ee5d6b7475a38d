"""Metrics of Tables 2-6 on hand-written logs."""
import json

import pytest

from train import metrics


def entry(epoch, iteration, acc):
    return {'epoch': epoch, 'iteration': iteration, 'main/loss': 1.0,
            'validation/main/accuracy': acc}


# 8 epochs of 10 iterations; the peak (0.8795) comes at epoch 5.
LOG = [entry(1, 10, 0.50), entry(2, 20, 0.70), entry(3, 30, 0.65),
       entry(4, 40, 0.80), entry(5, 50, 0.8795), entry(6, 60, 0.86),
       entry(7, 70, 0.87), entry(8, 80, 0.875)]


def test_load_log_from_file_and_folder(tmp_path):
    rows = LOG[:2] + [{'epoch': 2, 'iteration': 20, 'main/loss': 0.5}]
    (tmp_path / 'log').write_text(json.dumps(rows))
    assert metrics.load_log(str(tmp_path)) == LOG[:2]
    assert metrics.load_log(str(tmp_path / 'log')) == LOG[:2]


def test_accuracy_at_quarters():
    acc = metrics.accuracy_at(LOG, epochs=8)
    assert acc == {25: pytest.approx(70.0), 50: pytest.approx(80.0),
                   75: pytest.approx(87.95), 100: pytest.approx(87.95)}


def test_accuracy_at_unreached_epochs_are_none():
    acc = metrics.accuracy_at(LOG[:3], epochs=8)
    assert acc[25] == pytest.approx(70.0)
    assert acc[50] is None and acc[75] is None and acc[100] is None


def test_accuracy_at_fractional_epoch():
    # 25% of 6 epochs is 1.5: only epoch 1 counts.
    assert metrics.accuracy_at(LOG[:6], epochs=6)[25] == pytest.approx(50.0)


def test_steps_to_reach_first_crossing():
    assert metrics.steps_to_reach(LOG, 60.0) == 20
    assert metrics.steps_to_reach(LOG, 80.0) == 40
    # Exactly the printed target, although 0.8795 * 100 != 87.95 in floats.
    assert metrics.steps_to_reach(LOG, 87.95) == 50
    assert metrics.steps_to_reach(LOG, metrics.max_accuracy(LOG)) == 50


def test_steps_never_reached():
    assert metrics.steps_to_reach(LOG, 87.96) is None
    assert metrics.format_steps(None) == '-'


def test_max_accuracy():
    assert metrics.max_accuracy(LOG) == pytest.approx(87.95)
    assert metrics.max_accuracy(LOG, until_epoch=3) == pytest.approx(70.0)
    assert metrics.max_accuracy([]) is None


@pytest.mark.parametrize('steps, text', [
    (19500, '1.95e4'), (13400, '1.34e4'), (19532, '1.95e4'),
    (73400, '7.34e4'), (99999, '1.00e5'), (120, '120')])
def test_format_steps(steps, text):
    assert metrics.format_steps(steps) == text
