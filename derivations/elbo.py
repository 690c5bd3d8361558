"""The ELBO decomposition, proved exactly in a model where every term has a closed form.

Kingma and Welling (2014), eq. 1: for any density q(z | x),

    log p(x) = ELBO(q) + KL(q(z | x) || p(z | x)),   ELBO(q) = E_q[log p(x, z) - log q(z | x)],

so the ELBO, written B in the book, is a lower bound on log p(x), tight exactly when q is the
true posterior. The chapter "The ELBO" proves this in general (eq. elbo-decomposition, eq.
elbo-bound, theorem elbo-thm-gibbs); this script checks it in the conjugate Gaussian model

    z ~ N(0, 1),   x | z ~ N(z, s^2),   q(z) = N(m, v),

where the evidence p(x), the posterior p(z | x), the ELBO and the KL are all computed by
integration with symbolic x, s, m, v, and compared exactly.

Run alone: python derivations/elbo.py   (exit status 1 if an identity fails)
"""

from __future__ import annotations

import functools
import sys

import sympy as sp
from _check import (
    Check,
    gaussian_expectation,
    latex,
    normal_pdf,
    normalise_exponents,
    product,
    report,
    same_positive,
    statement,
    terms,
    vanishes,
)

x, z = sp.symbols("x z", real=True)
s = sp.Symbol("s", positive=True)  # the standard deviation of the observation noise
m = sp.Symbol("m", real=True)  # the mean of q
v = sp.Symbol("v", positive=True)  # the variance of q
mu_star = sp.Symbol("mu_*", real=True)  # the posterior mean
v_star = sp.Symbol("v_*", positive=True)  # the posterior variance
half = sp.Rational(1, 2)

PRIOR = normal_pdf(z, 0, 1)
LIKELIHOOD = normal_pdf(x, z, s**2)
JOINT = PRIOR * LIKELIHOOD
Q = normal_pdf(z, m, v)

# The book's claims. Evidence and posterior as (mean, variance) of a Gaussian.
EVIDENCE = (0, 1 + s**2)
POSTERIOR = (x / (1 + s**2), s**2 / (1 + s**2))
# KL(N(m, v) || N(mu_*, v_*)), the gap between log p(x) and the ELBO.
GAP = product(half, terms(sp.log(v_star / v), (v + (m - mu_star) ** 2) / v_star, -1))
# The same gap written as a sum of two terms that are visibly non-negative:
# (m - mu_*)^2 >= 0, and r - 1 - log r >= 0 for r = v / v_* > 0.
GAP_NONNEGATIVE = terms(
    product(half, (m - mu_star) ** 2 / v_star),
    product(half, terms(v / v_star, -1, -sp.log(v / v_star))),
)

# The labelled equations as the chapter "The ELBO" prints them (book/elbo.md).
EQUATION_DECOMPOSITION = r"""
\log p(x) =
\underbrace{\mathbb{E}_{q(z \mid x)}\left[\log \frac{p(x, z)}{q(z \mid x)}\right]}_{\mathcal{B}(x)}
+ \underbrace{\mathbb{E}_{q(z \mid x)}\left[\log \frac{q(z \mid x)}{p(z \mid x)}\right]}_{
  \operatorname{KL}(q(z \mid x) \,\Vert\, p(z \mid x))} .
"""
EQUATION_BOUND = r"""
\mathcal{B}(x) = \mathbb{E}_{q(z \mid x)}\left[\log \frac{p(x, z)}{q(z \mid x)}\right]
\leq \log p(x),
"""


# ---------------------------------------------------------------------------------------------
# The model's quantities, by integration
# ---------------------------------------------------------------------------------------------


@functools.cache
def evidence() -> sp.Expr:
    """p(x) = integral of p(z) p(x | z) dz, simplified."""
    joint = normalise_exponents(sp.powsimp(JOINT))  # one exp of a quadratic in z
    return sp.simplify(normalise_exponents(sp.expand(sp.integrate(joint, (z, -sp.oo, sp.oo)))))


def log_evidence() -> sp.Expr:
    return sp.expand_log(sp.log(evidence()), force=True)  # valid: p(x) > 0


@functools.cache
def elbo() -> sp.Expr:
    """ELBO(m, v) = E_q[log p(x, z) - log q(z)], integrating against q = N(m, v)."""
    return gaussian_expectation(sp.log(JOINT) - sp.log(Q), [z], [m], [v])


@functools.cache
def kl_to_posterior() -> sp.Expr:
    """KL(q || p(z | x)) with p(z | x) = p(x, z) / p(x) from Bayes' rule, by integration."""
    posterior = JOINT / evidence()
    return gaussian_expectation(sp.log(Q) - sp.log(posterior), [z], [m], [v])


@functools.cache
def gap() -> sp.Expr:
    """log p(x) - ELBO(m, v), both by integration."""
    return log_evidence() - elbo()


def at_posterior(expr: sp.Expr, posterior) -> sp.Expr:
    mean, variance = posterior
    return expr.subs({mu_star: mean, v_star: variance})


