"""The instantaneous change of variables, proved symbolically on flows with closed forms.

Chen et al. (2018), theorem 1: if dz/dt = f(z, t), the density p_t of z(t) satisfies

    d/dt log p_t(z(t)) = -tr(df/dz (z(t), t)),

equivalently the continuity equation d_t p + div(p f) = 0. The chapter "The instantaneous change
of variables" proves it four ways; this script checks the steps that are pure algebra, and the
theorem itself on three flows whose densities are known in closed form:

* eq. cov-det-expansion for symbolic 2 x 2 and 3 x 3 matrices: det(I + A) - 1 - tr A has no
  monomial of degree below 2 in the entries of A (so it is O(|A|^2)), and its h-form
  det(I + h A) = 1 + h tr A + O(h^2);
* Jacobi's formula d/dt det M = det M tr(M^-1 dM/dt) (eq. cov-jacobi-formula), and, for M
  solving the variational equation dM/dt = J M with J(t) any matrix of functions of t, that
  d/dt log det M = tr J (eq. cov-jacobi) and Liouville's formula det M(t) = exp(int_0^t tr J ds)
  (eq. cov-liouville), for 2 x 2 and 3 x 3 matrices;
* the linear flow dz/dt = A z with a general symbolic 2 x 2 matrix A and a general density p_0.
  Its flow map M(t) = exp(tA) is used only through what defines it, dM/dt = A M and M(0) = I:
  entries m_jk(t) are unknown functions and every derivative dm_jk/dt is replaced by (A M)_jk.
  Checked: that the pushed-forward density p_t(x) = p_0(M^-1 x) / det M solves the continuity
  equation (eq. cov-continuity), and that log p_t changes at the rate -tr A along every
  trajectory (eq. cov-icov);
* the one-dimensional affine flow dz/dt = a z + b(t), which carries a Gaussian to a Gaussian
  whose mean and variance are known in closed form: the same two facts, and that this Gaussian is
  the pushed-forward density;
* the one-dimensional nonlinear flow dz/dt = b(t) sin z, whose divergence b(t) cos z varies in
  space and in time, with its flow map (eq. cov-sine-flow-map) and a general p_0: the same two
  facts. Here the rate is a function of where the particle is at time t, so a claim that
  evaluates the Jacobian anywhere else, at the start z(0) or at time 0, fails; for the linear
  and affine flows, whose Jacobian is the same everywhere, it would not.

Each check that proves a labelled chapter equation records the label and that equation's LaTeX
exactly as the chapter prints it (EQUATIONS below), so that a test can compare the two.

Run alone: python derivations/change_of_variables.py   (exit status 1 if an identity fails)
"""

from __future__ import annotations

import sys

import sympy as sp
from _check import (
    Check,
    equation_table,
    latex,
    normal_pdf,
    product,
    report,
    same_positive,
    statement,
    terms,
    vanishes,
)

SIZES = (2, 3)  # matrix sizes for the determinant expansion, Jacobi's and Liouville's formulas
FLOW_SIZE = 2  # the linear flow lives in the plane

t = sp.Symbol("t", real=True)
h = sp.Symbol("h", real=True)  # a small time step

# The book's notation for square matrices of any size n; a check makes n and the entries concrete.
n = sp.Symbol("n", integer=True, positive=True)
A = sp.MatrixSymbol("A", n, n)
J = sp.MatrixSymbol("J", n, n)  # J(z(s), s) = df/dz along a trajectory: a matrix function of s
M = sp.MatrixSymbol("M", n, n)
M_dot = sp.MatrixSymbol(r"\dot{M}", n, n)
x_vec = sp.MatrixSymbol("x", n, 1)
p_0 = sp.Function("p_0")

