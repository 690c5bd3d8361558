"""Sphinx extension: the execution table of the front page (myst-nb's ``nb-exec-table``) says
"ran" or "failed" in words.

myst-nb writes the status as the emoji U+2705 or U+274C, which the book's offline fonts do not
have, so a reader saw an empty box. The words replace them once the table is built.
"""

from docutils import nodes

WORDS = {"\u2705": "ran", "\u274c": "failed"}


def status_in_words(app, doctree, docname) -> None:
    for text in list(doctree.findall(nodes.Text)):
        word = WORDS.get(text.astext().strip())
        if word is not None:
            text.parent.replace(text, nodes.Text(word))


def setup(app):
    app.connect("doctree-resolved", status_in_words)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
