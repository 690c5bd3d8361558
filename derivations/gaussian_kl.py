"""The Gaussian KL divergence and log-density of the VAE chapter, proved by integration.

Kingma and Welling (2014), appendix B: for an encoder q = N(mu, diag sigma^2) and the prior
p = N(0, I),

    -KL(q || p) = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2),

the term of the ELBO that needs no sampling. This script computes KL(q || p) = E_q[log q - log p]
by integrating against q in one dimension (against N(0, 1) and against a general Gaussian), and
proves the diagonal formula of the chapter "The ELBO" (eq. elbo-gaussian-kl) for every number of
dimensions D, by induction:

- D = 1 is the one-dimensional integral (eq. elbo-kl-1d);
- the step D -> D + 1 is additivity (eq. elbo-kl-additive): for independent blocks,
  KL(q_1 q_2 || p_1 p_2) = KL(q_1 || p_1) + KL(q_2 || p_2), proved for unspecified positive
  densities q_1, p_1 (of the first D coordinates) and q_2, p_2 (of the last one); together with
  the one-dimensional KL of the new coordinate, it must equal what the claimed formula adds when
  D grows by one, with D a symbol.

Direct integration for D = 1, 2, 3 confirms the result. The log-density used by
`dgm.gaussian.log_normal_pdf` (eq. elbo-log-normal) is proved the same way: in one dimension it is
the logarithm of a density with mean mu and variance sigma^2, and each added coordinate adds the
logarithm of its own density.

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

DIMENSIONS = (1, 2, 3)  # the diagonal formulas are also integrated directly in these dimensions

x = sp.Symbol("x", real=True)
mu = sp.Symbol("mu", real=True)
sigma = sp.Symbol("sigma", positive=True)
mu_1, mu_2 = sp.symbols("mu_1 mu_2", real=True)
sigma_1, sigma_2 = sp.symbols("sigma_1 sigma_2", positive=True)
# Diagonal Gaussians in D dimensions, coordinates j = 1, ..., D: one formula for every D.
j = sp.Symbol("j", integer=True, positive=True)
d = j  # the index's former name, kept for the wrong-claim tests that still import it
D = sp.Symbol("D", integer=True, positive=True)
mu_d = sp.IndexedBase("mu")
sigma_d = sp.IndexedBase("sigma")
z_d = sp.IndexedBase("z")
half = sp.Rational(1, 2)

# Two independent blocks of coordinates, each with its own variable and unspecified densities.
u, w = sp.symbols("u w", real=True)
q_1, p_1, q_2, p_2 = (sp.Function(name, positive=True) for name in ("q_1", "p_1", "q_2", "p_2"))


def log_(argument: sp.Expr) -> sp.Expr:
    """log(argument) as written (log sigma^2 stays log sigma^2 on the page, not 2 log sigma)."""
    return sp.log(argument, evaluate=False)


def integral(f: sp.Expr, variable: sp.Symbol) -> sp.Expr:
    """The (unevaluated) integral of f over the whole range of ``variable``."""
    return sp.Integral(f, (variable, -sp.oo, sp.oo))


def block_kl(q, p, variable) -> sp.Expr:
    return integral(q(variable) * sp.log(q(variable) / p(variable)), variable)


# Eq. elbo-kl-1d: the diagonal formula with D = 1.
KL_STANDARD = product(half, terms(mu**2, sigma**2, -1, -log_(sigma**2)))
# The KL between two one-dimensional Gaussians.
KL_GENERAL = terms(
    sp.log(sigma_2 / sigma_1),
    (sigma_1**2 + terms(mu_1, -mu_2) ** 2) / (2 * sigma_2**2),
    -half,
)
# Eq. elbo-kl-additive: the KL of independent blocks is the sum of the blocks' KLs.
KL_ADDITIVE = terms(block_kl(q_1, p_1, u), block_kl(q_2, p_2, w))
# Eq. elbo-gaussian-kl, and its negative as the ELBO writes it.
KL_DIAGONAL = product(
    half, sp.Sum(terms(mu_d[j] ** 2, sigma_d[j] ** 2, -1, -log_(sigma_d[j] ** 2)), (j, 1, D))
)
NEGATIVE_KL_DIAGONAL = product(
    half, sp.Sum(terms(1, log_(sigma_d[j] ** 2), -(mu_d[j] ** 2), -(sigma_d[j] ** 2)), (j, 1, D))
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
            log_(sigma_d[j] ** 2),
            terms(z_d[j], -mu_d[j]) ** 2 / sigma_d[j] ** 2,
        ),
        (j, 1, D),
    ),
)

# The labelled equations as the chapter "The ELBO" prints them (book/elbo.md).
EQUATION_KL_1D = r"""
\operatorname{KL}\bigl(\mathcal{N}(\mu, \sigma^2) \,\Vert\, \mathcal{N}(0, 1)\bigr)
= \frac{1}{2}\left(\mu^2 + \sigma^2 - 1 - \log \sigma^2\right)
"""
EQUATION_GAUSSIAN_KL = r"""
\operatorname{KL}\bigl(\mathcal{N}(\mu, \operatorname{diag}\sigma^2) \,\Vert\,
\mathcal{N}(0, I)\bigr)
= \frac{1}{2}\sum_{j=1}^{D}\bigl(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\bigr)
"""
EQUATION_LOG_NORMAL = r"""
\log \mathcal{N}\bigl(z;\, \mu, \operatorname{diag}\sigma^2\bigr)
= -\frac{1}{2} \sum_{j=1}^{D} \left[\log 2\pi + \log \sigma_j^2
  + \frac{(z_j - \mu_j)^2}{\sigma_j^2}\right].
