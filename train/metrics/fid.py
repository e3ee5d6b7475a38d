"""The Fréchet Inception Distance (FID) of two sets of features, and the
updates a run needs to reach one.

The FID (Heusel et al., 2017; the paper's [46]) of two sets of images is
the Fréchet distance between Gaussians fitted to their features::

    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

:func:`frechet_distance` follows the numerics of
``calculate_frechet_distance`` in mseitzer/pytorch-fid (``fid_score.py``):
retry with ``eps`` on the diagonals when the square root is not finite,
reject a square root whose diagonal has a clearly imaginary part, keep the
real part otherwise.  The square root itself is computed with NumPy only:
for symmetric positive semi-definite ``A`` and ``B``, ``A B`` has the
eigenvalues of the symmetric ``A^(1/2) B A^(1/2)``, so the trace of the
square root is the sum of the square roots of that matrix's eigenvalues
(two symmetric eigendecompositions, no general ``sqrtm``).  The features
themselves (Inception-V3, or the proxy) are :mod:`train.fid`'s.

Fewer than :data:`MIN_SAMPLES` (2,048) images per set is an error unless
the caller allows it: the covariance of 2,048 features from fewer images is
singular, and the FID from small sets is strongly biased upwards.  GAN
configurations are checked against it when they are loaded
(:mod:`train.config.gan`).
"""
import numpy

MIN_SAMPLES = 2048


class FIDError(ValueError):
    """FID statistics cannot be computed as asked; the message says why."""


def statistics(features, allow_few=False):
    """Mean and covariance of a set of feature vectors.

    Args:
        features: ``(N, D)`` array, one row per image.
        allow_few (bool): Accept fewer than :data:`MIN_SAMPLES` rows.

    Returns:
        tuple: ``(mu, sigma)``, float64 ``(D,)`` and ``(D, D)`` (the
        unbiased covariance, as ``numpy.cov``).

    Raises:
        FIDError: Not a 2-D array, fewer than 2 rows, or fewer than
            :data:`MIN_SAMPLES` without ``allow_few``.

    """
    features = numpy.asarray(features, dtype=numpy.float64)
    if features.ndim != 2:
        raise FIDError('features must be an (N, D) array, got shape {}'
                       .format(features.shape))
    n = len(features)
    if n < 2:
        raise FIDError('a covariance needs at least 2 samples, got {}'
                       .format(n))
    if n < MIN_SAMPLES and not allow_few:
        raise FIDError(
            'FID statistics from {} samples: at least {} are needed (with '
            'fewer the covariance is singular and the FID biased); allow '
            'fewer explicitly (fid.allow_few_samples, --allow-few) only for '
            'smoke tests'.format(n, MIN_SAMPLES))
    return features.mean(axis=0), numpy.cov(features, rowvar=False)


def _sqrt_product(sigma1, sigma2):
    """A matrix with the trace (and eigenvalues) of ``(sigma1 sigma2)^(1/2)``.

    ``S^(1/2) sigma2 S^(1/2)`` with ``S = sigma1`` (negative eigenvalues of
    ``sigma1`` from rounding clipped to 0) is symmetric and similar to
    ``sigma1 sigma2`` on its range; its square root is taken through its
    eigenvalues, complex where one is negative.
    """
    w, v = numpy.linalg.eigh(sigma1)
    root1 = (v * numpy.sqrt(numpy.clip(w, 0, None))) @ v.T
    m = root1 @ sigma2 @ root1
    w, v = numpy.linalg.eigh((m + m.T) / 2)
    roots = numpy.sqrt(w.astype(numpy.complex128))
    if not roots.imag.any():
        roots = roots.real
    return (v * roots) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: Mean vectors ``(D,)``.
        sigma1, sigma2: Covariance matrices ``(D, D)``.
        eps (float): Added to both diagonals when the matrix square root
            is not finite (then tried once more).

    Returns:
        float

    Raises:
        FIDError: Shapes differ, the square root stays non-finite, or its
            diagonal has an imaginary part above 1e-3.

    """
    mu1, mu2 = (numpy.atleast_1d(numpy.asarray(m, numpy.float64))
                for m in (mu1, mu2))
    sigma1, sigma2 = (numpy.atleast_2d(numpy.asarray(s, numpy.float64))
                      for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or \
            sigma1.shape != mu1.shape * 2:
        raise FIDError('statistics do not match: means {} and {}, '
                       'covariances {} and {}'.format(
                           mu1.shape, mu2.shape, sigma1.shape, sigma2.shape))

    def root(s1, s2):
        try:
            r = _sqrt_product(s1, s2)
        except numpy.linalg.LinAlgError:
            return None
        return r if numpy.isfinite(r).all() else None

    covmean = root(sigma1, sigma2)
    if covmean is None:
        offset = numpy.eye(len(mu1)) * eps
        covmean = root(sigma1 + offset, sigma2 + offset)
        if covmean is None:
            raise FIDError('the matrix square root of the covariance product '
                           'is not finite, even with {} added to the '
                           'diagonals'.format(eps))
    if numpy.iscomplexobj(covmean):
        imag = numpy.abs(numpy.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise FIDError('the matrix square root has an imaginary '
                           'component of {:.3g} on its diagonal (are both '
                           'covariances positive semi-definite?)'.format(
                               imag))
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + numpy.trace(sigma1) + numpy.trace(sigma2) -
                 2 * numpy.trace(covmean))


def best_fid(iterations, fids):
    """``(iteration, FID)`` of the lowest FID of a curve, or None."""
    if not fids:
        return None
    i = min(range(len(fids)), key=fids.__getitem__)
    return iterations[i], fids[i]


def steps_to_fid(iterations, fids, target):
    """Updates until the FID first falls to ``target`` or below.

    Returns:
        tuple: ``(evaluated, interpolated)``: the first evaluation at or
        below the target, and the update where the straight line from the
        evaluation before it crosses the target (the paper's 25K between
        evaluations every 10K reads as such); ``(None, None)`` if never.

    """
    for i, (it, value) in enumerate(zip(iterations, fids)):
        if value <= target + 1e-9:
            if i == 0 or fids[i - 1] == value:
                return it, float(it)
            prev_it, prev = iterations[i - 1], fids[i - 1]
            return it, prev_it + (it - prev_it) * (prev - target) / (
                prev - value)
    return None, None
