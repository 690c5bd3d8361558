"""Tests of dgm.flows: RK4's order, the instantaneous change of variables against the determinant
of the flow map, the linear field's closed form, Hutchinson's estimator (exactly, by enumerating
every sign vector, and statistically) and every input check."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgm.flows import (
    LinearField,
    MLPField,
    SineField,
    SwirlField,
    divergence_exact,
    divergence_hutchinson,
    flow_map_jacobian,
    hutchinson_variance,
    integrate_log_density,
    log_density,
    odeint_rk4,
    probes,
    rk4_step,
)
from dgm.gaussian import standard_normal_log_pdf

FLOAT64 = torch.float64


def random_matrix(d: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(d, d, generator=g, dtype=FLOAT64)


def random_points(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=FLOAT64)


def log_density_by_determinant(f, z0, t1, steps):
    """The determinant route: log p_t1(z(t1)) = log p_0(z0) - log |det dz(t1)/dz0|."""
    z1, J = flow_map_jacobian(f, z0, 0.0, t1, steps)
    return z1, standard_normal_log_pdf(z0) - torch.linalg.slogdet(J).logabsdet


# ----------------------------------------------------------------------------------------------
# The solver.


def test_rk4_is_fourth_order():
    """Halving the step divides the error by 2^4 = 16 on dy/dt = y cos t, y = y0 exp(sin t)."""
    y0 = torch.tensor([[1.0, -0.5]], dtype=FLOAT64)
    t1 = 3.0
    exact = y0 * math.exp(math.sin(t1))
    errors = [
        (odeint_rk4(lambda y, t: y * math.cos(t), y0, 0.0, t1, steps) - exact).abs().max().item()
        for steps in (32, 64, 128, 256)
    ]
    ratios = [errors[i] / errors[i + 1] for i in range(len(errors) - 1)]
    for ratio in ratios:
        assert 14.0 < ratio < 18.0, (errors, ratios)


def test_rk4_step_is_exact_for_cubic_in_time():
    """dy/dt = t^3 gives y(h) = h^4 / 4 exactly: Simpson's weights integrate cubics exactly."""
    y0 = torch.zeros(1, 1, dtype=FLOAT64)
    y1 = rk4_step(lambda y, t: torch.full_like(y, t**3), y0, 0.0, 0.7)
    torch.testing.assert_close(y1, torch.full_like(y0, 0.7**4 / 4), rtol=1e-14, atol=1e-14)


def test_backward_solve_returns_to_start_and_path_has_every_step():
    f = SwirlField()
    z0 = random_points(20, 2, seed=1)
    path = odeint_rk4(f, z0, 0.0, 1.0, 100, return_path=True)
    assert path.shape == (101, 20, 2)
    torch.testing.assert_close(path[0], z0)
    back = odeint_rk4(f, path[-1], 1.0, 0.0, 100)
    torch.testing.assert_close(back, z0, rtol=0, atol=1e-7)


def test_solver_is_differentiable_end_to_end():
    """gradcheck (finite differences vs autograd, float64) through 5 RK4 steps of an MLP flow."""
    f = MLPField(3, hidden=8, generator=torch.Generator().manual_seed(0))
    z0 = random_points(4, 3, seed=2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: odeint_rk4(f, z, 0.0, 0.5, 5), (z0,))
    # ... and through the trace inside the augmented ODE (second derivatives of f).
    log_p = lambda z: integrate_log_density(f, z, standard_normal_log_pdf(z), 0.0, 0.5, 5)[1]  # noqa: E731
    assert torch.autograd.gradcheck(log_p, (z0,))


# ----------------------------------------------------------------------------------------------
# The divergence.


