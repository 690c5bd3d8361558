"""The gradient of NeRF's volume rendering sum, proved for every sample i and every N <= 8.

Mildenhall et al. (2020), eq. 3, with the background seen through every sample: a ray with N
samples renders the colour

    C_hat = sum_i T_i alpha_i c_i + T_{N+1} c_bg,  alpha_i = 1 - exp(-sigma_i delta_i),
    T_i = exp(-sum_{j<i} sigma_j delta_j),

with c_i and c_bg 3-vectors (RGB). This script builds C_hat and the loss L = ||C_hat - C||^2 as
explicit SymPy expressions of the 2N + 3N + 6 symbols sigma_j, delta_j, c_j, c_bg, C for
N = 1, ..., 8, differentiates them with SymPy, and compares the result with each formula of the
chapter "Neural radiance fields: theory" (equations nerf-dalpha to nerf-same-colour). The
homework's formulas are the case c_bg = 0; a claim without the background term fails.

Each check records the label of the chapter equation it proves and that equation's LaTeX exactly
as the chapter prints it (EQUATIONS below), so that a test can compare the two.

Each formula is written once, in the book's notation, for a general sample i and ray length N
(indexed symbols, a Sum over k). A check substitutes concrete N and i, expands the sum, maps
alpha_k, T_k, w_k, c_k to the ray's expressions and proves that the difference is 0. Writing
u_j = exp(-sigma_j delta_j) turns every quantity into a polynomial in u, delta, c and C, so the
final comparison is exact polynomial arithmetic.

Run alone: python derivations/nerf_gradients.py   (exit status 1 if an identity fails)
"""

from __future__ import annotations

import functools
import sys

import sympy as sp
from _check import Check, equation_table, product, report, statement, terms, vanishes

N_MAX = 8  # the number of samples on a ray ranges over 1, ..., N_MAX

# ---------------------------------------------------------------------------------------------
# The book's notation: one formula for every N and i
# ---------------------------------------------------------------------------------------------

i, k = sp.symbols("i k", integer=True, positive=True)
N = sp.Symbol("N", integer=True, positive=True)
sigma = sp.IndexedBase(r"\sigma")
delta = sp.IndexedBase(r"\delta")
alpha = sp.IndexedBase(r"\alpha")
T = sp.IndexedBase("T")
w = sp.IndexedBase("w")  # the weights w_k = T_k alpha_k
c = sp.IndexedBase(r"\mathbf{c}")  # colours: each c_k is a 3-vector
c_common = sp.Symbol(r"\mathbf{c}")  # one colour shared by every sample
c_bg = sp.Symbol(r"\mathbf{c}_{\mathrm{bg}}")  # the background colour, a 3-vector
e = sp.Symbol(r"\mathbf{e}")  # the ray's error C_hat - C, a 3-vector
e_T = sp.Symbol(r"\mathbf{e}^{\top}")  # the same error, as the row vector of a dot product


def behind(term: sp.Expr) -> sp.Expr:
    """sum_{k=i+1}^{N} term: what the samples behind sample i contribute."""
    return sp.Sum(term, (k, i + 1, N))


# Lemma nerf-lemma-alpha, eq. nerf-dalpha: d alpha_i / d sigma_i.
DALPHA = product(delta[i], 1 - alpha[i])
# Lemma nerf-lemma-T, eq. nerf-dT: d T_k / d sigma_i for k = 1, ..., N + 1.
DT = sp.Piecewise((product(-delta[i], T[k]), k > i), (0, True))
# Theorem nerf-thm-dc, eq. nerf-dc: d C_hat / d c_i (a multiple of I_3) and d L / d c_i.
DC_DC = product(T[i], alpha[i])
DL_DC = product(2, T[i], alpha[i], e)
# Theorem nerf-thm-dsigma, eqs. nerf-dC-dsigma and nerf-dsigma: own colour minus what it hides,
# the later samples and the background.
DC_DSIGMA = product(T[i], delta[i], 1 - alpha[i], c[i]) - product(
    delta[i], terms(behind(product(T[k], alpha[k], c[k])), product(T[N + 1], c_bg))
)
DL_DSIGMA = product(2, e_T, DC_DSIGMA)
# Corollary nerf-cor-compact, eq. nerf-dC-compact.
DC_DSIGMA_COMPACT = product(
    delta[i],
    terms(product(T[i + 1], c[i]), -behind(product(w[k], c[k])), -product(T[N + 1], c_bg)),
)
DL_DSIGMA_COMPACT = product(2, e_T, DC_DSIGMA_COMPACT)
# Proposition nerf-prop-weights: the transmittance recursion nerf-recursion and eq. nerf-opacity.
T_NEXT = product(T[i], 1 - alpha[i])
OPACITY = 1 - T[N + 1]
# Eq. nerf-same-colour, after the corollary: every sample with the same colour c.
DC_DSIGMA_SAME_COLOUR = product(delta[i], T[N + 1], c_common - c_bg)

