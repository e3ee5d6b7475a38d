"""NaN/Inf reports of the normalization links, shared by MN and BN."""
from chainer import backend

from mixnorm import cuda


class FiniteChecks(object):

    """A training link's NaN/Inf policy: a ``ValueError`` naming the link.

    On the CPU the check raises in the call that sees the bad input.  On a
    GPU it does not wait for the device: a device flag is set
    (:class:`mixnorm.cuda.finite.DeviceFiniteFlag`) and a later call, or
    :meth:`check_finite_now`, raises.  A class sets ``_nonfinite_effect``,
    what the bad input prevents; an instance calls :meth:`_init_finite`.
    """

    _nonfinite_effect = 'the batch statistics are not finite'

    def _init_finite(self, check_finite):
        self.check_finite = check_finite
        self._device_flag = cuda.finite.DeviceFiniteFlag()

    def _nonfinite(self, earlier=False):
        return ValueError(
            '{} {!r}: the input of {} contains NaN or Inf, or values so '
            'large that the batch statistics overflow; {}'.format(
                type(self).__name__, self.name or '(unnamed)',
                'an earlier training step (on a GPU the check does not wait '
                'for the device, so it reports a bad input one or more calls '
                'later)' if earlier else 'this training step',
                self._nonfinite_effect))

    def _check_finite(self, a):
        """Raise (CPU) or queue a deferred check (GPU) for NaN/Inf in a."""
        if cuda.supports(a):
            self._device_flag.check(a)  # queued, read by a later call
        elif not bool(backend.get_array_module(a).isfinite(a).all()):
            raise self._nonfinite()

    def _raise_if_seen(self):
        """Raise for a bad input that an earlier GPU call flagged."""
        if self._device_flag.seen():
            self._raise_earlier_nonfinite()

    def _raise_earlier_nonfinite(self):
        self._device_flag.reset()
        raise self._nonfinite(earlier=True)

    def check_finite_now(self):
        """Wait for the GPU and raise if a checked input had NaN or Inf.

        Training calls report a bad GPU input one or more calls late; this
        synchronises and reports it now (e.g. at the end of an epoch).  On
        the CPU every call already raises at once, so this does nothing.
        """
        if self._device_flag.seen(wait=True):
            self._raise_earlier_nonfinite()
