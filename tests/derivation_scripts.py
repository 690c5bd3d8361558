"""The derivation scripts as importable modules, and each script's one run per test session."""

from __future__ import annotations

import functools
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DERIVATIONS = REPO / "derivations"
SCRIPTS = sorted(DERIVATIONS.glob("[!_]*.py"))

if str(DERIVATIONS) not in sys.path:
    sys.path.insert(0, str(DERIVATIONS))  # the scripts import their common module, _check

import _check  # noqa: E402  (found through the path set just above)

__all__ = ["DERIVATIONS", "REPO", "SCRIPTS", "ScriptRun", "_check", "load", "proved", "run"]


def load(name: str):
    """Import derivations/<name>.py as a module (its checks are not run on import)."""
    module_name = f"derivation_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, DERIVATIONS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@dataclass(frozen=True)
class ScriptRun:
    """What ``python derivations/<name>.py`` did: exit status, output, and its checks."""

    returncode: int
    stdout: str
    stderr: str
    checks: tuple[_check.Check, ...]


@functools.cache
def run(name: str) -> ScriptRun:
    """Run derivations/<name>.py as a reader would, once per test session.

    Every test that needs a script's results reads them from this one run, so each identity is
    proved once per session; the script hands its checks over through ``_check.RECORDS``.
    """
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "checks.pickle"
        result = subprocess.run(
            [sys.executable, str(DERIVATIONS / f"{name}.py")], cwd=REPO, capture_output=True,
            text=True, timeout=600, env={**os.environ, _check.RECORDS: str(records)},
        )
        checks = pickle.loads(records.read_bytes()) if records.exists() else ()
    return ScriptRun(result.returncode, result.stdout, result.stderr, checks)


def proved(name: str) -> tuple[_check.Check, ...]:
    """The checks of derivations/<name>.py from its one run; fails loudly if it crashed."""
    outcome = run(name)
    assert outcome.checks, (
        f"derivations/{name}.py recorded no checks (exit {outcome.returncode}):\n"
        f"{outcome.stdout}{outcome.stderr}"
    )
    return outcome.checks
