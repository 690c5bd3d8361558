"""Keep executed results in step with the library code.

Jupyter Book caches each chapter's outputs keyed on the chapter's own code cells, so an edit to
``code/dgm/*.py`` alone would leave results computed by the old code in place. Before each build,
``python -m dgm.buildstamp OUTPUT`` compares a hash of the library's sources with the one recorded
at the previous build into ``OUTPUT/_build``; when they differ it removes the execution cache and
Sphinx's saved environment, so every chapter is read and executed again with the new code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
STAMP_NAME = ".dgm-code-hash"
STALE_DIRS = (".jupyter_cache", ".doctrees")


def code_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the relative paths and contents of every ``.py`` file under ``package_dir``."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def invalidate_if_code_changed(output_root: Path, current: str | None = None) -> bool:
    """Drop cached results under ``output_root/_build`` if the library changed; True if dropped."""
    build = Path(output_root) / "_build"
    stamp = build / STAMP_NAME
    current = current or code_hash()
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
        print("dgm.buildstamp: library code changed (or first build): every chapter re-executes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
