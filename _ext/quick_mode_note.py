"""Sphinx extension: mark the pages of a quick build (``DGM_QUICK=1``) whose results it shortened.

In quick mode the chapters shrink their training loops, so their numbers are not the book's real
results. A page whose code cells consult the mode (``quick(full, short)`` or ``QUICK``) then opens
with a visible warning saying so. Pages that compute the same thing in both modes (the checks
page, the front page's data cell) stay unmarked: their numbers are the real ones.
"""

import re
from pathlib import Path

from docutils import nodes

from dgm.config import QUICK

TITLE = "Shortened run"
NOTE = (
    "This page was built in quick mode (DGM_QUICK=1): its experiments ran shortened, so the "
    "numbers and figures below come from a smoke run, not from the full-size experiments. "
    "Run make book for the real results."
)
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
USES_MODE = re.compile(r"\bquick\(|\bQUICK\b")


def shortened_in_quick_mode(source: str) -> bool:
    """Whether a MyST notebook's code cells change what they compute in quick mode."""
    return any(USES_MODE.search(cell) for cell in CODE_CELL.findall(source))


def add_quick_mode_note(app, doctree: nodes.document) -> None:
    if not QUICK:
        return
    source = Path(app.env.doc2path(app.env.docname))
    if source.suffix != ".md" or not shortened_in_quick_mode(source.read_text(encoding="utf-8")):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    note = nodes.admonition(classes=["warning", "dgm-quick-mode"])
    note += nodes.title(text=TITLE)
    note += nodes.paragraph(text=NOTE)
    position = 1 if section.children and isinstance(section[0], nodes.title) else 0
    section.insert(position, note)


def setup(app):
    app.connect("doctree-read", add_quick_mode_note)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
