"""A continuous normalizing flow trained by maximum likelihood: FFJORD in two dimensions.

Grathwohl et al. (2019), "FFJORD", eqs. 4-7, after Chen et al. (2018), Theorem 1: a network
f(z, t; theta) defines the flow dz/dt = f(z(t), t; theta) from z(0) ~ p_0 = N(0, I) to time t1.
The model's log density at a data point x is found by solving the augmented ODE
[z, log p] backwards from [x, 0] at time t1 to time 0,

    log p_{t1}(x) = log p_0(z(0)) - int_0^{t1} tr(df/dz)(z(t), t) dt,

and training minimises the mean of -log p_{t1}(x) over data. What is here, in reading order:

  * :class:`TimeMLP`, the vector field: an MLP of (z, t) whose exact divergence is carried
    through the network alongside its value (forward mode; cheap for d = 2);
  * :class:`AugmentedDynamics`, the right-hand side [f, -tr(df/dz)] in the form torchdiffeq
    expects, with the exact trace or Hutchinson's estimate with a fixed probe v;
  * :func:`log_density` (the backward solve), :func:`sample` and :func:`trajectories` (forward
    solves), with :class:`Solver` naming the torchdiffeq method and its settings;
  * :func:`nll_loss` and :func:`train_cnf`, Adam with the book's warm-up-cosine schedule;
  * :func:`loss_gradients`, :func:`finite_difference_log_density`: the lab's two checks.

The ODE is solved by torchdiffeq (``odeint``, or ``odeint_adjoint``, which recomputes the
trajectory backwards instead of storing it). Shapes: B points in d dimensions; z is (B, d), a
log density (B,).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint
from tqdm import tqdm

from dgm.config import seed_everything, seeded_generator
from dgm.flows import divergence_exact, divergence_hutchinson, rademacher
from dgm.gaussian import standard_normal_log_pdf
from dgm.inputs import check_points, checking, unchecked
from dgm.results import cached
from dgm.toy_densities import make_density
from dgm.training import History, check_finite_loss, save_checkpoint, warmup_cosine

FIXED_STEP = ("rk4", "midpoint", "euler")
ADAPTIVE = ("dopri5", "bosh3", "dopri8")
TRACES = ("exact", "hutchinson")


class ODESolveError(RuntimeError):
    """The ODE solver failed (a step size underflow, too many steps, a non-finite state)."""


# ----------------------------------------------------------------------------------------------
# The vector field f(z, t; theta).


class TimeMLP(nn.Module):
    """f(z, t; theta): an MLP of the state and the time, [z, t] -> hidden -> ... -> d.

    The time enters as one more input, as in Chen et al. (2018). With the activation tanh (or
    softplus), f is smooth and Lipschitz in z, uniformly in t on bounded times, as the
    instantaneous change of variables assumes. :meth:`value_and_trace` returns f and its exact
    divergence tr(df/dz) together: it carries the d columns of the Jacobian through the layers
    with the values (forward-mode differentiation), which costs about d more passes of the
    network's matrix products, and no backward pass.
    """

    def __init__(self, d: int = 2, hidden: int = 64, layers: int = 2,
                 activation: str = "tanh"):
        super().__init__()
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"d must be a positive integer, got {d!r}")
        if hidden < 1 or layers < 1:
            raise ValueError(f"hidden and layers must be positive, got {hidden} and {layers}")
        if activation not in ("tanh", "softplus"):
            raise ValueError(f"activation must be 'tanh' or 'softplus', got {activation!r}")
        self.d, self.activation = d, activation
        widths = [d + 1] + [hidden] * layers + [d]
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)

    def _inputs(self, z: torch.Tensor, t) -> torch.Tensor:
        t_column = torch.as_tensor(t, dtype=z.dtype, device=z.device).reshape(1, 1)
        return torch.cat([z, t_column.expand(z.shape[0], 1)], dim=-1)  # (B, d + 1)

    def _act(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The activation and its derivative at a."""
        if self.activation == "tanh":
            h = torch.tanh(a)
            return h, 1.0 - h * h
        return nn.functional.softplus(a), torch.sigmoid(a)

    def forward(self, z: torch.Tensor, t) -> torch.Tensor:
        h = self._inputs(z, t)  # (B, d + 1)
        for linear in self.linears[:-1]:
            h = self._act(linear(h))[0]  # (B, hidden)
        return self.linears[-1](h)  # (B, d)

    def value_and_trace(self, z: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """f(z, t) (B, d) and tr(df/dz) (B,), exactly, by forward-mode differentiation.

        The value and the d columns of the Jacobian travel together as one (1 + d, B, width)
        tensor, so each layer is a single matrix product for all of them; only the value row
        gets the bias.
        """
        first = self.linears[0]
        a = first(self._inputs(z, t))  # (B, hidden)
        columns = first.weight[:, : self.d].T[:, None, :]  # (d, 1, hidden): da/dz_i
        columns = columns.expand(-1, z.shape[0], -1)  # (d, B, hidden)
        for linear in self.linears[1:]:
            h, slope = self._act(a)  # (B, hidden) each
            rows = torch.cat([h[None], slope[None] * columns])  # (1 + d, B, hidden): h, dh/dz_i
            rows = rows @ linear.weight.T  # (1 + d, B, next width)
            a, columns = rows[0] + linear.bias, rows[1:]
        trace = columns.diagonal(dim1=0, dim2=2).sum(dim=-1)  # (B,): sum_i df_i/dz_i
        return a, trace


# ----------------------------------------------------------------------------------------------
# The augmented ODE and the solves.


def _seconds(t) -> float:
    """The solver's time (a tensor, perhaps in an autograd graph) as a float."""
    return float(t.detach()) if torch.is_tensor(t) else float(t)


class AugmentedDynamics(nn.Module):
    """d/dt [z, log p] = [f(z, t), -tr(df/dz)] (Chen et al. 2018, eq. 4), as torchdiffeq's
    ``func(t, state)``.

    ``trace="exact"`` uses :meth:`TimeMLP.value_and_trace` (or, for another field f(z, t),
    :func:`dgm.flows.divergence_exact`); ``trace="hutchinson"`` uses
    v^T (df/dz) v with the probe ``v`` (B, d), fixed during the solve (FFJORD, eq. 7).
    """

    def __init__(self, field: TimeMLP, trace: str = "exact", v: torch.Tensor | None = None):
        super().__init__()
        if trace not in TRACES:
            raise ValueError(f"trace must be one of {TRACES}, got {trace!r}")
        if (trace == "hutchinson") != (v is not None):
            raise ValueError("give a probe v exactly when trace='hutchinson'")
        self.field, self.trace, self.v = field, trace, v
        self.evaluations = 0

    def forward(self, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        z = state[:, :-1]  # (B, d)
        if self.trace == "exact" and hasattr(self.field, "value_and_trace"):
            dz, div = self.field.value_and_trace(z, t)
        elif self.trace == "exact":  # any other field f(z, t): d backward passes
            dz, div = divergence_exact(self.field, z, _seconds(t))
        else:
            dz, div = divergence_hutchinson(self.field, z, _seconds(t), self.v)
        return torch.cat([dz, -div[:, None]], dim=-1)  # (B, d + 1)


@dataclass(frozen=True)
class Solver:
    """Which torchdiffeq method solves the ODE, and how finely.

    A fixed-step method ('rk4', torchdiffeq's fourth-order 3/8-rule Runge-Kutta, 'midpoint',
    'euler') takes ``steps`` equal steps over the whole interval; an adaptive one ('dopri5',
    ...) chooses its steps to meet ``rtol`` and ``atol``. ``adjoint=True`` backpropagates with
    the adjoint method (memory independent of the number of steps) instead of through the
    solver's operations.
    """

    method: str = "rk4"
    steps: int = 6
    rtol: float = 1e-5
    atol: float = 1e-5
    adjoint: bool = False
    max_steps: int = 100_000

    def __post_init__(self):
        if self.method not in FIXED_STEP + ADAPTIVE:
            raise ValueError(f"unknown method {self.method!r}; use one of {FIXED_STEP + ADAPTIVE}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) \
                or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"rtol and atol must be positive, got {self.rtol}, {self.atol}")

    def solve(self, func: nn.Module, y0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """The states at ``times`` (len(times), B, d + 1); raises :class:`ODESolveError`."""
        if self.method in FIXED_STEP:
            options = {"step_size": abs(float(times[-1] - times[0])) / self.steps}
        else:
            options = {"max_num_steps": self.max_steps}
        integrate = odeint_adjoint if self.adjoint else odeint
        try:
            with unchecked():  # the steps of a solve: the caller checked y0 at the door
                path = integrate(func, y0, times, rtol=self.rtol, atol=self.atol,
                                 method=self.method, options=options)
        except AssertionError as error:  # torchdiffeq asserts on dt underflow and step counts
            raise ODESolveError(
                f"the ODE solver {self.method!r} failed: {error}. The field may be too stiff "
                "or blow up; loosen rtol/atol, use a fixed-step method, or lower the learning "
                "rate."
            ) from error
        if not torch.isfinite(path[-1]).all():
            raise ODESolveError(
                f"the ODE solver {self.method!r} returned NaN or inf: the field blew up along "
                "the way. Use more steps or smaller tolerances, or lower the learning rate."
            )
        return path


def _dimension(field: nn.Module) -> int | None:
    """The state dimension d of a field: its ``d``, or the size of a linear field's matrix."""
    if hasattr(field, "d"):
        return field.d
    return field.A.shape[0] if hasattr(field, "A") else None


def _dtype(field: nn.Module) -> torch.dtype | None:
    """The dtype of a field's parameters (or buffers), None for a field with neither."""
    for tensor in (*field.parameters(), *field.buffers()):
        return tensor.dtype
    return None


def _check_points(name: str, x: torch.Tensor, field: nn.Module) -> None:
    """The door: a finite floating-point (B, d) batch, for a field in d dimensions and of the
    same dtype."""
    check_points(name, x, "a log density needs finite points.")
    if not checking():
        return
    d, dtype = _dimension(field), _dtype(field)
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} must have shape (B, {d}) for a field in {d} dimensions, "
                         f"got {tuple(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{name} is {x.dtype} but the field is {dtype}: convert the points "
                         f"({name}.to({dtype})) or the field (as_float64(field))")


def _as(x, dtype: torch.dtype):
    """Floating-point data converted to the field's dtype (anything else is left for the check
    to refuse)."""
    return x.to(dtype) if torch.is_tensor(x) and torch.is_floating_point(x) else x


def _check_horizon(t1: float) -> None:
    if isinstance(t1, bool) or not (isinstance(t1, int | float) and math.isfinite(t1)
                                    and t1 > 0.0):
        raise ValueError(f"need t1 > t0 = 0 (the flow runs from the base at time 0 to the data "
                         f"at time t1), got t1={t1!r}")


def _times(start: float, end: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([start, end], dtype=like.dtype, device=like.device)


def log_density(field: TimeMLP, x: torch.Tensor, t1: float = 1.0, solver: Solver = Solver(),
                v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """log p_{t1}(x) (B,) and z(0) (B, d) for data points x (B, d): the backward solve.

    The augmented ODE from [x, 0] at time t1 to time 0 ends in [z(0), int_0^{t1} tr J dt], so
    log p_{t1}(x) = log p_0(z(0)) - int_0^{t1} tr J dt with p_0 = N(0, I). With a probe ``v``
    (B, d) the trace is Hutchinson's estimate, an unbiased estimate of the same log density.
    """
    _check_points("x", x, field)
    _check_horizon(t1)
    if v is not None:
        _check_points("the probe v", v, field)
    func = AugmentedDynamics(field, "exact" if v is None else "hutchinson", v)
    state = torch.cat([x, torch.zeros_like(x[:, :1])], dim=-1)  # (B, d + 1)
    end = solver.solve(func, state, _times(t1, 0.0, x))[-1]  # (B, d + 1) at time 0
    z0, trace_integral = end[:, :-1], end[:, -1]
    return standard_normal_log_pdf(z0) - trace_integral, z0


def trajectories(field: TimeMLP, z0: torch.Tensor, times: torch.Tensor,
                 solver: Solver = Solver()) -> tuple[torch.Tensor, torch.Tensor]:
    """Points z(t) (len(times), B, d) and log p_t(z(t)) (len(times), B) from z(0) = z0 ~ p_0.

    ``times`` is increasing from 0. The forward solve of the augmented ODE starting at
    [z0, log p_0(z0)].
    """
    _check_points("z0", z0, field)
    if times.dim() != 1 or times[0] != 0 or not (times.diff() > 0).all():
        raise ValueError("times must be a 1-D tensor increasing from 0")
    state = torch.cat([z0, standard_normal_log_pdf(z0)[:, None].to(z0.dtype)], dim=-1)
    path = solver.solve(AugmentedDynamics(field), state, times.to(z0))  # (T, B, d + 1)
    return path[..., :-1], path[..., -1]


def sample(field: TimeMLP, n: int, t1: float = 1.0, solver: Solver = Solver(),
           generator: torch.Generator | None = None,
           dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples x = z(t1) (n, d) from the model, with their log densities (n,)."""
    _check_horizon(t1)
    z0 = torch.randn(n, field.d, generator=generator, dtype=dtype)  # (n, d)
    points, log_p = trajectories(field, z0, torch.tensor([0.0, t1], dtype=dtype), solver)
    return points[-1], log_p[-1]


# ----------------------------------------------------------------------------------------------
# Maximum likelihood.


def nll_loss(field: TimeMLP, x: torch.Tensor, t1: float = 1.0, solver: Solver = Solver(),
             v: torch.Tensor | None = None) -> torch.Tensor:
    """The training loss: the mean negative log likelihood -mean_b log p_{t1}(x_b), in nats."""
    log_p, _ = log_density(field, x, t1, solver, v)
    return -log_p.mean()


def _batch_probes(hutchinson: bool, shape, generator, dtype) -> torch.Tensor | None:
    """Rademacher probes, one per point, for Hutchinson's estimator; None for the exact trace."""
    return rademacher(tuple(shape), generator, dtype) if hutchinson else None


def train_cnf(
    field: TimeMLP,
    draw: Callable[[int, torch.Generator | None], torch.Tensor],
    steps: int,
    batch_size: int = 512,
    lr: float = 5e-3,
    warmup: int = 50,
    t1: float = 1.0,
    solver: Solver = Solver(),
    hutchinson: bool = False,
    eval_points: torch.Tensor | None = None,
    eval_every: int = 100,
    generator: torch.Generator | None = None,
    checkpoint: str | Path | None = None,
    progress: bool | None = None,
) -> History:
    """Adam on the negative log likelihood of fresh batches ``draw(batch_size, generator)``.

    The learning rate follows :func:`dgm.training.warmup_cosine` (to a tenth of ``lr``). With
    ``hutchinson=True`` each step draws one Rademacher probe per point. Every ``eval_every``
    steps, and after the last, the mean NLL of ``eval_points`` (exact trace, same solver) is
    recorded, and with ``checkpoint`` the field and optimiser are saved there atomically
    (:func:`dgm.training.save_checkpoint`). ``seconds`` counts training steps only.
    ``progress=None`` shows a tqdm bar only when stderr is a terminal. The evaluation points
    and the first batch are checked here, once; the steps run unchecked
    (:func:`dgm.inputs.unchecked`), and a loss that turns non-finite stops the run.
    """
    for name, value in (("steps", steps), ("eval_every", eval_every), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    _check_horizon(t1)
    dtype = next(field.parameters()).dtype
    if eval_points is not None:
        eval_points = _as(eval_points, dtype)
        _check_points("eval_points", eval_points, field)
    x = _as(draw(batch_size, generator), dtype)
    _check_points(f"draw({batch_size}, generator)", x, field)  # the first batch, at the door
    optimizer = torch.optim.Adam(field.parameters(), lr=lr)
    scheduler = warmup_cosine(optimizer, steps, min(warmup, steps), final=0.1)
    history = History(threads=torch.get_num_threads())
    elapsed, since_eval = 0.0, []
    bar = tqdm(range(steps), desc="train CNF", disable=None if progress is None else not progress)
    with unchecked():
        for step in bar:
            start = time.perf_counter()
            if step > 0:
                x = draw(batch_size, generator).to(dtype)  # (batch, d)
            v = _batch_probes(hutchinson, x.shape, generator, dtype)
            loss = nll_loss(field, x, t1, solver, v)
            check_finite_loss(loss, f"CNF training step {step} of {steps}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            elapsed += time.perf_counter() - start
            history.step_loss.append(loss.item())
            since_eval.append(history.step_loss[-1])
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                history.eval_step.append(step + 1)
                history.train_loss.append(sum(since_eval) / len(since_eval))
                since_eval = []
                if eval_points is not None:
                    with torch.no_grad():
                        history.eval_loss.append(nll_loss(field, eval_points, t1, solver).item())
                history.seconds.append(elapsed)
                if checkpoint is not None:
                    save_checkpoint(checkpoint, field, optimizer, step=step + 1)
                bar.set_postfix(nll=f"{history.train_loss[-1]:.3f}")
    bar.close()
    return history


@dataclass(frozen=True)
class CNFConfig:
    """Everything that determines a trained CNF of the lab: the data, the field, the optimiser,
    the solver and the seed (the key of the stored result, with the code)."""

    density: str = "ring"
    hidden: int = 64
    layers: int = 2
    activation: str = "tanh"
    steps: int = 1000
    batch_size: int = 512
    lr: float = 5e-3
    warmup: int = 50
    t1: float = 1.0
    solver: Solver = Solver()
    hutchinson: bool = False
    n_eval: int = 2000
    eval_every: int = 50
    seed: int = 0


def train_cnf_on(config: CNFConfig, checkpoint: str | Path | None = None,
                 progress: bool | None = None) -> tuple[TimeMLP, History]:
    """A fresh field trained on ``config.density`` (:func:`dgm.toy_densities.make_density`).

    The seed fixes the initial weights, the held-out evaluation points (drawn first, from a
    generator of their own) and every training batch and probe.
    """
    density = make_density(config.density)
    eval_points = density.sample(config.n_eval, seeded_generator(config.seed + 1))
    generator = seed_everything(config.seed)
    field = TimeMLP(2, config.hidden, config.layers, config.activation)
    history = train_cnf(field, density.sample, config.steps, config.batch_size, config.lr,
                        config.warmup, config.t1, config.solver, config.hutchinson, eval_points,
                        config.eval_every, generator, checkpoint, progress)
    return field, history


def trained_cnf(config: CNFConfig, checkpoint: str | Path | None = None,
                progress: bool | None = None) -> tuple[TimeMLP, History]:
    """:func:`train_cnf_on`, run once per content key and afterwards read from the result store
    (:func:`dgm.results.cached`): the key covers ``config`` (seed included), the code of this
    module and all it imports, torch's version and the device. The history returned with stored
    weights is the one recorded when they were trained."""

    def train():
        field, history = train_cnf_on(config, checkpoint, progress)
        return {"state": field.state_dict(), "history": asdict(history)}

    stored = cached(f"cnf-{config.density}", train, config=config, code=("dgm.cnf",))
    field = TimeMLP(2, config.hidden, config.layers, config.activation)
    field.load_state_dict(stored["state"])
    return field, History(**stored["history"])


# ----------------------------------------------------------------------------------------------
# The lab's checks.


def loss_gradients(field: TimeMLP, batches: list[torch.Tensor], hutchinson: bool,
                   t1: float = 1.0, solver: Solver = Solver(),
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[float]]:
    """The gradient of the loss on each batch: (len(batches), parameters), and the seconds each
    forward and backward pass took.

    With the exact trace, equal batches give equal gradients; with Hutchinson's estimator each
    batch gets fresh probes, so the rows' spread on one repeated batch is the noise that the
    estimator adds at fixed x and theta, and on fresh batches it adds to the minibatch noise.
    """
    dtype = _dtype(field)
    batches = [_as(x, dtype) for x in batches]
    for i, x in enumerate(batches):
        _check_points(f"batches[{i}]", x, field)
    _check_horizon(t1)
    rows, seconds = [], []
    parameters = list(field.parameters())
    with unchecked():
        for x in batches:
            start = time.perf_counter()
            v = _batch_probes(hutchinson, x.shape, generator, dtype)
            grads = torch.autograd.grad(nll_loss(field, x, t1, solver, v), parameters)
            seconds.append(time.perf_counter() - start)
            rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows), seconds


def flow_map_to_base(field: TimeMLP, x: torch.Tensor, t1: float = 1.0,
                     solver: Solver = Solver()) -> torch.Tensor:
    """Phi_{t1 -> 0}(x) (B, d): the flow map run backwards, with no log density."""

    class Plain(nn.Module):
        def forward(self, t, z):
            return field(z, t)

    _check_points("x", x, field)
    return solver.solve(Plain(), x, _times(t1, 0.0, x))[-1]


def finite_difference_log_density(field: TimeMLP, x: torch.Tensor, t1: float = 1.0,
                                  solver: Solver = Solver(), eps: float = 1e-4) -> torch.Tensor:
    """log p_{t1}(x) (B,) by the discrete change of variables, with no trace at all:

        log p_{t1}(x) = log p_0(Phi_{t1 -> 0}(x)) + log |det dPhi_{t1 -> 0}/dx (x)|,

    the Jacobian of the flow map by central differences of step ``eps`` (error O(eps^2)).
    Meant for float64 copies of a field.
    """
    _check_points("x", x, field)
    z0 = flow_map_to_base(field, x, t1, solver)  # (B, d)
    columns = []
    for i in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, i] = eps
        forward, backward = flow_map_to_base(field, x + e, t1, solver), flow_map_to_base(
            field, x - e, t1, solver)
        columns.append((forward - backward) / (2.0 * eps))  # (B, d): column i of the Jacobian
    jacobian = torch.stack(columns, dim=-1)  # (B, d, d)
    return standard_normal_log_pdf(z0) + torch.linalg.slogdet(jacobian).logabsdet


def as_float64(field: TimeMLP) -> TimeMLP:
    """A float64 copy of the field, for checks that need more digits than training."""
    return copy.deepcopy(field).double()
