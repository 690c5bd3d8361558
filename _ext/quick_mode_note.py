"""Sphinx extension: mark every executed page of a quick build (``DGM_QUICK=1``).

In quick mode the chapters shrink their training loops, so their numbers are not the book's real
results. Each page that contains executed code then opens with a visible warning saying so.
"""

from docutils import nodes

from dgm.config import QUICK

TITLE = "Shortened run"
NOTE = (
    "This page was built in quick mode (DGM_QUICK=1): its experiments ran shortened, so the "
    "numbers and figures below come from a smoke run, not from the full-size experiments. "
    "Run make book for the real results."
)


def _has_executed_code(doctree: nodes.document) -> bool:
    return any(node.get("nb_element") == "cell_code" for node in doctree.findall(nodes.container))


def add_quick_mode_note(app, doctree: nodes.document) -> None:
    if not QUICK or not _has_executed_code(doctree):
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