# The chapter's labelled equations that the checks below prove, exactly as the chapter prints them.
EQUATIONS = equation_table({
    "cov-det-expansion": r"""
\det(I + A) = 1 + \operatorname{tr} A + O\bigl(\lVert A \rVert^2\bigr)
""",
    "cov-jacobi-formula": r"""
\frac{\mathrm{d}}{\mathrm{d}t} \det M(t) = \det M(t)\, \operatorname{tr}\bigl(M(t)^{-1}
\dot{M}(t)\bigr)
""",
    "cov-jacobi": r"""
\frac{\mathrm{d}}{\mathrm{d}t} \log \det M(t) = \operatorname{tr}\bigl(M(t)^{-1} J(z(t), t)\,
M(t)\bigr) = \operatorname{tr} J(z(t), t)
""",
    "cov-liouville": r"""
\det M(t) = \exp \int_0^t \operatorname{tr} J(z(s), s)\, \mathrm{d}s
""",
    "cov-continuity": r"""
\partial_t p_t(x) + \nabla \cdot \bigl(p_t(x)\, f(x, t)\bigr) = 0
""",
    "cov-icov": r"""
\frac{\mathrm{d}}{\mathrm{d}t} \log p_t(z(t)) = -\operatorname{tr}\!\left(\frac{\partial
f}{\partial z}(z(t), t)\right)
""",
    "cov-sine-flow-map": r"""
\Phi_{0 \to t}(z_0) = 2 \arctan\Bigl(e^{\int_0^t b(s)\, \mathrm{d}s} \tan \frac{z_0}{2}\Bigr)
""",
})


# Eq. cov-det-expansion: det(I + A) = DET_FIRST_ORDER + a remainder of degree >= 2 in the entries.
DET_FIRST_ORDER = terms(1, sp.Trace(A))
# The same with h A in place of A, as a series in h.
DET_EXPANSION = 1 + h * sp.Trace(A) + sp.O(h**2)
# Eq. cov-jacobi-formula: Jacobi's formula.
JACOBI = product(sp.Determinant(M), sp.Trace(sp.Inverse(M) * M_dot))
# Eq. cov-jacobi: d/dt log det M for dM/dt = J M.
LOG_DET_RATE = sp.Trace(J)
# The pushed-forward density of the linear flow: p_t(x) = p_0(M(t)^-1 x) / det M(t).
LINEAR_DENSITY = p_0(sp.Inverse(M) * x_vec) / sp.Determinant(M)
# Eq. cov-icov for the linear flow: the rate of change of log p_t along a trajectory.
LINEAR_RATE = -sp.Trace(A)

# One-dimensional flows: the coefficients a (a constant) and b(t) (a function of time).
a = sp.Symbol("a", real=True)
b = sp.Function("b")
s, x, z, z_0 = sp.symbols("s x z z_0", real=True)  # z stands for the state z(t) in a claim

# The affine flow dz/dt = a z + b(t), started from N(zbar_0, Sigma_0).
zbar_0 = sp.Symbol(r"\bar{z}_0", real=True)
Sigma_0 = sp.Symbol(r"\Sigma_0", positive=True)
AFFINE_FIELD = a * x + b(t)
AFFINE_FLOW_MAP = product(sp.exp(a * t), z_0 + sp.Integral(sp.exp(-a * s) * b(s), (s, 0, t)))
# The mean moves with the flow; the variance grows like the squared slope of the flow map.
AFFINE_MEAN = product(sp.exp(a * t), zbar_0 + sp.Integral(sp.exp(-a * s) * b(s), (s, 0, t)))
AFFINE_VARIANCE = product(Sigma_0, sp.exp(2 * a * t))
AFFINE_RATE = -a

# The nonlinear flow dz/dt = b(t) sin z, started anywhere in (-pi, pi).
SINE_FIELD = b(t) * sp.sin(x)
B_INTEGRAL = sp.Integral(b(s), (s, 0, t))
# Eq. cov-sine-flow-map, and its inverse Phi_{t -> 0}(x): the same map with the exponent negated.
SINE_FLOW_MAP = 2 * sp.atan(sp.exp(B_INTEGRAL) * sp.tan(z_0 / 2))
SINE_INVERSE = 2 * sp.atan(sp.exp(-B_INTEGRAL) * sp.tan(x / 2))
# Eq. cov-flow-map-density in one dimension: p_t(x) = p_0(Phi_{t -> 0}(x)) dPhi_{t -> 0}/dx.
SINE_DENSITY = product(p_0(SINE_INVERSE), SINE_INVERSE.diff(x))
# Eq. cov-icov for the sine flow: -df/dz at the particle's own position z = z(t), at time t.
SINE_RATE = -b(t) * sp.cos(z)