# The chapter's labelled equations, character for character as book/nerf_theory.md prints them.
EQUATIONS = equation_table({
    "nerf-dalpha": r"""
\frac{\partial \alpha_i}{\partial \sigma_i} = \delta_i\, e^{-\sigma_i \delta_i} = \delta_i (1 -
\alpha_i).
""",
    "nerf-dT": r"""
\frac{\partial T_k}{\partial \sigma_i} = \begin{cases} -\delta_i\, T_k, & k > i, \\ 0, & k \leq
i. \end{cases}
""",
    "nerf-dc": r"""
\frac{\partial \hat{\mathbf{C}}}{\partial \mathbf{c}_i} = T_i \alpha_i\, I_3,
\qquad
\frac{\partial \mathcal{L}}{\partial \mathbf{c}_i} = 2\, T_i\, \alpha_i\, (\hat{\mathbf{C}} -
\mathbf{C}) = 2\, w_i\, \mathbf{e}.
""",
    "nerf-dC-dsigma": r"""
\frac{\partial \hat{\mathbf{C}}}{\partial \sigma_i} = T_i\, \delta_i\, (1 - \alpha_i)\,
\mathbf{c}_i - \delta_i \Bigl( \sum_{k=i+1}^{N} T_k\, \alpha_k\, \mathbf{c}_k + T_{N+1}\,
\mathbf{c}_{\mathrm{bg}} \Bigr),
""",
    "nerf-dsigma": r"""
\frac{\partial \mathcal{L}}{\partial \sigma_i} = 2\, (\hat{\mathbf{C}} - \mathbf{C})^\top
\Bigl( T_i\, \delta_i\, (1 - \alpha_i)\, \mathbf{c}_i - \delta_i \Bigl( \sum_{k=i+1}^{N}
T_k\, \alpha_k\, \mathbf{c}_k + T_{N+1}\, \mathbf{c}_{\mathrm{bg}} \Bigr) \Bigr).
""",
    "nerf-dC-compact": r"""
\begin{aligned}
\frac{\partial \hat{\mathbf{C}}}{\partial \sigma_i} &= \delta_i \Bigl( T_{i+1}\, \mathbf{c}_i -
\sum_{k=i+1}^{N} w_k\, \mathbf{c}_k - T_{N+1}\, \mathbf{c}_{\mathrm{bg}} \Bigr),
\\
\frac{\partial \mathcal{L}}{\partial \sigma_i} &= 2\, \delta_i\, \mathbf{e}^\top \Bigl(
T_{i+1}\, \mathbf{c}_i - \sum_{k=i+1}^{N} w_k\, \mathbf{c}_k - T_{N+1}\, \mathbf{c}_{\mathrm{bg}}
\Bigr).
\end{aligned}
""",
    "nerf-recursion": r"""
T_{i+1} = T_i\, e^{-\sigma_i \delta_i} = T_i (1 - \alpha_i),
""",
    "nerf-opacity": r"""
\sum_{i=1}^{N} w_i = 1 - T_{N+1} \leq 1.
""",
    "nerf-same-colour": r"""
\mathbf{c}_1 = \dots = \mathbf{c}_N = \mathbf{c}
\quad \Longrightarrow \quad
\frac{\partial \hat{\mathbf{C}}}{\partial \sigma_i} = \delta_i\, T_{N+1}\, (\mathbf{c} -
\mathbf{c}_{\mathrm{bg}}).
""",
})


# ---------------------------------------------------------------------------------------------
# One concrete ray
# ---------------------------------------------------------------------------------------------


