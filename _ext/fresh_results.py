"""Sphinx extension: a rebuild never shows a stale result, and re-runs only the chapters it must.

Jupyter Book's execution cache (jupyter-cache, through myst-nb) keys a chapter on its own code
cells. This extension adds the rest of what a chapter's outputs depend on, chapter by chapter:

- the local files its cells import, found by :class:`dgm.dependencies.SourceTree` (the ``dgm``
  modules with everything they import, the data files they ship, the ``derivations/`` scripts a
  page runs) under the folders named by ``dgm_source_roots``;
- the files named by ``dgm_key_files`` (the lock file of package versions, ``_config.yml`` and
  this folder of extensions);
- quick or full mode (``DGM_QUICK``), the device, and Python's version.

It runs inside every build, however the build is started (``make book`` or a bare
``jupyter-book build .``). At the start of reading, each cached notebook record must be vouched
for under its chapter's current key in ``dgm-keys.json`` (kept inside the cache folder); any other
record is removed through jupyter-cache's API, and its chapter is read and executed again. A
record is vouched for once its chapter has been read, so a build that stops half-way vouches for
nothing it did not finish. ``DGM_RECOMPUTE=1`` drops every record.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from sphinx.util import logging

from dgm.config import DEVICE, QUICK, read_flag
from dgm.dependencies import SourceTree, code_of_cells, digest_files
from dgm.files import write_atomically

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
    setting = f"{'quick' if QUICK else 'full'} {DEVICE} python {sys.version.split()[0]}"
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


def _record_id(record) -> str:
    return f"{record.pk}:{record.hashkey}"


def _open_cache(app):
    config = app.env.mystnb_config
    if config.execution_mode != "cache":
        return None, None
    from jupyter_cache import get_cache

    folder = Path(config.execution_cache_path)
    return get_cache(folder), folder / STAMP


def _read_stamp(stamp: Path) -> dict:
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return {}


def drop_stale_records(app, env, added, changed, removed) -> list[str]:
    """Remove every cache record not vouched for under its chapter's key; re-read those pages."""
    cache, stamp = _open_cache(app)
    if cache is None:
        return []
    keys, runs_code = chapter_keys(app)
    env.dgm_chapter_keys = keys
    by_path = {str(Path(env.doc2path(docname))): docname for docname in keys}
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
    write_atomically(stamp, json.dumps(kept, indent=1).encode())
    stale = sorted(rerun - set(added) - set(changed))
    if stale:
        LOGGER.info("fresh_results: re-running %s (what they import changed, or no result yet)",
                    ", ".join(stale))
    return stale


def vouch_for_records(app, doctree) -> None:
    """Once a chapter has been read (and executed if needed), vouch for its record(s)."""
    keys = getattr(app.env, "dgm_chapter_keys", None)
    docname = app.env.docname
    if not keys or docname not in keys:
        return
    cache, stamp = _open_cache(app)
    if cache is None:
        return
    uri = str(Path(app.env.doc2path(docname)))
    vouched = _read_stamp(stamp)
    for record in cache.list_cache_records():
        if record.uri == uri:
            vouched.setdefault(_record_id(record), {"uri": uri, "key": keys[docname]})
    write_atomically(stamp, json.dumps(vouched, indent=1).encode())


def setup(app):
    app.add_config_value("dgm_source_roots", ["code", "derivations"], "env")
    app.add_config_value(
        "dgm_key_files", ["requirements-lock.txt", "_config.yml", "_ext"], "env"
    )
    app.connect("env-get-outdated", drop_stale_records)
    app.connect("doctree-read", vouch_for_records)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
