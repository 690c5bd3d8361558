"""Run-wide settings, read in one place: quick mode, the device, the data folder, seeds.

``DGM_QUICK=1`` shrinks every training loop so the whole book executes in a few minutes
(CI smoke builds); pages built that way carry a visible note. ``DGM_DATA`` names the data
folder (default: ``data/`` at the repository root).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from dgm.repro import note_seed

REPO_ROOT = Path(__file__).resolve().parents[2]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def read_flag(name: str) -> bool:
    """An on/off environment variable: 1/true/yes/on, or 0/false/no/off/unset."""
    value = os.environ.get(name)
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(
        f"{name}={value!r} is not understood: set {name}=1 to turn it on, "
        f"or unset it (or {name}=0) to turn it off."
    )


QUICK: bool = read_flag("DGM_QUICK")
"""True when the book is built in quick mode (``DGM_QUICK=1``)."""

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
"""CUDA when present, else the CPU."""


def quick(full, short):
    """Return ``short`` in quick mode and ``full`` otherwise: ``epochs = quick(30, 1)``."""
    return short if QUICK else full


def data_dir() -> Path:
    """The data folder: ``$DGM_DATA`` if set, else ``data/`` at the repository root."""
    return Path(os.environ.get("DGM_DATA") or REPO_ROOT / "data")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a ``torch.Generator`` seeded the same way."""
    note_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (noted for the page's card,
    :mod:`dgm.repro`)."""
    note_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)