class Ray:
    """A ray of n samples; every quantity is an explicit expression of sigma_j, delta_j, c_j, C.

    Dictionaries are indexed from 1 as in the text: alpha[1..n], T[1..n+1], w[1..n]. The
    rendered colour includes the background term T_{n+1} c_bg.
    """

    def __init__(self, n: int):
        self.n = n
        samples = range(1, n + 1)
        self.sigma = {j: sp.Symbol(f"sigma_{j}", positive=True) for j in samples}
        self.delta = {j: sp.Symbol(f"delta_{j}", positive=True) for j in samples}
        self.c = {j: sp.Matrix(sp.symbols(f"c_{j}_r c_{j}_g c_{j}_b", real=True)) for j in samples}
        self.c_bg = sp.Matrix(sp.symbols("c_bg_r c_bg_g c_bg_b", real=True))  # the background
        self.C = sp.Matrix(sp.symbols("C_r C_g C_b", real=True))  # the ground-truth pixel
        self.alpha = {j: 1 - sp.exp(-self.sigma[j] * self.delta[j]) for j in samples}
        self.T = {
            j: sp.exp(-sp.Add(*(self.sigma[m] * self.delta[m] for m in range(1, j))))
            for j in range(1, n + 2)
        }
        self.w = {j: self.T[j] * self.alpha[j] for j in samples}
        self.C_hat = self.T[n + 1] * self.c_bg  # the light that passes every sample
        for j in samples:
            self.C_hat += self.w[j] * self.c[j]
        self.e = self.C_hat - self.C
        self.loss = self.e.dot(self.e)
        # u_j = exp(-sigma_j delta_j): every quantity above is a polynomial in u, delta, c, C.
        self.u = {sp.exp(-self.sigma[j] * self.delta[j]): sp.Symbol(f"u_{j}") for j in samples}

    def polynomial(self, expr: sp.Basic) -> sp.Basic:
        """Rewrite exp(-sum_j sigma_j delta_j) as prod_j u_j, so that expr is a polynomial."""
        split = expr.replace(
            lambda a: isinstance(a, sp.exp),
            lambda a: sp.Mul(*(sp.exp(term) for term in sp.Add.make_args(a.args[0]))),
        )
        return split.xreplace(self.u)

    def instantiate(self, claim: sp.Expr, channel: int | None = None, **indices: int) -> sp.Expr:
        """The claim for this ray: N and the named indices made concrete, the Sum expanded,
        and each indexed symbol replaced by this ray's expression (colours: one channel)."""
        values = {N: self.n} | {
            sp.Symbol(name, integer=True, positive=True): value for name, value in indices.items()
        }
        expr = sp.sympify(claim).subs(values).doit()
        per_sample = {sigma: self.sigma, delta: self.delta, alpha: self.alpha, T: self.T, w: self.w}
        replacements = {}
        for atom in expr.atoms(sp.Indexed):
            j = int(atom.indices[0])
            if atom.base == c:
                replacements[atom] = self._channel(self.c[j], channel)
            else:
                replacements[atom] = per_sample[atom.base][j]
        if expr.has(c_common):
            replacements[c_common] = self._channel(self.c[1], channel)
        if expr.has(c_bg):
            replacements[c_bg] = self._channel(self.c_bg, channel)
        for error in (e, e_T):
            if expr.has(error):
                replacements[error] = self._channel(self.e, channel)
        return expr.xreplace(replacements)

    @staticmethod
    def _channel(vector: sp.Matrix, channel: int | None) -> sp.Expr:
        if channel is None:
            raise ValueError("this claim involves colours: instantiate it one channel at a time")
        return vector[channel]

    def vector(self, claim: sp.Expr, **indices: int) -> sp.Matrix:
        """A colour-valued claim as a 3-vector, one channel per entry."""
        return sp.Matrix([self.instantiate(claim, channel, **indices) for channel in range(3)])

    def dot(self, claim: sp.Expr, **indices: int) -> sp.Expr:
        """A claim of the form e^T (...): the sum over channels of its per-channel terms."""
        return sp.Add(*(self.instantiate(claim, channel, **indices) for channel in range(3)))


@functools.cache
def ray(n: int) -> Ray:
    return Ray(n)


@functools.cache
def dC_hat_dsigma(n: int, j: int) -> sp.Matrix:
    """d C_hat / d sigma_j by SymPy, as a polynomial in u, delta, c."""
    r = ray(n)
    return r.polynomial(r.C_hat.diff(r.sigma[j]))


@functools.cache
def dloss_dsigma(n: int, j: int) -> sp.Expr:
    """d L / d sigma_j by SymPy, as a polynomial in u, delta, c, C."""
    r = ray(n)
    return r.polynomial(r.loss.diff(r.sigma[j]))


