"""Tests of dgm.inputs: the shared checks, and the switch that turns them off in inner loops."""

from __future__ import annotations

import pytest
import torch

from dgm.inputs import (
    check_finite,
    check_points,
    check_token_ids,
    check_token_stream,
    checking,
    unchecked,
)
from dgm.lm import GPT, GPTConfig, train
from dgm.vae import VAE, VAEConfig, analytic_kl_loss, check_images, train_vae

NAN_POINTS = torch.tensor([[0.0, float("nan")]])


def test_unchecked_turns_the_checks_off_only_inside_the_block_and_restores_them():
    with pytest.raises(ValueError, match="non-finite"):
        check_points("z", NAN_POINTS, "start from finite points.")
    with unchecked():
        assert not checking()
        check_points("z", NAN_POINTS, "unused")  # not looked at
        check_finite("z", NAN_POINTS, "unused")
        check_images(torch.full((1, 4), 2.0), 4)
        with unchecked():
            pass
        assert not checking()  # the inner block restores the outer state, not "on"
    assert checking()
    with pytest.raises(ValueError, match="start from finite points"):
        check_points("z", NAN_POINTS, "start from finite points.")


def test_unchecked_restores_the_checks_after_an_exception():
    with pytest.raises(RuntimeError), unchecked():
        raise RuntimeError("inside the loop")
    assert checking()


@pytest.mark.parametrize("ids, message", [
    (torch.zeros(3, dtype=torch.long), "(B, T)"),
    (torch.zeros(1, 3), "int64"),
    (torch.tensor([[0, 7]]), "0..4"),
])
def test_token_ids_are_refused_with_what_to_do(ids, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_token_ids("idx", ids, 5)


@pytest.mark.parametrize("ids, message", [
    (torch.zeros(2, 3, dtype=torch.long), "1-D stream"),
    (torch.zeros(3), "int64"),
    (torch.tensor([0, 7]), "0..4"),
])
def test_token_streams_are_refused_with_what_to_do(ids, message):
    with pytest.raises(ValueError, match=message):
        check_token_stream("train_data", ids, 5)


def test_lm_train_refuses_a_batch_where_a_stream_belongs():
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=8))
    stream = torch.arange(40) % 5
    with pytest.raises(ValueError, match="train_data must be one 1-D stream"):
        train(model, stream.view(4, 10), stream, steps=1, progress=False)
    with pytest.raises(ValueError, match="val_data must be one 1-D stream"):
        train(model, stream, stream.view(4, 10), steps=1, progress=False)


def test_train_vae_checks_its_data_at_the_door_before_training():
    good = torch.rand(8, 6)
    bad = good.clone()
    bad[3, 2] = 1.5  # a grey level outside [0, 1], as from forgetting to divide by 255
    config = VAEConfig(hidden=(4,), z_dim=2, epochs=1, batch_size=4)
    for train_x, test_x in ((bad, good), (good, bad)):
        with pytest.raises(ValueError, match="divide uint8 images by 255"):
            train_vae(analytic_kl_loss, train_x, test_x, config, progress=False)
    assert checking()


def test_the_public_functions_still_check_after_training():
    model, _ = train_vae(analytic_kl_loss, torch.rand(8, 6), (torch.rand(4, 6) > 0.5).float(),
                         VAEConfig(hidden=(4,), z_dim=2, epochs=1, batch_size=4), progress=False)
    assert isinstance(model, VAE)
    with pytest.raises(ValueError, match="non-finite"):
        model.decode(torch.full((1, 2), float("nan")))
