"""Files written whole or not at all.

A writer writes a temporary file beside the target, named for the process
(``<path>.<pid>.tmp``, so that two processes never share one), and renames
it into place with ``os.replace``, which is atomic on POSIX: a run killed
at any moment leaves the previous file or the new one, never a part of
one.  The decoded-data cache, ``run.json``, the records of a run, the FID
statistics, the plots of a run and a study's state are written so.
"""
import json
import os


def replace_file(path, write, binary=True):
    """Writes ``path`` through ``write(fileobj)`` and renames it into place.

    Args:
        path (str): The file.
        write: Called with the temporary file, open for writing (NumPy's
            ``savez`` and matplotlib's ``savefig`` take it as they take a
            path; ``savefig`` then needs its ``format``).
        binary (bool): Open it in binary mode, else as text.

    """
    tmp = '{}.{}.tmp'.format(path, os.getpid())
    try:
        with open(tmp, 'wb' if binary else 'w') as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # write() raised
            os.remove(tmp)


def write_json(path, value):
    """Writes ``value`` as indented JSON with sorted keys, atomically."""
    replace_file(path, lambda f: json.dump(value, f, indent=2,
                                           sort_keys=True), binary=False)
