"""Tests of dgm.toy_densities: every density integrates to one, its samples follow it, its log
density is accurate in the tails, and bad input is refused."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgm.toy_densities import (
    GaussianRing,
    SmoothCheckerboard,
    SmoothMoons,
    log_normal_interval,
    make_density,
)

DENSITIES = [GaussianRing(), SmoothMoons(), SmoothCheckerboard()]
IDS = [density.name for density in DENSITIES]


def grid(half_width: float = 6.0, n: int = 300) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Cell centres (n * n, 2) of a square grid, the cell area, and the 1-D centres (n,)."""
    h = 2.0 * half_width / n
    xs = -half_width + h * (torch.arange(n, dtype=torch.float64) + 0.5)  # (n,)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")  # (n, n) each
    return torch.stack([X.flatten(), Y.flatten()], dim=-1), h * h, xs


@pytest.mark.parametrize("density", DENSITIES, ids=IDS)
def test_density_integrates_to_one(density):
    points, area, _ = grid()
    mass = density.log_prob(points).exp().sum().item() * area
    assert abs(mass - 1.0) < 1e-8, mass


@settings(max_examples=8, deadline=None)
@given(m=st.integers(1, 10), r=st.floats(0.5, 2.5), s=st.floats(0.2, 0.6))
def test_ring_integrates_to_one_for_any_shape(m, r, s):
    points, area, _ = grid(half_width=r + 8 * s, n=240)
    mass = GaussianRing(m, r, s).log_prob(points).exp().sum().item() * area
    assert abs(mass - 1.0) < 1e-6, mass


@settings(max_examples=6, deadline=None)
@given(k=st.integers(1, 5), side=st.floats(0.4, 1.2), s=st.floats(0.1, 0.4))
def test_checkerboard_integrates_to_one_for_any_board(k, side, s):
    half = 0.5 * k * side + 8 * s
    points, area, _ = grid(half_width=half, n=int(half / 0.02))
    mass = SmoothCheckerboard(k, side, s).log_prob(points).exp().sum().item() * area
    assert abs(mass - 1.0) < 1e-5, mass


def test_moons_quadrature_has_converged():
    """Doubling the Gauss-Legendre nodes changes the log density by rounding error only."""
    points = SmoothMoons().sample(2000, torch.Generator().manual_seed(0)) * 1.5  # tails too
    coarse = SmoothMoons(nodes=256).log_prob(points)
    fine = SmoothMoons(nodes=512).log_prob(points)
    assert (coarse - fine).abs().max() < 1e-9


def test_ring_matches_its_formula_at_a_centre():
    ring = GaussianRing(m=4, r=3.0, s=0.1)  # centres far apart: one component dominates
    at_centre = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
    expected = -math.log(4) - math.log(2 * math.pi * 0.1**2)
    assert abs(ring.log_prob(at_centre).item() - expected) < 1e-12


@pytest.mark.parametrize("density", DENSITIES, ids=IDS)
def test_samples_follow_the_density(density):
    """A chi-square test of a 2-D histogram of samples against the density's cell masses, and
    the mean log density of the samples against -entropy computed on the grid."""
    n = 40_000
    samples = density.sample(n, torch.Generator().manual_seed(1))
    assert samples.shape == (n, 2) and samples.dtype == torch.float64
    # Cells of a 12 x 12 histogram on [-3, 3]^2 plus one for everything outside. The fine grid
    # (cells of side 0.05) nests in the histogram (side 0.5): no fine cell straddles an edge.
    points, area, _ = grid(half_width=6.0, n=240)
    p = density.log_prob(points).exp() * area  # (n_grid,) mass of each fine cell
    edges = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64)

    def cell_of(x):
        inside = (x.abs() < 3.0).all(dim=-1)
        ij = torch.bucketize(x.clamp(-3.0 + 1e-9, 3.0 - 1e-9), edges) - 1  # (n, 2) in 0..11
        return torch.where(inside, ij[:, 0] * 12 + ij[:, 1], 144)

    expected = torch.bincount(cell_of(points), weights=p, minlength=145) * n
    observed = torch.bincount(cell_of(samples), minlength=145).double()
    keep = expected > 5  # the chi-square approximation needs enough expected counts: pool the rest
    expected = torch.cat([expected[keep], expected[~keep].sum()[None]])
    observed = torch.cat([observed[keep], observed[~keep].sum()[None]])
    chi2 = ((observed - expected) ** 2 / expected).sum().item()
    dof = len(expected) - 1
    assert chi2 < dof + 5.0 * math.sqrt(2.0 * dof), (chi2, dof)
    # E[log p] over samples against int p log p on the grid.
    log_p_samples = density.log_prob(samples)
    standard_error = log_p_samples.std().item() / math.sqrt(n)
    neg_entropy = (p * density.log_prob(points)).sum().item()
    assert abs(log_p_samples.mean().item() - neg_entropy) < 4.0 * standard_error


def test_log_normal_interval_is_accurate_in_both_tails():
    a = torch.tensor([-1.0, 2.0, 30.0, -31.0, -0.5], dtype=torch.float64)
    b = torch.tensor([1.0, 3.0, 31.0, -30.0, 40.0], dtype=torch.float64)
    got = log_normal_interval(a, b)
    normal = torch.distributions.Normal(0.0, 1.0)
    direct = torch.log(normal.cdf(b[:2]) - normal.cdf(a[:2]))
    torch.testing.assert_close(got[:2], direct, rtol=1e-12, atol=1e-12)
    # Far in a tail the interval is dominated by its end nearer the centre: log Phi(-30).
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got[2], torch.special.log_ndtr(torch.tensor(-30.0).double()),
                               rtol=1e-9, atol=0)
    torch.testing.assert_close(got[3], got[2], rtol=1e-12, atol=0)  # symmetry


@pytest.mark.parametrize("density", DENSITIES, ids=IDS)
def test_log_density_keeps_the_input_dtype_and_far_points_finite(density):
    far = torch.tensor([[8.0, -8.0], [0.0, 9.0]])
    log_p = density.log_prob(far)
    assert log_p.dtype == torch.float32 and torch.isfinite(log_p).all()


@pytest.mark.parametrize("density", DENSITIES, ids=IDS)
def test_bad_points_are_refused(density):
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        density.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN or inf"):
        density.log_prob(torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match="positive integer"):
        density.sample(0)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown density"):
        make_density("spiral")
    with pytest.raises(ValueError, match="positive finite"):
        GaussianRing(s=0.0)
    with pytest.raises(ValueError, match="positive finite"):
        SmoothCheckerboard(s=-1.0)
    with pytest.raises(ValueError, match="nodes"):
        SmoothMoons(nodes=1)
    assert isinstance(make_density("moons", s=0.2), SmoothMoons)
