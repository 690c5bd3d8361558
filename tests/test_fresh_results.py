"""A bare ``jupyter-book build`` never shows an old output, and re-runs only the page whose
imports changed: checked on a small book of two pages in a temporary folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import offline_math
import pytest
from sphinx.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

CONFIG = f"""title: two pages
only_build_toc_files: true
exclude_patterns: [".*", "**/.*", "lib", "_build"]
execute:
  execute_notebooks: cache
  raise_on_error: true
sphinx:
  local_extensions:
    fresh_results: {REPO / "_ext"}
  config:
    dgm_source_roots: ["lib"]
    dgm_key_files: ["_config.yml"]
"""
TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: page_a\n  - file: page_b\n"
PAGE = """---
file_format: mystnb
kernelspec:
  name: python3
---
# Page {name}

```{{code-cell}} ipython3
import {module}
print("value of {module}:", {module}.VALUE)
```
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small_book")
    (root / "_config.yml").write_text(CONFIG)
    (root / "_toc.yml").write_text(TOC)
    (root / "intro.md").write_text("# Two pages\n\nNo code here.\n")
    (root / "page_a.md").write_text(PAGE.format(name="A", module="mod_a"))
    (root / "page_b.md").write_text(PAGE.format(name="B", module="mod_b"))
    (root / "lib").mkdir()
    (root / "lib" / "mod_a.py").write_text("from helper import BASE\nVALUE = BASE + 1\n")
    (root / "lib" / "mod_b.py").write_text("VALUE = 'b-1'\n")
    (root / "lib" / "helper.py").write_text("BASE = 100\n")
    return root


def bare_build(root: Path, succeeds: bool = True) -> set[str]:
    """``jupyter-book build ROOT`` as a reader runs it; returns the pages it executed."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "PYTHONPATH": str(root / "lib"), "DGM_QUICK": "0"}
    env.pop("DGM_RECOMPUTE", None)
    result = subprocess.run([str(jupyter_book), "build", str(root)], env=env,
                            capture_output=True, text=True)
    assert (result.returncode == 0) == succeeds, result.stdout[-3000:] + result.stderr[-3000:]
    return set(re.findall(r"(page_\w)\.md: Executing notebook", result.stdout))


def shown(root: Path, page: str) -> str:
    return (root / "_build" / "html" / f"{page}.html").read_text()


def test_only_the_edited_import_re_runs_and_the_page_shows_the_new_output(book):
    assert bare_build(book) == {"page_a", "page_b"}
    assert "value of mod_a: 101" in shown(book, "page_a")
    assert bare_build(book) == set(), "nothing changed, nothing should run"

    (book / "lib" / "helper.py").write_text("BASE = 200\n")  # imported by mod_a, not by mod_b
    assert bare_build(book) == {"page_a"}
    assert "value of mod_a: 201" in shown(book, "page_a")
    assert "value of mod_a: 101" not in shown(book, "page_a")

    (book / "lib" / "mod_b.py").write_text("VALUE = 'b-2'\n")
    assert bare_build(book) == {"page_b"}
    assert "value of mod_b: b-2" in shown(book, "page_b")

    (book / "_config.yml").write_text(CONFIG + "# a comment changes the key of every page\n")
    assert bare_build(book) == {"page_a", "page_b"}


def test_a_vouched_record_is_needed_to_skip_execution(book):
    """A cache record the extension never vouched for (a build killed mid-way) is not trusted."""
    bare_build(book)
    stamp = book / "_build" / ".jupyter_cache" / "dgm-keys.json"
    stamp.write_text("{}")
    assert bare_build(book) == {"page_a", "page_b"}


def test_a_build_that_fails_half_way_leaves_nothing_stale(book):
    """Page A re-runs with new code, then page B fails: the next build shows A's new output.

    The extension vouches for no record of a failed build. With this Jupyter Book a failed build
    also makes the next one start from a fresh Sphinx environment (every page is read again), so
    this pins the end-to-end behaviour rather than that one safeguard."""
    bare_build(book)
    (book / "lib" / "helper.py").write_text("BASE = 300\n")
    (book / "lib" / "mod_b.py").write_text("raise RuntimeError('broken on purpose')\n")
    bare_build(book, succeeds=False)
    (book / "lib" / "mod_b.py").write_text("VALUE = 'b-3'\n")
    bare_build(book)
    assert "value of mod_a: 301" in shown(book, "page_a")
    assert "value of mod_b: b-3" in shown(book, "page_b")


def test_missing_mathjax_without_npm_fails_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(offline_math.shutil, "which", lambda name: None)

    class App:
        srcdir = str(tmp_path)

    with pytest.raises(ConfigError) as error:
        offline_math.ensure_mathjax(App(), None)
    message = str(error.value)
    assert "make mathjax" in message and "npm" in message and "\n" not in message
