"""What every derivation script shares: the result of a check, a zero test, Gaussian integrals.

Each script in this folder proves, with SymPy, identities that the chapters use. A check is a
function that takes the claimed expression (by default the one printed in the book) and returns
a :class:`Check`. Because the claim is an argument, a wrong claim can be passed in and must make
the check fail; the tests do exactly that for every script.

An identity ``lhs = claim`` counts as proved only when SymPy reduces ``lhs - claim`` to exactly
zero by algebra (expansion, cancellation of rational functions, simplification). Nothing is ever
decided by evaluating at numbers.
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.rings import ring
from sympy.printing.latex import LatexPrinter


@dataclass(frozen=True)
class Check:
    """The outcome of one checked identity.

    ``latex`` is the identity as the book states it and ``details`` (LaTeX, may be empty) a
    second line that completes it: the symbols it abbreviates, or what else was proved about
    it. ``cases`` is how many separate instances were proved (every ``i`` and every ``N``, say)
    and ``scope`` the range they cover, in LaTeX.

    ``label`` names the chapter equation the check proves (``nerf-grad-sigma`` for
    ``$$ ... $$ (nerf-grad-sigma)``), ``equation`` is that equation's LaTeX exactly as the chapter
    prints it, and ``claim`` the SymPy expression checked as its right-hand side. The tests
    compare ``equation`` with the chapter's text under ``label``, so that the formula proved is
    the formula printed.
    """

    name: str
    latex: str
    passed: bool
    cases: int = 1
    scope: str = ""
    details: str = ""
    label: str = ""
    equation: str = ""
    claim: sp.Basic | None = None

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


# Sums and products built by terms(...) and product(...): they print in the order written.
_WRITTEN: set[sp.Expr] = set()


class _BookLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer, except that products and sums print in the order written.

    SymPy sorts the factors of a product and the terms of a sum when it prints them; a claim
    built with :func:`product` and :func:`terms` keeps the order in which the book writes it,
    T_i delta_i (1 - alpha_i) c_i rather than (1 - alpha_i) T_i c_i delta_i.
    """

    def _with_order(self, order, print_method, *args):
        saved = self._settings["order"]
        self._settings["order"] = order
        try:
            return print_method(*args)
        finally:
            self._settings["order"] = saved

    def _print_Mul(self, expr):
        if expr not in _WRITTEN:
            return self._with_order(None, super()._print_Mul, expr)
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient.is_Rational and not coefficient.is_Integer and rest != 1:
            # 1/2 (mu^2 + sigma^2 - 1 - log sigma^2), not (mu^2 + sigma^2 - 1 - log sigma^2)/2
            sign = "- " if coefficient < 0 else ""
            rest_tex = self._print(rest)
            if rest.is_Add:
                rest_tex = rf"\left({rest_tex}\right)"
            return f"{sign}{self._print(abs(coefficient))} {rest_tex}"
        return self._with_order("none", super()._print_Mul, expr)

    def _print_Determinant(self, expr):
        argument = self._print(expr.arg)
        if not isinstance(expr.arg, (sp.Symbol, sp.MatrixSymbol)):
            argument = rf"\left({argument}\right)"
        return rf"\det {argument}"

    def _print_Add(self, expr, order=None):
        written = expr in _WRITTEN  # built with terms(...)
        return self._with_order("none" if written else None, super()._print_Add, expr)


def latex(expr: sp.Basic) -> str:
    """LaTeX of a SymPy expression, products and sums in the order they were written."""
    return _BookLatexPrinter().doprint(expr)


def product(*factors: sp.Basic) -> sp.Expr:
    """factors[0] * factors[1] * ..., left unevaluated so that it prints in this order.

    Only the display differs from an ordinary product: any substitution evaluates it.
    """
    result = sp.Mul(*factors, evaluate=False)
    _WRITTEN.add(result)
    return result


def terms(*summands: sp.Basic) -> sp.Expr:
    """summands[0] + summands[1] + ..., left unevaluated so that it prints in this order."""
    total = sp.Add(*summands, evaluate=False)
    _WRITTEN.add(total)
    return total


def statement(lhs: str, claim: sp.Basic, rhs_suffix: str = "") -> str:
    """LaTeX of ``lhs = claim``: the left side as the book writes it, the claim from SymPy."""
    return f"{lhs} = {latex(claim)}{rhs_suffix}"


# ---------------------------------------------------------------------------------------------
# Deciding that an expression is identically zero
# ---------------------------------------------------------------------------------------------


def _is_zero_polynomial(expr: sp.Expr) -> bool | None:
    """Exact test in the ring Q[free symbols]; None when ``expr`` is not such a polynomial.

    For polynomials this is much faster than ``sympy.expand`` and equally exact: the expression
    is rebuilt by ring arithmetic with rational coefficients and compared with the zero element.
    """
    symbols = sorted(expr.free_symbols, key=sp.default_sort_key)
    if not symbols or any(not isinstance(s, sp.Symbol) for s in symbols):
        return None
    R, *_ = ring(symbols, QQ)
    try:
        return R(expr) == R.zero
    except ValueError:  # an exp, a log, a quotient, an irrational constant: not in the ring
        return None


def normalise_exponents(expr: sp.Expr) -> sp.Expr:
    """exp(a) -> exp(cancel(a)): equal exponents written differently become the same atom."""
    return expr.replace(
        lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.cancel(sp.expand(e.args[0])))
    )


