"""The import closure of a chapter: what it finds on a small tree, and that on the real book it
holds every local module a chapter's imports really load (and no other part's library)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fresh_results import code_cells

from dgm.dependencies import SourceTree, code_of_cells, digest_files

REPO = Path(__file__).resolve().parents[1]
BOOK_TREE = SourceTree([REPO / "code", REPO / "derivations"])


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path):
    """pkg/{__init__, a, b, c, d, unused}.py, pkg/table.txt, scripts/{s, _common}.py."""
    lib, scripts = tmp_path / "lib", tmp_path / "scripts"
    files = {
        "init": write(lib / "pkg" / "__init__.py"),
        "a": write(lib / "pkg" / "a.py", "from pkg.b import thing\n"),
        "b": write(lib / "pkg" / "b.py", "from . import c\nthing = 1\n"),
        "c": write(lib / "pkg" / "c.py", "def f():\n    import pkg.d  # only when f runs\n"),
        "d": write(lib / "pkg" / "d.py", "TABLE = 'table.txt'\n# other.txt: a comment\n"),
        "table": write(lib / "pkg" / "table.txt", "1 2 3"),
        "other": write(lib / "pkg" / "other.txt", "not read by anyone"),
        "unused": write(lib / "pkg" / "unused.py", "import numpy\n"),
        "s": write(scripts / "s.py", "from _common import x\n"),
        "common": write(scripts / "_common.py", "x = 1\n"),
    }
    return SourceTree([lib, scripts]), files


def test_closure_follows_imports_packages_and_data(tree):
    source_tree, f = tree
    found = source_tree.closure("import math\nfrom pkg.a import thing\n")
    assert found == {f["init"], f["a"], f["b"], f["c"], f["d"], f["table"]}


def test_ignored_modules_are_not_followed(tree):
    source_tree, f = tree
    assert source_tree.closure("import pkg.a", ignore=["pkg.c"]) == {f["init"], f["a"], f["b"]}


def test_from_package_import_submodule(tree):
    source_tree, f = tree
    assert source_tree.closure("from pkg import d") == {f["init"], f["d"], f["table"]}


def test_script_imports_its_sibling(tree):
    source_tree, f = tree
    assert source_tree.closure("import s") == {f["s"], f["common"]}


def test_a_folder_named_in_a_string_brings_all_its_scripts(tree):
    source_tree, f = tree
    found = source_tree.closure("from pathlib import Path\nroot = Path('..') / 'scripts'\n")
    assert found == {f["s"], f["common"]}


def test_installed_packages_are_not_local(tree):
    source_tree, _ = tree
    assert source_tree.closure("import numpy, torch\nfrom os import path") == set()


def test_magics_are_dropped():
    code = code_of_cells(["%matplotlib inline\nimport math", "!ls\nx = 1"])
    assert "%" not in code and "!" not in code and "import math" in code


def test_digest_follows_content_and_names(tree, tmp_path):
    source_tree, f = tree
    files = source_tree.closure("import pkg.a")
    before = digest_files(files, tmp_path)
    assert digest_files(files, tmp_path) == before
    f["d"].write_text(f["d"].read_text() + "# edited\n")
    assert digest_files(files, tmp_path) != before


def book_chapters() -> list[Path]:
    return sorted(p for p in (REPO / "book").glob("*.md") if code_cells(p))  # with code


LOADED_SCRIPT = """
import json, sys
from pathlib import Path
before = set(sys.modules)
exec(compile(sys.stdin.read(), "imports", "exec"))
roots = [Path(r).resolve() for r in sys.argv[1:]]
files = set()
for name in set(sys.modules) - before:
    file = getattr(sys.modules[name], "__file__", None)
    if file and any(Path(file).resolve().is_relative_to(r) for r in roots):
        files.add(str(Path(file).resolve()))
print(json.dumps(sorted(files)))
"""


def import_lines(cells: list[str]) -> str:
    """Every top-level import statement of the cells (what runs when a chapter starts)."""
    tree = ast.parse(code_of_cells(cells))
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(ast.unparse(n) for n in nodes)


@pytest.mark.parametrize("chapter", book_chapters(), ids=lambda p: p.stem)
def test_closure_holds_every_module_the_chapter_loads(chapter):
    cells = code_cells(chapter)
    loaded = subprocess.run(
        [sys.executable, "-c", LOADED_SCRIPT, str(REPO / "code")],
        input=import_lines(cells), capture_output=True, text=True, check=True, cwd=chapter.parent,
    )
    really = {Path(p) for p in json.loads(loaded.stdout)}
    static = BOOK_TREE.closure(code_of_cells(cells))
    assert really <= static, f"loaded but not in the closure: {sorted(really - static)}"


def test_each_part_depends_on_its_own_library_only():
    closure = {p.stem: {f.name for f in BOOK_TREE.closure(code_of_cells(code_cells(p)))}
               for p in book_chapters()}
    assert "nerf.py" in closure["nerf_lab"] and "vae.py" not in closure["nerf_lab"]
    assert "vae.py" in closure["vae_experiments"] and "nerf.py" not in closure["vae_experiments"]
    assert "lm_corpus.txt" in closure["lm_lab"]
    assert "lm_corpus.txt" not in closure["nerf_lab"] | closure["vae_experiments"]
    assert "gaussian_kl.py" in closure["checks"] and "_check.py" in closure["checks"]
    assert not any("gaussian_kl.py" in files for page, files in closure.items() if page != "checks")
