"""Training helpers shared by the book's experiments: no model-specific code lives here.

Shared by every trained model (VAE, language model, NeRF, flow): :class:`History`, the record of
a run; :func:`warmup_cosine`, the one learning-rate schedule; :func:`check_finite_loss`; and the
atomic checkpoints. The epoch loop (:func:`train_epoch`, :func:`fit`) is the VAE's, since only a
data set small enough to hold as one tensor is cut into epochs; the step-based loops of the
language model and the NeRF lab draw a fresh random batch each step and record the same History.

- The data set is held in memory as one tensor and cut into shuffled minibatches by indexing
  (:func:`minibatches`), instead of a per-item ``DataLoader``: on a CPU that is several times
  faster for a data set the size of MNIST.
- :func:`train_epoch` and :func:`fit` run the loop, with a tqdm progress bar, and stop with
  :class:`NonFiniteLossError` the moment a loss is NaN or infinite.
- :func:`save_checkpoint` writes a temporary file and renames it into place (``os.replace``), so
  an interrupted save never damages the previous checkpoint; :func:`load_checkpoint` reads it
  back with ``torch.load(weights_only=True)``, which never runs code stored in the file.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from dgm.files import write_atomically


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message says where and what to try."""


def minibatches(
    n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """Index tensors that cover range(n) once, in shuffled order; the last batch may be short."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def check_finite_loss(loss: torch.Tensor, where: str) -> None:
    """Raise :class:`NonFiniteLossError` if ``loss`` is NaN or infinite."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(
            f"the loss is {loss.detach().flatten()[0].item()} at {where}. Training stopped; "
            "nothing after this step was applied. Lower the learning rate, check the inputs "
            "for NaN/inf, or resume from the last checkpoint."
        )


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    data: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scheduler=None,
    progress: bool | None = None,
    desc: str = "train",
) -> torch.Tensor:
    """One pass over ``data`` (a tensor, first dimension = examples); returns each step's loss.

    ``loss_fn(model, batch)`` returns the scalar loss of a batch; ``transform`` (for example
    :func:`dgm.data.dynamic_binarize`) is applied to each batch first; ``scheduler.step()`` runs
    after every optimiser step. The losses are gathered in one tensor (no host round trip per
    step); ``progress=None`` shows the bar only when stderr is a terminal.
    """
    model.train()
    device = next(model.parameters()).device
    batches = list(minibatches(len(data), batch_size, generator))
    losses = torch.empty(len(batches), device=device)
    bar = tqdm(batches, desc=desc, leave=False, disable=None if progress is None else not progress)
    for step, index in enumerate(bar):
        batch = data[index]  # (b, ...)
        if transform is not None:
            batch = transform(batch)
        loss = loss_fn(model, batch.to(device))
        check_finite_loss(loss, f"{desc}, step {step} of {len(batches)}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses[step] = loss.detach()
        if step % 50 == 0 and not bar.disable:
            bar.set_postfix(loss=f"{loss.item():.2f}")
    bar.close()
    return losses.cpu()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    data: torch.Tensor,
    batch_size: int = 1000,
) -> float:
    """Mean of ``loss_fn`` over ``data`` in order (batches weighted by their size)."""
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for index in minibatches(len(data), batch_size, shuffle=False):
        total += loss_fn(model, data[index].to(device)).item() * len(index)
    return total / len(data)


@dataclass
class History:
    """The record of a training run, the same for every model of the book.

    ``step_loss`` holds the loss of every optimiser step's minibatch. At each evaluation (after
    every epoch, or every so many steps) ``eval_step`` records the number of steps taken so far,
    ``train_loss`` the training loss (the epoch's mean, or a probe of training data),
    ``eval_loss`` the held-out loss and ``seconds`` the training time so far, evaluations
    excluded. ``threads`` is the number of CPU threads torch used.
    """

    step_loss: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    threads: int = 0


def warmup_cosine(
    optimizer: torch.optim.Optimizer, steps: int, warmup: int, final: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """The book's one learning-rate schedule: a linear warm-up, then a cosine decay.

    Step s (counted from 0) runs at ``lr * (s + 1) / warmup`` for s < ``warmup``, then decays
    along half a cosine from ``lr`` to ``final * lr`` at step ``steps``; ``lr`` is each
    parameter group's initial rate. Call ``scheduler.step()`` after every optimiser step.
    """
    if steps < 1 or not 0 <= warmup <= steps or not 0.0 <= final <= 1.0:
        raise ValueError(
            f"need steps >= 1, 0 <= warmup <= steps and 0 <= final <= 1, "
            f"got steps={steps}, warmup={warmup}, final={final}"
        )

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    data: torch.Tensor,
    epochs: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scheduler=None,
    evaluate_fn: Callable[[nn.Module], float] | None = None,
    progress: bool | None = None,
) -> History:
    """Train for ``epochs`` passes; after each, call ``evaluate_fn(model)`` if given.

    The History has one evaluation per epoch: ``train_loss`` is the epoch's mean minibatch loss
    (each batch weighted by its size) and ``seconds`` counts training time only.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    history = History(threads=torch.get_num_threads())
    sizes = torch.tensor([len(b) for b in minibatches(len(data), batch_size, shuffle=False)])
    elapsed = 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        losses = train_epoch(
            model, optimizer, loss_fn, data, batch_size, generator, transform, scheduler,
            progress, desc=f"epoch {epoch + 1}/{epochs}",
        )
        elapsed += time.perf_counter() - start
        history.step_loss.extend(losses.tolist())
        history.eval_step.append(len(history.step_loss))
        history.train_loss.append((losses.double() * sizes).sum().item() / len(data))
        history.seconds.append(elapsed)
        history.eval_loss.append(evaluate_fn(model) if evaluate_fn is not None else math.nan)
    return history


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer=None, **extra) -> Path:
    """Atomically write the model (and optimiser) state and ``extra`` values to ``path``.

    The state goes to a temporary file in the same folder, is flushed to disk, and only then
    replaces ``path`` (``os.replace`` is atomic): a crash or an exception mid-save leaves the
    previous checkpoint untouched and no temporary file behind. ``extra`` may hold numbers,
    strings, lists, dicts and tensors (what ``weights_only`` loading accepts).
    """
    path = Path(path)
    state = {"model": model.state_dict(), "extra": extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    write_atomically(path, lambda f: torch.save(state, f))
    return path


def load_checkpoint(
    path: str | os.PathLike, model: nn.Module, optimizer=None, map_location="cpu"
) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Returns the ``extra`` values. Reads with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train the model first, or fix the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); "
            "delete it and train again"
        ) from error
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint; delete it")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"{path} holds no optimiser state; load it without an optimizer")
        optimizer.load_state_dict(state["optimizer"])
    return state["extra"]
