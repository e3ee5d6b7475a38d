"""Batches of uint8 images, normalized or scaled on the training device.

* :class:`Preprocess` (classifiers, Section 4.1) turns a batch of images
  into normalized float32 on the device: per-channel mean/std of the
  training split, and for training a random crop from the image
  zero-padded by 4 pixels plus a random horizontal flip.  The iterator
  only gathers uint8 arrays, so no worker processes are needed; the
  augmentation is vectorized over the batch and its random numbers come
  from NumPy's global generator (so seeding and snapshots make it
  reproducible).
* :class:`DeviceImages` (GANs, Section 4.5) keeps the images on the device
  and gathers shuffled batches there, scaled to [-1, 1].
"""
import numpy

import chainer


class Preprocess(chainer.dataset.Converter):

    """Batches uint8 images and normalizes (and augments) them on a device.

    Args:
        mean (numpy.ndarray): Per-channel mean, shape ``(C,)``.
        std (numpy.ndarray): Per-channel standard deviation, shape ``(C,)``.
        augment (bool): Random crop from the zero-padded image and random
            horizontal flip (training only).
        pad (int): Zero padding of the random crop.

    """

    def __init__(self, mean, std, augment, pad=4):
        self.mean = numpy.asarray(mean, numpy.float32).reshape(1, -1, 1, 1)
        self.scale = 1 / numpy.asarray(std, numpy.float32).reshape(
            1, -1, 1, 1)
        self.augment = augment
        self.pad = pad

    def __call__(self, batch, device):
        x = numpy.stack([b[0] for b in batch])
        t = numpy.asarray([b[1] for b in batch], dtype=numpy.int32)
        n, c, h, w = x.shape
        if self.augment:  # draw on the host: one generator state to save
            p = self.pad
            dy = numpy.random.randint(0, 2 * p + 1, size=n)
            dx = numpy.random.randint(0, 2 * p + 1, size=n)
            flip = numpy.random.rand(n) < 0.5
        x, t = device.send((x, t))
        xp = device.xp
        if self.augment:
            padded = xp.zeros((n, c, h + 2 * p, w + 2 * p), numpy.uint8)
            padded[:, :, p:p + h, p:p + w] = x
            rows = xp.asarray(dy)[:, None] + xp.arange(h)  # (n, h)
            cols = xp.asarray(dx)[:, None] + xp.arange(w)  # (n, w)
            cols = xp.where(xp.asarray(flip)[:, None], cols[:, ::-1], cols)
            x = padded[xp.arange(n)[:, None, None, None],
                       xp.arange(c)[None, :, None, None],
                       rows[:, None, :, None], cols[:, None, None, :]]
        x = (x.astype(numpy.float32) - xp.asarray(self.mean)) * xp.asarray(
            self.scale)
        return x, t


class DeviceImages(chainer.dataset.Iterator):

    """Shuffled batches of images that stay on the device.

    The uint8 images are sent to the device once.  Each epoch draws a
    permutation from NumPy's global generator and sends it once; a batch is
    gathered on the device and scaled to float32 in [-1, 1].  A batch that
    crosses an epoch's end takes the rest of the old order and the start of
    the new one (as Chainer's SerialIterator).

    Args:
        images (numpy.ndarray): uint8 ``(N, C, H, W)``.
        batch_size (int): Images per batch (at most N).
        device: Chainer device.

    """

    def __init__(self, images, batch_size, device):
        if len(images) < batch_size:
            raise ValueError('{} images are fewer than one batch ({})'
                             .format(len(images), batch_size))
        self.device = device
        self.batch_size = batch_size
        self._n = len(images)
        self._images = device.send(numpy.ascontiguousarray(images))
        self.epoch = 0
        self.current_position = 0
        self.is_new_epoch = False
        self._order = None  # host permutation of the current epoch
        self._order_device = None

    @property
    def epoch_detail(self):
        return self.epoch + self.current_position / float(self._n)

    def _indices(self):
        if self._order is None:
            self._order = numpy.random.permutation(self._n)
        if self._order_device is None:
            self._order_device = self.device.send(self._order)
        i, b = self.current_position, self.batch_size
        if i + b < self._n:
            self.current_position = i + b
            self.is_new_epoch = False
            return self._order_device[i:i + b]
        rest = self._order[i:]
        self._order = numpy.random.permutation(self._n)
        self._order_device = None
        take = b - len(rest)
        self.current_position = take
        self.epoch += 1
        self.is_new_epoch = True
        return self.device.send(numpy.concatenate([rest,
                                                   self._order[:take]]))

    def __next__(self):
        x = self._images[self._indices()]
        return x.astype(numpy.float32) * (1 / 127.5) - 1

    next = __next__

    def serialize(self, serializer):
        self.current_position = serializer('current_position',
                                           self.current_position)
        self.epoch = serializer('epoch', self.epoch)
        self.is_new_epoch = serializer('is_new_epoch', self.is_new_epoch)
        if isinstance(serializer, chainer.serializer.Serializer):
            serializer('order', numpy.asarray(
                self._order if self._order is not None else [], numpy.int64))
            return
        order = serializer('order', None)
        self._order = numpy.asarray(order) if len(order) else None
        self._order_device = None
