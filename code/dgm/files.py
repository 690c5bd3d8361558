"""One way to write a file: atomically, so that an interrupted write never leaves a damaged file.

The content goes to a temporary file in the destination's folder, is flushed to disk, and only
then replaces the destination (``os.replace`` is atomic on one file system). A crash or an
exception mid-write leaves the previous file untouched and no temporary file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomically"]


def write_atomically(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], object] | bytes,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``path`` in one step: ``write`` is the bytes, or a function that writes to a file.

    ``check(tmp)``, if given, inspects the finished temporary file and raises to refuse it; the
    destination is then left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(write, bytes):
                f.write(write)
            else:
                write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
