"""Spreads drawn and printed around a mean: one standard deviation within a
window of a curve (Figures 2, 5, 6), over runs of several seeds (studies,
comparisons), and per epoch over several runs' logs."""


def window_std(values, width=3):
    """Standard deviation of each value's centered window of ``width``.

    Figure 5 shades one standard deviation "computed within a window of 3
    epochs"; windows are cut short at both ends of the curve.

    Returns:
        list of float: One per value (population standard deviation).

    """
    half = width // 2
    out = []
    for i in range(len(values)):
        w = values[max(0, i - half):i + half + 1]
        mean = sum(w) / len(w)
        out.append((sum((v - mean) ** 2 for v in w) / len(w)) ** 0.5)
    return out



def mean_std(values):
    """Mean and sample standard deviation of the values that are not None.

    Returns:
        tuple: ``(mean, std, n)``; ``mean`` is None without values and
        ``std`` is None with fewer than two.

    """
    values = [v for v in values if v is not None]
    n = len(values)
    if not n:
        return None, None, 0
    mean = sum(values) / n
    if n < 2:
        return mean, None, n
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5, n


def epoch_stats(logs, value):
    """One value per epoch averaged over several runs' logs.

    Args:
        logs (list of list): Logs (:func:`train.metrics.accuracy.load_log`).
        value: ``value(entry)`` gives a number, or None to skip the entry.

    Returns:
        list: ``(iteration, mean, std)`` per epoch that a log reaches, in
        order, over the logs that reach it (see :func:`mean_std`;
        ``iteration`` is the mean of theirs).

    """
    per_epoch = {}
    for log in logs:
        for e in log:
            v = value(e)
            if v is not None:
                per_epoch.setdefault(e['epoch'], []).append(
                    (e['iteration'], v))
    out = []
    for epoch in sorted(per_epoch):
        its, vals = zip(*per_epoch[epoch])
        mean, std, _ = mean_std(vals)
        out.append((sum(its) / len(its), mean, std))
    return out
