"""The whole book builds in quick mode with no warning, and marks the pages it shortened."""

import json
import re
from pathlib import Path

from book_pages import toc_pages
from quick_mode_note import shortened_in_quick_mode

REPO = Path(__file__).resolve().parents[1]


ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
# Sphinx writes "path:line: WARNING: message" or "WARNING: message" (ERROR, CRITICAL likewise).
SPHINX_PROBLEM = re.compile(r"(?:^|: )(?:WARNING|ERROR|CRITICAL): ")


def sphinx_warnings(log: str) -> list[str]:
    lines = (ANSI_COLOUR.sub("", line) for line in log.splitlines())
    return [line for line in lines if SPHINX_PROBLEM.search(line)]


def test_warning_filter_reads_sphinx_lines_only():
    log = (
        "\x1b[91m/book/a.md:3: WARNING: undefined label: 'x'\x1b[39;49;00m\n"
        "WARNING: html_static_path entry 'y' does not exist\n"
        "[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\n"
        "build succeeded."
    )
    assert sphinx_warnings(log) == [
        "/book/a.md:3: WARNING: undefined label: 'x'",
        "WARNING: html_static_path entry 'y' does not exist",
    ]


def test_quick_build_succeeds_without_warnings(quick_book):
    warnings = sphinx_warnings(quick_book.log)
    assert quick_book.returncode == 0 and not warnings, (
        "the quick build failed:\n" + "\n".join(warnings or quick_book.log.splitlines()[-40:])
    )


def test_every_page_in_the_toc_was_built(quick_book):
    pages = toc_pages()
    assert pages, "no pages found in _toc.yml"
    missing = [page for page in pages if not (quick_book.html / f"{page}.html").exists()]
    assert not missing, f"pages listed in _toc.yml but not built: {missing}"


def ran_quick_mode_code(notebook: Path) -> bool:
    """Whether a code cell of the executed notebook consulted the mode: the code that ran,
    as myst-nb parsed it, read independently of the extension's own detector. A page of
    Markdown alone (no code cell) is not executed and has no notebook."""
    if not notebook.exists():
        return False
    cells = json.loads(notebook.read_text())["cells"]
    sources = ("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    return any("quick(" in code or "QUICK" in code for code in sources)


def test_shortened_pages_say_they_come_from_a_quick_run(quick_book):
    pages = toc_pages()
    marked = {page for page in pages
              if "dgm-quick-mode" in (quick_book.html / f"{page}.html").read_text()}
    executed = quick_book.html.parent / "jupyter_execute"
    shortened = {page for page in pages if ran_quick_mode_code(executed / f"{page}.ipynb")}
    assert shortened, "no page uses quick(); the quick build would shorten nothing"
    assert marked == shortened, (
        f"pages whose code consulted the mode but unmarked: {sorted(shortened - marked)}; "
        f"pages marked but whose code never did: {sorted(marked - shortened)}"
    )


def test_the_shortened_page_detector():
    cell = "```{code-cell} ipython3\n%s\n```\n"
    assert shortened_in_quick_mode(cell % "epochs = quick(60, 2)")
    assert shortened_in_quick_mode(cell % "if not QUICK:\n    assert loss < 90")
    assert not shortened_in_quick_mode(cell % "x = 1")
    assert not shortened_in_quick_mode("Prose may say `quick(full, short)` or DGM_QUICK=1.\n")


def test_the_front_page_lists_every_chapter_run_in_words(quick_book):
    html = (quick_book.html / "book" / "index.html").read_text()
    assert "\u2705" not in html and "\u274c" not in html  # glyphs the offline fonts lack
    table = html[html.index("Run Time"):]
    for page in ("cnf_lab", "vae_experiments", "lm_lab", "nerf_lab"):
        assert f"book/{page}" in table
    assert table.count(">ran<") >= 8