def every_sample(n_max: int):
    """All (N, i) with 1 <= i <= N <= n_max."""
    return [(n, j) for n in range(1, n_max + 1) for j in range(1, n + 1)]


SCOPE = r"1 \le i \le N \le {n}"


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def per_sample_check(
    title: str, label: str, lhs: str, claim: sp.Expr, n_max: int, difference,
    rhs_suffix: str = "",
) -> Check:
    """A claim about sample i of an N-sample ray, proved for every 1 <= i <= N <= n_max.

    ``label`` names the chapter equation that the claim is the right-hand side of.
    ``difference(n, i)`` is the SymPy expression (or matrix) that must vanish for that case:
    the quantity computed from the definitions minus the claim instantiated at sample i.
    """
    cases = every_sample(n_max)
    passed = all(vanishes(difference(n, j)) for n, j in cases)
    return Check(
        title, statement(lhs, claim, rhs_suffix), passed, len(cases), SCOPE.format(n=n_max),
        label=label, equation=EQUATIONS[label], claim=claim,
    )


DC_DSIGMA_LHS = r"\frac{\partial \hat{\mathbf{C}}}{\partial \sigma_i}"
DL_DSIGMA_LHS = r"\frac{\partial \mathcal{L}}{\partial \sigma_i}"


def dC_dsigma_difference(claim: sp.Expr):
    """SymPy's d C_hat / d sigma_i minus the claimed vector, for per_sample_check."""
    return lambda n, j: dC_hat_dsigma(n, j) - ray(n).polynomial(ray(n).vector(claim, i=j))


def dL_dsigma_difference(claim: sp.Expr):
    """SymPy's d L / d sigma_i minus the claimed scalar, for per_sample_check."""
    return lambda n, j: dloss_dsigma(n, j) - ray(n).polynomial(ray(n).dot(claim, i=j))


def check_dalpha(claim: sp.Expr = DALPHA, n_max: int = N_MAX) -> Check:
    """Lemma nerf-lemma-alpha: d alpha_i / d sigma_i = delta_i (1 - alpha_i)."""
    return per_sample_check(
        "derivative of an opacity", "nerf-dalpha",
        r"\frac{\partial \alpha_i}{\partial \sigma_i}", claim, n_max,
        lambda n, j: ray(n).alpha[j].diff(ray(n).sigma[j]) - ray(n).instantiate(claim, i=j),
    )


def check_dT(claim: sp.Expr = DT, n_max: int = N_MAX) -> Check:
    """Lemma nerf-lemma-T: d T_k / d sigma_i = -delta_i T_k for k > i, 0 for k <= i."""
    cases = [(n, j, m) for n, j in every_sample(n_max) for m in range(1, n + 2)]
    passed = all(
        vanishes(ray(n).T[m].diff(ray(n).sigma[j]) - ray(n).instantiate(claim, i=j, k=m))
        for n, j, m in cases
    )
    lhs = r"\frac{\partial T_k}{\partial \sigma_i}"
    return Check(
        "derivative of a transmittance",
        statement(lhs, claim),
        passed,
        len(cases),
        SCOPE.format(n=n_max) + r",\ 1 \le k \le N + 1",
        label="nerf-dT",
        equation=EQUATIONS["nerf-dT"],
        claim=claim,
    )


def check_dC_dc(claim: sp.Expr = DC_DC, n_max: int = N_MAX) -> Check:
    """Theorem nerf-thm-dc: d C_hat / d c_i = T_i alpha_i I_3 (a 3 x 3 Jacobian)."""
    return per_sample_check(
        "colour gradient of the rendered colour", "nerf-dc",
        r"\frac{\partial \hat{\mathbf{C}}}{\partial \mathbf{c}_i}", claim, n_max,
        lambda n, j: (
            ray(n).C_hat.jacobian(ray(n).c[j]) - ray(n).instantiate(claim, i=j) * sp.eye(3)
        ),
        rhs_suffix=r"\, I_3",
    )


def check_dL_dc(claim: sp.Expr = DL_DC, n_max: int = N_MAX) -> Check:
    """Theorem nerf-thm-dc: d L / d c_i = 2 T_i alpha_i e, with e = C_hat - C."""
    return per_sample_check(
        "colour gradient of the loss", "nerf-dc",
        r"\frac{\partial \mathcal{L}}{\partial \mathbf{c}_i}", claim, n_max,
        lambda n, j: ray(n).polynomial(
            sp.Matrix([ray(n).loss]).jacobian(ray(n).c[j]).T - ray(n).vector(claim, i=j)
        ),
    )


