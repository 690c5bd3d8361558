"""Continuous normalizing flows: the instantaneous change of variables, integrated and checked.

Chen et al. (2018), "Neural Ordinary Differential Equations", Theorem 1 (eq. 4): if z(t) solves
dz/dt = f(z(t), t), then its log density changes along the trajectory as

    d/dt log p(z(t)) = -tr(df/dz(t)).

Integrating [z, log p] as one ODE (their eq. 4 appended to the state) gives the density of a
flow without ever forming a determinant. Grathwohl et al. (2019), "FFJORD", eq. 7, replace the
exact trace by Hutchinson's estimator v^T (df/dz) v, which one vector-Jacobian product gives.

What is here, in reading order:
  * a fixed-step classical Runge-Kutta solver (RK4) that autograd can differentiate end to end;
  * the divergence tr(df/dz), exact (d backward passes) and by Hutchinson's estimator;
  * the augmented dynamics [f, -tr df/dz] and the log density of a flow, forward and backward;
  * the Jacobian of the flow map by autograd through the solver, the determinant route to the
    same log density;
  * four vector fields: a linear one and a separable sine field (both with closed-form flows),
    a time-dependent nonlinear "swirl" and a small time-conditioned MLP of the kind a continuous
    normalizing flow trains.

Shapes: B points, d dimensions. A vector field is a callable f(z, t) with z (B, d) and t a
float, returning (B, d).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from dgm.inputs import check_points

VectorField = Callable[[torch.Tensor, float], torch.Tensor]

# ----------------------------------------------------------------------------------------------
# Input checks.


def _check_state(name: str, y: torch.Tensor) -> None:
    check_points(name, y, "start the flow from finite points.")


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def _check_times(t0: float, t1: float) -> None:
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"t0 and t1 must be finite numbers, got t0={t0}, t1={t1}")


def _check_output(dy: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(dy) or dy.shape != y.shape:
        shape = tuple(dy.shape) if torch.is_tensor(dy) else type(dy).__name__
        raise ValueError(
            f"the vector field must return a tensor shaped like its input {tuple(y.shape)}, "
            f"got {shape}"
        )
    return dy


# ----------------------------------------------------------------------------------------------
# The solver: classical fourth-order Runge-Kutta with a fixed step.


def rk4_step(func: VectorField, y: torch.Tensor, t: float, h: float) -> torch.Tensor:
    """One Runge-Kutta step y(t) -> y(t + h) for dy/dt = func(y, t); local error O(h^5)."""
    k1 = _check_output(func(y, t), y)
    k2 = func(y + 0.5 * h * k1, t + 0.5 * h)
    k3 = func(y + 0.5 * h * k2, t + 0.5 * h)
    k4 = func(y + h * k3, t + h)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def odeint_rk4(
    func: VectorField,
    y0: torch.Tensor,
    t0: float,
    t1: float,
    steps: int,
    return_path: bool = False,
) -> torch.Tensor:
    """Solve dy/dt = func(y, t) from y(t0) = y0 to t1 in ``steps`` equal RK4 steps.

    t1 < t0 integrates backwards in time. Returns y(t1) (B, d), or with ``return_path=True`` the
    states at the steps + 1 times t0, t0 + h, ..., t1 as a (steps + 1, B, d) tensor. Every
    operation is a torch operation, so gradients flow to y0 and to the field's parameters.
    The global error is O(h^4), h = (t1 - t0) / steps.
    """
    _check_state("y0", y0)
    _check_steps(steps)
    _check_times(t0, t1)
    h = (t1 - t0) / steps
    y, path = y0, [y0]
    for i in range(steps):
        y = rk4_step(func, y, t0 + i * h, h)
        if return_path:
            path.append(y)
    return torch.stack(path) if return_path else y  # (steps + 1, B, d) or (B, d)


# ----------------------------------------------------------------------------------------------
# The divergence tr(df/dz): exact, and by Hutchinson's estimator.


def _field_with_graph(f: VectorField, z: torch.Tensor, t: float) -> tuple[torch.Tensor, ...]:
    """Evaluate f at z with autograd on; return (z as a graph leaf if needed, f(z, t))."""
    if not z.requires_grad:
        z = z.detach().requires_grad_(True)
    return z, _check_output(f(z, t), z)


def divergence_exact(f: VectorField, z: torch.Tensor, t: float) -> tuple[torch.Tensor, ...]:
    """f(z, t) (B, d) and its exact divergence tr(df/dz) (B,), from d backward passes.

    Row i of df/dz at every point is the gradient of sum_b f_i(z_b): point b's output depends on
    point b alone. When autograd is on, the result stays differentiable (create_graph), so a
    loss on the log density can be backpropagated through the trace.
    """
    _check_state("z", z)
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        z, dz = _field_with_graph(f, z, t)
        div = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)  # (B,)
        for i in range(z.shape[1]):
            (row_i,) = torch.autograd.grad(
                dz[:, i].sum(), z, retain_graph=True, create_graph=keep_graph
            )  # (B, d)
            div = div + row_i[:, i]
    if not keep_graph:
        dz, div = dz.detach(), div.detach()
    return dz, div


def rademacher(shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Independent signs +-1 with probability 1/2 each."""
    bits = torch.randint(0, 2, shape, generator=generator)
    return (2 * bits - 1).to(dtype)


