"""dgm.config reads its flags (DGM_QUICK, DGM_RECOMPUTE) in one place and refuses values it does
not understand."""

import pytest
import torch

from dgm.config import quick, read_flag, seed_everything


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_flag_on(value, monkeypatch):
    monkeypatch.setenv("DGM_QUICK", value)
    assert read_flag("DGM_QUICK") is True


@pytest.mark.parametrize("value", [None, "", "0", "false", "off"])
def test_flag_off(value, monkeypatch):
    if value is None:
        monkeypatch.delenv("DGM_QUICK", raising=False)
    else:
        monkeypatch.setenv("DGM_QUICK", value)
    assert read_flag("DGM_QUICK") is False


def test_unknown_flag_value_says_what_to_do(monkeypatch):
    monkeypatch.setenv("DGM_RECOMPUTE", "maybe")
    with pytest.raises(ValueError, match="DGM_RECOMPUTE=1"):
        read_flag("DGM_RECOMPUTE")


def test_quick_picks_the_value_of_the_mode(monkeypatch):
    import dgm.config

    monkeypatch.setattr(dgm.config, "QUICK", True)
    assert quick("full", "short") == "short"
    monkeypatch.setattr(dgm.config, "QUICK", False)
    assert quick("full", "short") == "full"


def test_seeding_makes_draws_repeatable():
    seed_everything(7)
    global_draw = torch.rand(3)
    generator_draw = torch.randn(3, generator=seed_everything(7))
    assert torch.equal(torch.rand(3), global_draw)
    assert torch.equal(torch.randn(3, generator=seed_everything(7)), generator_draw)
