"""Two-dimensional densities whose log density is known exactly: the data of the CNF lab.

A density model can be scored against the truth only if the truth can be evaluated. Each density
here has a sampler and an exact log density, in closed form or by a quadrature whose error is far
below anything a trained model can resolve:

  * :class:`GaussianRing`: m equal Gaussians, of standard deviation s, on a circle of radius r
    (the "8 Gaussians" of Grathwohl et al. 2019, with m = 8); a log-sum-exp of m Gaussians.
  * :class:`SmoothMoons`: two interleaved half circles (the "two moons"), uniform along each arc,
    blurred by a Gaussian of standard deviation s. The density is an integral over the arc
    parameter of a Gaussian, evaluated by Gauss-Legendre quadrature; the integrand is analytic,
    so the error falls exponentially with the number of nodes.
  * :class:`SmoothCheckerboard`: uniform on the dark squares of a board, blurred by a Gaussian of
    standard deviation s. Each square contributes a product of two differences of the normal
    CDF, evaluated in log space so that it neither underflows nor cancels.

Every density is blurred by a Gaussian, so it is smooth and positive everywhere, as the
instantaneous change of variables assumes of a density (a flow of a Lipschitz field cannot
produce a density with jumps or zeros from a Gaussian).

Shapes: points x are (n, 2); log densities are (n,). Log densities are computed in float64
whatever the input's dtype, and returned in the input's dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dgm.inputs import check_points, checking

LOG_2PI = math.log(2.0 * math.pi)


def _check_points(x: torch.Tensor) -> torch.Tensor:
    """The door of every log density: a finite (n, 2) floating-point batch, as float64."""
    check_points("points", x, "a log density needs finite points.")
    if checking() and x.shape[1] != 2:
        raise ValueError(f"points must be a (n, 2) tensor, got {tuple(x.shape)}")
    return x.double()


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of samples must be a positive integer, got {n!r}")


def gaussian_log_pdf(x: torch.Tensor, centres: torch.Tensor, s: float) -> torch.Tensor:
    """log N(x; c_k, s^2 I) in 2-D for every point (n, 2) and centre (k, 2): shape (n, k)."""
    squared = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(dim=-1)  # (n, k)
    return -0.5 * squared / s**2 - LOG_2PI - 2.0 * math.log(s)


class GaussianRing:
    """m Gaussians of standard deviation s, equally weighted, centred on a circle of radius r."""

    name = "ring"

    def __init__(self, m: int = 8, r: float = 2.0, s: float = 0.3):
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"m must be a positive integer, got {m!r}")
        _check_positive(r=r, s=s)
        self.m, self.r, self.s = m, float(r), float(s)
        angles = 2.0 * math.pi * torch.arange(m, dtype=torch.float64) / m  # (m,)
        self.centres = self.r * torch.stack([angles.cos(), angles.sin()], dim=-1)  # (m, 2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_n(n)
        which = torch.randint(0, self.m, (n,), generator=generator)  # (n,)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)  # (n, 2)
        return self.centres[which] + self.s * noise

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x64 = _check_points(x)
        log_components = gaussian_log_pdf(x64, self.centres, self.s)  # (n, m)
        return (torch.logsumexp(log_components, dim=-1) - math.log(self.m)).to(x.dtype)


class SmoothMoons:
    """Two half circles of radius 1, uniform along each, blurred by N(0, s^2 I), then shifted.

    Arc 1 is (cos u, sin u) and arc 2 is (1 - cos u, 1/2 - sin u), u uniform on [0, pi], each
    arc with probability 1/2; both are shifted by ``offset`` so that the mixture is centred.
    The density is

        p(x) = (1 / 2) sum_arcs (1 / pi) int_0^pi N(x; gamma(u), s^2 I) du,

    computed with ``nodes`` Gauss-Legendre nodes in u.
    """

    name = "moons"

    def __init__(self, s: float = 0.15, scale: float = 1.5, nodes: int = 256):
        _check_positive(s=s, scale=scale)
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 2:
            raise ValueError(f"nodes must be an integer >= 2, got {nodes!r}")
        self.s, self.scale, self.nodes = float(s), float(scale), nodes
        self.offset = torch.tensor([0.5, 0.25], dtype=torch.float64)  # the arcs' joint centre
        u, w = np.polynomial.legendre.leggauss(nodes)  # nodes and weights on [-1, 1]
        self.u = torch.tensor(0.5 * math.pi * (u + 1.0), dtype=torch.float64)  # (nodes,)
        # Weights of (1 / pi) int_0^pi du: the factor pi / 2 of the map, divided by pi.
        self.log_w = torch.tensor(np.log(0.5 * w), dtype=torch.float64)  # (nodes,)

    def arcs(self, u: torch.Tensor) -> torch.Tensor:
        """The two arcs' points at parameters u (k,), scaled and centred: (2, k, 2)."""
        first = torch.stack([u.cos(), u.sin()], dim=-1)  # (k, 2)
        second = torch.stack([1.0 - u.cos(), 0.5 - u.sin()], dim=-1)  # (k, 2)
        return self.scale * (torch.stack([first, second]) - self.offset)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_n(n)
        u = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)  # (n,)
        which = torch.randint(0, 2, (n,), generator=generator)  # (n,)
        points = self.arcs(u)[which, torch.arange(n)]  # (n, 2)
        return points + self.s * torch.randn(n, 2, generator=generator, dtype=torch.float64)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x64 = _check_points(x)
        centres = self.arcs(self.u).reshape(-1, 2)  # (2 nodes, 2): arc 1's nodes, then arc 2's
        log_w = torch.cat([self.log_w, self.log_w]) - math.log(2.0)  # (2 nodes,)
        out = [torch.logsumexp(gaussian_log_pdf(chunk, centres, self.s) + log_w, dim=-1)
               for chunk in x64.split(4096)]  # (chunk, 2 nodes) at a time, to bound memory
        return torch.cat(out).to(x.dtype)


