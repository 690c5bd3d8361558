"""Checks of the tensors a public function receives, shared by the library's modules.

A wrong type or a NaN should fail loudly at the line that received it, with a message that
names the argument and says what to do.
"""

from __future__ import annotations

import torch


def check_finite(name: str, tensor: torch.Tensor, advice: str) -> None:
    """Raise ValueError unless ``tensor`` is a tensor of finite values; ``advice`` ends it."""
    if not torch.is_tensor(tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); {advice}")


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Raise ValueError, listing every shape, unless all the tensors have one shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes must match, got {listed}")


def check_broadcastable(**tensors: torch.Tensor) -> None:
    """Raise ValueError, listing every shape, unless the tensors broadcast together."""
    try:
        torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        listed = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise ValueError(f"shapes cannot be broadcast together: {listed}") from None
