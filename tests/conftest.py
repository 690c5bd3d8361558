"""Shared fixtures: the quick build of the whole book, made once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Property tests: no per-example deadline (a loaded 2-core machine is slow, not wrong), and a
# fixed example sequence so that a failure reproduces exactly on the next run.
settings.register_profile("book", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("book")
QUICK_OUTPUT = REPO / "_build" / "quick"


@dataclass
class BookBuild:
    returncode: int
    log: str
    html: Path


@pytest.fixture(scope="session")
def quick_book() -> BookBuild:
    """Build the whole book with DGM_QUICK=1 into _build/quick (nitpicky, warnings as errors).

    The build itself drops whatever its cache holds from older code, files or modes (the
    fresh_results extension), exactly as a reader's bare ``jupyter-book build`` would.
    """
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(REPO), "--path-output", str(QUICK_OUTPUT),
         "-n", "-W", "--keep-going"],
        cwd=REPO,
        env={**os.environ, "DGM_QUICK": "1"},
        capture_output=True,
        text=True,
    )
    html = QUICK_OUTPUT / "_build" / "html"
    return BookBuild(result.returncode, result.stdout + result.stderr, html)


SLOW_MODULES = {"test_browser", "test_fresh_results"}  # a browser, or several small book builds
SLOW_TESTS = {  # one subprocess each: a derivation script, a chapter's imports
    "test_script_proves_every_identity",
    "test_closure_holds_every_module_the_chapter_loads",
    "test_the_key_of_a_notebook_computation_is_the_same_in_every_process",
}


def pytest_collection_modifyitems(items):
    """Mark the slow tests (``make test-fast`` leaves them out): the quick build of the whole
    book and everything that uses it, the browser, and the tests that start subprocesses."""
    for item in items:
        if (item.module.__name__ in SLOW_MODULES or item.originalname in SLOW_TESTS
                or "quick_book" in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
