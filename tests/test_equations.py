"""The formula a derivation script proves is the formula the chapter prints.

Every check in derivations/ that proves a labelled equation records the label and that equation's
LaTeX (``Check.label``, ``Check.equation``). Here each recorded equation is compared with the text
the chapter prints under that label, after whitespace is normalised: an edit to either side that
the other does not follow fails. Where SymPy's LaTeX parser reads the printed right-hand side and
its symbols are those of the check's claim, the parsed expression is also compared with the claim
itself, by the same exact zero test the scripts use.

What this cannot see: an equation the chapter prints without a label, and a claim whose LaTeX the
parser cannot read faithfully (sums, products and integrals, whose reach it misjudges; named
operators; a subscripted symbol followed by a bracket, which it reads as a function call); for
those the textual comparison is the whole guarantee.
"""

from __future__ import annotations

import re

import pytest
import sympy as sp
from derivation_scripts import DERIVATIONS, REPO, _check, proved

SCRIPTS = sorted(path.stem for path in DERIVATIONS.glob("[!_]*.py"))
_LABELLED = re.compile(
    r"^\$\$(?P<tex>(?:(?!\$\$).)*?)\$\$[ \t]*\((?P<label>[\w:-]+)\)[ \t]*$", re.S | re.M
)


def labelled_equations() -> dict[str, tuple[str, str]]:
    """label -> (chapter, LaTeX between the $$) for every ``$$ ... $$ (label)`` in the book."""
    found: dict[str, tuple[str, str]] = {}
    for page in sorted((REPO / "book").glob("*.md")):
        for match in _LABELLED.finditer(page.read_text()):
            assert match["label"] not in found, f"equation label {match['label']} used twice"
            found[match["label"]] = (page.name, match["tex"])
    return found


def normalise(tex: str) -> str:
    return re.sub(r"\s+", " ", tex).strip()


def labelled_checks() -> list[tuple[str, _check.Check]]:
    return [(script, check) for script in SCRIPTS for check in proved(script) if check.label]


def test_labelled_equations_are_found():
    equations = labelled_equations()
    assert len(equations) > 20 and all(tex.strip() for _, tex in equations.values())
    assert all("$$" not in tex for _, tex in equations.values())


def test_an_unlabelled_display_is_not_read_into_the_next_label():
    page = "$$\na = b\n$$\n\ntext\n\n$$\nc = d\n$$ (lab)\n"
    assert [(m["label"], m["tex"].strip()) for m in _LABELLED.finditer(page)] == [("lab", "c = d")]


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_links_its_checks_to_chapter_equations(script):
    checks = proved(script)
    linked = [check for check in checks if check.label]
    assert linked, f"derivations/{script}.py: no check names the chapter equation it proves"
    for check in linked:
        assert check.equation and check.claim is not None, (
            f"{script}: check {check.name!r} has label {check.label!r} but no equation or claim"
        )


def test_each_recorded_equation_is_the_one_the_chapter_prints():
    equations = labelled_equations()
    problems = []
    for script, check in labelled_checks():
        if check.label not in equations:
            problems.append(f"{script}: {check.name!r} names label {check.label!r}, "
                            "which no chapter defines")
            continue
        page, printed = equations[check.label]
        if normalise(printed) != normalise(check.equation):
            problems.append(
                f"{script}: {check.name!r} proves\n    {normalise(check.equation)}\n"
                f"but book/{page} prints under ({check.label})\n    {normalise(printed)}"
            )
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Parsing the printed formula


def _name(atom: sp.Basic) -> str:
    """A symbol's name with LaTeX decoration removed, so that the parser's symbols meet the
    script's: alpha_{i}, \alpha_i and the indexed alpha[i] are all alpha_i."""
    if isinstance(atom, sp.Indexed):
        indices = ",".join(str(index) for index in atom.indices)
        return re.sub(r"\s", "", f"{atom.base}_{indices}")
    return re.sub(r"[\\{}\s]", "", str(atom))


# Markup that changes how a formula looks but not what it says, which the parser does not know.
_LOOKS = re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])|\\[,;:!]|\\mathbf\s*")


def right_hand_side(tex: str) -> str:
    """What follows the last top-level '=' of an equation, with alignment marks removed."""
    tex = tex.replace("&", " ")
    depth, cut = 0, None
    for position, char in enumerate(tex):
        depth += char in "{(["
        depth -= char in "})]"
        if char == "=" and depth == 0:
            cut = position
    return tex[cut + 1:] if cut is not None else tex


def parsed_difference(check: _check.Check) -> sp.Expr | None:
    """printed right-hand side − claim, or None where the parser cannot read it faithfully."""
    from sympy.core.function import AppliedUndef
    from sympy.parsing.latex import parse_latex

    rhs = _LOOKS.sub(" ", right_hand_side(check.equation)).strip().rstrip(".,")
    if re.search(r"\\(?:sum|prod|int)(?![A-Za-z])", rhs):
        return None  # the parser misreads how far a sum or an integral reaches
    try:
        parsed = parse_latex(rhs)
    except Exception:  # the parser's errors are several unrelated classes
        return None
    if not isinstance(parsed, sp.Expr) or isinstance(parsed, sp.core.relational.Relational):
        return None  # an inequality after the equation, "= 1 - T_{N+1} \\leq 1"
    if parsed.atoms(AppliedUndef):
        return None  # "\delta_i (1 - \alpha_i)" read as a function delta_i applied to 1 - alpha_i
    claim = sp.sympify(check.claim)
    by_name = {_name(a): a for a in claim.atoms(sp.Symbol, sp.Indexed)}
    parsed_symbols = parsed.free_symbols
    if not parsed_symbols or any(_name(s) not in by_name for s in parsed_symbols):
        return None  # a word or a sign the parser read as letters (operatorname, ...)
    parsed = parsed.subs({s: by_name[_name(s)] for s in parsed_symbols})
    return parsed - claim


def test_printed_formulas_that_sympy_can_read_equal_their_claims():
    compared, wrong = [], []
    for script, check in labelled_checks():
        difference = parsed_difference(check)
        if difference is None:
            continue
        compared.append(check.label)
        if not _check.vanishes(difference):
            wrong.append(f"{script}: ({check.label}) printed {check.equation!r} "
                         f"differs from the claim {check.claim} by {sp.simplify(difference)}")
    print(f"parsed and compared {len(compared)} printed equations with their claims: {compared}")
    assert not wrong, "\n".join(wrong)
    assert compared, "the parser read none of the recorded equations; the comparison is vacuous"


def test_parsing_comparison_catches_a_wrong_printed_formula():
    mu, sigma = sp.symbols("mu sigma", positive=True)
    claim = (mu**2 + sigma**2 - 1 - sp.log(sigma**2)) / 2
    right = _check.Check("kl", "", True, label="x", equation=r"K = \frac{1}{2} \left(\mu^2 "
                         r"+ \sigma^2 - 1 - \log \sigma^2\right)", claim=claim)
    wrong = _check.Check("kl", "", True, label="x", equation=r"K = \frac{1}{2} \left(\mu^2 "
                         r"+ \sigma^2 - \log \sigma^2\right)", claim=claim)
    assert _check.vanishes(parsed_difference(right))
    assert not _check.vanishes(parsed_difference(wrong))
