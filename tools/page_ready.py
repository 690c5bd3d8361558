"""Serving the built book on 127.0.0.1 and waiting until a page is fully drawn: shared by the
browser test and the PDF printer (tools/book_pdf.py).

Each wait is for an explicit condition; none waits for the network to fall silent, since MathJax
fetches its fonts lazily while it typesets and keeps the network busy in bursts.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
MATH_READY_SCRIPT = "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
# Two animation frames first, so that layout has run and every font in use has started loading.
FONTS_READY_SCRIPT = """() => new Promise(done => requestAnimationFrame(() =>
  requestAnimationFrame(() => document.fonts.ready.then(() => done(true)))))"""
IMAGES_SETTLED_SCRIPT = "() => Array.from(document.images).every(img => img.complete)"


def find_chromium() -> str | None:
    """The browser, found by the one lookup the Makefile uses too (tools/find-chromium)."""
    found = subprocess.run([str(TOOLS / "find-chromium"), "--no-install"],
                           capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port) for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def wait_until_drawn(page) -> None:
    """Block until the page's formulas are typeset, its fonts loaded and its images settled."""
    if page.evaluate("() => document.querySelector('span.math, div.math') !== null"):
        page.wait_for_function(MATH_READY_SCRIPT)
        page.evaluate("() => MathJax.startup.promise")  # resolves once typesetting is done
    page.evaluate(FONTS_READY_SCRIPT)
    page.wait_for_function(IMAGES_SETTLED_SCRIPT)