# Eq. cov-liouville: det M(t) for dM/dt = J(t) M, M(0) = I (J is evaluated at s under the integral).
LIOUVILLE = sp.exp(sp.Integral(sp.Trace(J), (s, 0, t)))


# ---------------------------------------------------------------------------------------------
# Concrete matrices
# ---------------------------------------------------------------------------------------------


def symbolic_matrix(name: str, size: int) -> sp.ImmutableMatrix:
    """A size x size matrix of independent real symbols name_jk."""
    return sp.ImmutableMatrix(
        size, size, lambda j, k: sp.Symbol(f"{name}_{j + 1}{k + 1}", real=True)
    )


def function_matrix(name: str, size: int, argument: sp.Symbol = t) -> sp.ImmutableMatrix:
    """A size x size matrix of unknown functions name_jk(argument), by default of t."""
    return sp.ImmutableMatrix(
        size, size, lambda j, k: sp.Function(f"{name}_{j + 1}{k + 1}")(argument)
    )


def instantiate(claim: sp.Expr, size: int, **matrices: sp.ImmutableMatrix) -> sp.Expr:
    """The claim with n = size and each named matrix symbol in it replaced by a concrete matrix.

    A density p_0 applied to a vector becomes p_0 applied to the vector's entries.
    """
    sized = sp.sympify(claim).subs(n, size)
    names = {symbol.name: symbol for symbol in sized.atoms(sp.MatrixSymbol)}
    replacements = {names[name]: value for name, value in matrices.items() if name in names}
    expr = sized.xreplace(replacements).doit()
    return expr.replace(
        lambda e: isinstance(e, sp.core.function.AppliedUndef) and e.func == p_0,
        lambda e: p_0(*e.args[0]),
    )


class VariationalEquation:
    """dM/dt = J(t) M (eq. cov-variational) with J(t) a matrix of unknown functions j_jk(t).

    J stands for the Jacobian df/dz along one trajectory, so the check covers every field f.
    M(t) is known only through this equation: its entries m_jk(t) are unknown functions, and
    every derivative dm_jk/dt is replaced by (J M)_jk.
    """

    def __init__(self, size: int):
        self.size = size
        self.J = function_matrix("j", size)
        self.M = function_matrix("m", size)
        JM = self.J * self.M
        self.derivatives = {
            self.M[j, k].diff(t): JM[j, k] for j in range(size) for k in range(size)
        }

    def d_dt(self, expr: sp.Expr) -> sp.Expr:
        """d/dt, then dM/dt = J M."""
        return expr.diff(t).subs(self.derivatives)


class LinearFlow:
    """dz/dt = A z in n dimensions; the flow map M(t) is known only by dM/dt = A M, M(0) = I."""

    def __init__(self, size: int = FLOW_SIZE):
        self.size = size
        self.A = symbolic_matrix("a", size)
        self.M = function_matrix("m", size)
        self.x = sp.ImmutableMatrix(sp.symbols(f"x_1:{size + 1}", real=True))
        self.z_0 = sp.ImmutableMatrix(sp.symbols(f"z_1:{size + 1}", real=True))
        self.field = self.A * self.x  # f(x) = A x
        self.AM = self.A * self.M
        self.derivatives = {
            self.M[j, k].diff(t): self.AM[j, k] for j in range(size) for k in range(size)
        }

    def d_dt(self, expr: sp.Expr) -> sp.Expr:
        """d/dt along the flow: differentiate, then use dM/dt = A M."""
        return expr.diff(t).subs(self.derivatives)

    def divergence(self, vector: sp.Matrix) -> sp.Expr:
        return sp.Add(*(vector[j].diff(self.x[j]) for j in range(self.size)))


