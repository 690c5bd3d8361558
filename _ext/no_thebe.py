"""Sphinx extension: drop sphinx-thebe's assets from every page.

Jupyter Book 1.x always loads sphinx-thebe, even with live code cells turned off. Under
Sphinx 7.4 its inline configuration script is added twice, so every page fails with
"Identifier 'THEBE_JS_URL' has already been declared", and that script points the browser at an
outside host (unpkg.com). This book has no live code cells, so the thebe assets are removed from
each page rather than repaired.
"""


def _is_thebe_script(script) -> bool:
    filename = getattr(script, "filename", None) or ""
    body = getattr(script, "attributes", {}).get("body", "")
    return filename.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body


def _is_thebe_css(css) -> bool:
    return (getattr(css, "filename", None) or "").endswith("sphinx-thebe.css")


def drop_thebe_assets(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe_script(s)]
    if "css_files" in context:
        context["css_files"] = [c for c in context["css_files"] if not _is_thebe_css(c)]


def setup(app):
    app.connect("html-page-context", drop_thebe_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
