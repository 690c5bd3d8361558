"""Sphinx extension: a rebuild never shows a stale result, and re-runs only the chapters it must.

Jupyter Book's execution cache (jupyter-cache, through myst-nb) keys a chapter on its own code
cells. This extension adds the rest of what a chapter's outputs depend on, chapter by chapter:

- the local files its cells import, found by :class:`dgm.dependencies.SourceTree` (the ``dgm``
  modules with everything they import, the data files they ship, the ``derivations/`` scripts a
  page runs) under the folders named by ``dgm_source_roots``;
- the files named by ``dgm_key_files`` (the lock file of package versions, ``_config.yml`` and
  this folder of extensions);
- quick or full mode (``DGM_QUICK``), the device, Python's version, and the name and version of
  every installed package (a hand-upgraded package is caught even if the lock file is not).

It runs inside every build, however the build is started (``make book`` or a bare
``jupyter-book build .``). At the start of reading, each cached notebook record must be vouched
for under its chapter's current key in ``dgm-keys.json`` (kept inside the cache folder); any other
record is removed through jupyter-cache's API, and its chapter is read and executed again. New
records are vouched for only when the build has finished without an exception, and only for
chapters whose key did not change while it ran: a build that stops half-way vouches for nothing,
and the next build executes those chapters again. ``DGM_RECOMPUTE=1`` drops every record.
At start-up the extension also checks that the packages under the source roots (``dgm``) are
imported from those very folders, as an editable install does; otherwise the key would hash
files that the kernel does not run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from sphinx.errors import ConfigError
from sphinx.util import logging

from dgm.config import DEVICE, QUICK, read_flag
from dgm.dependencies import SourceTree, code_of_cells, digest_files
from dgm.files import write_atomically
from dgm.repro import BUILD_KEYS_VARIABLE

LOGGER = logging.getLogger(__name__)
STAMP = "dgm-keys.json"


def code_cells(path: Path) -> list[str] | None:
    """The code cells of a notebook page (MyST Markdown notebook or ``.ipynb``), [] if it has
    none; None for a plain page, which is never executed."""
    import nbformat
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        notebook = nbformat.reads(text, as_version=4)
    elif path.suffix == ".md" and is_myst_markdown_notebook(text):
        notebook = read_myst_markdown_notebook(text, path=str(path))
    else:
        return None
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def _key_files(root: Path, names: list[str]) -> list[Path]:
    files = []
    for name in names:
        path = root / name
        if path.is_dir():
            files += [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        elif path.is_file():
            files.append(path)
    return files


def chapter_keys(app) -> tuple[dict[str, str], set[str]]:
    """The current key of every notebook page (docname -> SHA-256), and the pages among them
    that have code to run."""
    root = Path(app.srcdir)
    tree = SourceTree(root / name for name in app.config.dgm_source_roots)
    shared = digest_files(_key_files(root, app.config.dgm_key_files), root)
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    setting = f"{'quick' if QUICK else 'full'} {DEVICE} python {sys.version} {installed}"
    keys, runs_code = {}, set()
    for docname in sorted(app.env.found_docs):
        path = Path(app.env.doc2path(docname))
        cells = code_cells(path)
        if cells is not None:
            imports = digest_files(tree.closure(code_of_cells(cells)), root)
            keys[docname] = hashlib.sha256(f"{imports} {shared} {setting}".encode()).hexdigest()
            if any(cell.strip() for cell in cells):
                runs_code.add(docname)
    return keys, runs_code


def _uri(env, docname: str) -> str:
    """The URI myst-nb gives a page's cache records: its source's absolute path."""
    return str(Path(env.doc2path(docname)).absolute())


def _record_id(record) -> str:
    return f"{record.pk}:{record.hashkey}"


def open_cache(app):
    """The book's execution cache and the stamp file beside it; (None, None) when not caching."""
    config = app.env.mystnb_config
    if config.execution_mode != "cache":
        return None, None
    from jupyter_cache import get_cache

    folder = Path(config.execution_cache_path or ".jupyter_cache")  # as myst-nb opens it
    return get_cache(folder), folder / STAMP


def _read_stamp(stamp: Path) -> dict:
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return {}


def _write_stamp(stamp: Path, vouched: dict) -> None:
    write_atomically(stamp, json.dumps(vouched, indent=1).encode())


def drop_stale_records(app, env, added, changed, removed) -> list[str]:
    """Remove every cache record not vouched for under its chapter's key; re-read those pages."""
    cache, stamp = open_cache(app)
    if cache is None:
        return []
    keys, runs_code = chapter_keys(app)
    app.dgm_start_keys = keys
    os.environ[BUILD_KEYS_VARIABLE] = json.dumps(keys)  # for the kernels' cards (dgm.repro)
    by_path = {_uri(env, docname): docname for docname in keys}
    vouched = {} if read_flag("DGM_RECOMPUTE") else _read_stamp(stamp)
    kept, rerun = {}, set()
    for record in cache.list_cache_records():
        docname = by_path.get(record.uri)
        wanted = vouched.get(_record_id(record))
        if docname is not None and wanted == {"uri": record.uri, "key": keys[docname]}:
            kept[_record_id(record)] = wanted
            continue
        cache.remove_cache(record.pk)
        if docname is not None:
            rerun.add(docname)
    has_record = {by_path[r["uri"]] for r in kept.values()}
    rerun |= runs_code - has_record  # a page with code but no result yet
    _write_stamp(stamp, kept)
    app.dgm_kept_records = set(kept)
    stale = sorted(rerun - set(added) - set(changed))
    if stale:
        LOGGER.info("fresh_results: re-running %s (what they import changed, or no result yet)",
                    ", ".join(stale))
    return stale


def vouch_for_new_records(app, exception) -> None:
    """After a build that finished, vouch for the records of every chapter whose key did not
    change while the build ran. A failed or interrupted build vouches for nothing: its records
    are dropped by the next build, which executes those chapters again."""
    start_keys = getattr(app, "dgm_start_keys", None)
    if exception is not None or not start_keys:
        return
    cache, stamp = open_cache(app)
    new = [r for r in cache.list_cache_records() if _record_id(r) not in app.dgm_kept_records]
    if not new:  # nothing was executed: the stamp already holds every record
        return
    keys, _ = chapter_keys(app)
    unchanged = {_uri(app.env, d): k for d, k in start_keys.items() if keys.get(d) == k}
    vouched = _read_stamp(stamp)
    for record in new:
        key = unchanged.get(record.uri)
        if key is not None:
            vouched.setdefault(_record_id(record), {"uri": record.uri, "key": key})
    _write_stamp(stamp, vouched)


def check_local_packages(app, config) -> None:
    """The key hashes the packages under the source roots: the kernel must run those very files."""
    for root in config.dgm_source_roots:
        for init in sorted((Path(app.srcdir) / root).glob("*/__init__.py")):
            spec = importlib.util.find_spec(init.parent.name)
            origin = Path(spec.origin).resolve() if spec and spec.origin else None
            if origin is not None and origin != init.resolve():
                raise ConfigError(
                    f"{init.parent.name} is imported from {origin.parent}, not from this book's "
                    f"{init.parent}: install it from here (make setup, or pip install -e .)."
                )


def setup(app):
    app.add_config_value("dgm_source_roots", ["code", "derivations"], "env")
    app.add_config_value(
        "dgm_key_files", ["requirements-lock.txt", "_config.yml", "_ext"], "env"
    )
    app.connect("config-inited", check_local_packages)
    app.connect("env-get-outdated", drop_stale_records)
    app.connect("build-finished", vouch_for_new_records)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
