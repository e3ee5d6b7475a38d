"""The data the benchmarks time on: activation-like tensors and rows, and
the GMM that an EM benchmark starts from."""
import numpy

from mixnorm import gmm


def activations(shape, seed=0):
    """ReLU-then-conv-like input: a few modes per channel, float32."""
    rng = numpy.random.RandomState(seed)
    n, c, h, w = shape
    mode = rng.randint(0, 3, (n, 1, h, w))
    centers = rng.randn(3, c) * 2
    x = numpy.take(centers, mode[:, 0], axis=0).transpose(0, 3, 1, 2)
    x = numpy.maximum(x + rng.randn(*shape), 0) + 0.1 * rng.randn(*shape)
    return x.astype(numpy.float32)


def activation_rows(m, d, k, seed=0):
    """Activation-like rows for a GMM fit: K modes, ReLU-shaped channels,
    float64."""
    rng = numpy.random.RandomState(seed)
    centers = rng.randn(k, d) * 2
    labels = rng.randint(0, k, m)
    x = centers[labels] + rng.randn(m, d) * rng.uniform(0.5, 1.5, (k, d))[
        labels]
    return numpy.maximum(x, 0) + 0.1 * rng.randn(m, d)


def initial_gmm(x, k, seed=0):
    """The GMM our fit starts EM from: k-means++ and one k-means step."""
    rng = numpy.random.RandomState(seed)
    centers = gmm.kmeans_pp(x, k, rng)
    centers, labels = gmm.kmeans(x, centers, 1)
    onehot = (labels[:, None] == numpy.arange(k)).astype(x.dtype)
    counts = onehot.sum(0)
    var = (onehot.T @ x ** 2) / counts[:, None] - centers ** 2
    return gmm.GMM(counts / len(x), centers, numpy.maximum(var, 1e-3))
