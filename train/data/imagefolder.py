"""Image-folder datasets: a directory or a .zip with one folder per class.

Layout (inside the directory or zip, optionally under one top folder)::

    train/<class>/*.png|*.jpg|*.jpeg
    test/<class>/*.png|*.jpg|*.jpeg

Classes in sorted order give the label ids.  Images are decoded once (in
a process pool when there are many), kept as uint8 arrays of shape
``(N, 3, H, W)`` and cached as an ``.npz`` under :func:`cache_dir`, keyed
by the source's file names, sizes and modification times.  Decoding
reports its progress (:class:`train.output.progress.Progress`: a counter
on a terminal, a line every 15 s in a log).

This module does not import Chainer, so that pool workers start fast.
"""
import hashlib
import io
import multiprocessing
import os
import zipfile

import numpy

from train.output.files import replace_file
from train.output.progress import Progress

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
SPLITS = ('train', 'test')
POOL_MIN_FILES = 2000  # below this, decoding serially is faster
CHUNK = 1000  # images per decoding task (and per progress update)


class DataError(Exception):
    """Data cannot be found, read or decoded; the message says which."""


def cache_dir():
    """Folder for decoded datasets: ``$MIXNORM_CACHE`` or ~/.cache/mixnorm."""
    return os.environ.get('MIXNORM_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'mixnorm')


# ------------------------------------------------------------------ listing
def _list_source(path):
    """Returns (kind, [(name, size, mtime)]).

    Names are '/'-separated and relative to ``path``; folders end in '/'.
    """
    if os.path.isdir(path):
        entries = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            if root != path:  # folders too, so that empty ones are seen
                rel = os.path.relpath(root, path).replace(os.sep, '/')
                entries.append((rel + '/', 0, 0))
            for f in sorted(files):
                full = os.path.join(root, f)
                rel = os.path.relpath(full, path).replace(os.sep, '/')
                try:
                    st = os.stat(full)
                except OSError as e:  # e.g. a dangling link
                    raise DataError('cannot read image file {}: {}'.format(
                        full, e.strerror or e))
                entries.append((rel, st.st_size, st.st_mtime_ns))
        return 'dir', entries
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return 'zip', [(i.filename, i.file_size, 0)
                           for i in z.infolist()]
    if os.path.exists(path):
        raise DataError('{} is neither a directory nor a .zip file'.format(
            path))
    raise DataError('data path {} does not exist'.format(path))


def _split_files(path, names):
    """Groups image names by split and class; checks the layout."""
    def is_image(n):
        return n.lower().endswith(IMAGE_EXTENSIONS)

    def hidden(n):
        return any(p.startswith('.') or p == '__MACOSX' for p in n.split('/'))

    images = [n for n in names if is_image(n) and not hidden(n)]
    # Accept the layout at the top or under a single enclosing folder.
    prefix = ''
    tops = {n.split('/')[0] for n in images}
    if not tops & set(SPLITS) and len(tops) == 1:
        prefix = tops.pop() + '/'
    layout = ('expected train/<class>/*.png|jpg and test/<class>/*.png|jpg '
              'in {}'.format(path))
    files = {s: {} for s in SPLITS}
    for n in images:
        if not n.startswith(prefix):
            continue
        parts = n[len(prefix):].split('/')
        if parts[0] not in SPLITS:
            continue
        if len(parts) != 3:
            raise DataError('{}: image {} is not directly inside a class '
                            'folder ({})'.format(path, n, layout))
        files[parts[0]].setdefault(parts[1], []).append(n)
    for split in SPLITS:
        if not files[split]:
            raise DataError('{}: no images under {}{}/ ({})'.format(
                path, prefix, split, layout))
    # Class folders that hold no image at all are missing their images.
    for n in names:
        parts = n[len(prefix):].split('/') if n.startswith(prefix) else []
        if (len(parts) >= 2 and parts[0] in SPLITS and parts[1]
                and not hidden(n) and parts[1] not in files[parts[0]]):
            raise DataError('{}: class folder {}{}/{} has no image files'
                            .format(path, prefix, parts[0], parts[1]))
    classes = sorted(files['train'])
    extra = sorted(set(files['test']) - set(classes))
    if extra:
        raise DataError('{}: test classes {} have no train folder'.format(
            path, ', '.join(extra)))
    return prefix, classes, files


def list_classes(path):
    """The class folders of an image-folder dataset, read from its listing
    alone (nothing is decoded).

    Raises:
        DataError: Missing path or wrong layout (as
            :func:`load_image_folder`).

    """
    path = os.path.abspath(os.path.expanduser(path))
    _, entries = _list_source(path)
    return _split_files(path, [e[0] for e in entries])[1]


# ----------------------------------------------------------------- decoding
def _decode_chunk(args):
    """Pool worker: decodes a list of images; returns (N, H, W, 3) uint8."""
    from PIL import Image

    source, kind, names = args
    out = []
    z = zipfile.ZipFile(source) if kind == 'zip' else None
    try:
        for n in names:
            label = n if kind == 'zip' else os.path.join(source, n)
            where = '{} in {}'.format(n, source) if kind == 'zip' else label
            try:
                if z is not None:
                    raw = z.read(n)
                else:
                    with open(label, 'rb') as f:
                        raw = f.read()
                with Image.open(io.BytesIO(raw)) as im:
                    arr = numpy.asarray(im.convert('RGB'), dtype=numpy.uint8)
            except Exception as e:  # PIL raises many kinds for bad files
                raise DataError('cannot decode image file {}: {}'.format(
                    where, e))
            if out and arr.shape != out[0].shape:
                raise DataError('image file {} is {}x{}, but {} is {}x{}; '
                                'all images must have one size'.format(
                                    where, arr.shape[1], arr.shape[0],
                                    names[0], out[0].shape[1],
                                    out[0].shape[0]))
            out.append(arr)
    finally:
        if z is not None:
            z.close()
    return names[0], numpy.stack(out)


def _decode_all(source, kind, names, processes, done=lambda n: None):
    """Decodes ``names``; calls ``done(n)`` after each chunk of n images."""
    chunks = [(source, kind, names[i:i + CHUNK])
              for i in range(0, len(names), CHUNK)]
    results = []
    if processes > 1 and len(names) >= POOL_MIN_FILES:
        # spawn: the parent may hold BLAS or CUDA threads that fork would copy
        context = multiprocessing.get_context('spawn')
        with context.Pool(min(processes, len(chunks))) as pool:
            for result in pool.imap(_decode_chunk, chunks):
                results.append(result)
                done(len(result[1]))
    else:
        for chunk in chunks:
            results.append(_decode_chunk(chunk))
            done(len(results[-1][1]))
    first_name, first = results[0]
    for name, arr in results[1:]:
        if arr.shape[1:] != first.shape[1:]:
            raise DataError('image file {} is {}x{}, but {} is {}x{}; all '
                            'images must have one size'.format(
                                name, arr.shape[2], arr.shape[1], first_name,
                                first.shape[2], first.shape[1]))
    x = numpy.concatenate([a for _, a in results])
    return numpy.ascontiguousarray(x.transpose(0, 3, 1, 2))


def channel_stats(x, chunk=4096):
    """Per-channel mean and standard deviation of uint8 images.

    Args:
        x (numpy.ndarray): Images, shape ``(N, C, H, W)``.
        chunk (int): Images summed at a time (bounds float64 memory).

    Returns:
        tuple: ``(mean, std)``, float32 arrays of shape ``(C,)``.

    """
    total = numpy.zeros(x.shape[1])
    total_sq = numpy.zeros(x.shape[1])
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].astype(numpy.float64)
        total += part.sum(axis=(0, 2, 3))
        total_sq += (part * part).sum(axis=(0, 2, 3))
    count = float(len(x) * x.shape[2] * x.shape[3])
    mean = total / count
    std = numpy.sqrt(numpy.maximum(total_sq / count - mean * mean, 0))
    return mean.astype(numpy.float32), std.astype(numpy.float32)