def probes(kind: str, shape: tuple[int, ...], generator: torch.Generator | None = None,
           dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Probe vectors v with E[v v^T] = I: ``"rademacher"`` or ``"gaussian"``."""
    if kind == "rademacher":
        return rademacher(shape, generator, dtype)
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, dtype=dtype)
    raise ValueError(f"unknown probe kind {kind!r}; use 'rademacher' or 'gaussian'")


def divergence_hutchinson(
    f: VectorField, z: torch.Tensor, t: float, v: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """f(z, t) (B, d) and Hutchinson's estimate v^T (df/dz) v (B,) of its divergence.

    FFJORD eq. 7: E[v^T A v] = tr(A E[v v^T]) = tr A for any probe v with E[v v^T] = I. One
    vector-Jacobian product v^T (df/dz) costs about one evaluation of f, whatever d is; the
    exact trace needs d of them.
    """
    _check_state("z", z)
    if not torch.is_tensor(v) or v.shape != z.shape:
        shape = tuple(v.shape) if torch.is_tensor(v) else type(v).__name__
        raise ValueError(f"the probe v must have the shape of z {tuple(z.shape)}, got {shape}")
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        z, dz = _field_with_graph(f, z, t)
        (v_J,) = torch.autograd.grad(dz, z, grad_outputs=v, create_graph=keep_graph)  # (B, d)
        estimate = (v_J * v).sum(dim=-1)  # (B,)
    if not keep_graph:
        dz, estimate = dz.detach(), estimate.detach()
    return dz, estimate


def hutchinson_variance(A: torch.Tensor, kind: str) -> torch.Tensor:
    """Variance of one probe's estimate v^T A v of tr A (Hutchinson 1990; Avron & Toledo 2011).

    Only the symmetric part A_sym = (A + A^T) / 2 matters, since v^T A v = v^T A_sym v:
    Rademacher 2 sum_{i != j} (A_sym)_ij^2, Gaussian 2 ||A_sym||_F^2.
    """
    if not torch.is_tensor(A) or A.dim() != 2 or A.shape[0] != A.shape[1]:
        shape = tuple(A.shape) if torch.is_tensor(A) else type(A).__name__
        raise ValueError(f"A must be a square matrix, got shape {shape}")
    A_sym = 0.5 * (A + A.T)
    if kind == "rademacher":
        return 2.0 * (A_sym.pow(2).sum() - A_sym.diagonal().pow(2).sum())
    if kind == "gaussian":
        return 2.0 * A_sym.pow(2).sum()
    raise ValueError(f"unknown probe kind {kind!r}; use 'rademacher' or 'gaussian'")


# ----------------------------------------------------------------------------------------------
# The instantaneous change of variables: integrate [z, log p] together.


def augmented_dynamics(f: VectorField, v: torch.Tensor | None = None) -> VectorField:
    """The ODE for the state [z, log p] (B, d + 1): dz/dt = f(z, t), d log p/dt = -tr(df/dz).

    Chen et al. (2018) eq. 4. With a probe ``v`` (B, d) the trace is Hutchinson's estimate
    with that fixed probe throughout the solve (FFJORD); without one it is exact.
    """

    def dynamics(state: torch.Tensor, t: float) -> torch.Tensor:
        z = state[:, :-1]  # (B, d)
        if v is None:
            dz, div = divergence_exact(f, z, t)
        else:
            dz, div = divergence_hutchinson(f, z, t, v)
        return torch.cat([dz, -div[:, None]], dim=-1)  # (B, d + 1)

    return dynamics


def integrate_log_density(
    f: VectorField,
    z0: torch.Tensor,
    log_p0: torch.Tensor,
    t0: float,
    t1: float,
    steps: int,
    v: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Push points z0 (B, d) with log densities log_p0 (B,) from t0 to t1.

    Returns z(t1) (B, d) and log p_{t1}(z(t1)) = log p_{t0}(z0) - int_{t0}^{t1} tr(df/dz) dt (B,).
    With a probe ``v`` (B, d) the trace is Hutchinson's estimate with that probe (FFJORD).
    """
    _check_state("z0", z0)
    if not torch.is_tensor(log_p0) or log_p0.shape != z0.shape[:1]:
        shape = tuple(log_p0.shape) if torch.is_tensor(log_p0) else type(log_p0).__name__
        raise ValueError(
            f"log_p0 must have shape ({z0.shape[0]},), one value per point, got {shape}"
        )
    state0 = torch.cat([z0, log_p0[:, None].to(z0.dtype)], dim=-1)  # (B, d + 1)
    state1 = odeint_rk4(augmented_dynamics(f, v), state0, t0, t1, steps)  # (B, d + 1)
    return state1[:, :-1], state1[:, -1]


def log_density(
    f: VectorField,
    log_p0: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    t: float,
    steps: int,
) -> torch.Tensor:
    """log p_t(x) (B,) for points x (B, d): run the flow backwards from time t to 0.

    The augmented ODE solved backwards from [x, 0] at time t ends at time 0 in
    [z0, int_0^t tr(df/dz) ds]: z0 is the point that the flow carries to x, and the last
    coordinate the integrated divergence along its trajectory. So
    log p_t(x) = log p_0(z0) - int_0^t tr(df/dz) ds.
    """
    _check_state("x", x)
    zeros = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)  # (B,)
    z0, trace_integral = integrate_log_density(f, x, zeros, t, 0.0, steps)
    return log_p0(z0) - trace_integral


