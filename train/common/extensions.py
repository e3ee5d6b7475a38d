"""Trainer extensions shared by the classifier and the GAN trainers: the
check for NaN or Inf at snapshot time, and the random generators' state in
snapshots (with the seeding they restore)."""
import random

import numpy

import mixnorm
import chainer
from chainer import training


def seed_gpu(seed):
    """Seed CuPy's generator and the kernel path's (mixnorm.cuda.seed)."""
    mixnorm.cuda.seed(seed)


def seed_all(seed, use_cupy):
    """Seed Python's and NumPy's generators, and on a GPU CuPy's and the
    kernel path's (:func:`seed_gpu`)."""
    random.seed(seed)
    numpy.random.seed(seed)
    if use_cupy:
        seed_gpu(seed)


def mixture_links(model):
    """``[(path, link)]`` of the model's MixtureNormalization links.

    Paths are as :func:`models.build` returns them (``conv3/bn``).
    """
    return [(name.lstrip('/'), link) for name, link in
            model.namedlinks(skipself=True)
            if isinstance(link, mixnorm.MixtureNormalization)]


class CheckFinite(training.Extension):

    """Reports at each epoch end a NaN or Inf that MN or BN saw on a GPU.

    On a GPU a training call of :class:`mixnorm.MixtureNormalization` or
    :class:`mixnorm.BatchNormalization` reports a non-finite input one or
    more calls late (it does not wait for the device), so one in the last
    steps of a run would go unreported.  This calls
    :meth:`~mixnorm.MixtureNormalization.check_finite_now` on every such
    link, which waits for the device and raises the link's
    ``ValueError``: the run stops before the epoch is evaluated, logged or
    snapshotted.  On the CPU every call already raises at once, and the
    check costs nothing.

    Args:
        model (chainer.Link): The model being trained.

    """

    trigger = 1, 'epoch'
    # before the Evaluator and LogReport (writers) and the snapshot (-100)
    priority = training.PRIORITY_WRITER + 1

    def __init__(self, model):
        self.links = [link for _, link in model.namedlinks()
                      if hasattr(link, 'check_finite_now')]

    def __call__(self, trainer):
        for link in self.links:
            link.check_finite_now()


class RandomStates(training.Extension):

    """Keeps the random generators' state in snapshots.

    Saves and restores NumPy's global generator (which draws the data
    order, the augmentation and, on the CPU, mixture normalization's
    seeding) and Python's :mod:`random`.  CuPy cannot export its
    generator's state, so on a GPU it and the kernel path's generator
    (:func:`mixnorm.cuda.seed`) are reseeded at every epoch end from
    NumPy's generator, and the seed is what the snapshot keeps.

    Args:
        use_cupy (bool): Whether the run is on a GPU.
        cupy_seed (int): Seed CuPy was given at the start.

    """

    trigger = 1, 'epoch'
    priority = -60  # after the schedule, before the snapshot (-100)

    def __init__(self, use_cupy, cupy_seed):
        self.use_cupy = use_cupy
        self.cupy_seed = cupy_seed

    def __call__(self, trainer):
        if self.use_cupy:
            self.cupy_seed = int(numpy.random.randint(2 ** 31 - 1))
            seed_gpu(self.cupy_seed)

    def serialize(self, serializer):
        if isinstance(serializer, chainer.serializer.Serializer):
            _, keys, pos, has_gauss, gauss = numpy.random.get_state()
            version, py_state, py_gauss = random.getstate()
            serializer('numpy_keys', keys)
            serializer('numpy_pos', numpy.int64(pos))
            serializer('numpy_gauss', numpy.array(
                [has_gauss, gauss], numpy.float64))
            serializer('python_state', numpy.asarray(py_state, numpy.int64))
            serializer('python_gauss', numpy.float64(
                numpy.nan if py_gauss is None else py_gauss))
            serializer('cupy_seed', numpy.int64(self.cupy_seed))
            return
        keys = serializer('numpy_keys', None)
        pos = serializer('numpy_pos', None)
        has_gauss, gauss = serializer('numpy_gauss', None)
        numpy.random.set_state(('MT19937', numpy.asarray(keys, numpy.uint32),
                                int(pos), int(has_gauss), float(gauss)))
        py_state = serializer('python_state', None)
        py_gauss = float(serializer('python_gauss', None))
        random.setstate((3, tuple(int(v) for v in py_state),
                         None if numpy.isnan(py_gauss) else py_gauss))
        self.cupy_seed = int(serializer('cupy_seed', None))
        if self.use_cupy:
            seed_gpu(self.cupy_seed)
