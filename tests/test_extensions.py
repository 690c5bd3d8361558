"""The small Sphinx extensions: the Thebe assets are dropped from every page, and nothing else."""

from __future__ import annotations

from types import SimpleNamespace

from no_thebe import drop_thebe_assets


def script(filename=None, body=""):
    return SimpleNamespace(filename=filename, attributes={"body": body} if body else {})


def test_thebe_scripts_and_styles_are_dropped_and_the_rest_kept():
    keep_js = [script("_static/jquery.js"), script(None, "var DOCUMENTATION_OPTIONS = {};"),
               script("mathjax/tex-mml-chtml.js")]
    thebe_js = [script("_static/sphinx-thebe.js"),
                script(None, 'const THEBE_JS_URL = "https://unpkg.com/thebe"')]
    keep_css = [SimpleNamespace(filename="_static/pygments.css")]
    thebe_css = [SimpleNamespace(filename="_static/sphinx-thebe.css")]
    context = {"script_files": keep_js[:1] + thebe_js + keep_js[1:],
               "css_files": thebe_css + keep_css}
    drop_thebe_assets(None, "index", "page.html", context, None)
    assert context["script_files"] == keep_js
    assert context["css_files"] == keep_css


def test_a_page_without_assets_is_left_alone():
    context = {"title": "x"}
    drop_thebe_assets(None, "index", "page.html", context, None)
    assert context == {"title": "x"}
