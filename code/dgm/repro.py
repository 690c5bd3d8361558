"""How a page's results were made: a record kept while a chapter runs, and the card that shows it.

The library notes what it does as it does it: :func:`dgm.config.seed_everything` and
:func:`dgm.config.seeded_generator` note their seeds, :func:`dgm.data.verify_file` and
:func:`dgm.text.load_corpus` note the SHA-256 of each data file they read, and
:func:`dgm.results.cached` notes each result it computed or read back from the store. At the end
of a chapter, :func:`repro_card` adds what the process knows about itself (the Python and
package versions, the device and thread count, quick or full mode, the wall time since ``dgm``
was first imported) and the page's build key, and glues the card as Markdown for the page to show
in a collapsed box. Nothing on the card is typed by hand: it is what ran.

The build key is the chapter's key in the book's execution cache (``_ext/fresh_results.py``),
which the build hands to its kernels in the environment variable ``DGM_BUILD_KEYS``; a chapter
run outside the book's build has none, and its card says so.

This module decides how a run is described, not what it computes, so it is left out of the code
that a stored result's key hashes (:data:`dgm.results.STORE_MODULES`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BUILD_KEYS_VARIABLE = "DGM_BUILD_KEYS"
PACKAGES = ("torch", "torchvision", "numpy", "sympy")
CARD_GLUE_KEY = "repro-card"
_STARTED = time.perf_counter()  # when dgm was first imported in this process
# Seeds written as literals in the page's own code: torch.Generator().manual_seed(7), seed=3.
_LITERAL_SEED = re.compile(r"(?:manual_seed|seed_everything)\(\s*(\d+)\s*\)|\bseed\s*=\s*(\d+)")


@dataclass
class Record:
    """What the library saw during this process's run: seeds, data files, results."""

    seeds: set[int] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)  # file name -> SHA-256
    results: dict[str, dict] = field(default_factory=dict)  # "name key" -> what happened


RECORD = Record()


def note_seed(seed: int) -> None:
    RECORD.seeds.add(int(seed))


def note_file(path: str | os.PathLike, digest: str) -> None:
    RECORD.files[Path(path).name] = digest


def note_result(name: str, key: str, reused: bool, seconds: float | None = None) -> None:
    RECORD.results[f"{name} {key[:12]}"] = {"name": name, "key": key, "reused": reused,
                                            "seconds": seconds}


def literal_seeds(code: str) -> set[int]:
    """The seeds written as literals in ``code``: ``manual_seed(7)``, ``seed_everything(3)``,
    ``seed=42``."""
    return {int(a or b) for a, b in _LITERAL_SEED.findall(code)}


def page_code_seeds() -> set[int]:
    """The literal seeds in the code this kernel has executed (IPython's input history), or
    none outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    if shell is None:
        return set()
    return literal_seeds("\n".join(shell.user_ns.get("In", [])))


def build_key(page: str) -> str | None:
    """The page's key in the book's execution cache, if the book's build started this run."""
    text = os.environ.get(BUILD_KEYS_VARIABLE)
    if not text:
        return None
    return json.loads(text).get(page)


def _cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_run(page: str) -> dict:
    """Everything the card shows, for the page ``page`` (a docname such as ``book/cnf_lab``)."""
    import torch

    from dgm.config import DEVICE, QUICK

    device = str(DEVICE)
    if DEVICE.type == "cuda":
        device += f" ({torch.cuda.get_device_name(DEVICE)})"
    else:
        device += f" ({_cpu_name()}, {os.cpu_count()} cores)"
    return {
        "page": page,
        "wall_seconds": time.perf_counter() - _STARTED,
        "mode": "quick (DGM_QUICK=1)" if QUICK else "full",
        "device": device,
        "threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(),
                     **{name: _version(name) for name in PACKAGES}},
        "seeds": sorted(RECORD.seeds | page_code_seeds()),
        "files": dict(sorted(RECORD.files.items())),
        "results": [RECORD.results[k] for k in sorted(RECORD.results)],
        "build_key": build_key(page),
    }


def _grouped(key: str) -> str:
    """A long hex key in groups of 16, so that it wraps inside the card."""
    return " ".join(key[i:i + 16] for i in range(0, len(key), 16))


def card_markdown(run: dict) -> str:
    """The card: a two-column Markdown table, one row per fact."""
    versions = ", ".join(f"{name} {v}" for name, v in run["versions"].items())
    files = "; ".join(f"`{name}` {_grouped(digest)}" for name, digest in run["files"].items())
    results = "; ".join(
        f"`{r['name']}` {r['key'][:12]}, "
        + ("read from the result store" if r["reused"] else f"computed in {r['seconds']:.0f} s")
        for r in run["results"]
    )
    rows = [
        ("Wall time", f"{run['wall_seconds']:.0f} s, from the first `import dgm` to this card"),
        ("Mode", run["mode"]),
        ("Device", f"{run['device']}, {run['threads']} torch thread(s) at the end of the page"),
        ("Versions", versions),
        ("Seeds", ", ".join(map(str, run["seeds"])) or "none"),
        ("Data files (SHA-256)", files or "none"),
        ("Stored results", results or "none"),
        ("Build key", _grouped(run["build_key"]) if run["build_key"]
         else "none: not run by the book's build"),
    ]
    lines = ["| Fact | This run |", "|---|---|"]
    lines += [f"| {name} | {value.replace('|', '/')} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def repro_card(page: str) -> None:
    """Glue this page's card (key ``repro-card``, Markdown). Call it in
    the page's last code cell, with the page's docname."""
    from IPython.display import Markdown
    from myst_nb import glue

    if not re.fullmatch(r"[\w/-]+", page):
        raise ValueError(f"page must be a docname such as 'book/cnf_lab', got {page!r}")
    glue(CARD_GLUE_KEY, Markdown(card_markdown(describe_run(page))), display=False)


__all__ = ["note_file", "note_result", "note_seed", "repro_card", "card_markdown",
           "describe_run", "RECORD", "BUILD_KEYS_VARIABLE"]