def trigonometric_zero(expr: sp.Expr) -> bool:
    """vanishes() after writing every sine and cosine of a multiple angle in tangents.

    The sine flow's expressions mix sin x with tan(x/2) and sin(2 arctan w) with w; expanding
    the trigonometric functions of sums and multiples turns them into one rational function.
    """
    return vanishes(sp.expand_trig(expr))


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def sizes_scope(sizes) -> str:
    return "n = " + ", ".join(map(str, sizes))


def per_size_check(title: str, claimed: str, agrees, sizes, scope: str = "",
                   details: str | None = None, **link) -> Check:
    """A claim about n x n matrices, proved for every n in ``sizes``: ``agrees(n)`` is True
    when the identity holds at size n. ``scope`` adds to the printed range of sizes, and
    ``link`` (label, equation, claim) names the chapter equation proved."""
    return Check(title, claimed, all(agrees(size) for size in sizes), len(sizes),
                 sizes_scope(sizes) + scope, details=details or "", **link)


def check_det_expansion(claim: sp.Expr = DET_EXPANSION, sizes=SIZES) -> Check:
    """Eq. cov-det-expansion with h A in place of A: the h-series of det(I + h A) to first order."""

    def agrees(size: int) -> bool:
        A_ = symbolic_matrix("a", size)
        series = sp.series((sp.eye(size) + h * A_).det(), h, 0, 2)
        return vanishes((series - instantiate(claim, size, A=A_)).removeO())

    claimed = statement(r"\det(I + h A)", claim)
    return per_size_check("determinant near the identity, as a series in h", claimed, agrees,
                          sizes)


def check_jacobi(claim: sp.Expr = JACOBI, sizes=SIZES) -> Check:
    """Eq. cov-jacobi-formula: Jacobi's formula for a matrix of unknown functions of t."""

    def agrees(size: int) -> bool:
        M_ = function_matrix("m", size)
        lhs = M_.det().diff(t)
        return vanishes(lhs - instantiate(claim, size, M=M_, **{r"\dot{M}": M_.diff(t)}))

    claimed = statement(r"\frac{\mathrm{d}}{\mathrm{d}t} \det M(t)", claim)
    return per_size_check("Jacobi's formula", claimed, agrees, sizes,
                          label="cov-jacobi-formula", equation=EQUATIONS["cov-jacobi-formula"],
                          claim=claim)


def check_det_remainder(claim: sp.Expr = DET_FIRST_ORDER, sizes=SIZES) -> Check:
    """Eq. cov-det-expansion for any A: det(I + A) - claim has no monomial of degree < 2.

    Every entry of A is at most |A| in size, so a polynomial in the entries whose monomials all
    have degree 2 to n is bounded by (number of monomials, times largest coefficient) |A|^2
    when |A| <= 1: that is the O(|A|^2) of the equation, with a constant that depends on n only.
    """

    def agrees(size: int) -> bool:
        A_ = symbolic_matrix("a", size)
        remainder = sp.expand((sp.eye(size) + A_).det() - instantiate(claim, size, A=A_))
        if remainder == 0:
            return True
        if not remainder.is_polynomial(*A_):
            return False
        return min(sum(powers) for powers in sp.Poly(remainder, *A_).monoms()) >= 2

    return per_size_check(
        "determinant near the identity: the remainder is of second order",
        statement(r"\det(I + A)", claim, r" + R(A)"), agrees, sizes,
        details=r"\text{where every monomial of } R(A) \text{ in the entries } A_{jk}"
        r"\text{ has degree} \ge 2",
        label="cov-det-expansion", equation=EQUATIONS["cov-det-expansion"], claim=claim,
    )


