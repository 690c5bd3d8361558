"""Chapters to take home: the plain notebooks the build writes, and the download menu."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from book_pages import pages_with_code
from download_notebooks import NOTEBOOKS
from plain_notebook import References, plain_notebook

REPO = Path(__file__).resolve().parents[1]
MYST_LEFT = re.compile(r"\{[\w:-]+\}`|^(`{3,}|:{3,})\{", re.MULTILINE)  # a role or a directive
EXECUTE = """import sys, nbclient, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                        resources={"metadata": {"path": "."}}).execute()
nbformat.write(notebook, "ran.ipynb")
"""
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def executed(markdown: str, code: str = "from myst_nb import glue\nglue('x', 0.123456)",
             tags=()) -> nbformat.NotebookNode:
    glued = {"output_type": "display_data", "metadata": {"scrapbook": {
        "name": "x", "mime_prefix": "application/papermill.record/"}},
        "data": {"application/papermill.record/text/plain": "0.123456"}}
    figure = {"output_type": "display_data", "metadata": {"scrapbook": {
        "name": "fig", "mime_prefix": "application/papermill.record/"}},
        "data": {"application/papermill.record/image/png": PNG,
                 "application/papermill.record/text/plain": "<Figure>"}}
    cell = nbformat.v4.new_code_cell(code, outputs=[nbformat.v4.output_from_msg(
        {"header": {"msg_type": "stream"}, "content": {"name": "stdout", "text": "hi\n"}}),
        nbformat.from_dict(glued), nbformat.from_dict(figure)])
    cell.metadata["tags"] = list(tags)
    return nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell(markdown)])


def converted(markdown: str, **kw) -> nbformat.NotebookNode:
    refs = References(equations={"e-one": ("book/x", 4), "e-two": ("book/elbo", 7)},
                      labels={"ex-a": "Exercise 2", "sec": "A section"},
                      pages={"elbo": "The ELBO", "book/elbo": "The ELBO", "book/x": "Page X"},
                      citations={"k2014": ("Kingma and Welling, 2014", "Kingma, Welling (2014).")},
                      page="book/x")
    return plain_notebook(executed(markdown, **kw), REPO / "book", refs)


def text_of(notebook) -> str:
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


def test_glued_values_are_formatted_as_the_page_formats_them():
    out = text_of(converted("The value is {glue:text}`x:.2f` or {glue:text}`x`."))
    assert "The value is 0.12 or 0.123456." in out


def test_equations_get_their_numbers_and_references_name_them():
    out = text_of(converted("$$\na = b\n$$ (e-one)\n\nBy {eq}`e-one` and {eq}`e-two`, see "
                            "{doc}`elbo` and\n{ref}`sec`; also {ref}`the\npart <sec>`.\n\n"
                            "1. A list item:\n   $$\n   c\n   $$ (e-one)"))
    assert "\\tag{4}\n$$" in out and "   \\tag{4}\n   $$" in out
    assert "By (4) and (7) of *The ELBO*, see The ELBO and\nA section; also the\npart." in out


def test_citations_are_author_year_and_listed_at_the_end():
    notebook = converted("As {cite}`k2014` showed.")
    assert "As (Kingma and Welling, 2014) showed." in notebook.cells[-2].source
    assert notebook.cells[-1].source == "#### Works cited\n\n- Kingma, Welling (2014)."


def test_definition_lists_and_links_become_plain_markdown():
    out = text_of(converted("Term one\n: its meaning\n  goes on\n\nSee the [page](elbo.md)."))
    assert "- **Term one**\n  its meaning\n  goes on" in out
    assert "See the page (the book's page *The ELBO*)." in out


def test_an_included_function_becomes_its_source():
    out = text_of(converted("```{literalinclude} ../code/dgm/gaussian.py\n"
                            ":pyobject: standard_normal_log_pdf\n```"))
    assert "```python\ndef standard_normal_log_pdf(" in out
    assert "literalinclude" not in out


def test_exercises_are_headed_and_solutions_folded():
    out = text_of(converted(":::::{exercise}\n:label: ex-a\n\nProve it.\n:::::\n\n"
                            ":::::{solution} ex-a\n:class: dropdown\n\nIt holds.\n:::::\n\n"
                            ":::{prf:proof}\nBy $x$.\n:::"))
    assert "#### Exercise 2\n\nProve it." in out
    assert "<details>\n<summary>Solution to Exercise 2</summary>\n\nIt holds.\n\n</details>" in out
    assert "> **Proof.**\n>\n> By $x$. $\\blacksquare$" in out


def test_a_glued_figure_is_an_attached_image_with_its_caption():
    notebook = converted("```{glue:figure} fig\n:name: f\n\nThe caption, {glue:text}`x:.1f`.\n```")
    cell = notebook.cells[-1]
    assert "![The caption, 0.1](attachment:fig.png)" in cell.source
    assert "*The caption, 0.1.*" in cell.source
    assert cell.attachments["fig.png"]["image/png"] == PNG


def test_code_keeps_its_outputs_but_not_the_glue_records_and_runs_without_myst_nb():
    notebook = converted("text")
    code = notebook.cells[1]  # after the header
    assert [o.output_type for o in code.outputs] == ["stream"]
    assert "from myst_nb" not in code.source and "def glue(" in code.source
    namespace = {}
    exec(code.source, namespace)  # the shim: glue shows its value, without myst_nb
    assert "glue" in namespace


def test_hidden_cells_stay_folded_and_the_card_cell_goes():
    notebook = converted("text", tags=("remove-cell",))
    assert [c.cell_type for c in notebook.cells] == ["markdown", "code", "markdown"]
    assert notebook.cells[1].metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
    card = converted("text", code="repro_card('book/x')", tags=("remove-cell",))
    assert [c.cell_type for c in card.cells] == ["markdown", "markdown"]


def test_a_missing_glue_key_is_an_error():
    with pytest.raises(KeyError, match="nokey"):
        converted("{glue:text}`nokey`")


def test_every_executed_chapter_has_a_plain_notebook_offered_for_download(quick_book):
    for page in pages_with_code():
        path = quick_book.html / NOTEBOOKS / f"{page}.ipynb"
        assert path.is_file(), f"no notebook for {page}"
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        left = [c.source[:80] for c in notebook.cells
                if c.cell_type == "markdown" and MYST_LEFT.search(c.source)]
        assert not left, f"{page}: MyST syntax left in Markdown cells: {left}"
        outputs = sum(len(c.outputs) for c in notebook.cells if c.cell_type == "code")
        figures = sum(len(c.get("attachments", {})) for c in notebook.cells)
        assert outputs + figures > 0, f"{page}: the build's outputs and figures are missing"
        html = (quick_book.html / f"{page}.html").read_text()
        depth = "../" * page.count("/")
        assert f'href="{depth}{NOTEBOOKS}/{page}.ipynb"' in html, f"{page}: not in the menu"


def test_a_downloaded_notebook_runs_in_plain_jupyter(quick_book, tmp_path):
    """One chapter, from a clean kernel in a folder outside the book, in quick mode."""
    source = quick_book.html / NOTEBOOKS / "book" / "cnf_lab.ipynb"
    notebook = tmp_path / "cnf_lab.ipynb"
    notebook.write_bytes(source.read_bytes())
    env = {**os.environ, "DGM_QUICK": "1", "DGM_RESULTS": str(tmp_path / "results")}
    run = subprocess.run([sys.executable, "-c", EXECUTE, notebook.name], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    ran = nbformat.read(tmp_path / "ran.ipynb", as_version=4)
    errors = [o for c in ran.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
