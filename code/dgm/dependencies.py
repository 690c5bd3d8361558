"""What a chapter's executed results depend on: the local source files its code cells import.

Jupyter Book's execution cache keys a chapter on its own code cells only. The results also depend
on the library code those cells import, on the derivation scripts a page runs, and on data files
the library ships. This module finds them from the import graph, without importing anything:

- every ``import a.b`` and ``from a.b import c`` in the cells (``c`` too, since it may be a
  submodule), followed transitively through the local modules' own imports, wherever they sit in
  a module (a function-level import counts, so the closure is a superset of what ran);
- a module's parent packages (``a/__init__.py`` runs before ``a/b.py``);
- a data file that sits beside a local module and that the module names in a string literal
  (``text.py`` reads ``"lm_corpus.txt"``; a mention in a comment or a docstring does not count);
- a whole source folder when a cell names it in a string, as a page that runs every script of
  ``derivations/`` by path does.

"Local" means found under one of the given source roots (the book's ``code/`` and
``derivations/``); everything else is an installed package, pinned by the lock file.
What this cannot see: a module named only at run time (``importlib.import_module(name)``) without
its folder's name in a string, and files read by a path built without a literal file name.
``tests/test_dependencies.py`` checks the closure against what a chapter's imports really load.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SourceTree", "code_of_cells", "digest_files"]


def code_of_cells(cells: Iterable[str]) -> str:
    """The Python of notebook code cells, with IPython's ``%magic`` and ``!shell`` lines dropped."""
    lines = []
    for cell in cells:
        for line in cell.splitlines():
            stripped = line.lstrip()
            lines.append("" if stripped.startswith(("%", "!")) else line)
        lines.append("")
    return "\n".join(lines)


def _imported_names(tree: ast.AST, package: str) -> set[str]:
    """Absolute module names a parsed module imports; ``package`` resolves relative imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return names


def _string_literals(tree: ast.AST) -> set[str]:
    return {
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


class SourceTree:
    """The local modules under ``roots``, and the import closure of a piece of code among them."""

    def __init__(self, roots: Iterable[Path]):
        self.roots = tuple(Path(root).resolve() for root in roots)

    def find(self, name: str) -> Path | None:
        """The file of local module ``name`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``)."""
        parts = name.split(".")
        for root in self.roots:
            for candidate in (root.joinpath(*parts).with_suffix(".py"),
                              root.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    return candidate
        return None

    def _module_files(self, name: str) -> list[Path]:
        """``name``'s file and those of its parent packages, outermost first."""
        parts = name.split(".")
        files = [self.find(".".join(parts[:i])) for i in range(1, len(parts) + 1)]
        return [f for f in files if f is not None] if files[-1] is not None else []

    def _package_of(self, path: Path) -> str:
        for root in self.roots:
            if path.is_relative_to(root):
                parts = list(path.relative_to(root).with_suffix("").parts)
                return ".".join(parts if parts[-1] == "__init__" else parts[:-1])
        return ""

    def closure(self, code: str, ignore: Iterable[str] = ()) -> set[Path]:
        """Every local file ``code`` depends on: modules, parent packages, data files, folders.

        Modules named in ``ignore`` (and what only they import) are left out.
        """
        ignored = {f for name in ignore for f in self._module_files(name)[-1:]}
        tree = ast.parse(code)
        pending = [f for name in _imported_names(tree, "") for f in self._module_files(name)]
        for literal in _string_literals(tree):  # a folder named in a string: all of its scripts
            pending += [p for root in self.roots if literal.strip("/") == root.name
                        for p in root.rglob("*.py") if p.is_file()]
        modules: set[Path] = set()
        data: set[Path] = set()
        while pending:
            path = pending.pop()
            if path in modules or path in ignored:
                continue
            modules.add(path)
            module_tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for name in _imported_names(module_tree, self._package_of(path)):
                pending += self._module_files(name)
            literals = _string_literals(module_tree)
            data.update(f for f in path.parent.iterdir()
                        if f.is_file() and f.suffix not in (".py", ".pyc")
                        and any(s == f.name or s.endswith("/" + f.name) for s in literals))
        return modules | data


def digest_files(files: Iterable[Path], relative_to: Path) -> str:
    """SHA-256 over the relative names and contents of ``files``, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(Path(f).resolve() for f in files):
        name = path.relative_to(relative_to).as_posix() if path.is_relative_to(relative_to) \
            else path.as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