def check_log_det_rate(claim: sp.Expr = LOG_DET_RATE, sizes=SIZES) -> Check:
    """Eq. cov-jacobi: d/dt log det M = tr J when dM/dt = J M, for a general J(t)."""

    def agrees(size: int) -> bool:
        flow = VariationalEquation(size)
        rate = flow.d_dt(sp.log(flow.M.det()))
        return vanishes(rate - instantiate(claim, size, J=flow.J))

    return per_size_check(
        "the log-determinant of the flow map's Jacobian",
        statement(r"\frac{\mathrm{d}}{\mathrm{d}t} \log \det M", claim,
                  r" \quad\text{for}\quad \dot{M} = J M"),
        agrees, sizes, r",\ J(t) \text{ general}",
        label="cov-jacobi", equation=EQUATIONS["cov-jacobi"], claim=claim,
    )


def check_liouville(claim: sp.Expr = LIOUVILLE, sizes=SIZES) -> Check:
    """Eq. cov-liouville: det M(t) = claim for dM/dt = J(t) M, M(0) = I. Both sides are 1 at
    t = 0, and the ratio det M / claim has derivative 0, so it is constant (uniqueness)."""

    def agrees(size: int) -> bool:
        flow = VariationalEquation(size)
        value = instantiate(claim, size, J=function_matrix("j", size, argument=s))
        starts_at_one = vanishes(value.subs(t, 0).doit() - 1)
        ratio_constant = vanishes(flow.d_dt(flow.M.det() / value))
        return starts_at_one and ratio_constant

    return per_size_check(
        "Liouville's formula",
        statement(r"\det M(t)", claim, r" \quad\text{for}\quad \dot{M} = J M,\ M(0) = I"),
        agrees, sizes, r",\ J(t) \text{ general}",
        label="cov-liouville", equation=EQUATIONS["cov-liouville"], claim=claim,
    )


def check_linear_continuity(claim: sp.Expr = LINEAR_DENSITY, size: int = FLOW_SIZE) -> Check:
    """Eq. cov-continuity for dz/dt = A z and the pushed-forward density ``claim``, any p_0."""
    flow = LinearFlow(size)
    p = instantiate(claim, size, M=flow.M, x=flow.x)
    residual = flow.d_dt(p) + flow.divergence(p * flow.field)
    identity = r"\partial_t p_t + \nabla \cdot (p_t\, A x) = 0 \quad\text{for}\quad "
    return Check(
        "the linear flow's density solves the continuity equation",
        identity + statement("p_t(x)", claim, r",\quad M = e^{tA}"),
        vanishes(residual),
        1,
        rf"n = {size},\ A \text{{ and }} p_0 \text{{ general}}",
        label="cov-continuity", equation=EQUATIONS["cov-continuity"], claim=claim,
    )


def check_linear_rate(claim: sp.Expr = LINEAR_RATE, size: int = FLOW_SIZE) -> Check:
    """Eq. cov-icov for dz/dt = A z: log p_t(z(t)) changes at the rate -tr(df/dz) = -tr A."""
    flow = LinearFlow(size)
    trajectory = flow.M * flow.z_0  # the trajectory from z_0
    p = instantiate(LINEAR_DENSITY, size, M=flow.M, x=flow.x)
    log_p_on_trajectory = sp.log(p.xreplace(dict(zip(flow.x, trajectory, strict=True))))
    rate = flow.d_dt(log_p_on_trajectory)
    value = instantiate(claim, size, A=flow.A)
    minus_trace = -flow.field.jacobian(flow.x).trace()  # -tr(df/dz), from the field itself
    passed = vanishes(rate - value) and vanishes(value - minus_trace)
    lhs = (r"\frac{\mathrm{d}}{\mathrm{d}t} \log p_t(z(t)) = "
           r"-\operatorname{tr}\frac{\partial f}{\partial z}")
    return Check(
        "the linear flow's log-density along a trajectory",
        statement(lhs, claim),
        passed,
        1,
        rf"n = {size},\ A \text{{ and }} p_0 \text{{ general}}",
        label="cov-icov", equation=EQUATIONS["cov-icov"], claim=claim,
    )


