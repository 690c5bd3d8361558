"""The SymPy derivation checks: every script proves its identities, and every check can fail.

Each script in derivations/ runs alone and must exit 0 with no FAIL line. A check that cannot
fail proves nothing, so for every check a wrong claim (a flipped sign, a dropped factor, a wrong
variance) is passed in and the check must report failure. A new script is picked up by the first
test without editing this file.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sympy as sp
from derivation_scripts import SCRIPTS, _check, load, run
from hypothesis import given, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------------------------------------
# Every script, run as a reader would run it
# ---------------------------------------------------------------------------------------------


def test_there_are_derivation_scripts():
    names = {path.stem for path in SCRIPTS}
    assert {"nerf_gradients", "gaussian_kl", "change_of_variables", "elbo"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_script_proves_every_identity(script: Path):
    outcome = run(script.stem)
    output = outcome.stdout + outcome.stderr
    assert outcome.returncode == 0, f"{script.name} exited {outcome.returncode}:\n{output}"
    assert "FAIL" not in output, output
    passes = [line for line in outcome.stdout.splitlines() if line.startswith("PASS  ")]
    assert len(passes) == len(load(script.stem).CHECKS) == len(outcome.checks), output
    assert all(check.passed for check in outcome.checks)
    assert "identities proved" in outcome.stdout


# ---------------------------------------------------------------------------------------------
# The common module, _check
# ---------------------------------------------------------------------------------------------

x, y = sp.symbols("x y", real=True)


def test_report_exit_status_and_lines():
    good = _check.Check("good", "a = a", True, 3, "n = 1, 2, 3", details=r"\text{where } a = 1")
    bad = _check.Check("bad", "a = b", False)
    out = io.StringIO()
    assert _check.report([good], out=out) == 0
    assert "PASS  good  [3 cases, n = 1, 2, 3]" in out.getvalue()
    assert r"\text{where } a = 1" in out.getvalue()
    assert "FAIL" not in out.getvalue()
    out = io.StringIO()
    assert _check.report([good, bad], out=out) == 1
    assert "FAIL  bad" in out.getvalue() and "FAILED: bad" in out.getvalue()


def test_vanishes_proves_identities_and_rejects_non_identities():
    assert _check.vanishes(sp.exp(x) * sp.exp(y) - sp.exp(x + y))
    assert _check.vanishes(sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1)
    assert _check.vanishes((x**2 - y**2) / (x - y) - (x + y))
    assert _check.vanishes(sp.Matrix([0, (x + y) ** 2 - x**2 - 2 * x * y - y**2]))
    assert not _check.vanishes(x)
    assert not _check.vanishes(sp.exp(x) - 1 - x)
    assert not _check.vanishes(sp.Matrix([0, x - y]))


polynomials = st.lists(st.integers(-5, 5), min_size=1, max_size=4).map(
    lambda coefficients: sum(c * x**k * (y + 1) ** (k % 2) for k, c in enumerate(coefficients))
)


@settings(max_examples=25)
@given(p=polynomials, q=polynomials, offset=st.integers(-3, 3).filter(bool))
def test_vanishes_on_random_polynomials(p, q, offset):
    """An expanded product equals the product; adding a non-zero constant breaks it."""
    assert _check.vanishes(p * q - sp.expand(p * q))
    assert not _check.vanishes(p * q - sp.expand(p * q) + offset)


def test_same_positive_compares_densities():
    mu = sp.Symbol("mu", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    density = _check.normal_pdf(x, mu, sigma**2)
    rewritten = sp.exp(-(x**2) / (2 * sigma**2) + x * mu / sigma**2 - mu**2 / (2 * sigma**2))
    assert _check.same_positive(density, rewritten / (sigma * sp.sqrt(2 * sp.pi)))
    assert not _check.same_positive(density, rewritten / (sigma * sp.sqrt(sp.pi)))


def test_gaussian_expectation_moments_and_bad_input():
    mu = sp.Symbol("mu", real=True)
    v = sp.Symbol("v", positive=True)
    assert _check.vanishes(_check.gaussian_expectation(x, [x], [mu], [v]) - mu)
    assert _check.vanishes(_check.gaussian_expectation(x**2, [x], [mu], [v]) - (mu**2 + v))
    product = _check.gaussian_expectation(x * y, [x, y], [mu, 2 * mu], [v, v])
    assert _check.vanishes(product - 2 * mu**2)
    with pytest.raises(ValueError, match="one mean and one variance per variable"):
        _check.gaussian_expectation(x, [x], [mu, mu], [v])
    with pytest.raises(ValueError, match="Integrate it with sympy.integrate"):
        _check.gaussian_expectation(sp.exp(x), [x], [mu], [v])


# The NeRF checks are made to fail in tests/test_derivations_nerf.py.


# ---------------------------------------------------------------------------------------------
# A check must be able to fail: Gaussian KL
# ---------------------------------------------------------------------------------------------

kl = load("gaussian_kl")
half = sp.Rational(1, 2)
mu_d, sigma_d, d, D = kl.mu_d, kl.sigma_d, kl.d, kl.D

KL_WRONG = {
    "1-D KL: the -1 missing": (
        "check_kl_standard",
        half * (kl.mu**2 + kl.sigma**2 - sp.log(kl.sigma**2)),
    ),
    "1-D KL: log sigma instead of log sigma^2": (
        "check_kl_standard",
        half * (kl.mu**2 + kl.sigma**2 - 1 - sp.log(kl.sigma)),
    ),
    "general KL: log ratio upside down": (
        "check_kl_general",
        sp.log(kl.sigma_1 / kl.sigma_2)
        + (kl.sigma_1**2 + (kl.mu_1 - kl.mu_2) ** 2) / (2 * kl.sigma_2**2)
        - half,
    ),
    "diagonal KL: the 1/2 missing": (
        "check_kl_diagonal",
        sp.Sum(mu_d[d] ** 2 + sigma_d[d] ** 2 - 1 - sp.log(sigma_d[d] ** 2), (d, 1, D)),
    ),
    "negative KL: sign of mu^2 flipped": (
        "check_negative_kl",
        half * sp.Sum(1 + sp.log(sigma_d[d] ** 2) + mu_d[d] ** 2 - sigma_d[d] ** 2, (d, 1, D)),
    ),
    "log-density: log 2 pi missing": (
        "check_log_normal_pdf",
        -half * (sp.log(kl.sigma**2) + (kl.x - kl.mu) ** 2 / kl.sigma**2),
    ),
    "log-density: variance 2 sigma^2 in the quadratic": (
        "check_log_normal_pdf",
        -half * (sp.log(2 * sp.pi) + sp.log(kl.sigma**2) + (kl.x - kl.mu) ** 2 / (2 * kl.sigma**2)),
    ),
    "diagonal log-density: log sigma instead of log sigma^2": (
        "check_log_normal_diagonal",
        -half
        * sp.Sum(
            sp.log(2 * sp.pi) + sp.log(sigma_d[d]) + (kl.z_d[d] - mu_d[d]) ** 2 / sigma_d[d] ** 2,
            (d, 1, D),
        ),
    ),
}


@pytest.mark.parametrize("case", KL_WRONG, ids=str)
def test_gaussian_kl_check_fails_on_a_wrong_claim(case):
    check_name, wrong_claim = KL_WRONG[case]
    result = getattr(kl, check_name)(wrong_claim)
    assert not result.passed and result.status == "FAIL"


def test_gaussian_kl_every_check_is_exercised_with_a_wrong_claim():
    exercised = {check_name for check_name, _ in KL_WRONG.values()}
    assert exercised == {check.__name__ for check in kl.CHECKS}


# The change-of-variables checks are made to fail in tests/test_derivations_cov.py.


def call_with_wrong_claim(module, check_name, wrong):
    check = getattr(module, check_name)
    return check(**wrong) if isinstance(wrong, dict) else check(wrong)


# ---------------------------------------------------------------------------------------------
# A check must be able to fail: the ELBO
# ---------------------------------------------------------------------------------------------

elbo = load("elbo")
s, m, v, x_obs = elbo.s, elbo.m, elbo.v, elbo.x
WRONG_POSTERIOR = (x_obs / (1 + s**2), 1 / (1 + s**2))  # variance 1/(1+s^2), not s^2/(1+s^2)

ELBO_WRONG = {
    "evidence: variance s^2": ("check_evidence", (0, s**2)),
    "posterior: wrong variance": ("check_posterior", WRONG_POSTERIOR),
    "posterior: mean x": ("check_posterior", (x_obs, s**2 / (1 + s**2))),
    "decomposition: the -1 missing": (
        "check_decomposition",
        half * (sp.log(elbo.v_star / v) + (v + (m - elbo.mu_star) ** 2) / elbo.v_star),
    ),
    "decomposition: wrong posterior variance": (
        "check_decomposition",
        {"posterior": WRONG_POSTERIOR},
    ),
    "tight: wrong posterior variance": ("check_tight_at_posterior", WRONG_POSTERIOR),
    "stationary point: wrong posterior variance": (
        "check_unique_stationary_point",
        WRONG_POSTERIOR,
    ),
    "non-negative form: the variance term dropped": (
        "check_gap_nonnegative",
        half * (m - elbo.mu_star) ** 2 / elbo.v_star,
    ),
}


@pytest.mark.parametrize("case", ELBO_WRONG, ids=str)
def test_elbo_check_fails_on_a_wrong_claim(case):
    check_name, wrong = ELBO_WRONG[case]
    result = call_with_wrong_claim(elbo, check_name, wrong)
    assert not result.passed and result.status == "FAIL"


def test_elbo_every_check_is_exercised_with_a_wrong_claim():
    exercised = {check_name for check_name, _ in ELBO_WRONG.values()}
    assert exercised == {check.__name__ for check in elbo.CHECKS}