def check_dC_dsigma(claim: sp.Expr = DC_DSIGMA, n_max: int = N_MAX) -> Check:
    """Theorem nerf-thm-dsigma, eq. nerf-dC-dsigma."""
    return per_sample_check(
        "density gradient of the rendered colour", "nerf-dC-dsigma", DC_DSIGMA_LHS, claim, n_max,
        dC_dsigma_difference(claim),
    )


def check_dL_dsigma(claim: sp.Expr = DL_DSIGMA, n_max: int = N_MAX) -> Check:
    """Theorem nerf-thm-dsigma, eq. nerf-dsigma: the chain rule through L = ||C_hat - C||^2."""
    return per_sample_check(
        "density gradient of the loss", "nerf-dsigma", DL_DSIGMA_LHS, claim, n_max,
        dL_dsigma_difference(claim),
    )


def check_dC_dsigma_compact(claim: sp.Expr = DC_DSIGMA_COMPACT, n_max: int = N_MAX) -> Check:
    """Corollary nerf-cor-compact, eq. nerf-dC-compact (rendered colour)."""
    return per_sample_check(
        "compact density gradient of the rendered colour", "nerf-dC-compact", DC_DSIGMA_LHS,
        claim, n_max,
        dC_dsigma_difference(claim),
    )


def check_dL_dsigma_compact(claim: sp.Expr = DL_DSIGMA_COMPACT, n_max: int = N_MAX) -> Check:
    """Corollary nerf-cor-compact, eq. nerf-dC-compact (loss)."""
    return per_sample_check(
        "compact density gradient of the loss", "nerf-dC-compact", DL_DSIGMA_LHS, claim, n_max,
        dL_dsigma_difference(claim),
    )


def check_transmittance_recursion(claim: sp.Expr = T_NEXT, n_max: int = N_MAX) -> Check:
    """Proposition nerf-prop-weights, eq. nerf-recursion: T_{i+1} = T_i (1 - alpha_i)."""
    return per_sample_check(
        "transmittance recursion", "nerf-recursion", "T_{i+1}", claim, n_max,
        lambda n, j: ray(n).polynomial(ray(n).T[j + 1] - ray(n).instantiate(claim, i=j)),
    )


def check_opacity(claim: sp.Expr = OPACITY, n_max: int = N_MAX) -> Check:
    """Proposition nerf-prop-weights, eq. nerf-opacity: sum_i w_i = 1 - T_{N+1}."""
    cases = range(1, n_max + 1)
    passed = all(
        vanishes(ray(n).polynomial(sp.Add(*ray(n).w.values()) - ray(n).instantiate(claim)))
        for n in cases
    )
    lhs = r"\sum_{i=1}^{N} T_i \alpha_i"
    return Check(
        "weights sum to the opacity",
        statement(lhs, claim),
        passed,
        len(cases),
        rf"1 \le N \le {n_max}",
        label="nerf-opacity",
        equation=EQUATIONS["nerf-opacity"],
        claim=claim,
    )


def check_same_colour(claim: sp.Expr = DC_DSIGMA_SAME_COLOUR, n_max: int = N_MAX) -> Check:
    """Eq. nerf-same-colour: if every c_k = c, dC_hat/dsigma_i = delta_i T_{N+1} (c - c_bg)."""

    def difference(n: int, j: int) -> sp.Matrix:
        r = ray(n)
        one_colour = {r.c[m][ch]: r.c[1][ch] for m in r.c for ch in range(3)}
        gradient = r.polynomial(r.C_hat.xreplace(one_colour).diff(r.sigma[j]))
        return gradient - r.polynomial(r.vector(claim, i=j))

    lhs = (
        r"\left.\frac{\partial \hat{\mathbf{C}}}{\partial \sigma_i}\right|"
        r"_{\mathbf{c}_k = \mathbf{c}}"
    )
    return per_sample_check(
        "density gradient when every sample has the same colour", "nerf-same-colour", lhs, claim,
        n_max, difference,
    )


CHECKS = (
    check_dalpha,
    check_dT,
    check_dC_dc,
    check_dL_dc,
    check_dC_dsigma,
    check_dL_dsigma,
    check_dC_dsigma_compact,
    check_dL_dsigma_compact,
    check_transmittance_recursion,
    check_opacity,
    check_same_colour,
)


if __name__ == "__main__":
    sys.exit(report(check() for check in CHECKS))