def check_affine_flow_map(claim: sp.Expr = AFFINE_FLOW_MAP) -> Check:
    """The flow map of dz/dt = a z + b(t): it solves the ODE and starts at z_0."""
    solves = vanishes(claim.diff(t) - AFFINE_FIELD.subs(x, claim))
    starts = vanishes(claim.subs(t, 0).doit() - z_0)
    lhs = r"\Phi_{0 \to t}(z_0)"
    return Check(
        "flow map of the affine flow dz/dt = a z + b(t)", statement(lhs, claim), solves and starts
    )


def affine_density(mean: sp.Expr, variance: sp.Expr) -> sp.Expr:
    return normal_pdf(x, mean, variance)


def where_mean_variance(mean: sp.Expr, variance: sp.Expr) -> str:
    return rf"\text{{where }} \bar{{z}}(t) = {latex(mean)},\quad \Sigma(t) = {latex(variance)}"


def check_affine_pushforward(
    mean: sp.Expr = AFFINE_MEAN, variance: sp.Expr = AFFINE_VARIANCE
) -> Check:
    """N(mean, variance) is N(zbar_0, Sigma_0) pushed through the flow map:
    p_t(x) = p_0(Phi^-1(x)) dPhi^-1/dx (eq. cov-flow-map-density)."""
    inverse = sp.solve(sp.Eq(AFFINE_FLOW_MAP, x), z_0)[0]  # Phi_{t -> 0}(x)
    pushed = normal_pdf(inverse, zbar_0, Sigma_0) * inverse.diff(x)
    lhs = r"p_0\bigl(\Phi_{t \to 0}(x)\bigr)\, \frac{\partial \Phi_{t \to 0}}{\partial x}"
    return Check(
        "the affine flow carries a Gaussian to a Gaussian",
        lhs + r" = \mathcal{N}\bigl(x;\ \bar{z}(t),\ \Sigma(t)\bigr)",
        same_positive(pushed, affine_density(mean, variance)),
        details=where_mean_variance(mean, variance),
    )


def check_affine_continuity(
    mean: sp.Expr = AFFINE_MEAN, variance: sp.Expr = AFFINE_VARIANCE
) -> Check:
    """Eq. cov-continuity for the affine flow and the Gaussian p_t."""
    p = affine_density(mean, variance)
    residual = p.diff(t) + (p * AFFINE_FIELD).diff(x)
    statement_tex = (
        r"\partial_t p_t + \partial_x \bigl(p_t\, (a x + b(t))\bigr) = 0 \quad\text{for}\quad "
        r"p_t = \mathcal{N}\bigl(\bar{z}(t),\ \Sigma(t)\bigr)"
    )
    return Check(
        "the affine flow's density solves the continuity equation",
        statement_tex,
        vanishes(sp.expand(residual / p)),
        details=where_mean_variance(mean, variance),
        label="cov-continuity", equation=EQUATIONS["cov-continuity"], claim=p,
    )


def check_affine_rate(claim: sp.Expr = AFFINE_RATE) -> Check:
    """Eq. cov-icov for the affine flow: d/dt log p_t(z(t)) = -d f/d z = -a."""
    p = affine_density(AFFINE_MEAN, AFFINE_VARIANCE)
    trajectory = AFFINE_FLOW_MAP  # the trajectory from z_0
    log_p_on_trajectory = sp.expand_log(sp.log(p.subs(x, trajectory)), force=True)  # p > 0
    rate = log_p_on_trajectory.diff(t)
    passed = vanishes(rate - claim) and vanishes(claim + AFFINE_FIELD.diff(x))
    lhs = r"\frac{\mathrm{d}}{\mathrm{d}t} \log p_t(z(t)) = -\frac{\partial f}{\partial z}"
    return Check("the affine flow's log-density along a trajectory", statement(lhs, claim), passed,
                 label="cov-icov", equation=EQUATIONS["cov-icov"], claim=claim)


SINE_SCOPE = r"b \text{ and } p_0 \text{ general},\ \lvert z_0 \rvert < \pi"


