"""Checks of the tensors a public function receives, shared by the library's modules.

A wrong type or a NaN should fail loudly at the line that received it, with a message that
names the argument and says what to do.

The checks belong at the door: a public function checks what user code hands it, once per call.
A training or evaluation loop checks its data once, before the loop, and runs its inner steps
inside :func:`unchecked`, which turns every check here off for the block, so that no step pays
for a pass over tensors that cannot have changed (and, on a GPU, for the host synchronisation
that each ``if tensor.all()`` forces). A NaN born inside the loop is still caught: the loops
check the loss (:func:`dgm.training.check_finite_loss`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_checking = True


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Inside this block the checks of this module pass without looking (for inner loops)."""
    global _checking
    previous, _checking = _checking, False
    try:
        yield
    finally:
        _checking = previous


def checking() -> bool:
    """False inside :func:`unchecked`; modules with checks of their own consult it too."""
    return _checking


def check_finite(name: str, tensor: torch.Tensor, advice: str) -> None:
    """Raise ValueError unless ``tensor`` is a tensor of finite values; ``advice`` ends it."""
    if not _checking:
        return
    if not torch.is_tensor(tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); {advice}")


def check_points(name: str, points: torch.Tensor, advice: str) -> None:
    """Raise ValueError unless ``points`` is a finite floating-point (B, d) batch of points."""
    if not _checking:
        return
    if not torch.is_tensor(points):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(points).__name__}")
    if points.dim() != 2:
        raise ValueError(
            f"{name} must have shape (B, d) (a batch of points), got {tuple(points.shape)}; "
            f"for a single point use {name}[None, :]."
        )
    if not torch.is_floating_point(points):
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {points.dtype}")
    check_finite(name, points, advice)


def _check_ids(name: str, ids, dims: int, what: str, hint: str, vocab_size: int) -> None:
    if not torch.is_tensor(ids) or ids.dim() != dims or ids.dtype != torch.long:
        shape = tuple(ids.shape) if torch.is_tensor(ids) else type(ids).__name__
        raise ValueError(f"{name} must be {what}, got {shape}; {hint}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}")


def check_token_ids(name: str, ids: torch.Tensor, vocab_size: int) -> None:
    """Raise ValueError unless ``ids`` is a (B, T) int64 tensor of ids in 0..vocab_size - 1."""
    if _checking:
        _check_ids(name, ids, 2, "a (B, T) tensor of int64 token ids",
                   f"for one sequence use {name}[None, :]", vocab_size)


def check_token_stream(name: str, ids: torch.Tensor, vocab_size: int) -> None:
    """Raise ValueError unless ``ids`` is one 1-D int64 stream of ids in 0..vocab_size - 1."""
    if _checking:
        _check_ids(name, ids, 1, "one 1-D stream of int64 token ids (a whole split, encoded)",
                   "concatenate the documents first (for a (B, T) batch, flatten it)",
                   vocab_size)


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Raise ValueError, listing every shape, unless all the tensors have one shape."""
    if not _checking:
        return
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes must match, got {listed}")


def check_broadcastable(**tensors: torch.Tensor) -> None:
    """Raise ValueError, listing every shape, unless the tensors broadcast together."""
    if not _checking:
        return
    try:
        torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        listed = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise ValueError(f"shapes cannot be broadcast together: {listed}") from None
