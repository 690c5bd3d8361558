"""The change-of-variables checks can fail, and the nonlinear flow sees what the others miss.

Every check in derivations/change_of_variables.py is handed wrong claims (a flipped sign, a
dropped factor, a Jacobian evaluated at the wrong point) and must report failure. The linear and
affine flows have a Jacobian that is the same at every point and time, so a claim that evaluates
df/dz at the start of the trajectory, or at time 0, agrees with the right one for them; the sine
flow dz/dt = b(t) sin z, whose divergence varies in space and time, tells the two apart.
"""

from __future__ import annotations

import pytest
import sympy as sp
from derivation_scripts import load, proved

cov = load("change_of_variables")
A, J, M, t, h, a, b, s = cov.A, cov.J, cov.M, cov.t, cov.h, cov.a, cov.b, cov.s
z, z_0, x = cov.z, cov.z_0, cov.x
B_INTEGRAL = cov.B_INTEGRAL

COV_WRONG = {
    "det remainder: the trace dropped": ("check_det_remainder", sp.Integer(1)),
    "det remainder: twice the trace": ("check_det_remainder", 1 + 2 * sp.Trace(A)),
    "det remainder: constant term 2": ("check_det_remainder", 2 + sp.Trace(A)),
    "det expansion: sign of the trace flipped": (
        "check_det_expansion",
        1 - h * sp.Trace(A) + sp.O(h**2),
    ),
    "det expansion: det A instead of tr A": (
        "check_det_expansion",
        1 + h * sp.Determinant(A) + sp.O(h**2),
    ),
    "Jacobi: M^-1 dropped": ("check_jacobi", sp.Determinant(M) * sp.Trace(cov.M_dot)),
    "log det rate: sign flipped": ("check_log_det_rate", -sp.Trace(J)),
    "log det rate: det J instead of tr J": ("check_log_det_rate", sp.Determinant(J)),
    "Liouville: det J instead of tr J": (
        "check_liouville",
        sp.exp(sp.Integral(sp.Determinant(J), (s, 0, t))),
    ),
    "Liouville: t tr J, J frozen at time t": ("check_liouville", sp.exp(t * sp.Trace(J))),
    "continuity: Jacobian factor the wrong way round": (
        "check_linear_continuity",
        cov.p_0(sp.Inverse(M) * cov.x_vec) * sp.Determinant(M),
    ),
    "linear rate: sign flipped": ("check_linear_rate", sp.Trace(A)),
    "affine flow map: sign of the forcing flipped": (
        "check_affine_flow_map",
        sp.exp(a * t) * (z_0 - sp.Integral(sp.exp(-a * s) * b(s), (s, 0, t))),
    ),
    "affine pushforward: variance Sigma_0 e^{at}": (
        "check_affine_pushforward",
        {"variance": cov.Sigma_0 * sp.exp(a * t)},
    ),
    "affine continuity: mean without the forcing": (
        "check_affine_continuity",
        {"mean": cov.zbar_0 * sp.exp(a * t)},
    ),
    "affine continuity: variance Sigma_0 e^{at}": (
        "check_affine_continuity",
        {"variance": cov.Sigma_0 * sp.exp(a * t)},
    ),
    "affine rate: sign flipped": ("check_affine_rate", a),
    "sine flow map: exponent negated (the inverse map)": (
        "check_sine_flow_map",
        2 * sp.atan(sp.exp(-B_INTEGRAL) * sp.tan(z_0 / 2)),
    ),
    "sine flow map: the factor 2 dropped": (
        "check_sine_flow_map",
        sp.atan(sp.exp(B_INTEGRAL) * sp.tan(z_0 / 2)),
    ),
    "sine flow map: linearised at z = 0": ("check_sine_flow_map", sp.exp(B_INTEGRAL) * z_0),
    "sine continuity: the Jacobian factor dropped": (
        "check_sine_continuity",
        cov.p_0(cov.SINE_INVERSE),
    ),
    "sine continuity: the Jacobian factor inverted": (
        "check_sine_continuity",
        cov.p_0(cov.SINE_INVERSE) / cov.SINE_INVERSE.diff(x),
    ),
    "sine rate: -tr J(z(0), 0), Jacobian at the start and time 0": (
        "check_sine_rate",
        -b(0) * sp.cos(z_0),
    ),
    "sine rate: -tr J(z(0), t), Jacobian at the start": ("check_sine_rate", -b(t) * sp.cos(z_0)),
    "sine rate: -tr J(z(t), 0), Jacobian at time 0": ("check_sine_rate", -b(0) * sp.cos(z)),
    "sine rate: sign flipped": ("check_sine_rate", b(t) * sp.cos(z)),
}


def call_with_wrong_claim(check_name, wrong):
    check = getattr(cov, check_name)
    return check(**wrong) if isinstance(wrong, dict) else check(wrong)


@pytest.mark.parametrize("case", COV_WRONG, ids=str)
def test_change_of_variables_check_fails_on_a_wrong_claim(case):
    check_name, wrong = COV_WRONG[case]
    result = call_with_wrong_claim(check_name, wrong)
    assert not result.passed and result.status == "FAIL"


def test_change_of_variables_every_check_is_exercised_with_a_wrong_claim():
    exercised = {check_name for check_name, _ in COV_WRONG.values()}
    assert exercised == {check.__name__ for check in cov.CHECKS}


@pytest.mark.parametrize("name", ["sine_flow_map", "sine_continuity", "sine_rate"])
def test_sine_flow_checks_pass_with_the_chapter_claims(name):
    names = (check.__name__ for check in cov.CHECKS)
    by_function = dict(zip(names, proved("change_of_variables"), strict=True))
    assert by_function[f"check_{name}"].passed  # from the script's one run


def test_only_the_sine_flow_catches_a_jacobian_evaluated_at_the_start():
    """-df/dz at (z(0), 0) is right for the affine flow (slope a everywhere), wrong for sin z."""
    at_start = {x: z_0, t: 0}
    affine = -cov.AFFINE_FIELD.diff(x).subs(at_start)
    sine = -cov.SINE_FIELD.diff(x).subs(at_start)
    assert cov.check_affine_rate(affine).passed  # the old flows cannot tell
    assert not cov.check_sine_rate(sine).passed
