"""Mixture normalization synchronised over the processes of ChainerMN."""
from mixnorm.links import MixtureNormalization


class MultiNodeMixtureNormalization(MixtureNormalization):
    """:class:`MixtureNormalization` over all processes of a communicator.

    Every process calls the layer on its own share of the mini-batch, and
    all of them normalize as one process would the whole batch: one GMM is
    fitted to the union of the shards (:func:`mixnorm.gmm.fit` with
    ``comm``: sufficient statistics all-reduced at every k-means and EM
    iteration, k-means++ on rank 0 over a gathered subsample), the Eq.
    35-36 statistics are all-reduced in the forward pass and their gradient
    terms in the backward pass (:class:`mixnorm.functions.
    MixtureNormalizationFunction`), and every process pushes the same
    statistics, so the queues are identical and test mode needs no
    communication.  Shards may differ in size.

    On a GPU the fit runs on the CUDA kernels between the collectives; the
    transform runs the array-generic code, and the collectives synchronise
    with the host as ChainerMN's do.

    Args:
        size (int): number of channels C.
        comm: a ChainerMN communicator (``chainermn.create_communicator``).
        **kwargs: the arguments of :class:`MixtureNormalization`.
    """

    def __init__(self, size, comm, **kwargs):
        super(MultiNodeMixtureNormalization, self).__init__(size, **kwargs)
        self.comm = comm
