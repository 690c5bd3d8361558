"""Open every page of the quick build in a real browser, served on 127.0.0.1, and check that it
reads offline: formulas typeset with no raw TeX left, every image loaded, no console or page
errors, and no request to any other host."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from page_ready import CHROMIUM_ARGS, find_chromium, serve, wait_until_drawn

REPO = Path(__file__).resolve().parents[1]


# Text that would mean TeX was left untypeset, looked for outside code, scripts and MathJax output.
RAW_TEX_SCRIPT = """() => {
  const markers = ["\\\\(", "\\\\[", "$$", "\\\\frac", "\\\\begin{", "\\\\mathbf", "\\\\sum"];
  const skip = "pre, code, script, style, mjx-container, textarea, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    for (const m of markers) {
      if (node.textContent.includes(m)) { found.push(node.textContent.trim().slice(0, 80)); break; }
    }
  }
  return found;
}"""

UNTYPESET_MATH_SCRIPT = """() => Array.from(document.querySelectorAll("span.math, div.math"))
  .filter(el => !el.querySelector("mjx-container"))
  .map(el => el.textContent.trim().slice(0, 80))"""

BROKEN_IMAGES_SCRIPT = """() => Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => img.getAttribute("src"))"""


def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.fail("tools/find-chromium found no browser: run make test, which installs one")
    return path


@pytest.fixture(scope="module")
def browser():
    try:  # a missing Playwright fails the browser tests (and only them); it never skips
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: run `make setup` (it installs requirements-lock.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


REDIRECT = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.I)


def built_pages(quick_book) -> list[str]:
    """Every HTML page of the build (not the theme's template fragments under _static/)."""
    root = quick_book.html
    pages = (page.relative_to(root).as_posix() for page in root.rglob("*.html"))
    return sorted(page for page in pages if not page.startswith(("_static/", "_sources/")))


def redirect_target(html: Path) -> str | None:
    """Where a redirect page (Jupyter Book's root index.html) sends the reader, if it is one."""
    found = REDIRECT.search(html.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def test_every_page_reads_offline(quick_book, browser):
    from playwright.sync_api import TimeoutError as PageTimeout

    assert quick_book.returncode == 0, "the quick build failed; see test_book_build"
    pages = built_pages(quick_book)
    assert "index.html" in pages and len(pages) >= 4
    problems: dict[str, list[str]] = {}
    with serve(quick_book.html) as server:
        for page_path in pages:
            target = redirect_target(quick_book.html / page_path)
            if target is not None:  # nothing to read there: its target must be a built page
                resolved = (Path(page_path).parent / target).as_posix()
                found = [] if resolved in pages else [f"redirects to a missing page: {target}"]
            else:
                try:
                    found = check_page(browser, f"{server}/{page_path}")
                except PageTimeout as error:  # named, and the other pages are still checked
                    found = [f"timed out after {PAGE_TIMEOUT_MS / 1000:.0f} s: {error}"]
            if found:
                problems[page_path] = found
    assert not problems, "\n".join(f"{page}: {issues}" for page, issues in problems.items())


# Generous limits: a loaded 2-core machine typesets the longest page (hundreds of formulas) slowly.
# Each wait (page_ready.wait_until_drawn) is for an explicit condition, never network silence.
PAGE_TIMEOUT_MS = 180_000


def check_page(browser, url: str) -> list[str]:
    """Load ``url`` and list what keeps it from reading offline; an empty list means none."""
    issues: list[str] = []

    def block_outside(route):
        issues.append(f"request to another host: {route.request.url}")
        route.abort()

    context = browser.new_context()
    try:
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        # Only requests to other hosts are routed (and refused); the page's own go straight through.
        context.route(lambda url: urlparse(url).hostname != "127.0.0.1", block_outside)
        page = context.new_page()
        page.on("console",
                lambda msg: msg.type == "error" and issues.append(f"console: {msg.text}"))
        page.on("pageerror", lambda error: issues.append(f"page error: {error}"))
        page.goto(url, wait_until="load")
        wait_until_drawn(page)
        issues += [f"untypeset formula: {m}" for m in page.evaluate(UNTYPESET_MATH_SCRIPT)]
        issues += [f"raw TeX: {t}" for t in page.evaluate(RAW_TEX_SCRIPT)]
        issues += [f"image not loaded: {src}" for src in page.evaluate(BROKEN_IMAGES_SCRIPT)]
    finally:
        context.close()
    return issues


BROKEN_PAGE = """<!doctype html><html><body>
<p>Left raw: $$\\frac{a}{b}$$</p>
<img src="missing.png">
<img src="http://example.com/remote.png">
<script>throw new Error("boom");</script>
</body></html>"""


def test_the_check_catches_a_broken_page(tmp_path, browser):
    (tmp_path / "broken.html").write_text(BROKEN_PAGE)
    with serve(tmp_path) as server:
        issues = " | ".join(check_page(browser, f"{server}/broken.html"))
    assert "raw TeX" in issues
    assert "image not loaded: missing.png" in issues
    assert "request to another host: http://example.com/remote.png" in issues
    assert "page error" in issues and "boom" in issues


# Offline search: words from the chapters' text, each with the chapter it must find.
SEARCHES = {"Liouville": "book/change_of_variables", "transmittance": "book/nerf_theory",
            "reparameterization": "book/elbo"}
SEARCH_DONE_SCRIPT = """() => {
  const summary = document.querySelector("#search-results p.search-summary");
  return summary !== null && summary.textContent.trim() !== "";  // found pages, or said none
}"""
SEARCH_HITS_SCRIPT = """() => Array.from(
  document.querySelectorAll("#search-results ul.search li a")).map(a => new URL(a.href).pathname)"""


def search_hits(browser, server: str, word: str) -> list[str]:
    """Type ``word`` into the book's search page as a reader would; the pages it finds."""
    context = browser.new_context()
    try:
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{server}/search.html", wait_until="load")
        field = page.locator("#search-results").locator("xpath=..").locator(
            "form.bd-search input[name=q]")
        field.fill(word)
        field.press("Enter")
        page.wait_for_url(lambda url: "q=" in url)
        page.wait_for_function(SEARCH_DONE_SCRIPT)  # the index has loaded and the search has run
        return page.evaluate(SEARCH_HITS_SCRIPT)
    finally:
        context.close()


def test_search_finds_a_chapter_by_a_word_of_its_text(quick_book, browser):
    assert quick_book.returncode == 0, "the quick build failed; see test_book_build"
    with serve(quick_book.html) as server:
        found = {word: search_hits(browser, server, word) for word in SEARCHES}
    missing = {word: hits for word, hits in found.items()
               if f"/{SEARCHES[word]}.html" not in hits}
    assert not missing, f"search missed the chapter: {missing}"