@settings(max_examples=25)
@given(d=st.integers(1, 5), seed=st.integers(0, 10_000), t=st.floats(-2.0, 2.0))
def test_divergence_exact_is_trace_of_autograd_jacobian(d, seed, t):
    f = MLPField(d, hidden=16, generator=torch.Generator().manual_seed(seed))
    z = random_points(3, d, seed=seed + 1)
    dz, div = divergence_exact(f, z, t)
    for b in range(3):
        J = torch.autograd.functional.jacobian(lambda x: f(x[None], t)[0], z[b])  # (d, d)
        torch.testing.assert_close(div[b], J.trace(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dz, f(z, t).detach())


def test_swirl_divergence_matches_its_closed_form():
    f = SwirlField()
    z = 2.0 * random_points(200, 2, seed=3)
    for t in (0.0, 0.3, 1.7):
        torch.testing.assert_close(
            divergence_exact(f, z, t)[1], f.divergence(z, t), rtol=1e-12, atol=1e-12
        )


# ----------------------------------------------------------------------------------------------
# The instantaneous change of variables.


@settings(max_examples=30)
@given(d=st.integers(1, 4), seed=st.integers(0, 10_000), t=st.floats(0.05, 2.0))
def test_linear_field_changes_log_density_by_minus_t_trace(d, seed, t):
    """z' = Az: log p_t(z(t)) - log p_0(z0) = -t tr A, and det exp(tA) = exp(t tr A)."""
    A = random_matrix(d, seed, scale=0.5)
    f = LinearField(A)
    z0 = random_points(5, d, seed=seed + 1)
    log_p0 = standard_normal_log_pdf(z0)
    z1, log_p1 = integrate_log_density(f, z0, log_p0, 0.0, t, 40)
    torch.testing.assert_close(log_p1 - log_p0, torch.full_like(log_p0, -t * A.trace().item()),
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(z1, z0 @ torch.linalg.matrix_exp(t * A).T, rtol=1e-6, atol=1e-6)
    _, log_p1_det = log_density_by_determinant(f, z0, t, 40)
    torch.testing.assert_close(log_p1_det, log_p1, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "field, d, t1",
    [
        (SwirlField(), 2, 2.0),
        (MLPField(3, hidden=16, generator=torch.Generator().manual_seed(5)), 3, 1.0),
    ],
    ids=["swirl", "mlp"],
)
def test_integrated_log_density_matches_flow_map_determinant(field, d, t1):
    z0 = random_points(200, d, seed=4)
    z1_det, log_p_det = log_density_by_determinant(field, z0, t1, 100)
    z1, log_p = integrate_log_density(field, z0, standard_normal_log_pdf(z0), 0.0, t1, 100)
    torch.testing.assert_close(z1, z1_det, rtol=0, atol=1e-13)
    assert (log_p - log_p_det).abs().max() < 1e-6


def test_both_routes_converge_to_each_other_at_fourth_order():
    f = SwirlField()
    z0 = random_points(50, 2, seed=6)
    gaps = []
    for steps in (20, 40, 80):
        _, log_p_det = log_density_by_determinant(f, z0, 2.0, steps)
        _, log_p = integrate_log_density(f, z0, standard_normal_log_pdf(z0), 0.0, 2.0, steps)
        gaps.append((log_p - log_p_det).abs().max().item())
    for coarse, fine in itertools.pairwise(gaps):
        assert 10.0 < coarse / fine < 22.0, gaps


def test_backward_log_density_agrees_with_forward_push():
    """log_density(x, t), solved backwards from x = z(t), equals the forward-integrated value."""
    f = SwirlField()
    z0 = random_points(100, 2, seed=7)
    z1, log_p1 = integrate_log_density(f, z0, standard_normal_log_pdf(z0), 0.0, 1.5, 150)
    back = log_density(f, standard_normal_log_pdf, z1, 1.5, 150)
    torch.testing.assert_close(back, log_p1, rtol=0, atol=1e-7)


def test_swirl_rotation_is_tangential_and_decays_away_from_the_origin():
    """Without the pull (beta0 = 0) the field only turns points: z . f(z) = 0, and its speed is
    omega |z| / (1 + |z|^2), largest on the unit circle."""
    f = SwirlField(beta0=0.0)
    z = random_points(50, 2, seed=8) * 3.0  # (50, 2)
    v = f(z, 0.7)
    radius = z.norm(dim=-1)
    torch.testing.assert_close((z * v).sum(-1), torch.zeros(50, dtype=FLOAT64), atol=1e-14,
                               rtol=0)
    torch.testing.assert_close(v.norm(dim=-1), f.omega * radius / (1 + radius**2))


def test_swirl_pull_has_the_two_stable_points_the_chapter_names():
    """Without the rotation (omega = 0), z_2 decays at rate beta(t), and on the z_1 axis the
    field vanishes at 0 and at the two roots of z = c tanh(kappa z), where it points inwards
    from outside and outwards from inside (stable, since c kappa > 1)."""
    f, t = SwirlField(omega=0.0), 0.3
    z = random_points(50, 2, seed=9)
    torch.testing.assert_close(f(z, t)[:, 1], -f.beta(t) * z[:, 1])
    root = torch.tensor(1.0, dtype=FLOAT64)
    for _ in range(100):  # fixed-point iteration z <- c tanh(kappa z) converges to the root
        root = f.c * torch.tanh(f.kappa * root)
    for sign in (1.0, -1.0):
        on_axis = torch.tensor([[sign * root, 0.0]], dtype=FLOAT64)
        assert f(on_axis, t).abs().max() < 1e-12
        outside, inside = on_axis * 1.1, on_axis * 0.9
        assert sign * f(outside, t)[0, 0] < 0 < sign * f(inside, t)[0, 0]
    assert f(torch.zeros(1, 2, dtype=FLOAT64), t).abs().max() == 0.0


def test_swirl_log_density_at_the_fixed_origin_has_a_closed_form():
    """The origin never moves and its divergence is beta(t) (c kappa - 2), so eq. cov-icov gives
    log p_t1(0) = log p_0(0) - (c kappa - 2) int_0^t1 beta dt, and the density there falls."""
    f, t1 = SwirlField(), 1.3
    origin = torch.zeros(1, 2, dtype=FLOAT64)
    assert f(origin, 0.4).abs().max() == 0.0
    beta_integral = f.beta0 * (t1 + (1.0 - math.cos(2.0 * math.pi * t1)) / (4.0 * math.pi))
    exact = standard_normal_log_pdf(origin) - (f.c * f.kappa - 2.0) * beta_integral
    with torch.no_grad():
        log_p = log_density(f, standard_normal_log_pdf, origin, t1, 130)
    torch.testing.assert_close(log_p, exact, rtol=0, atol=1e-9)
    assert (log_p < standard_normal_log_pdf(origin)).all()


def test_density_on_a_grid_has_unit_mass():
    f = SwirlField()
    xs = torch.linspace(-4.0, 4.0, 81, dtype=FLOAT64)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([X.flatten(), Y.flatten()], dim=-1)  # (81 * 81, 2)
    with torch.no_grad():
        p = log_density(f, standard_normal_log_pdf, grid, 1.0, 40).exp()
    mass = p.sum() * (xs[1] - xs[0]) ** 2
    assert abs(mass.item() - 1.0) < 5e-3


def test_sine_field_closed_form_flow_solves_the_ode():
    """z_i(t) = 2 arctan(exp(b_i t) tan(z_i(0) / 2)) is what RK4 gives for dz_i/dt = b_i sin z_i."""
    f = SineField(b=(1.0, -0.5, 2.0))
    z0 = 2.5 * torch.tanh(random_points(50, 3, seed=13))  # inside (-pi, pi)
    torch.testing.assert_close(odeint_rk4(f, z0, 0.0, 1.5, 300), f.flow(z0, 1.5),
                               rtol=0, atol=1e-9)
    torch.testing.assert_close(f.flow(z0, 0.0), z0, rtol=0, atol=1e-15)


def test_sine_field_log_density_three_ways():
    """Closed-form log det of the flow map = autograd through the solver = integrated -tr J."""
    f = SineField()
    z0 = 2.5 * torch.tanh(random_points(100, 2, seed=14))
    exact = f.log_det_jacobian(z0, 1.2)  # (100,)
    _, J = flow_map_jacobian(f, z0, 0.0, 1.2, 200)
    torch.testing.assert_close(torch.linalg.slogdet(J).logabsdet, exact, rtol=0, atol=1e-8)
    log_p0 = standard_normal_log_pdf(z0)
    _, log_p = integrate_log_density(f, z0, log_p0, 0.0, 1.2, 200)
    torch.testing.assert_close(log_p, log_p0 - exact, rtol=0, atol=1e-8)
    torch.testing.assert_close(divergence_exact(f, z0, 0.0)[1], f.divergence(z0),
                               rtol=1e-12, atol=1e-12)


def test_sine_field_rejects_points_outside_the_closed_form():
    f = SineField()
    with pytest.raises(ValueError, match=r"in \(-pi, pi\)"):
        f.flow(torch.tensor([[4.0, 0.0]], dtype=FLOAT64), 1.0)
    with pytest.raises(ValueError, match="shape \\(B, 2\\)"):
        f(torch.zeros(3, 3, dtype=FLOAT64), 0.0)
    with pytest.raises(ValueError, match="finite rates"):
        SineField(b=(1.0, math.inf))


# ----------------------------------------------------------------------------------------------
# Hutchinson's estimator.


@settings(max_examples=30)
@given(d=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_rademacher_hutchinson_exactly_by_enumeration(d, seed):
    """Over all 2^d sign vectors: the mean is exactly tr A and the variance exactly the formula."""
    A = random_matrix(d, seed)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)), dtype=FLOAT64)
    z = torch.zeros_like(signs)  # a linear field has the same Jacobian A everywhere
    _, estimates = divergence_hutchinson(LinearField(A), z, 0.0, signs)
    torch.testing.assert_close(estimates.mean(), A.trace(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        estimates.var(correction=0), hutchinson_variance(A, "rademacher"), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_with_the_predicted_variance(kind):
    d, n = 8, 40_000
    f = MLPField(d, hidden=16, generator=torch.Generator().manual_seed(8))
    point = random_points(1, d, seed=9)
    A = torch.autograd.functional.jacobian(lambda x: f(x[None], 0.3)[0], point[0])  # (d, d)
    v = probes(kind, (n, d), torch.Generator().manual_seed(10))
    _, estimates = divergence_hutchinson(f, point.expand(n, d), 0.3, v)
    standard_error = estimates.std() / math.sqrt(n)
    assert abs(estimates.mean() - A.trace()) < 3.0 * standard_error
    assert abs(estimates.var() / hutchinson_variance(A, kind) - 1.0) < 0.1


def test_hutchinson_log_density_is_unbiased():
    """FFJORD: a fixed probe per trajectory; the mean over probes is the exact log density."""
    f = SwirlField()
    n = 2000
    z0 = random_points(1, 2, seed=11).expand(n, 2)
    log_p0 = standard_normal_log_pdf(z0)
    _, exact = integrate_log_density(f, z0[:1], log_p0[:1], 0.0, 1.0, 50)
    v = probes("rademacher", (n, 2), torch.Generator().manual_seed(12))
    with torch.no_grad():
        _, estimates = integrate_log_density(f, z0, log_p0, 0.0, 1.0, 50, v=v)
    assert estimates.std() > 0  # the estimate really is random
    assert abs(estimates.mean() - exact[0]) < 3.0 * estimates.std() / math.sqrt(n)


# ----------------------------------------------------------------------------------------------
# Bad input.


def test_bad_input_raises_clear_errors():
    f = SwirlField()
    z = random_points(4, 2, seed=0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        odeint_rk4(f, z, 0.0, 1.0, 0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        odeint_rk4(f, z, 0.0, 1.0, 2.5)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        odeint_rk4(f, z, 0.0, 1.0, True)
    with pytest.raises(ValueError, match="shape \\(B, d\\)"):
        odeint_rk4(f, z[0], 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="NaN or inf"):
        odeint_rk4(f, torch.full((2, 2), math.nan, dtype=FLOAT64), 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="floating-point"):
        odeint_rk4(f, torch.ones(2, 2, dtype=torch.int64), 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="must be finite"):
        odeint_rk4(f, z, 0.0, math.inf, 10)
    with pytest.raises(ValueError, match="shaped like its input"):
        odeint_rk4(lambda y, t: y[:, :1], z, 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="the probe v must have the shape of z"):
        divergence_hutchinson(f, z, 0.0, torch.ones(3, 2, dtype=FLOAT64))
    with pytest.raises(ValueError, match="unknown probe kind 'uniform'"):
        probes("uniform", (3, 2))
    with pytest.raises(ValueError, match="unknown probe kind"):
        hutchinson_variance(torch.eye(2), "normal")
    with pytest.raises(ValueError, match="square matrix"):
        hutchinson_variance(torch.ones(2, 3), "gaussian")
    with pytest.raises(ValueError, match="square matrix"):
        LinearField(torch.ones(3))
    with pytest.raises(ValueError, match="one value per point"):
        integrate_log_density(f, z, torch.zeros(3, dtype=FLOAT64), 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="must be positive"):
        MLPField(0)
