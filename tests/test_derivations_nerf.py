"""The NeRF derivation checks fail on each single slip, the background term included.

Every wrong claim below differs from the chapter's formula by one slip, and every one keeps the
background term -delta_i T_{N+1} c_bg unless dropping that term is the slip. The formulas the
homework prints are the case c_bg = 0: they must fail now that the rendered colour has a
background, because a ray that passes every sample shows it.
"""

from __future__ import annotations

import pytest
import sympy as sp
from derivation_scripts import load

nerf = load("nerf_gradients")
i, k, N = nerf.i, nerf.k, nerf.N
alpha, delta, T, w, c, c_bg = nerf.alpha, nerf.delta, nerf.T, nerf.w, nerf.c, nerf.c_bg

OWN = T[i] * delta[i] * (1 - alpha[i]) * c[i]  # sample i's own colour, let through
HIDDEN = nerf.behind(T[k] * alpha[k] * c[k])  # what the later samples contribute
BACKGROUND = T[N + 1] * c_bg  # what the background contributes
COMPACT_HIDDEN = nerf.behind(w[k] * c[k])

WRONG = {
    "dalpha: (1 - alpha_i) dropped": ("check_dalpha", delta[i]),
    "dalpha: alpha_i for 1 - alpha_i": ("check_dalpha", delta[i] * alpha[i]),
    "dT: k >= i instead of k > i": (
        "check_dT", sp.Piecewise((-delta[i] * T[k], k >= i), (0, True)),
    ),
    "dT: sign flipped": ("check_dT", sp.Piecewise((delta[i] * T[k], k > i), (0, True))),
    "dC/dc: alpha_i dropped": ("check_dC_dc", T[i]),
    "dL/dc: factor 2 dropped": ("check_dL_dc", T[i] * alpha[i] * nerf.e),
    "recursion: T_i alpha_i": ("check_transmittance_recursion", T[i] * alpha[i]),
    "opacity: T_N instead of T_{N+1}": ("check_opacity", 1 - T[N]),
    "dC/dsigma: background term dropped (the homework's formula)": (
        "check_dC_dsigma", OWN - delta[i] * HIDDEN,
    ),
    "dC/dsigma: background seen through T_N instead of T_{N+1}": (
        "check_dC_dsigma", OWN - delta[i] * (HIDDEN + T[N] * c_bg),
    ),
    "dC/dsigma: background term with the wrong sign": (
        "check_dC_dsigma", OWN - delta[i] * (HIDDEN - BACKGROUND),
    ),
    "dC/dsigma: (1 - alpha_i) dropped": (
        "check_dC_dsigma", T[i] * delta[i] * c[i] - delta[i] * (HIDDEN + BACKGROUND),
    ),
    "dC/dsigma: occlusion sign flipped": (
        "check_dC_dsigma", OWN + delta[i] * HIDDEN - delta[i] * BACKGROUND,
    ),
    "dC/dsigma: sum starts at k = i": (
        "check_dC_dsigma",
        OWN - delta[i] * (sp.Sum(T[k] * alpha[k] * c[k], (k, i, N)) + BACKGROUND),
    ),
    "dL/dsigma: background term dropped": (
        "check_dL_dsigma", 2 * nerf.e_T * (OWN - delta[i] * HIDDEN),
    ),
    "dL/dsigma: factor 2 dropped": ("check_dL_dsigma", nerf.e_T * nerf.DC_DSIGMA),
    "compact: background term dropped": (
        "check_dC_dsigma_compact", delta[i] * (T[i + 1] * c[i] - COMPACT_HIDDEN),
    ),
    "compact: T_i instead of T_{i+1}": (
        "check_dC_dsigma_compact", delta[i] * (T[i] * c[i] - COMPACT_HIDDEN - BACKGROUND),
    ),
    "compact loss: background term dropped": (
        "check_dL_dsigma_compact", 2 * nerf.e_T * delta[i] * (T[i + 1] * c[i] - COMPACT_HIDDEN),
    ),
    "same colour: background dropped": (
        "check_same_colour", delta[i] * T[N + 1] * nerf.c_common,
    ),
    "same colour: T_N instead of T_{N+1}": (
        "check_same_colour", delta[i] * T[N] * (nerf.c_common - c_bg),
    ),
}


@pytest.mark.parametrize("case", WRONG, ids=str)
def test_nerf_check_fails_on_one_slip(case):
    check_name, wrong_claim = WRONG[case]
    check = getattr(nerf, check_name)
    assert check(n_max=3).passed, "the book's claim must pass on short rays too"
    result = check(wrong_claim, n_max=3)
    assert not result.passed and result.status == "FAIL"


def test_every_check_is_exercised_with_a_wrong_claim():
    assert {name for name, _ in WRONG.values()} == {check.__name__ for check in nerf.CHECKS}


def test_colour_claims_need_a_channel():
    with pytest.raises(ValueError, match="one channel at a time"):
        nerf.ray(2).instantiate(nerf.DC_DSIGMA, i=1)


def test_the_rendered_colour_of_a_ray_includes_the_background():
    r = nerf.ray(2)
    assert r.C_hat.has(*r.c_bg) and r.C_hat.diff(r.c_bg[0])[0] == r.T[3]


def test_every_check_names_the_chapter_equation_it_proves():
    for check in nerf.CHECKS:
        result = check(n_max=1)
        assert result.label in nerf.EQUATIONS, check.__name__
        assert result.equation == nerf.EQUATIONS[result.label] and result.claim is not None
