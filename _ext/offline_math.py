"""Sphinx extension: the book serves its own MathJax 3, fetched before the build when missing.

The formulas must render with no network, so MathJax is published from ``_vendor/mathjax`` (see
``html_static_path`` and ``mathjax_path`` in ``_config.yml``). When that copy is missing (a fresh
clone built with a bare ``jupyter-book build .``), this extension fetches the npm registry's
``mathjax`` package with ``npm pack`` and installs its ``es5`` folder in one rename. If that is
not possible, the build stops with one line that says what to run. ``make mathjax`` and
``python _ext/offline_math.py`` do the same fetch by themselves.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from sphinx.errors import ConfigError

from dgm.files import npm_pack

VERSION = "3.2.2"
ENTRY = "tex-mml-chtml.js"


def mathjax_folder(root: Path) -> Path:
    return Path(root) / "_vendor" / "mathjax"


def fetch_mathjax(root: Path) -> Path:
    """Install MathJax ``VERSION`` into ``root/_vendor/mathjax`` unless it is there already."""
    target = mathjax_folder(root)
    if (target / ENTRY).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mathjax-") as work:
        tarball = npm_pack(f"mathjax@{VERSION}", work)
        with tarfile.open(tarball) as archive:
            archive.extractall(work, filter="data")
        es5 = Path(work) / "package" / "es5"
        if not (es5 / ENTRY).is_file():
            raise RuntimeError(f"the mathjax@{VERSION} package has no es5/{ENTRY}")
        shutil.rmtree(target, ignore_errors=True)
        es5.rename(target)
    return target


def ensure_mathjax(app, config) -> None:
    try:
        fetch_mathjax(Path(app.srcdir))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        raise ConfigError(
            f"MathJax is missing from _vendor/mathjax and could not be fetched ({error}); "
            "once npm works, run `make mathjax` and build again."
        ) from error


def setup(app):
    app.connect("config-inited", ensure_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print(f"MathJax {VERSION} at {fetch_mathjax(Path(sys.argv[1] if len(sys.argv) > 1 else '.'))}")