# ----------------------------------------------------------------------------------------------
# The determinant route: the Jacobian of the flow map by autograd through the solver.


def flow_map_jacobian(
    f: VectorField, z0: torch.Tensor, t0: float, t1: float, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """z(t1) (B, d) and the Jacobian dz(t1)/dz(t0) (B, d, d) of the RK4 flow map at every z0.

    Row i at every point is the gradient of sum_b z_i(t1) with respect to z0: points do not
    interact, so one backward pass per output dimension gives every point's Jacobian.
    """
    _check_state("z0", z0)
    with torch.enable_grad():
        z0 = z0.detach().requires_grad_(True)
        z1 = odeint_rk4(f, z0, t0, t1, steps)  # (B, d)
        rows = [
            torch.autograd.grad(z1[:, i].sum(), z0, retain_graph=True)[0]  # (B, d)
            for i in range(z0.shape[1])
        ]
    return z1.detach(), torch.stack(rows, dim=1)  # (B, d), (B, d, d)


# ----------------------------------------------------------------------------------------------
# Vector fields.


class LinearField(nn.Module):
    """f(z, t) = A z. Its flow map is exp(tA); the log density changes by exactly -t tr A."""

    def __init__(self, A: torch.Tensor):
        super().__init__()
        if not torch.is_tensor(A) or A.dim() != 2 or A.shape[0] != A.shape[1]:
            shape = tuple(A.shape) if torch.is_tensor(A) else type(A).__name__
            raise ValueError(f"A must be a square matrix, got shape {shape}")
        self.register_buffer("A", A)

    def forward(self, z: torch.Tensor, t: float) -> torch.Tensor:
        return z @ self.A.T  # (B, d)


class SineField(nn.Module):
    """A nonlinear field with a closed-form flow: f_i(z) = b_i sin z_i, one coordinate at a time.

    Each coordinate solves dz_i/dt = b_i sin z_i on its own, and for |z_i(0)| < pi

        z_i(t) = 2 arctan(exp(b_i t) tan(z_i(0) / 2)),

    so the flow map, its Jacobian (diagonal) and the exact log density are all explicit. The
    divergence sum_i b_i cos z_i varies in space: where it is positive the flow spreads points
    apart and the density along them falls. This is the chapter's sine flow dz/dt = b(t) sin z
    with constant rates, one per coordinate.
    """

    def __init__(self, b: tuple[float, ...] = (1.0, -0.5)):
        super().__init__()
        if len(b) < 1 or not all(math.isfinite(b_i) for b_i in b):
            raise ValueError(f"b must be a non-empty tuple of finite rates, got {b!r}")
        self.b = tuple(float(b_i) for b_i in b)

    def _rates(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != len(self.b):
            raise ValueError(
                f"z must have shape (B, {len(self.b)}) for a field with {len(self.b)} rates, "
                f"got {tuple(z.shape)}"
            )
        return torch.tensor(self.b, dtype=z.dtype, device=z.device)  # (d,)

    def forward(self, z: torch.Tensor, t: float) -> torch.Tensor:
        return self._rates(z) * torch.sin(z)  # (B, d)

    def divergence(self, z: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        """The closed form tr(df/dz) = sum_i b_i cos z_i. (B, d) -> (B,)"""
        return (self._rates(z) * torch.cos(z)).sum(dim=-1)

    def _start(self, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_state("z0", z0)
        if (z0.abs() >= math.pi).any():
            raise ValueError("the closed form needs every coordinate of z0 in (-pi, pi)")
        return self._rates(z0), torch.tan(0.5 * z0)  # (d,), (B, d)

    def flow(self, z0: torch.Tensor, t: float) -> torch.Tensor:
        """Phi_{0 -> t}(z0) (B, d), exactly."""
        b, u = self._start(z0)
        return 2.0 * torch.atan(torch.exp(b * t) * u)

    def log_det_jacobian(self, z0: torch.Tensor, t: float) -> torch.Tensor:
        """log det dPhi_{0 -> t}(z0)/dz0 (B,), exactly: a sum over the diagonal Jacobian.

        dz_i(t)/dz_i(0) = exp(b_i t) (1 + u_i^2) / (1 + exp(2 b_i t) u_i^2), u_i = tan(z_i(0)/2).
        """
        b, u = self._start(z0)
        u2 = u**2  # (B, d)
        return (b * t + torch.log1p(u2) - torch.log1p(torch.exp(2.0 * b * t) * u2)).sum(dim=-1)


class SwirlField(nn.Module):
    """A 2-D, time-dependent, nonlinear field: a differential rotation plus a split along z_1.

        f(z, t) = omega R z / (1 + |z|^2) + beta(t) (c tanh(kappa z_1) e_1 - z),
        R = [[0, -1], [1, 0]],   beta(t) = beta0 (1 + sin(2 pi t) / 2).

    R is the rotation by a quarter turn (not the Jacobian J = df/dz of the text). The rotation
    turns points near the origin fastest, which shears mass into arms; it has zero divergence.
    The second term pulls z_2 to 0 and, since c kappa > 1, sends z_1 to one of two stable
    points +-z*, so the Gaussian splits in two; its divergence is
    beta(t) (c kappa sech^2(kappa z_1) - 2). Both terms are Lipschitz in z, uniformly in t.
    """

    def __init__(self, omega: float = 3.0, beta0: float = 0.6, c: float = 1.5,
                 kappa: float = 2.0):
        super().__init__()
        self.omega, self.beta0, self.c, self.kappa = omega, beta0, c, kappa

    def beta(self, t: float) -> float:
        return self.beta0 * (1.0 + 0.5 * math.sin(2.0 * math.pi * t))

    def forward(self, z: torch.Tensor, t: float) -> torch.Tensor:
        z1, z2 = z[:, 0], z[:, 1]  # (B,) each
        swirl = self.omega / (1.0 + z1**2 + z2**2)  # (B,)
        rotation = torch.stack([-z2, z1], dim=-1) * swirl[:, None]  # (B, 2)
        target = torch.stack([self.c * torch.tanh(self.kappa * z1), torch.zeros_like(z2)], dim=-1)
        return rotation + self.beta(t) * (target - z)  # (B, 2)

    def divergence(self, z: torch.Tensor, t: float) -> torch.Tensor:
        """The closed form tr(df/dz) = beta(t) (c kappa sech^2(kappa z_1) - 2). (B, 2) -> (B,)"""
        sech2 = 1.0 - torch.tanh(self.kappa * z[:, 0]) ** 2
        return self.beta(t) * (self.c * self.kappa * sech2 - 2.0)


class MLPField(nn.Module):
    """f(z, t) = W_2 tanh(W_1 z + t u + b_1) + b_2: a one-hidden-layer, time-conditioned network.

    The shape of the dynamics in Chen et al. (2018) and FFJORD, here with fixed random weights
    (drawn from ``generator``, scaled by ``scale``) so that it serves as a test field. tanh has a
    bounded derivative, so f is Lipschitz in z, uniformly in t.
    """

    def __init__(self, d: int, hidden: int = 32, scale: float = 1.0,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64):
        super().__init__()
        if d < 1 or hidden < 1:
            raise ValueError(f"d and hidden must be positive, got d={d}, hidden={hidden}")

        def draw(*shape: int, fan_in: int = 1) -> nn.Parameter:
            weights = torch.randn(*shape, generator=generator, dtype=dtype)
            return nn.Parameter(scale * weights / math.sqrt(fan_in))

        self.W1 = draw(hidden, d, fan_in=d)  # (hidden, d)
        self.u = draw(hidden)  # (hidden,) how the time enters
        self.b1 = draw(hidden)  # (hidden,)
        self.W2 = draw(d, hidden, fan_in=hidden)  # (d, hidden)
        self.b2 = draw(d)  # (d,)

    def forward(self, z: torch.Tensor, t: float) -> torch.Tensor:
        hidden = torch.tanh(z @ self.W1.T + t * self.u + self.b1)  # (B, hidden)
        return hidden @ self.W2.T + self.b2  # (B, d)