def load_image_folder(path, processes=None, log=None):
    """Loads (decoding at most once) an image-folder dataset.

    Args:
        path (str): Directory or .zip file with the layout above.
        processes (int): Decoding processes; default: the CPU count.
        log: Stream for the decoding's progress (default: stderr).

    Returns:
        dict: ``train_x``, ``test_x`` (uint8, ``(N, 3, H, W)``), ``train_y``,
        ``test_y`` (int32), ``classes`` (list of str), ``mean``, ``std``
        (float32 per channel, from the training split).

    Raises:
        DataError: Missing path, wrong layout, or an unreadable image (the
            message names the file).

    """
    path = os.path.abspath(os.path.expanduser(path))
    kind, entries = _list_source(path)
    prefix, classes, files = _split_files(path, [e[0] for e in entries])
    key = hashlib.sha1(repr((path, sorted(entries))).encode()).hexdigest()
    cache = os.path.join(cache_dir(), '{}-{}.npz'.format(
        os.path.basename(path.rstrip('/')) or 'data', key[:16]))
    if os.path.exists(cache):
        try:
            with numpy.load(cache) as f:
                data = {k: f[k] for k in f.files}
            data['classes'] = [str(c) for c in data['classes']]
            return data
        except Exception:  # unreadable cache: decode again
            pass
    data = {'classes': classes}
    processes = processes or os.cpu_count() or 1
    total = sum(len(v) for split in SPLITS for v in files[split].values())
    progress = Progress('decoding {}'.format(os.path.basename(path)), total,
                        'images', stream=log)
    progress.stream.write('decoding {:,} images of {} once (then cached in '
                          '{})\n'.format(total, path, cache_dir()))
    count = [0]

    def done(n):
        count[0] += n
        progress.update(count[0])
    for split in SPLITS:
        names, labels = [], []
        for label, c in enumerate(classes):
            for n in sorted(files[split].get(c, ())):
                names.append(n)
                labels.append(label)
        data[split + '_x'] = _decode_all(path, kind, names, processes, done)
        data[split + '_y'] = numpy.asarray(labels, dtype=numpy.int32)
    if data['train_x'].shape[1:] != data['test_x'].shape[1:]:
        raise DataError('{}: train images are {}x{} but test images are '
                        '{}x{}'.format(path, *(data['train_x'].shape[2:] +
                                               data['test_x'].shape[2:])))
    data['mean'], data['std'] = channel_stats(data['train_x'])
    os.makedirs(cache_dir(), exist_ok=True)
    replace_file(cache, lambda f: numpy.savez(  # a killed run: no cache
        f, **dict(data, classes=numpy.asarray(classes))))
    progress.finish('; cached as {}'.format(cache))
    return data