def check_sine_flow_map(claim: sp.Expr = SINE_FLOW_MAP) -> Check:
    """Eq. cov-sine-flow-map: the claim solves dz/dt = b(t) sin z and starts at z_0.

    At t = 0 the claim is 2 arctan(tan(z_0 / 2)); that this is z_0 is checked through
    tan(claim / 2) = tan(z_0 / 2), which decides it for |z_0| < pi, where tan(z / 2) is one-to-one.
    """
    solves = trigonometric_zero(claim.diff(t) - SINE_FIELD.subs(x, claim))
    starts = trigonometric_zero(sp.tan(claim.subs(t, 0).doit() / 2) - sp.tan(z_0 / 2))
    return Check(
        "flow map of the sine flow dz/dt = b(t) sin z",
        statement(r"\Phi_{0 \to t}(z_0)", claim),
        solves and starts,
        scope=SINE_SCOPE,
        label="cov-sine-flow-map", equation=EQUATIONS["cov-sine-flow-map"], claim=claim,
    )


def check_sine_continuity(claim: sp.Expr = SINE_DENSITY) -> Check:
    """Eq. cov-continuity for the sine flow and the pushed-forward density ``claim``, any p_0.

    The residual is a function of x in (-pi, pi); writing x = 2 arctan u, a bijection onto the
    real line, makes every trigonometric function of x a rational function of u.
    """
    residual = claim.diff(t) + (claim * SINE_FIELD).diff(x)
    u = sp.Symbol("u", real=True)
    return Check(
        "the sine flow's density solves the continuity equation",
        r"\partial_t p_t + \partial_x \bigl(p_t\, b(t) \sin x\bigr) = 0 \quad\text{for}\quad "
        r"p_t(x) = p_0\bigl(\Phi_{t \to 0}(x)\bigr)\, "
        r"\frac{\partial \Phi_{t \to 0}(x)}{\partial x}",
        trigonometric_zero(residual.subs(x, 2 * sp.atan(u))),
        scope=SINE_SCOPE.replace(r"z_0", "x"),
        details=r"\text{with } \Phi_{t \to 0}(x) = " + latex(SINE_INVERSE),
        label="cov-continuity", equation=EQUATIONS["cov-continuity"], claim=claim,
    )


def check_sine_rate(claim: sp.Expr = SINE_RATE) -> Check:
    """Eq. cov-icov for the sine flow: d/dt log p_t(z(t)) = -b(t) cos z(t).

    The claim is a function of z, the particle's position at time t, and of t; it is evaluated
    on the trajectory z = Phi_{0 -> t}(z_0). The rate on the left is computed from the density
    p_t itself, and the claim must also equal -df/dz there, computed from the field.
    """
    trajectory = SINE_FLOW_MAP
    log_p_on_trajectory = sp.log(SINE_DENSITY.subs(x, trajectory))
    rate = log_p_on_trajectory.diff(t)
    value = claim.subs(z, trajectory)
    minus_divergence = -SINE_FIELD.diff(x).subs(x, trajectory)
    passed = trigonometric_zero(rate - value) and trigonometric_zero(value - minus_divergence)
    lhs = (r"\frac{\mathrm{d}}{\mathrm{d}t} \log p_t(z(t)) = "
           r"-\frac{\partial f}{\partial z}(z(t), t)")
    return Check(
        "the sine flow's log-density along a trajectory",
        statement(lhs, claim.subs(z, sp.Function("z")(t))),
        passed,
        scope=SINE_SCOPE,
        label="cov-icov", equation=EQUATIONS["cov-icov"], claim=claim,
    )


CHECKS = (
    check_det_remainder,
    check_det_expansion,
    check_jacobi,
    check_log_det_rate,
    check_liouville,
    check_linear_continuity,
    check_linear_rate,
    check_affine_flow_map,
    check_affine_pushforward,
    check_affine_continuity,
    check_affine_rate,
    check_sine_flow_map,
    check_sine_continuity,
    check_sine_rate,
)


if __name__ == "__main__":
    sys.exit(report(check() for check in CHECKS))