"""

DIAGONAL_TEX = r"\mathcal{N}(\mu, \operatorname{diag}\sigma^2)"
INDUCTION_SCOPE = r"\text{every } D \ge 1 \text{, by induction}"


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
        """The claim with D = n, the Sum expanded and mu[j], sigma[j], z[j] made concrete."""
        expr = claim.subs(D, self.n).doit()
        names = {mu_d: self.mu, sigma_d: self.sigma, z_d: self.z}
        return expr.xreplace(
            {a: names[a.base][int(a.indices[0]) - 1] for a in expr.atoms(sp.Indexed)}
        )

    def kl_to_standard_normal(self) -> sp.Expr:
        zeros, ones = [0] * self.n, [1] * self.n
        return kl_by_integration(self.z, self.mu, [s**2 for s in self.sigma], zeros, ones)


# ---------------------------------------------------------------------------------------------
# Induction on D


def increment(claim: sp.Expr) -> sp.Expr:
    """claim(D + 1) - claim(D), with every sum up to D + 1 written as the sum up to D plus its
    last term (the definition of a finite sum)."""

    def peel(s: sp.Sum) -> sp.Expr:
        (index, lower, upper), = s.limits
        if upper != D + 1:
            return s
        return sp.Sum(s.function, (index, lower, D)) + s.function.subs(index, D + 1)

    grown = claim.subs(D, D + 1).replace(lambda e: isinstance(e, sp.Sum), peel)
    return grown - claim


def split_integrals(expr: sp.Expr) -> sp.Expr:
    """Linearity: the integral of a sum of logarithms of products is a sum of integrals."""

    def split(integral_: sp.Integral) -> sp.Expr:
        integrand = sp.expand(sp.expand_log(integral_.function, force=True))  # densities > 0
        parts = (t.as_coeff_Mul() for t in sp.Add.make_args(integrand))  # constant, the rest
        return sp.Add(*(c * sp.Integral(f, *integral_.limits) for c, f in parts))

    return expr.replace(lambda e: isinstance(e, sp.Integral), split)


def kl_of_product_of_blocks() -> sp.Expr:
    """KL(q_1 q_2 || p_1 p_2) from its definition, for blocks with their own variables u, w.

    The log of the product is a sum of logs (the densities are positive); each term of the
    integrand is a product of a function of u and a function of w, so its double integral is the
    product of two single integrals (Fubini); and the densities integrate to one.
    """
    integrand = q_1(u) * q_2(w) * sp.log(q_1(u) * q_2(w) / (p_1(u) * p_2(w)))
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(sp.expand_log(integrand, force=True))):
        constant, rest = term.as_coeff_Mul()
        of_u, of_w = rest.as_independent(w, as_Add=False)
        if of_u.has(w) or of_w.has(u):
            raise ValueError(f"the term {term} does not factor into a function of u and one of w")
        total += constant * integral(of_u, u) * integral(of_w, w)
    normalised = {integral(q_1(u), u): 1, integral(q_2(w), w): 1}
    return split_integrals(total.xreplace(normalised))


def kl_is_additive(claim: sp.Expr = KL_ADDITIVE) -> bool:
    """Eq. elbo-kl-additive, for unspecified positive densities."""
    return vanishes(kl_of_product_of_blocks() - split_integrals(claim))


def one_coordinate_kl(index) -> sp.Expr:
    """KL(N(mu_index, sigma_index^2) || N(0, 1)) by integration."""
    m, s = sp.Symbol("m", real=True), sp.Symbol("s", positive=True)
    kl = kl_by_integration([x], [m], [s**2], [0], [1])
    return kl.xreplace({m: mu_d[index], s: sigma_d[index]})


def one_coordinate_log_density(index) -> sp.Expr:
    """log N(z_index; mu_index, sigma_index^2), from the density."""
    zz, m, s = sp.Symbol("zz", real=True), sp.Symbol("m", real=True), sp.Symbol("s", positive=True)
    log_density = sp.expand_log(sp.log(normal_pdf(zz, m, s**2)), force=True)
    return log_density.xreplace({zz: z_d[index], m: mu_d[index], s: sigma_d[index]})


# ---------------------------------------------------------------------------------------------
# The checks


def check_kl_standard(claim: sp.Expr = KL_STANDARD) -> Check:
    """Eq. elbo-kl-1d: KL(N(mu, sigma^2) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2)."""
    kl = kl_by_integration([x], [mu], [sigma**2], [0], [1])
    divergence = kl_tex(r"\mathcal{N}(\mu, \sigma^2)", r"\mathcal{N}(0, 1)")
    lhs = r"\int q \log\frac{q}{p}\,dx = " + divergence
    return Check(
        "KL from a Gaussian to the standard normal",
        statement(lhs, claim),
        vanishes(kl - claim),
        label="elbo-kl-1d",
        equation=EQUATION_KL_1D,
        claim=claim,
    )


def check_kl_general(claim: sp.Expr = KL_GENERAL) -> Check:
    """KL(N(mu_1, sigma_1^2) || N(mu_2, sigma_2^2)) in closed form."""
    kl = kl_by_integration([x], [mu_1], [sigma_1**2], [mu_2], [sigma_2**2])
    lhs = kl_tex(r"\mathcal{N}(\mu_1, \sigma_1^2)", r"\mathcal{N}(\mu_2, \sigma_2^2)")
    return Check("KL between two Gaussians", statement(lhs, claim), vanishes(kl - claim))


def check_kl_diagonal(
    claim: sp.Expr = KL_DIAGONAL, dims=DIMENSIONS, additivity: sp.Expr = KL_ADDITIVE
) -> Check:
    """Eq. elbo-gaussian-kl for every D, by induction: the claim is right for D = 1; the KL is
    additive over independent blocks (eq. elbo-kl-additive); and what the claim adds from D to
    D + 1 is the one-dimensional KL of the new coordinate. Direct integration for ``dims``."""
    base = vanishes(Diagonal(1).kl_to_standard_normal() - Diagonal(1).instantiate(claim))
    new_coordinate = sp.expand_log(increment(claim) - one_coordinate_kl(D + 1), force=True)
    step = kl_is_additive(additivity) and vanishes(new_coordinate)  # force: sigma_j > 0
    direct = all(
        vanishes(Diagonal(n).kl_to_standard_normal() - Diagonal(n).instantiate(claim)) for n in dims
    )
    lhs = kl_tex(DIAGONAL_TEX, r"\mathcal{N}(0, I)")
    return Check(
        "KL of a diagonal Gaussian to the standard normal",
        statement(lhs, claim),
        base and step and direct,
        2 + len(dims),
        INDUCTION_SCOPE,
        details=r"\text{step: } \operatorname{KL}(q_1 q_2 \,\Vert\, p_1 p_2) = "
        r"\operatorname{KL}(q_1 \,\Vert\, p_1) + \operatorname{KL}(q_2 \,\Vert\, p_2)"
        r"\text{ for any densities; also integrated directly for } D = "
        + ", ".join(map(str, dims)),
        label="elbo-gaussian-kl",
        equation=EQUATION_GAUSSIAN_KL,
        claim=claim,
    )


def check_negative_kl(claim: sp.Expr = NEGATIVE_KL_DIAGONAL, dims=DIMENSIONS) -> Check:
    """-KL in the form of the ELBO (Kingma and Welling 2014, appendix B): the claim plus the
    diagonal KL is zero for symbolic D, and the claim is -KL by integration for ``dims``."""
    every_d = vanishes(claim + KL_DIAGONAL)
    direct = all(
        vanishes(-Diagonal(n).kl_to_standard_normal() - Diagonal(n).instantiate(claim))
        for n in dims
    )
    lhs = "-" + kl_tex(DIAGONAL_TEX, r"\mathcal{N}(0, I)")
    return Check(
        "negative KL as it enters the ELBO",
        statement(lhs, claim),
        every_d and direct,
        1 + len(dims),
        r"\text{every } D \ge 1",
        details=r"\text{the negative of the diagonal KL, as sums over symbolic } D"
        r"\text{; also integrated directly for } D = " + ", ".join(map(str, dims)),
    )


def check_log_normal_pdf(claim: sp.Expr = LOG_NORMAL_PDF) -> Check:
    """exp(claim) is N(x; mu, sigma^2): it integrates to 1, with mean mu and variance sigma^2."""
    density = sp.exp(claim)

    def integral_against(f: sp.Expr) -> sp.Expr:
        return sp.integrate(f * density, (x, -sp.oo, sp.oo))

    moments = [(1, 1), (x, mu), ((x - mu) ** 2, sigma**2)]
    passed = all(vanishes(integral_against(f) - value) for f, value in moments) and same_positive(
        density, normal_pdf(x, mu, sigma**2)
    )
    lhs = r"\log \mathcal{N}(x;\, \mu, \sigma^2)"
    return Check(
        "the log-density is that of a Gaussian: total mass 1, the stated mean and variance",
        statement(lhs, claim),
        passed,
        len(moments) + 1,
        details=r"\text{with } \int \mathcal{N}\, dx = 1,\quad \int x\, \mathcal{N}\, dx = \mu,"
        r"\quad \int (x - \mu)^2\, \mathcal{N}\, dx = \sigma^2",
    )


def check_log_normal_diagonal(claim: sp.Expr = LOG_NORMAL_DIAGONAL, dims=DIMENSIONS) -> Check:
    """Eq. elbo-log-normal for every D, by induction: right for D = 1, and what the claim adds
    from D to D + 1 is the log-density of the new coordinate (the density of independent
    coordinates is the product of theirs, and the log of a product is the sum of the logs)."""

    def log_density(g: Diagonal) -> sp.Expr:
        coordinates = zip(g.z, g.mu, g.sigma, strict=True)
        density = sp.Mul(*(normal_pdf(z, m, s**2) for z, m, s in coordinates))
        return sp.expand_log(sp.log(density), force=True)  # valid: the density is positive

    base = vanishes(log_density(Diagonal(1)) - Diagonal(1).instantiate(claim))
    new_coordinate = increment(claim) - one_coordinate_log_density(D + 1)
    step = vanishes(sp.expand_log(new_coordinate, force=True))  # force: sigma_j > 0
    direct = all(vanishes(log_density(Diagonal(n)) - Diagonal(n).instantiate(claim)) for n in dims)
    lhs = r"\log \mathcal{N}\bigl(z;\, \mu, \operatorname{diag}\sigma^2\bigr)"
    return Check(
        "log-density of a diagonal Gaussian",
        statement(lhs, claim),
        base and step and direct,
        2 + len(dims),
        INDUCTION_SCOPE,
        details=r"\text{also directly for } D = " + ", ".join(map(str, dims)),
        label="elbo-log-normal",
        equation=EQUATION_LOG_NORMAL,
        claim=claim,
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
