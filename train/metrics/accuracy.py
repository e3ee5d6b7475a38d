"""Metrics of Tables 2-6 and Figure 5 from a classifier run's JSON log
(Chainer's LogReport): test accuracy, updates to reach one, the final
training loss.

Accuracies are in percent.  A log is a list of per-epoch entries with at
least ``epoch``, ``iteration`` and ``validation/main/accuracy`` (a
fraction).
"""
import json
import os

ACC_KEY = 'validation/main/accuracy'
LOSS_KEY = 'main/loss'  # mean training loss over an epoch's updates
_TOL = 1e-6  # percent; absorbs float noise when comparing to a printed target


def load_log(path):
    """Reads a LogReport log.

    Args:
        path (str): The log file, or a run folder holding ``log``.

    Returns:
        list of dict: Entries in order, those without a test accuracy
        dropped.

    """
    if os.path.isdir(path):
        path = os.path.join(path, 'log')
    with open(path) as f:
        entries = json.load(f)
    return [e for e in entries if ACC_KEY in e]


def accuracy_curve(log):
    """Returns ``(iterations, epochs, accuracies in %)`` as three lists."""
    return ([e['iteration'] for e in log], [e['epoch'] for e in log],
            [100.0 * e[ACC_KEY] for e in log])


def curve(log, key, percent=False):
    """Per-epoch values of one log key.

    Args:
        log (list): Entries from :func:`load_log`.
        key (str): E.g. ``main/loss`` or ``validation/main/error``.
        percent (bool): Multiply by 100 (for accuracies and errors).

    Returns:
        tuple: ``(epochs, values)``, entries without ``key`` skipped.

    """
    scale = 100.0 if percent else 1.0
    entries = [e for e in log if key in e]
    return ([e['epoch'] for e in entries],
            [scale * e[key] for e in entries])


def max_accuracy(log, until_epoch=None):
    """Maximum test accuracy (%) over the entries up to ``until_epoch``.

    Returns:
        float or None: None when no entry qualifies.

    """
    accs = [100.0 * e[ACC_KEY] for e in log
            if until_epoch is None or e['epoch'] <= until_epoch + 1e-9]
    return max(accs) if accs else None


def accuracy_at(log, epochs, percents=(25, 50, 75, 100)):
    """Maximum test accuracy after each percentage of the epochs (Table 2).

    Args:
        log (list): Entries from :func:`load_log`.
        epochs (int): Total epochs of the run.
        percents (tuple): Percentages of ``epochs``.

    Returns:
        dict: percent -> accuracy (%), or None where the log has not yet
        reached that epoch.

    """
    last = log[-1]['epoch'] if log else 0
    out = {}
    for p in percents:
        until = epochs * p / 100.0
        out[p] = max_accuracy(log, until) if last >= until - 1e-9 else None
    return out


def steps_to_reach(log, target):
    """Gradient updates until test accuracy first reaches ``target``.

    Tables 3, 5 and 6: "steps to reach the maximum test accuracy of the
    batch-normalized model".  Accuracy is measured once per epoch, so the
    answer is the iteration count at the end of the first epoch whose test
    accuracy is at least ``target``.

    Args:
        log (list): Entries from :func:`load_log`.
        target (float): Accuracy in percent.

    Returns:
        int or None: None when the run never reaches it.

    """
    for e in log:
        if 100.0 * e[ACC_KEY] >= target - _TOL:
            return e['iteration']
    return None


def final_loss(log):
    """The training loss of the last epoch in ``log``, or None."""
    return log[-1].get(LOSS_KEY) if log else None


def format_steps(steps):
    """Steps as the paper prints them (``1.95e4``), ``-`` for None."""
    if steps is None:
        return '-'
    if steps < 1000:
        return str(int(steps))
    exponent = len(str(int(steps))) - 1
    mantissa = steps / 10.0 ** exponent
    if round(mantissa, 2) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return '{:.2f}e{}'.format(mantissa, exponent)