def log_normal_interval(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b elementwise, with Phi the standard normal CDF.

    Computed in the tail where both are small: for a > 0 the identity
    Phi(b) - Phi(a) = Phi(-a) - Phi(-b) moves the interval to the left tail, where
    log Phi (``torch.special.log_ndtr``) is accurate; then log(e^p - e^q) = p + log1p(-e^(q-p)).
    """
    flip = a > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log1p(-torch.exp(log_lo - log_hi))


class SmoothCheckerboard:
    """Uniform on the dark squares of a k x k board of side ``side``, blurred by N(0, s^2 I).

    The board is centred at the origin; a square (i, j) is dark when i + j is even, so there are
    ceil(k^2 / 2) of them. A square [a_1, b_1] x [a_2, b_2] holding mass 1 / (number of squares)
    contributes, after blurring,

        (1 / (number of squares * side^2)) prod_l [Phi((b_l - x_l) / s) - Phi((a_l - x_l) / s)].
    """

    name = "checkerboard"

    def __init__(self, k: int = 4, side: float = 1.0, s: float = 0.15):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        _check_positive(side=side, s=s)
        self.k, self.side, self.s = k, float(side), float(s)
        corners = [(i, j) for i in range(k) for j in range(k) if (i + j) % 2 == 0]
        lower = torch.tensor(corners, dtype=torch.float64) * self.side - 0.5 * k * self.side
        self.lower = lower  # (squares, 2): each dark square's lower-left corner

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_n(n)
        which = torch.randint(0, len(self.lower), (n,), generator=generator)  # (n,)
        inside = self.side * torch.rand(n, 2, generator=generator, dtype=torch.float64)
        noise = self.s * torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.lower[which] + inside + noise

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x64 = _check_points(x)
        a = (self.lower[None] - x64[:, None]) / self.s  # (n, squares, 2)
        b = a + self.side / self.s
        per_square = log_normal_interval(a, b).sum(dim=-1)  # (n, squares)
        log_mass = -math.log(len(self.lower)) - 2.0 * math.log(self.side)
        return (torch.logsumexp(per_square, dim=-1) + log_mass).to(x.dtype)


DENSITIES = {density.name: density for density in (GaussianRing, SmoothMoons, SmoothCheckerboard)}


def make_density(name: str, **options):
    """The density called ``name`` ('ring', 'moons' or 'checkerboard') with ``options``."""
    if name not in DENSITIES:
        raise ValueError(f"unknown density {name!r}; choose one of {sorted(DENSITIES)}")
    return DENSITIES[name](**options)
