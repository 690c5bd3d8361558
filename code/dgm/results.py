"""Expensive results (trained weights, long evaluations), computed once per content key.

A chapter asks for a result with :func:`cached`; the result is computed only when no entry holds
it under the same key. The key is a SHA-256 over everything that determines the result:

- the result's name, the source of the function that computes it, and its configuration (any
  value with a stable ``repr``, such as a frozen dataclass), which includes the seed;
- the code it runs: the source files of the ``dgm`` modules named, with everything they import
  (:mod:`dgm.dependencies`), except this module, which decides how results are kept, not what
  they are;
- its input data, by content (:func:`tensor_digest`);
- torch's version and the device.

An entry is two files under ``_build/results/<name>/`` (``$DGM_RESULTS`` moves the folder):
``<key>.pt``, the payload saved with ``torch.save``, and ``<key>.json``, which records the key's
parts and the payload's SHA-256. Each is written atomically, the payload first, so an interrupted
write leaves no entry; an entry whose payload does not match its checksum, or does not load, is
computed again and replaced. Payloads are read with ``torch.load(weights_only=True)``: tensors,
numbers, strings, lists and dicts, never code. ``DGM_RECOMPUTE=1`` ignores every entry and
computes afresh; ``make clean`` removes them all. The computation runs with the global random
state of torch, NumPy and ``random`` saved and restored, so the cells after it draw the same
numbers whether the result was computed or read back.

Why not ``joblib.Memory``: it keys a function on its own source but not on the code it calls,
and it stores pickles, which are loaded by running code; here every key part is explicit and
weights are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from dgm.config import DEVICE, REPO_ROOT, read_flag
from dgm.data import sha256
from dgm.dependencies import SourceTree, digest_files
from dgm.files import write_atomically
from dgm.repro import note_result

__all__ = ["cached", "code_digest", "results_dir", "tensor_digest"]

T = TypeVar("T")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # code/, the folder that holds dgm/
FORMAT = 1  # bump when the entry layout changes
# How results are stored, not what they are: left out of the code a result depends on, so that an
# edit to the store does not recompute every result (FORMAT versions the layout instead).
# The page's reproducibility card (dgm.repro) describes a run, so it is left out too.
STORE_MODULES = ("dgm.results", "dgm.repro")


def results_dir() -> Path:
    """The store: ``$DGM_RESULTS`` if set, else ``_build/results`` at the repository root."""
    return Path(os.environ.get("DGM_RESULTS") or REPO_ROOT / "_build" / "results")


def code_digest(*modules: str) -> str:
    """SHA-256 of the source files of ``modules`` (e.g. ``"dgm.vae"``) and all they import."""
    if not modules:
        raise ValueError("name at least one module whose code the result depends on")
    tree = SourceTree([PACKAGE_ROOT])
    missing = [name for name in modules if tree.find(name) is None]
    if missing:
        raise ValueError(f"no module {missing} under {PACKAGE_ROOT}; name modules as 'dgm.vae'")
    files = tree.closure("\n".join(f"import {name}" for name in modules), ignore=STORE_MODULES)
    return digest_files(files, PACKAGE_ROOT)


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' dtypes, shapes and values (the data a result is computed from)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{t.dtype} {tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _names_used(code) -> set[str]:
    """Global names a code object reads, its nested functions and comprehensions included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names_used(const)
    return names


def _source_of(compute: Callable) -> str:
    """The source of ``compute`` and of every notebook-defined function it calls by name.

    A function defined in a notebook cell (module ``__main__``) is in no file that
    :func:`code_digest` can hash, so its source joins the key; library functions are covered by
    the ``code`` modules.
    """
    sources, pending, seen = [], [compute], set()
    while pending:
        function = pending.pop()
        if function in seen:
            continue
        seen.add(function)
        try:
            sources.append(inspect.getsource(function))
        except (OSError, TypeError) as error:
            raise ValueError(
                f"the source of {function!r} cannot be read, so it cannot be part of the key: "
                "define the computation with def in a module or a notebook cell"
            ) from error
        names = _names_used(function.__code__)
        pending += [value for name in sorted(names)  # sorted: a set's order varies by process
                    if inspect.isfunction(value := function.__globals__.get(name))
                    and value.__module__ == "__main__"]
    return "\n".join(sources)


def _key_parts(name: str, compute: Callable, config, code: str, data: str) -> dict[str, str]:
    return {
        "name": name,
        "compute": _source_of(compute),
        "config": repr(config),
        "code": code,
        "data": data,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "device": str(DEVICE),
        "format": str(FORMAT),
    }


def _load(payload: Path, manifest: Path):
    """The stored result, or None when the entry is missing, partial or damaged."""
    try:
        recorded = json.loads(manifest.read_text())["sha256"]
        if sha256(payload) != recorded:
            return None
        return torch.load(payload, map_location=DEVICE, weights_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError):
        return None


@contextlib.contextmanager
def _random_state_kept():
    """Run a block without changing the global random state of torch, NumPy and ``random``."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[DEVICE] if DEVICE.type == "cuda" else []):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def _readable(name: str) -> Callable[[Path], None]:
    """A check that refuses a payload ``torch.load(weights_only=True)`` cannot read back."""

    def check(path: Path) -> None:
        try:
            torch.load(path, weights_only=True)
        except Exception as error:
            raise TypeError(
                f"result {name!r} cannot be stored: torch.load(weights_only=True) refuses it "
                f"({type(error).__name__}). Return tensors, numbers, strings, and lists, tuples "
                "or dicts of them (a state_dict, not a module)."
            ) from None

    return check


def cached(
    name: str,
    compute: Callable[[], T],
    *,
    config,
    code: tuple[str, ...],
    data: tuple[torch.Tensor, ...] = (),
    store: Path | None = None,
) -> T:
    """``compute()``, or its stored value when the key (name, config, code, data...) is known.

    ``code`` names the ``dgm`` modules ``compute`` runs; ``data`` holds the input tensors. The
    source of ``compute`` is part of the key, with that of the notebook-defined functions it
    calls, but not the values it reads from outside: every one of them must be in ``config`` or
    ``data``.
    ``compute`` must return what ``torch.load(weights_only=True)`` can read back: tensors,
    numbers, strings and lists, tuples and dicts of them (a ``state_dict``, not a module).
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"result name {name!r} must be a plain, non-empty file name")
    parts = _key_parts(name, compute, config, code_digest(*code), tensor_digest(*data))
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    folder = (store or results_dir()) / name
    payload, manifest = folder / f"{key}.pt", folder / f"{key}.json"
    if not read_flag("DGM_RECOMPUTE") and payload.is_file() and manifest.is_file():
        value = _load(payload, manifest)
        if value is not None:
            print(f"[{name}: stored result {key[:12]} reused]")
            note_result(name, key, reused=True)
            return value
    start = time.perf_counter()
    with _random_state_kept():  # a computed and a stored result leave the same random state
        value = compute()
    note_result(name, key, reused=False, seconds=time.perf_counter() - start)
    write_atomically(payload, lambda f: torch.save(value, f), _readable(name))
    record = {"sha256": sha256(payload), "key": parts}
    write_atomically(manifest, json.dumps(record, indent=1).encode())
    return value
