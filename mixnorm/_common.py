"""Types and helpers shared by every part of mixnorm (a leaf module).

Nothing here imports from :mod:`mixnorm`, so the NumPy engine, the CUDA
package and the links can all import it without a cycle.
"""
import collections
import math
import warnings

GMM = collections.namedtuple('GMM', ['weights', 'means', 'variances'])
GMM.__doc__ = """Diagonal GMM: ``weights`` (K,), ``means`` (K, D),
``variances`` (K, D).  A component of weight 0 is absent."""


def default_n_local_trials(n_components):
    """The paper's ``2 + log(K)`` k-means++ trials, as ``2 + floor(ln K)``."""
    return 2 + int(math.log(n_components))


def split_iterations(em_iter):
    """Split the paper's "EM iter." into (k-means, EM) iterations.

    Section 4.2 uses the same number at both phases and reports their sum;
    an odd total gives the extra iteration to EM (1 -> 0 + 1, 3 -> 1 + 2).
    """
    n_kmeans = em_iter // 2
    return n_kmeans, em_iter - n_kmeans


def resolve_em_iter(em_iter, n_iter, where, default=2):
    """The paper's "EM iter." from ``em_iter`` or its deprecated alias.

    Args:
        em_iter (int or None): the new keyword.
        n_iter (int or None): the old keyword; warns when given.
        where (str): the caller, named in the warning and the error.
        default (int): used when neither is given.

    Raises:
        TypeError: both are given.
    """
    if n_iter is not None:
        if em_iter is not None:
            raise TypeError('{}: give em_iter only (n_iter is its deprecated '
                            'alias)'.format(where))
        warnings.warn('{}: n_iter is deprecated; it is the paper\'s "EM '
                      'iter." and is now called em_iter'.format(where),
                      DeprecationWarning, stacklevel=3)
        return n_iter
    return default if em_iter is None else em_iter
