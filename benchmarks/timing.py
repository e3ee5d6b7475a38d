"""How the benchmarks time calls and head their reports.

:func:`median_ms` runs variants in alternating rounds after a warm-up, so
that slow drifts of the machine hit every variant alike, and gives the
median time per call; :func:`host_ms` the host's time to issue calls
without waiting for the device; :func:`forward_backward` one link's
forward and backward from a fixed output gradient, the call that the layer
benchmarks time.  :func:`report_head` gives the lines a report starts
with: device, date, versions and the command that made it.
"""
import datetime
import os
import statistics
import sys
import time

import mixnorm  # noqa: F401  (patches the stack before Chainer)
import chainer

from train.device import device_name, versions

#: where the benchmarks write their reports by default
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'results')
#: the packages whose versions a report gives
PACKAGES = ('numpy', 'chainer', 'cupy')


def no_sync():
    """The ``sync`` of a device that needs none (NumPy)."""


def median_ms(variants, rounds, inner=1, sync=no_sync, warmup=3):
    """Median ms per call of each variant; rounds alternate variants.

    Args:
        variants (dict): ``{name: function of no argument}``.
        rounds (int): timing rounds; each times every variant once.
        inner (int): calls per variant and round (the time is per call).
        sync: waits for the device (after the warm-up and around each
            variant's calls of a round).
        warmup (int): untimed calls of each variant first.
    """
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    sync()
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            times[name].append((time.perf_counter() - t0) / inner)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def host_ms(fn, n, sync):
    """Host ms per call to issue ``n`` calls of ``fn`` without waiting for
    the device (which is synchronised before and after)."""
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    ms = 1e3 * (time.perf_counter() - t0) / n
    sync()
    return ms


def forward_backward(link, x, gy):
    """A function that runs ``link`` forward on ``x`` and backward from the
    output gradient ``gy`` (training mode, gradients cleared first)."""
    def run():
        link.cleargrads()
        xv = chainer.Variable(x)
        y = link(xv)
        y.grad = gy
        y.backward()
    return run


def versions_line(packages=PACKAGES):
    """``- versions: python X, numpy Y, ...`` of the packages that import."""
    return '- versions: {}'.format(', '.join(
        '{} {}'.format(k, v) for k, v in versions(*packages).items()))


def report_head(device, module, argv, packages=PACKAGES):
    """The lines a report starts with: device, date, versions and the
    command (``python -m benchmarks.<module>`` with ``argv``, by default
    the process's arguments)."""
    return [
        '- device: {}'.format(device_name(device)),
        '- date: {}'.format(datetime.datetime.now().isoformat(
            timespec='seconds')),
        versions_line(packages),
        '- command: `python -m benchmarks.{} {}`'.format(
            module, ' '.join(sys.argv[1:] if argv is None else argv))]
