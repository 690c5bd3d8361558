"""dgm.config reads DGM_QUICK in one place and refuses values it does not understand."""

import pytest
import torch

from dgm.config import _read_quick, quick, seed_everything


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_quick_mode_on(value):
    assert _read_quick(value) is True


@pytest.mark.parametrize("value", [None, "", "0", "false", "off"])
def test_quick_mode_off(value):
    assert _read_quick(value) is False


def test_unknown_quick_value_says_what_to_do():
    with pytest.raises(ValueError, match="DGM_QUICK=1"):
        _read_quick("maybe")


def test_quick_picks_one_of_two_values():
    assert quick("full", "short") in {"full", "short"}


def test_seeding_makes_draws_repeatable():
    seed_everything(7)
    global_draw = torch.rand(3)
    generator_draw = torch.randn(3, generator=seed_everything(7))
    assert torch.equal(torch.rand(3), global_draw)
    assert torch.equal(torch.randn(3, generator=seed_everything(7)), generator_draw)
