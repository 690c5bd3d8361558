"""The reproducibility card: what the library notes while a page runs, and what the card shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from book_pages import pages_with_code

from dgm import repro
from dgm.config import seed_everything, seeded_generator
from dgm.results import cached
from dgm.text import CORPUS_PATH, load_corpus

REPO = Path(__file__).resolve().parents[1]
CARD_CELL = re.compile(r'```\{code-cell\} ipython3\n:tags: \[remove-cell\]\nfrom dgm\.repro import '
                       r'repro_card\n\nrepro_card\("(?P<page>[\w/]+)"\)\n```\n\n:::\{dropdown\} '
                       r"How this page's results were made\n:class-container: dgm-repro-card\n\n"
                       r"```\{glue:md\} repro-card\n:format: myst\n```\n:::\n$")


@pytest.fixture(autouse=True)
def fresh_record(monkeypatch):
    monkeypatch.setattr(repro, "RECORD", repro.Record())


def test_seeds_set_through_the_library_are_noted():
    seed_everything(11)
    generator = seeded_generator(12)
    assert {11, 12} <= set(repro.describe_run("book/x")["seeds"])
    assert torch_equal_draws(generator, seeded_generator(12))


def torch_equal_draws(a, b) -> bool:
    import torch

    return torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))


def test_the_corpus_is_noted_with_its_sha256():
    import hashlib

    load_corpus()
    digest = hashlib.sha256(CORPUS_PATH.read_bytes()).hexdigest()
    assert repro.describe_run("book/x")["files"] == {CORPUS_PATH.name: digest}
    card = repro.card_markdown(repro.describe_run("book/x"))
    assert " ".join(digest[i:i + 16] for i in range(0, 64, 16)) in card  # wraps in the box


def test_a_result_is_noted_as_computed_then_as_reused(tmp_path):
    for _ in range(2):
        cached("r", lambda: {"w": 1}, config=("c", 1), code=("dgm.gaussian",), store=tmp_path)
    results = repro.describe_run("book/x")["results"]
    (entry,) = results  # the same key twice: one entry, its last state
    assert entry["name"] == "r" and entry["reused"] is True
    repro.RECORD.results.clear()
    cached("r", lambda: {"w": 1}, config=("c", 2), code=("dgm.gaussian",), store=tmp_path)
    (entry,) = repro.describe_run("book/x")["results"]
    assert entry["reused"] is False and entry["seconds"] >= 0.0


def test_the_card_shows_every_fact():
    seed_everything(3)
    run = repro.describe_run("book/x")
    card = repro.card_markdown(run)
    for row in ("Wall time", "Mode", "Device", "Versions", "Seeds", "Data files (SHA-256)",
                "Stored results", "Build key"):
        assert f"| {row} |" in card
    for package in ("python", "torch", "torchvision", "numpy", "sympy"):
        assert f"{package} {run['versions'][package]}" in card
    assert "not run by the book's build" in card  # no build key outside the book's build


def test_the_build_key_is_read_from_the_build(monkeypatch):
    monkeypatch.setenv(repro.BUILD_KEYS_VARIABLE, json.dumps({"book/x": "ab" * 32}))
    assert repro.describe_run("book/x")["build_key"] == "ab" * 32
    assert " ".join(["abababababababab"] * 4) in repro.card_markdown(repro.describe_run("book/x"))
    assert repro.describe_run("book/y")["build_key"] is None


def test_literal_seeds_are_found_in_code():
    code = "g = torch.Generator().manual_seed(7)\nseed_everything( 3 )\ncfg = C(seed=42)\nx = 5"
    assert repro.literal_seeds(code) == {3, 7, 42}


def test_a_bad_page_name_is_refused():
    with pytest.raises(ValueError, match="docname"):
        repro.repro_card("../book x")


@pytest.mark.parametrize("page", pages_with_code())
def test_every_page_with_code_ends_with_its_own_card(page):
    match = CARD_CELL.search((REPO / f"{page}.md").read_text())
    assert match, f"{page}.md must end with the card cell and its dropdown (see book/cnf_lab.md)"
    assert match["page"] == page


def test_every_executed_page_shows_its_card(quick_book):
    stamp = json.loads((quick_book.html.parent / ".jupyter_cache" / "dgm-keys.json").read_text())
    keys = {Path(entry["uri"]).stem: entry["key"] for entry in stamp.values()}
    for page in pages_with_code():
        html = (quick_book.html / f"{page}.html").read_text()
        assert re.search("How this page.s results were made", html), page
        assert "quick (DGM_QUICK=1)" in html, page
        key = keys[Path(page).name]
        grouped = " ".join(key[i:i + 16] for i in range(0, 64, 16))
        assert grouped in html, f"{page}: the card's build key is not the cache's"
