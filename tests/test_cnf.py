"""Tests of dgm.cnf: the continuous normalizing flow of the CNF lab.

The log density it computes is the exact change of variables for a linear field (closed form),
its forward-mode trace is the autograd trace, an optimiser step lowers the loss, the adjoint and
the direct gradients agree, the finite-difference determinant agrees with the trace integral,
checkpoints restore the weights, and bad input or a failing solver raise clear errors instead
of returning a NaN log likelihood.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgm.cnf import (
    CNFConfig,
    ODESolveError,
    Solver,
    TimeMLP,
    as_float64,
    finite_difference_log_density,
    log_density,
    loss_gradients,
    nll_loss,
    sample,
    train_cnf,
    trajectories,
)
from dgm.flows import LinearField, divergence_exact
from dgm.gaussian import standard_normal_log_pdf
from dgm.training import load_checkpoint

ACCURATE = Solver("dopri5", rtol=1e-10, atol=1e-10)


def field64(seed: int = 0, hidden: int = 16, layers: int = 2) -> TimeMLP:
    torch.manual_seed(seed)
    return TimeMLP(2, hidden, layers).double()


@settings(max_examples=25)
@given(
    entries=st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4),
    t1=st.floats(0.1, 2.0),
)
def test_linear_field_matches_the_closed_form_change_of_variables(entries, t1):
    """For f(z) = A z the flow map is exp(tA): z(0) = exp(-t1 A) x and
    log p_t1(x) = log N(z(0); 0, I) - t1 tr A."""
    A = torch.tensor(entries, dtype=torch.float64).reshape(2, 2)
    x = torch.tensor([[0.5, -1.0], [2.0, 0.3], [-1.5, -0.7]], dtype=torch.float64)
    log_p, z0 = log_density(LinearField(A), x, t1, ACCURATE)
    z0_exact = x @ torch.linalg.matrix_exp(-t1 * A).T  # (3, 2)
    exact = standard_normal_log_pdf(z0_exact) - t1 * torch.trace(A)
    torch.testing.assert_close(z0, z0_exact, rtol=0, atol=1e-8)
    torch.testing.assert_close(log_p, exact, rtol=0, atol=1e-8)


def test_fixed_step_rk4_converges_to_the_linear_closed_form_at_fourth_order():
    A = torch.tensor([[0.3, -1.2], [0.8, -0.5]], dtype=torch.float64)
    x = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    exact = standard_normal_log_pdf(x @ torch.linalg.matrix_exp(-A).T) - torch.trace(A)
    errors = [(log_density(LinearField(A), x, 1.0, Solver("rk4", steps=n))[0] - exact).abs().item()
              for n in (4, 8, 16)]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(3.5 < order < 4.5 for order in orders), orders


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), t=st.floats(-1.0, 2.0), layers=st.integers(1, 3))
def test_forward_mode_trace_is_the_autograd_trace(seed, t, layers):
    field = field64(seed, hidden=8, layers=layers)
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    value, trace = field.value_and_trace(z, t)
    value_ref, trace_ref = divergence_exact(field, z, t)
    torch.testing.assert_close(value, field(z, t), rtol=0, atol=1e-12)
    torch.testing.assert_close(value, value_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(trace, trace_ref, rtol=0, atol=1e-12)


def test_the_model_density_integrates_to_one():
    """A CNF is a normalised density: its log density, exponentiated on a grid, sums to 1."""
    field = field64(3)
    with torch.no_grad():
        field.linears[-1].weight.mul_(0.3)  # a gentle flow, so the mass stays on the grid
    n, half_width = 80, 7.0
    h = 2 * half_width / n
    xs = -half_width + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([X.flatten(), Y.flatten()], dim=-1)  # (n * n, 2)
    with torch.no_grad():
        log_p, _ = log_density(field, grid, 1.0, Solver("rk4", steps=16))
    assert abs(log_p.exp().sum().item() * h * h - 1.0) < 2e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(seed):
    torch.manual_seed(seed)
    field = TimeMLP(2, 32, 2)
    batch = torch.randn(256, 2, generator=torch.Generator().manual_seed(seed)) * 0.5 + 1.0
    before = nll_loss(field, batch).item()
    history = train_cnf(field, lambda n, g: batch, steps=1, batch_size=256, lr=1e-3,
                        progress=False)
    after = nll_loss(field, batch).item()
    assert history.step_loss == pytest.approx([before], abs=1e-6)
    assert after < before


def test_training_records_the_history_and_writes_a_checkpoint_that_restores(tmp_path):
    torch.manual_seed(0)
    field = TimeMLP(2, 16, 2)
    eval_points = torch.randn(64, 2)
    path = tmp_path / "cnf.pt"
    history = train_cnf(field, lambda n, g: torch.randn(n, 2, generator=g), steps=6,
                        batch_size=32, eval_points=eval_points, eval_every=3,
                        generator=torch.Generator().manual_seed(1), checkpoint=path,
                        progress=False)
    assert len(history.step_loss) == 6 and history.eval_step == [3, 6]
    assert len(history.eval_loss) == 2 and history.seconds[0] <= history.seconds[1]
    assert history.eval_loss[-1] == pytest.approx(nll_loss(field, eval_points).item(), abs=1e-5)
    restored = TimeMLP(2, 16, 2)
    assert load_checkpoint(path, restored)["step"] == 6
    for a, b in zip(field.state_dict().values(), restored.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_adjoint_and_direct_gradients_agree():
    field = field64(4, hidden=8)
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    direct, _ = loss_gradients(field, [x], False, solver=Solver("dopri5", rtol=1e-8, atol=1e-8))
    adjoint, _ = loss_gradients(field, [x], False,
                                solver=Solver("dopri5", rtol=1e-8, atol=1e-8, adjoint=True))
    assert direct.abs().max() > 1e-3  # a gradient worth comparing
    torch.testing.assert_close(adjoint, direct, rtol=1e-4, atol=1e-6)
    fixed = loss_gradients(field, [x], False, solver=Solver("rk4", steps=8))[0]
    fixed_adjoint = loss_gradients(field, [x], False, solver=Solver("rk4", steps=8,
                                                                    adjoint=True))[0]
    torch.testing.assert_close(fixed_adjoint, fixed, rtol=1e-3, atol=1e-5)


def test_hutchinson_log_density_is_unbiased_and_its_gradient_noisy():
    field = field64(5)
    x = torch.tensor([[0.4, -0.9]], dtype=torch.float64).expand(4000, 2)
    exact, _ = log_density(field, x[:1], 1.0, Solver("rk4", steps=16))
    v = (2 * torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(0)) - 1)
    with torch.no_grad():
        noisy, _ = log_density(field, x, 1.0, Solver("rk4", steps=16), v=v.double())
    standard_error = noisy.std().item() / math.sqrt(len(noisy))
    assert noisy.std() > 0
    assert abs(noisy.mean().item() - exact.item()) < 4 * standard_error
    batch = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    exact_rows, _ = loss_gradients(field, [batch] * 3, False)
    noisy_rows, _ = loss_gradients(field, [batch] * 3, True,
                                   generator=torch.Generator().manual_seed(2))
    assert torch.equal(exact_rows[0], exact_rows[1]) and torch.equal(exact_rows[0], exact_rows[2])
    assert not torch.equal(noisy_rows[0], noisy_rows[1])


def test_finite_difference_determinant_matches_the_trace_integral():
    field = field64(6)
    x = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        trace_route, _ = log_density(field, x, 1.0, ACCURATE)
    determinant_route = finite_difference_log_density(field, x, 1.0, ACCURATE)
    assert (trace_route - determinant_route).abs().max() < 1e-6


def test_samples_and_trajectories_carry_their_log_densities():
    field = field64(7)
    x, log_p = sample(field, 50, 1.0, Solver("rk4", steps=32),
                      torch.Generator().manual_seed(0), torch.float64)
    with torch.no_grad():
        back, _ = log_density(field, x, 1.0, Solver("rk4", steps=32))
    torch.testing.assert_close(back, log_p, rtol=0, atol=1e-6)
    z0 = torch.randn(10, 2, dtype=torch.float64)
    times = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    points, log_ps = trajectories(field, z0, times, Solver("rk4", steps=32))
    assert points.shape == (5, 10, 2) and log_ps.shape == (5, 10)
    torch.testing.assert_close(points[0], z0)
    torch.testing.assert_close(log_ps[0], standard_normal_log_pdf(z0))


def test_float64_copy_leaves_the_original_alone():
    field = TimeMLP()
    copy = as_float64(field)
    assert next(copy.parameters()).dtype == torch.float64
    assert next(field.parameters()).dtype == torch.float32


# ----------------------------------------------------------------------------------------------
# Bad input, and solver failure: a clear error, never a NaN log likelihood.


def test_wrong_dimension_is_refused():
    field = TimeMLP(2, 8, 1)
    with pytest.raises(ValueError, match=r"\(B, 2\) for a field in 2 dimensions"):
        log_density(field, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        log_density(field, torch.zeros(4))
    with pytest.raises(ValueError, match=r"is torch.float64 but the field is torch.float32"):
        log_density(field, torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="floating-point"):
        log_density(field, torch.zeros(4, 2, dtype=torch.long))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_points_are_refused(bad):
    field = TimeMLP(2, 8, 1)
    x = torch.tensor([[0.0, 1.0], [bad, 0.0]])
    with pytest.raises(ValueError, match="non-finite"):
        log_density(field, x)
    with pytest.raises(ValueError, match="non-finite"):
        train_cnf(field, lambda n, g: x, steps=1, progress=False)
    with pytest.raises(ValueError, match="eval_points"):
        train_cnf(field, lambda n, g: torch.zeros(n, 2), steps=1, eval_points=x, progress=False)


@pytest.mark.parametrize("t1", [0.0, -1.0, math.nan, math.inf])
def test_a_horizon_not_after_t0_is_refused(t1):
    field = TimeMLP(2, 8, 1)
    with pytest.raises(ValueError, match="need t1 > t0 = 0"):
        log_density(field, torch.zeros(3, 2), t1)
    with pytest.raises(ValueError, match="need t1 > t0 = 0"):
        sample(field, 3, t1)


class BlowUp(torch.nn.Module):
    """dz/dt = z^2 componentwise: from x = -1 at t1 = 2, z(t) = 1 / (1 - t) backwards in time,
    which is infinite at t = 1, before the solve reaches t0 = 0."""

    d = 2

    def forward(self, z, t):
        return z * z


class NotANumber(torch.nn.Module):
    """A field that returns NaN: a network whose weights have been ruined."""

    d = 2

    def forward(self, z, t):
        return z * math.nan


def test_a_solver_that_fails_raises_instead_of_returning_nan():
    x = torch.tensor([[-1.0, -1.0]], dtype=torch.float64)
    with pytest.raises(ODESolveError, match="failed: underflow in dt"):
        log_density(BlowUp(), x, 2.0, Solver("dopri5", rtol=1e-8, atol=1e-8))
    with pytest.raises(ODESolveError, match="max_num_steps"):
        log_density(BlowUp(), x, 2.0, Solver("dopri5", rtol=1e-8, atol=1e-8, max_steps=50))
    with pytest.raises(ODESolveError, match="NaN or inf"):  # a fixed step cannot underflow
        log_density(NotANumber(), x, 1.0, Solver("rk4", steps=4))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown method"):
        Solver("rk5")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        Solver("rk4", steps=0)
    with pytest.raises(ValueError, match="rtol and atol"):
        Solver("dopri5", rtol=0.0)
    with pytest.raises(ValueError, match="activation"):
        TimeMLP(activation="relu")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        train_cnf(TimeMLP(), lambda n, g: torch.zeros(n, 2), steps=0)
    with pytest.raises(ValueError, match="unknown density"):
        from dgm.cnf import train_cnf_on

        train_cnf_on(CNFConfig(density="spiral", steps=1))