def vanishes(expr: sp.Basic) -> bool:
    """True when SymPy proves ``expr`` (a scalar or a matrix) identically zero.

    The steps, cheapest first, stop at the first that reaches exactly 0: exact polynomial
    arithmetic, ``expand``, ``cancel`` (rational functions, with functions and their derivatives
    as generators), ``simplify`` after normalising exponents. Each step is an algebraic identity,
    so a True is a proof; a False means none of them reached 0.
    """
    if isinstance(expr, sp.MatrixBase):
        return all(vanishes(entry) for entry in expr)
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    polynomial = _is_zero_polynomial(expr)
    if polynomial is not None:
        return polynomial
    for step in (sp.expand, sp.cancel, lambda e: sp.simplify(normalise_exponents(e))):
        if step(expr) == 0:
            return True
    return False


def same_positive(a: sp.Expr, b: sp.Expr) -> bool:
    """True when two positive expressions (densities) are proved equal, via log a - log b = 0.

    Taking logarithms turns products of exponentials into sums, which SymPy compares reliably;
    ``force=True`` in ``expand_log`` is valid because both sides are positive.
    """
    return vanishes(sp.expand_log(sp.log(a) - sp.log(b), force=True))


# ---------------------------------------------------------------------------------------------
# Gaussians
# ---------------------------------------------------------------------------------------------


def normal_pdf(x: sp.Expr, mean: sp.Expr, variance: sp.Expr) -> sp.Expr:
    """N(x; mean, variance) = exp(-(x - mean)^2 / (2 variance)) / sqrt(2 pi variance)."""
    return sp.exp(-((x - mean) ** 2) / (2 * variance)) / sp.sqrt(2 * sp.pi * variance)


@functools.cache
def standard_normal_moment(k: int) -> sp.Expr:
    """E[u^k] for u ~ N(0, 1), by integrating u^k against the standard normal density."""
    u = sp.Symbol("u", real=True)
    return sp.integrate(u**k * normal_pdf(u, 0, 1), (u, -sp.oo, sp.oo))


def gaussian_expectation(
    f: sp.Expr, xs: Sequence[sp.Symbol], means: Sequence[sp.Expr], variances: Sequence[sp.Expr]
) -> sp.Expr:
    """E[f(x)] for independent x_d ~ N(means[d], variances[d]), computed by integration.

    The substitution x_d = mean_d + sqrt(variance_d) u_d turns the Gaussian measure into the
    standard normal one, N(x_d; mean_d, variance_d) dx_d = N(u_d; 0, 1) du_d. For the integrands
    of this book (logarithms of Gaussian densities) f then expands into a polynomial in the u_d,
    and each monomial integrates to a product of standard normal moments (Fubini).
    """
    if not (len(xs) == len(means) == len(variances)):
        raise ValueError(
            f"gaussian_expectation needs one mean and one variance per variable, got "
            f"{len(xs)} variables, {len(means)} means and {len(variances)} variances"
        )
    us = sp.symbols(f"u_1:{len(xs) + 1}", real=True)
    coordinates = zip(xs, means, variances, us, strict=True)
    substitution = {x: m + sp.sqrt(v) * u for x, m, v, u in coordinates}
    integrand = sp.expand(sp.expand_log(sp.sympify(f).xreplace(substitution), force=True))
    if not integrand.is_polynomial(*us):
        raise ValueError(
            "gaussian_expectation integrates polynomials of the standardised variables only; "
            f"after substitution the integrand is {integrand}. Integrate it with sympy.integrate."
        )
    total = sp.S.Zero
    for powers, coefficient in sp.Poly(integrand, *us).terms():
        total += coefficient * sp.Mul(*(standard_normal_moment(k) for k in powers))
    return total


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def equation_table(equations: dict[str, str]) -> dict[str, str]:
    """A script's table of chapter equations (label -> LaTeX, as the chapter prints it), each
    stripped of the line breaks around it, so that it can be typed as a raw triple-quoted string."""
    return {label: tex.strip() for label, tex in equations.items()}


RECORDS = "DERIVATION_RECORDS"


def report(checks: Iterable[Check], out=None) -> int:
    """Print each check as it completes, then a summary; return the exit status (0: all pass).

    If the environment variable ``DERIVATION_RECORDS`` names a file, the checks themselves are
    also pickled there, so that a caller reads the results of this one run instead of proving
    everything again.
    """
    out = out or sys.stdout
    results = []
    for check in checks:
        results.append(check)
        cases = f"{check.cases} case{'s' if check.cases != 1 else ''}"
        scope = f", {check.scope}" if check.scope else ""
        print(f"{check.status}  {check.name}  [{cases}{scope}]", file=out)
        print(f"      {check.latex}", file=out)
        if check.details:
            print(f"      {check.details}", file=out)
        out.flush()
    failed = [check.name for check in results if not check.passed]
    if os.environ.get(RECORDS):  # a caller (the test suite) wants the results themselves
        with open(os.environ[RECORDS], "wb") as file:
            pickle.dump(tuple(results), file)
    total_cases = sum(check.cases for check in results)
    print(
        f"{len(results) - len(failed)} of {len(results)} identities proved "
        f"({total_cases} cases)" + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        file=out,
    )
    return 1 if failed else 0
