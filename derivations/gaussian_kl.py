"""The Gaussian KL divergence and log-density of the VAE chapter, proved by integration.

Kingma and Welling (2014), appendix B: for an encoder q = N(mu, diag sigma^2) and the prior
p = N(0, I),

    -KL(q || p) = 1/2 sum_d (1 + log sigma_d^2 - mu_d^2 - sigma_d^2),

the term of the ELBO that needs no sampling. This script computes KL(q || p) = E_q[log q - log p]
by integrating against q, in one dimension (against N(0, 1) and against a general Gaussian) and
for diagonal Gaussians in D = 1, 2, 3 dimensions, and compares the results with the closed forms
of the chapter "The ELBO" (eq. elbo-gaussian-kl). It also proves that the log-density used by
`dgm.gaussian.log_normal_pdf` (eq. elbo-log-normal) is the logarithm of a probability density with
mean mu and variance sigma^2.

Run alone: python derivations/gaussian_kl.py   (exit status 1 if an identity fails)
"""

from __future__ import annotations

import sys

import sympy as sp
from _check import (
    Check,
    gaussian_expectation,
    normal_pdf,
    product,
    report,
    same_positive,
    statement,
    terms,
    vanishes,
)

DIMENSIONS = (1, 2, 3)  # the diagonal KL is proved for each of these numbers of dimensions

x = sp.Symbol("x", real=True)
mu = sp.Symbol("mu", real=True)
sigma = sp.Symbol("sigma", positive=True)
mu_1, mu_2 = sp.symbols("mu_1 mu_2", real=True)
sigma_1, sigma_2 = sp.symbols("sigma_1 sigma_2", positive=True)
# Diagonal Gaussians in D dimensions: the book's notation, one formula for every D.
d = sp.Symbol("d", integer=True, positive=True)
D = sp.Symbol("D", integer=True, positive=True)
mu_d = sp.IndexedBase("mu")
sigma_d = sp.IndexedBase("sigma")
z_d = sp.IndexedBase("z")
half = sp.Rational(1, 2)


def log_(argument: sp.Expr) -> sp.Expr:
    """log(argument) as written (log sigma^2 stays log sigma^2 on the page, not 2 log sigma)."""
    return sp.log(argument, evaluate=False)


# Eq. elbo-gaussian-kl with D = 1.
KL_STANDARD = product(half, terms(mu**2, sigma**2, -1, -log_(sigma**2)))
# The KL between two one-dimensional Gaussians.
KL_GENERAL = terms(
    sp.log(sigma_2 / sigma_1),
    (sigma_1**2 + terms(mu_1, -mu_2) ** 2) / (2 * sigma_2**2),
    -half,
)
# Eq. elbo-gaussian-kl, and its negative as the ELBO writes it.
KL_DIAGONAL = product(
    half, sp.Sum(terms(mu_d[d] ** 2, sigma_d[d] ** 2, -1, -log_(sigma_d[d] ** 2)), (d, 1, D))
)
NEGATIVE_KL_DIAGONAL = product(
    half, sp.Sum(terms(1, log_(sigma_d[d] ** 2), -(mu_d[d] ** 2), -(sigma_d[d] ** 2)), (d, 1, D))
)
# Eq. elbo-log-normal, one coordinate: what `log_normal_pdf` computes, with logvar = log sigma^2.
LOG_NORMAL_PDF = product(
    -half, terms(sp.log(2 * sp.pi), log_(sigma**2), terms(x, -mu) ** 2 / sigma**2)
)
# Eq. elbo-log-normal: the log-density of a diagonal Gaussian is a sum over coordinates.
LOG_NORMAL_DIAGONAL = product(
    -half,
    sp.Sum(
        terms(
            sp.log(2 * sp.pi),
            log_(sigma_d[d] ** 2),
            terms(z_d[d], -mu_d[d]) ** 2 / sigma_d[d] ** 2,
        ),
        (d, 1, D),
    ),
)


DIAGONAL_TEX = r"\mathcal{N}(\mu, \operatorname{diag}\sigma^2)"


def kl_tex(q: str, p: str) -> str:
    return rf"\operatorname{{KL}}\bigl({q} \,\Vert\, {p}\bigr)"


def kl_by_integration(xs, means, variances, prior_means, prior_variances) -> sp.Expr:
    """KL(q || p) = integral of q log(q / p) for independent Gaussian coordinates."""
    q = sp.Mul(*(normal_pdf(*args) for args in zip(xs, means, variances, strict=True)))
    p = sp.Mul(*(normal_pdf(*args) for args in zip(xs, prior_means, prior_variances, strict=True)))
    return gaussian_expectation(sp.log(q / p), xs, means, variances)


class Diagonal:
    """Concrete symbols for a diagonal Gaussian in n dimensions."""

    def __init__(self, n: int):
        self.n = n
        self.z = sp.symbols(f"z_1:{n + 1}", real=True)
        self.mu = sp.symbols(f"mu_1:{n + 1}", real=True)
        self.sigma = sp.symbols(f"sigma_1:{n + 1}", positive=True)

    def instantiate(self, claim: sp.Expr) -> sp.Expr:
        """The claim with D = n, the Sum expanded and mu[d], sigma[d], z[d] made concrete."""
        expr = claim.subs(D, self.n).doit()
        names = {mu_d: self.mu, sigma_d: self.sigma, z_d: self.z}
        return expr.xreplace(
            {a: names[a.base][int(a.indices[0]) - 1] for a in expr.atoms(sp.Indexed)}
        )

    def kl_to_standard_normal(self) -> sp.Expr:
        zeros, ones = [0] * self.n, [1] * self.n
        return kl_by_integration(self.z, self.mu, [s**2 for s in self.sigma], zeros, ones)


