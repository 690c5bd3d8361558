"""The book's pages as the table of contents lists them, for the tests that visit each one."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def toc_pages() -> list[str]:
    """Every page of ``_toc.yml``, root first, as docnames (``book/cnf_lab``)."""
    return re.findall(r"(?:root|file):\s*(\S+)", (REPO / "_toc.yml").read_text())


def pages_with_code() -> list[str]:
    """The pages whose MyST source has a code cell: the ones the build executes."""
    return [page for page in toc_pages()
            if "```{code-cell}" in (REPO / f"{page}.md").read_text()]