def where_posterior(posterior, first: str = "") -> str:
    """LaTeX: where [first,] mu_* = ..., v_* = ... (the claimed posterior mean and variance)."""
    mean, variance = posterior
    return rf"\text{{where }} {first}\mu_* = {latex(mean)},\quad v_* = {latex(variance)}"


def gaussian_tex(variable: str, mean: sp.Expr, variance: sp.Expr) -> str:
    return rf"\mathcal{{N}}\bigl({variable};\ {latex(mean)},\ {latex(variance)}\bigr)"


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def check_evidence(claim=EVIDENCE) -> Check:
    """The marginal likelihood p(x) = N(x; 0, 1 + s^2)."""
    passed = same_positive(evidence(), normal_pdf(x, *claim))
    tex = r"p(x) = \int p(z)\, p(x \mid z)\, dz = " + gaussian_tex("x", *claim)
    return Check("the evidence", tex, passed)


def check_posterior(claim=POSTERIOR) -> Check:
    """Bayes' rule: p(z | x) = p(z) p(x | z) / p(x) = N(z; x / (1 + s^2), s^2 / (1 + s^2))."""
    passed = same_positive(JOINT / evidence(), normal_pdf(z, *claim))
    tex = r"p(z \mid x) = \frac{p(z)\, p(x \mid z)}{p(x)} = " + gaussian_tex("z", *claim)
    return Check("the posterior", tex, passed)


def check_decomposition(claim: sp.Expr = GAP, posterior=POSTERIOR) -> Check:
    """Eq. elbo-decomposition: log p(x) - ELBO(m, v) and KL(q || p(z | x)) are the same
    closed form, for every m and v > 0."""
    closed_form = at_posterior(claim, posterior)
    passed = vanishes(gap() - closed_form) and vanishes(kl_to_posterior() - closed_form)
    identity = (
        r"\log p(x) - \mathcal{B}(m, v) = \operatorname{KL}\bigl(q \,\Vert\, p(z \mid x)\bigr)"
    )
    # Two lines of details (the page typesets them under the identity): the claimed closed
    # form, then what its symbols stand for.
    details = (
        "= " + latex(claim) + r" \\ " + where_posterior(posterior, r"q = \mathcal{N}(m, v),\quad ")
    )
    return Check(
        "log-evidence minus ELBO is the KL to the posterior",
        identity,
        passed,
        details=details,
        label="elbo-decomposition",
        equation=EQUATION_DECOMPOSITION,
        claim=elbo() + closed_form,  # the right-hand side, B(m, v) + KL, in this model
    )


def check_tight_at_posterior(posterior=POSTERIOR) -> Check:
    """The gap vanishes when q is the true posterior."""
    mean, variance = posterior
    passed = vanishes(gap().subs({m: mean, v: variance}))
    tex = r"\log p(x) - \mathcal{B}(\mu_*, v_*) = 0"
    return Check(
        "the bound is tight at the posterior", tex, passed, details=where_posterior(posterior)
    )


def check_unique_stationary_point(posterior=POSTERIOR) -> Check:
    """The gradient of the gap in (m, v) vanishes at one point only: the posterior."""
    gradient = [gap().diff(m), gap().diff(v)]
    solutions = sp.solve(gradient, [m, v], dict=True)
    mean, variance = posterior
    passed = (
        len(solutions) == 1
        and vanishes(solutions[0][m] - mean)
        and vanishes(solutions[0][v] - variance)
    )
    tex = r"\nabla_{m, v} \bigl(\log p(x) - \mathcal{B}(m, v)\bigr) = 0 \iff (m, v) = (\mu_*, v_*)"
    return Check(
        "the only stationary point of the gap is the posterior",
        tex,
        passed,
        details=where_posterior(posterior),
    )


def check_gap_nonnegative(claim: sp.Expr = GAP_NONNEGATIVE, posterior=POSTERIOR) -> Check:
    """Eq. elbo-bound, ELBO <= log p(x) with equality only at the posterior: the gap equals the
    claim, a sum of 1/2 (m - mu_*)^2 / v_* >= 0 and 1/2 g(v / v_*) with g(u) = u - 1 - log u, and
    g >= 0 with equality only at u = 1 because g(1) = 0, g'(1) = 0 and g'' = 1 / u^2 > 0."""
    u = sp.Symbol("u", positive=True)
    g = u - 1 - sp.log(u)
    g_is_nonnegative = (
        vanishes(g.subs(u, 1)) and vanishes(g.diff(u).subs(u, 1)) and g.diff(u, 2).is_positive
    )
    closed_form = at_posterior(claim, posterior)
    passed = vanishes(gap() - closed_form) and g_is_nonnegative is True
    lhs = r"\log p(x) - \mathcal{B}(m, v)"
    return Check(
        "the gap is a sum of non-negative terms",
        statement(lhs, claim),
        passed,
        details=where_posterior(posterior),
        label="elbo-bound",
        equation=EQUATION_BOUND,
        claim=closed_form,  # log p(x) - B(m, v) in this model, the gap the bound says is >= 0
    )


CHECKS = (
    check_evidence,
    check_posterior,
    check_decomposition,
    check_tight_at_posterior,
    check_unique_stationary_point,
    check_gap_nonnegative,
)


if __name__ == "__main__":
    sys.exit(report(check() for check in CHECKS))
