"""Sphinx extension: every executed chapter to download as a notebook that plain Jupyter runs, and
the theme's download menu offering it beside the page's MyST source and the browser's print.

For each page that myst-nb executed, the executed notebook is taken from the execution cache
(jupyter-cache keeps every output, the glued values included, which myst-nb's own copy under
``jupyter_execute/`` leaves out), made plain by :func:`plain_notebook.plain_notebook` and written,
with an atomic write, to ``_notebooks/<page>.ipynb`` in the HTML output. The download menu then
offers that ``.ipynb`` first, then the theme's ``.md`` source and print-to-PDF entries.
"""

from __future__ import annotations

import functools
from pathlib import Path

import nbformat
from fresh_results import open_cache
from plain_notebook import References, plain_notebook
from sphinx.util import logging

from dgm.files import write_atomically

LOGGER = logging.getLogger(__name__)
NOTEBOOKS = "_notebooks"


@functools.cache
def citations(bibfiles: tuple[Path, ...]) -> dict[str, tuple[str, str]]:
    """Each BibTeX key's author-year citation and its full reference (the files are parsed once
    per build, not once per page)."""
    from pybtex.database import parse_file

    found = {}
    for bibfile in bibfiles:
        for key, entry in parse_file(str(bibfile)).entries.items():
            people = entry.persons.get("author", [])
            names = [" ".join(p.last_names) for p in people]
            year = entry.fields.get("year", "n.d.")
            lead = (names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2
                    else f"{names[0]} et al." if names else key)
            title = entry.fields.get("title", "")
            venue = entry.fields.get("journal") or entry.fields.get("booktitle") or ""
            full = f"{', '.join(names) or key} ({year}). {title}."
            full += f" *{venue}*." if venue else ""
            found[key] = (f"{lead}, {year}", full.replace("{", "").replace("}", ""))
    return found


def references(app, pagename: str) -> References:
    """Equation numbers, label titles, page titles and citations, as the build resolved them."""
    env = app.env
    refs = References(page=pagename)
    bibfiles = tuple(Path(app.srcdir) / name for name in app.config.bibtex_bibfiles)
    refs.citations = dict(citations(bibfiles))
    for label, (docname, number) in env.get_domain("math").data["objects"].items():
        refs.equations[label] = (docname, number)
    for label, (_docname, _labelid, title) in env.get_domain("std").labels.items():
        refs.labels[label] = title
    for node_id, info in getattr(env, "sphinx_exercise_registry", {}).items():
        if info.get("type") == "exercise":
            number = env.toc_fignumbers.get(info["docname"], {}).get("exercise", {}).get(node_id)
            if number:
                refs.labels[node_id] = "Exercise " + ".".join(map(str, number))
    for label, info in getattr(env, "proof_list", {}).items():
        refs.labels.setdefault(label, info.get("title", "") or label)
    for docname, title in env.titles.items():
        refs.pages[docname] = title.astext()
        refs.pages[Path(docname).name] = title.astext()
    return refs


def executed_notebook(app, pagename: str):
    """The page's notebook with the outputs of its cached execution; None for a page with no
    code (or a build that does not cache)."""
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

    cache, _ = open_cache(app)
    source = Path(app.env.doc2path(pagename))
    text = source.read_text(encoding="utf-8")
    if cache is None or source.suffix != ".md" or not is_myst_markdown_notebook(text):
        return None
    notebook = read_myst_markdown_notebook(text, path=str(source))
    if not any(c.cell_type == "code" and c.source.strip() for c in notebook.cells):
        return None
    try:
        return cache.merge_match_into_notebook(notebook)[1]
    except KeyError:
        LOGGER.warning("download_notebooks: %s ran no cached execution; no notebook to offer",
                       pagename)
        return None


def write_plain_notebook(app, pagename: str) -> str | None:
    """Write the page's plain notebook; its path relative to the output folder, or None."""
    notebook = executed_notebook(app, pagename)
    if notebook is None:
        return None
    source_dir = Path(app.env.doc2path(pagename)).parent
    plain = plain_notebook(notebook, source_dir, references(app, pagename))
    relative = f"{NOTEBOOKS}/{pagename}.ipynb"
    write_atomically(Path(app.outdir) / relative, nbformat.writes(plain).encode("utf-8"))
    return relative


def offer_downloads(app, pagename, templatename, context, doctree) -> None:
    if app.builder.name != "html":
        return
    group = next((b for b in context.get("header_buttons", [])
                  if b.get("label") == "download-buttons"), None)
    if group is None or doctree is None:
        return
    pathto = context["pathto"]
    keep = [b for b in group["buttons"] if b.get("label") != "download-notebook-button"]
    notebook = write_plain_notebook(app, pagename)
    if notebook:
        keep.insert(0, {"type": "link", "url": pathto(notebook, 1), "text": ".ipynb",
                        "icon": "fas fa-code", "label": "download-notebook-button",
                        "tooltip": "The executed chapter as a Jupyter notebook"})
    group["buttons"] = keep


def setup(app):
    app.connect("html-page-context", offer_downloads, priority=502)  # after the theme's menu
    return {"parallel_read_safe": True, "parallel_write_safe": True}
