"""The derivation scripts as importable modules, for the tests that read their checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DERIVATIONS = REPO / "derivations"
SCRIPTS = sorted(DERIVATIONS.glob("[!_]*.py"))

if str(DERIVATIONS) not in sys.path:
    sys.path.insert(0, str(DERIVATIONS))  # the scripts import their common module, _check

import _check  # noqa: E402  (found through the path set just above)

__all__ = ["DERIVATIONS", "REPO", "SCRIPTS", "_check", "load"]


def load(name: str):
    """Import derivations/<name>.py as a module (its checks are not run on import)."""
    module_name = f"derivation_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, DERIVATIONS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
