"""Files replaced whole or not at all: the one atomic write of the project (engine cache, checkpoints, export).

    write  .<name>.<random><suffix> beside ``path`` (same folder: the rename stays on one file system)
    fsync  the temporary file           (a power loss cannot rename a file whose data never reached the disk)
    rename it over ``path``             (os.replace: atomic on POSIX; readers see the old file or the new one)
    fsync  the folder                   (the rename itself survives a power loss)

A crash or kill at any moment leaves the previous file whole; an exception while writing removes the temporary
file. The file gets the permissions of a plain ``open`` (0o666 less the umask), not mkstemp's owner-only 0o600.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # a folder too: Linux syncs its entries (the rename) this way
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, suffix: str = '.tmp') -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``path`` for the caller to write (by name: an exporter, a
    serializer); when the block ends it is synced and renamed over ``path``; if the block raises, it is deleted
    and ``path`` is left as it was. The folder is created when missing.

    Raises:
        OSError: the folder or the file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{secrets.token_hex(4)}{suffix}')
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (module docstring).

    Raises:
        OSError: the folder or the file cannot be written.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
