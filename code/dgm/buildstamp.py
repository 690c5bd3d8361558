"""Keep executed results in step with the library code.

Jupyter Book caches each chapter's outputs keyed on the chapter's own code cells, so an edit to
``code/dgm/*.py`` (or to a ``derivations/`` script that the checks page runs) would leave results
computed by the old code in place. Before each build, ``python -m dgm.buildstamp OUTPUT``
compares a hash of those sources with the one recorded at the previous build into
``OUTPUT/_build``; when they differ it removes the execution cache and Sphinx's saved
environment, so every chapter is read and executed again with the new code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from dgm.config import QUICK

PACKAGE_DIR = Path(__file__).resolve().parent
# What executed pages import: the library (code and the data files it ships, such as the language
# model's corpus) and, in a checkout of the book, the derivation scripts.
SOURCE_DIRS = (PACKAGE_DIR, PACKAGE_DIR.parents[1] / "derivations")
SOURCE_SUFFIXES = (".py", ".txt")
STAMP_NAME = ".dgm-code-hash"
STALE_DIRS = (".jupyter_cache", ".doctrees")


def code_hash(source_dirs: tuple[Path, ...] = SOURCE_DIRS) -> str:
    """SHA-256 over the names and contents of every source file (``.py``, ``.txt``) in the dirs."""
    digest = hashlib.sha256()
    for root in source_dirs:
        files = [p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()]
        for path in sorted(files):
            name = f"{root.name}/{path.relative_to(root).as_posix()}"
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_key() -> str:
    """What cached results depend on beyond the cells: the sources, and full or quick mode.

    A quick build (``DGM_QUICK=1``) into the same folder as a full one must not leave its
    shortened results in the cache for the next full build to reuse, nor the other way round.
    """
    return f"{code_hash()} {'quick' if QUICK else 'full'}"


def invalidate_if_code_changed(output_root: Path, current: str | None = None) -> bool:
    """Drop cached results under ``output_root/_build`` if the key changed; True if dropped."""
    build = Path(output_root) / "_build"
    stamp = build / STAMP_NAME
    current = current or build_key()
    if stamp.exists() and stamp.read_text().strip() == current:
        return False
    for name in STALE_DIRS:
        shutil.rmtree(build / name, ignore_errors=True)
    build.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=build, prefix=f"{STAMP_NAME}.")
    with os.fdopen(fd, "w") as f:
        f.write(current + "\n")
    os.replace(tmp, stamp)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m dgm.buildstamp OUTPUT_ROOT   (the folder that holds _build/)")
        return 2
    if invalidate_if_code_changed(Path(argv[0])):
        print("dgm.buildstamp: code or build mode changed (or first build); all chapters re-run")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