def check_kl_standard(claim: sp.Expr = KL_STANDARD) -> Check:
    """KL(N(mu, sigma^2) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2)."""
    kl = kl_by_integration([x], [mu], [sigma**2], [0], [1])
    divergence = kl_tex(r"\mathcal{N}(\mu, \sigma^2)", r"\mathcal{N}(0, 1)")
    lhs = r"\int q \log\frac{q}{p}\,dx = " + divergence
    return Check(
        "KL from a Gaussian to the standard normal", statement(lhs, claim), vanishes(kl - claim)
    )


def check_kl_general(claim: sp.Expr = KL_GENERAL) -> Check:
    """KL(N(mu_1, sigma_1^2) || N(mu_2, sigma_2^2)) in closed form."""
    kl = kl_by_integration([x], [mu_1], [sigma_1**2], [mu_2], [sigma_2**2])
    lhs = kl_tex(r"\mathcal{N}(\mu_1, \sigma_1^2)", r"\mathcal{N}(\mu_2, \sigma_2^2)")
    return Check("KL between two Gaussians", statement(lhs, claim), vanishes(kl - claim))


def check_kl_diagonal(claim: sp.Expr = KL_DIAGONAL, dims=DIMENSIONS) -> Check:
    """Eq. elbo-gaussian-kl: the KL of a diagonal Gaussian is the sum of per-coordinate KLs."""
    passed = all(
        vanishes(Diagonal(n).kl_to_standard_normal() - Diagonal(n).instantiate(claim)) for n in dims
    )
    lhs = kl_tex(DIAGONAL_TEX, r"\mathcal{N}(0, I)")
    return Check(
        "KL of a diagonal Gaussian to the standard normal",
        statement(lhs, claim),
        passed,
        len(dims),
        "D = " + ", ".join(map(str, dims)),
    )


def check_negative_kl(claim: sp.Expr = NEGATIVE_KL_DIAGONAL, dims=DIMENSIONS) -> Check:
    """-KL in the form of the ELBO (Kingma and Welling 2014, appendix B)."""
    passed = all(
        vanishes(-Diagonal(n).kl_to_standard_normal() - Diagonal(n).instantiate(claim))
        for n in dims
    )
    lhs = "-" + kl_tex(DIAGONAL_TEX, r"\mathcal{N}(0, I)")
    return Check(
        "negative KL as it enters the ELBO",
        statement(lhs, claim),
        passed,
        len(dims),
        "D = " + ", ".join(map(str, dims)),
    )


def check_log_normal_pdf(claim: sp.Expr = LOG_NORMAL_PDF) -> Check:
    """exp(claim) is N(x; mu, sigma^2): it integrates to 1, with mean mu and variance sigma^2."""
    density = sp.exp(claim)

    def integral(f: sp.Expr) -> sp.Expr:
        return sp.integrate(f * density, (x, -sp.oo, sp.oo))

    moments = [(1, 1), (x, mu), ((x - mu) ** 2, sigma**2)]
    passed = all(vanishes(integral(f) - value) for f, value in moments) and same_positive(
        density, normal_pdf(x, mu, sigma**2)
    )
    lhs = r"\ell(x) = \log \mathcal{N}(x;\, \mu, \sigma^2)"
    return Check(
        "the log-density is that of a Gaussian: total mass 1, the stated mean and variance",
        statement(lhs, claim),
        passed,
        len(moments) + 1,
        details=r"\text{with } \int e^{\ell} dx = 1,\quad \int x\, e^{\ell} dx = \mu,\quad "
        r"\int (x - \mu)^2 e^{\ell} dx = \sigma^2",
    )


def check_log_normal_diagonal(claim: sp.Expr = LOG_NORMAL_DIAGONAL, dims=DIMENSIONS) -> Check:
    """Eq. elbo-log-normal: log of the product of the coordinates' densities."""

    def log_density(g: Diagonal) -> sp.Expr:
        coordinates = zip(g.z, g.mu, g.sigma, strict=True)
        density = sp.Mul(*(normal_pdf(z, m, s**2) for z, m, s in coordinates))
        return sp.expand_log(sp.log(density), force=True)  # valid: the density is positive

    passed = all(vanishes(log_density(Diagonal(n)) - Diagonal(n).instantiate(claim)) for n in dims)
    lhs = r"\log \mathcal{N}\bigl(z;\, \mu, \operatorname{diag}\sigma^2\bigr)"
    return Check(
        "log-density of a diagonal Gaussian",
        statement(lhs, claim),
        passed,
        len(dims),
        "D = " + ", ".join(map(str, dims)),
    )


CHECKS = (
    check_kl_standard,
    check_kl_general,
    check_kl_diagonal,
    check_negative_kl,
    check_log_normal_pdf,
    check_log_normal_diagonal,
)


if __name__ == "__main__":
    sys.exit(report(check() for check in CHECKS))
