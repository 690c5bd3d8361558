"""Tests of dgm.training: batching, the loop's non-finite-loss stop, the progress bar, atomic
checkpoints, and the one learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dgm.training as training
from dgm.training import (
    NonFiniteLossError,
    evaluate,
    fit,
    load_checkpoint,
    minibatches,
    save_checkpoint,
    train_epoch,
    warmup_cosine,
)


def test_minibatches_cover_every_index_once():
    batches = list(minibatches(103, 10, torch.Generator().manual_seed(1)))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(103))
    assert not torch.equal(torch.cat(batches), torch.arange(103))  # shuffled
    assert torch.equal(torch.cat(list(minibatches(7, 3, shuffle=False))), torch.arange(7))
    with pytest.raises(ValueError, match="batch_size"):
        list(minibatches(10, 0))


def regression_problem(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3  # (n,)
    data = torch.cat([x, y[:, None]], dim=1)  # (n, 4): inputs then target
    torch.manual_seed(seed)
    return nn.Linear(3, 1), data


def mse(model, batch):
    return ((model(batch[:, :3]).squeeze(-1) - batch[:, 3]) ** 2).mean()


def test_fit_lowers_the_loss_and_records_history():
    model, data = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = evaluate(model, mse, data)
    history = fit(
        model, optimizer, mse, data, epochs=3, batch_size=32,
        generator=torch.Generator().manual_seed(0),
        evaluate_fn=lambda m: evaluate(m, mse, data), progress=False,
    )
    assert len(history.train_loss) == len(history.eval_loss) == len(history.seconds) == 3
    assert history.eval_loss[-1] < 1e-2 * before
    assert history.threads == torch.get_num_threads()


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    model, data = regression_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def loss_that_explodes(m, batch):
        calls.append(1)
        loss = mse(m, batch)
        return loss * math.nan if len(calls) == 3 else loss

    with pytest.raises(NonFiniteLossError, match=r"nan at .*step 2 of 8.*learning rate"):
        train_epoch(model, optimizer, loss_that_explodes, data, 32, progress=False)
    # The bad step was never applied: every parameter is still finite.
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_progress_bar_is_shown_when_asked(capsys):
    model, data = regression_problem(n=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, optimizer, mse, data, epochs=1, batch_size=16, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err
    fit(model, optimizer, mse, data, epochs=1, batch_size=16, progress=False)
    assert capsys.readouterr().err == ""


def trained_state(tmp_path, seed):
    model, data = regression_problem(seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train_epoch(model, optimizer, mse, data, 32, progress=False)
    return model, optimizer


def test_checkpoint_round_trip(tmp_path):
    model, optimizer = trained_state(tmp_path, seed=0)
    path = save_checkpoint(tmp_path / "ck" / "model.pt", model, optimizer, epoch=3, losses=[1.5])
    fresh, _ = regression_problem(seed=1)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.01)
    extra = load_checkpoint(path, fresh, fresh_optimizer)
    assert extra == {"epoch": 3, "losses": [1.5]}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    saved, loaded = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert all(torch.equal(saved[0][k], loaded[0][k]) for k in ("exp_avg", "exp_avg_sq"))
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temporary left


def test_an_interrupted_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    old_model, _ = trained_state(tmp_path, seed=0)
    path = save_checkpoint(tmp_path / "model.pt", old_model, note="old")
    old_bytes = path.read_bytes()

    def save_half_then_die(obj, f):
        f.write(b"\x80\x02half a checkpoint")
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    new_model, _ = trained_state(tmp_path, seed=1)
    monkeypatch.setattr(training.torch, "save", save_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, new_model, note="new")
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    fresh, _ = regression_problem(seed=2)
    assert load_checkpoint(path, fresh) == {"note": "old"}
    assert torch.equal(fresh.weight, old_model.weight)


class NotATensor:
    pass


def test_loading_refuses_corrupt_missing_and_unsafe_files(tmp_path):
    model, _ = regression_problem()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", model)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(corrupt, model)
    # weights_only=True refuses to unpickle arbitrary objects.
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": model.state_dict(), "extra": {"obj": NotATensor()}}, unsafe)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(unsafe, model)
    plain = tmp_path / "plain.pt"
    torch.save([1, 2], plain)  # a valid file, but not a checkpoint
    with pytest.raises(ValueError, match="not a checkpoint written by save_checkpoint"):
        load_checkpoint(plain, model)
    no_optimizer = save_checkpoint(tmp_path / "weights.pt", model)
    with pytest.raises(ValueError, match="no optimiser state"):
        load_checkpoint(no_optimizer, model, torch.optim.SGD(model.parameters(), lr=0.1))


def rates_of(steps: int, warmup: int, final: float, lr: float = 3e-3) -> list[float]:
    """The learning rate of each of ``steps`` optimiser steps under warmup_cosine, as applied."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = warmup_cosine(optimizer, steps, warmup, final)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    rates.append(optimizer.param_groups[0]["lr"])  # after the last step
    return rates


@given(steps=st.integers(2, 300), data=st.data(), final=st.floats(0.0, 1.0))
@settings(max_examples=40, deadline=None)
def test_warmup_cosine_rises_linearly_then_falls_to_its_floor(steps, data, final):
    lr, warmup = 3e-3, data.draw(st.integers(0, steps - 1))
    rates = rates_of(steps, warmup, final, lr)
    rising, falling = rates[:warmup], rates[warmup:]
    assert rising == pytest.approx([lr * (s + 1) / warmup for s in range(warmup)])
    assert falling[0] == pytest.approx(lr)  # the peak, where the cosine starts
    assert all(a >= b - 1e-15 for a, b in zip(falling, falling[1:], strict=False))
    assert rates[steps] == pytest.approx(final * lr)  # the floor, reached at the last step
    assert min(falling) >= final * lr - 1e-15  # never below the floor once it decays


def test_warmup_cosine_reaches_half_way_at_the_middle_of_the_decay():
    rates = rates_of(110, 10, 0.1)
    assert rates[60] == pytest.approx(3e-3 * (0.1 + 0.9 * 0.5))  # cos(pi / 2) = 0


@pytest.mark.parametrize("steps, warmup, final", [(0, 0, 0.0), (10, 11, 0.0), (10, -1, 0.0),
                                                   (10, 2, 1.5)])
def test_warmup_cosine_refuses_a_schedule_it_cannot_run(steps, warmup, final):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="warmup"):
        warmup_cosine(optimizer, steps, warmup, final)
