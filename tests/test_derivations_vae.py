"""The Part IV derivations prove the chapter's formulas for every latent dimension D.

derivations/gaussian_kl.py proves the diagonal KL and log-density by induction on D: the case
D = 1, additivity over independent blocks, and the step D -> D + 1 with D a symbol. A check that
integrated only D = 1, 2, 3 would pass a formula that is right up to D = 3 and wrong after it;
these tests pass such formulas in, and wrong additivity laws, and require a failure. The wrong
claims of the original checks are in tests/test_derivations.py.
"""

from __future__ import annotations

import sympy as sp
from derivation_scripts import load, proved

kl = load("gaussian_kl")
elbo = load("elbo")
half = sp.Rational(1, 2)
j, D, mu, sigma, z = kl.j, kl.D, kl.mu_d, kl.sigma_d, kl.z_d

# Zero for D = 1, 2, 3 and not after: invisible to direct integration in those dimensions.
FROM_FOUR_ON = (D - 1) * (D - 2) * (D - 3) * mu[1] ** 2


def test_direct_integration_alone_misses_a_formula_wrong_from_four_dimensions_on():
    wrong = kl.KL_DIAGONAL + FROM_FOUR_ON
    for n in kl.DIMENSIONS:
        g = kl.Diagonal(n)
        assert kl.vanishes(g.kl_to_standard_normal() - g.instantiate(wrong))
    assert not kl.check_kl_diagonal(wrong).passed


def test_the_induction_catches_formulas_wrong_from_four_dimensions_on():
    assert not kl.check_negative_kl(kl.NEGATIVE_KL_DIAGONAL + FROM_FOUR_ON).passed
    assert not kl.check_log_normal_diagonal(kl.LOG_NORMAL_DIAGONAL + FROM_FOUR_ON).passed


def test_the_induction_catches_a_factor_that_grows_with_d():
    assert not kl.check_kl_diagonal(D * kl.KL_DIAGONAL, dims=(1,)).passed


def test_the_step_needs_additivity():
    u, w, q_1, p_1, q_2, p_2 = kl.u, kl.w, kl.q_1, kl.p_1, kl.q_2, kl.p_2
    first, second = kl.block_kl(q_1, p_1, u), kl.block_kl(q_2, p_2, w)
    assert kl.kl_is_additive()
    for wrong in (first, first + 2 * second, first * second + second,
                  first + second + kl.integral(q_1(u) * sp.log(q_2(u)), u)):
        assert not kl.kl_is_additive(wrong)
        assert not kl.check_kl_diagonal(additivity=wrong, dims=(1,)).passed


def test_additivity_is_derived_from_the_definition():
    """The product's KL, from its integrand: four integrals, each over one block only."""
    terms = sp.Add.make_args(kl.kl_of_product_of_blocks())
    assert len(terms) == 4
    assert not any(term.has(kl.u) and term.has(kl.w) for term in terms)


def test_the_checks_name_the_equations_they_prove():
    results = (*proved("gaussian_kl"), *proved("elbo"))  # the scripts' one run
    labels = {result.label for result in results} - {""}
    assert labels == {
        "elbo-kl-1d", "elbo-gaussian-kl", "elbo-log-normal", "elbo-decomposition", "elbo-bound",
    }
    for result in results:
        assert bool(result.label) == bool(result.equation) == (result.claim is not None)
