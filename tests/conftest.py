"""Shared fixtures: the quick build of the whole book, made once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from dgm.buildstamp import invalidate_if_code_changed

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
    """Build the whole book with DGM_QUICK=1 into _build/quick (nitpicky, warnings as errors)."""
    invalidate_if_code_changed(QUICK_OUTPUT)
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
