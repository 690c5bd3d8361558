"""The notation register (book/notation.md) is complete; no chapter borrows another part's symbols.

The register has a General section, one section per part of the book, and a section of
deliberate exceptions. A *symbol* here is a token of a chapter's math (inline ``$...$``, display
``$$...$$`` and ``{math}`` blocks, never code): a Greek-letter macro, a single Latin letter, or a
single symbol in a font (``\\mathbf{C}``, ``\\mathcal{L}`` and ``\\mathbb{E}`` are three tokens,
distinct from ``C``, ``L`` and ``E``). Accents are transparent (``\\hat{\\mathbf{C}}`` is
``\\mathbf{C}``), and the contents of ``\\operatorname``, ``\\text`` and ``\\mathrm`` are words, not
symbols. A register row registers the tokens of its first column, less those of the General section
(so ``$T_i$`` registers ``T``; the index ``i`` is General).

What the tests assert:

- every Greek letter, capital letter and fonted symbol in a chapter of a part is registered, in
  General or in that part (small Latin letters are too often local names to demand this of);
- no chapter of a part uses a symbol that the register gives only to another part: a clash;
- a symbol registered in two parts is listed among the deliberate exceptions.

What they cannot catch: two meanings of one symbol inside one part (the register holds one row per
meaning, but nothing reads the prose to see which meaning a use has); a symbol whose meaning drifts
while its row stays; a Latin letter used as a subscript, which is read as a label or an index
(``t_f`` is ``t``, ``T_{N+1}`` is ``T``), not as a symbol; symbols written in code cells, figure
labels or generated output; and the pages outside the parts (the front page, this register, the
checks page and the references), which speak of every part.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"

GREEK = set(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
    "pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta "
    "Lambda Xi Pi Sigma Upsilon Phi Psi Omega ell nabla partial".split()
)
FONTS = "mathbf boldsymbol mathcal mathbb mathfrak mathsf mathscr bm".split()
ACCENTS = "hat tilde bar dot ddot widehat widetilde overline vec".split()
WORDS = "operatorname text mathrm textrm textbf textit mbox label tag begin end".split()

_WORD = re.compile(r"\\(?:" + "|".join(WORDS) + r")\*?\s*\{[^{}]*\}")
_ACCENT = re.compile(r"\\(?:" + "|".join(ACCENTS) + r")(?![A-Za-z])\s*")
_TOKEN = re.compile(
    r"\\(?P<font>" + "|".join(FONTS) + r")\s*"
    r"(?:\{\s*(?P<inner>\\?[A-Za-z]+)\s*\}|\s(?P<bare>[A-Za-z]))"
    r"|\\(?P<macro>[A-Za-z]+)|(?P<letter>[A-Za-z])"
)


def _without_latin_subscripts(tex: str) -> str:
    """Drop the Latin letters of subscripts (labels and indices: t_f, T_{N+1}, W_Q), keeping the
    Greek and fonted symbols in them (p_\\theta, \\mathbf{c}_{\\mathbf{x}})."""
    out, position = [], 0
    while (underscore := tex.find("_", position)) != -1:
        out.append(tex[position:underscore])
        rest = tex[underscore + 1:]
        stripped = rest.lstrip()
        skipped = len(rest) - len(stripped)
        if stripped.startswith("{"):
            depth, end = 0, 0
            while end < len(stripped):
                depth += (stripped[end] == "{") - (stripped[end] == "}")
                if depth == 0:
                    break
                end += 1
            group = stripped[1:end]
            kept = [t for t in math_tokens(group) if t.startswith("\\")]
            out.append(" " + " ".join(kept) + " ")
            position = underscore + 1 + skipped + end + 1
        elif stripped[:1].isalpha():
            out.append(" ")
            position = underscore + 1 + skipped + 1
        else:  # _\alpha: a macro follows, and is read as usual
            out.append(" ")
            position = underscore + 1
    out.append(tex[position:])
    return "".join(out)


def math_tokens(tex: str) -> list[str]:
    """The symbols of a piece of LaTeX math, in order (see the module docstring)."""
    tex = _without_latin_subscripts(_ACCENT.sub("", _WORD.sub(" ", tex)))
    tokens = []
    for match in _TOKEN.finditer(tex):
        if match["font"]:
            inner = (match["inner"] or match["bare"]).lstrip("\\")
            if len(inner) == 1 or inner in GREEK:
                prefix = "\\" if inner in GREEK else ""
                tokens.append(f"\\{match['font']}{{{prefix}{inner}}}")
        elif match["macro"]:
            if match["macro"] in GREEK:
                tokens.append("\\" + match["macro"])
        else:
            tokens.append(match["letter"])
    return tokens


_CODE_BLOCK = re.compile(r"^(`{3,}|~{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^\1[ \t]*$", re.S | re.M)
_DISPLAY = re.compile(r"\$\$(.*?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?!\$)((?:[^$\\]|\\.)+?)\$")  # may cross a line break
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def math_of(markdown: str) -> list[str]:
    """Every math span of a MyST page: {math} blocks, $$...$$ displays and $...$ inline math."""
    spans = []

    def code_block(match: re.Match) -> str:
        if match["info"].strip().startswith("{math}"):
            spans.append(match["body"])
        return "\n"

    text = _CODE_BLOCK.sub(code_block, markdown)
    text = _INLINE_CODE.sub(" ", text)
    spans += _DISPLAY.findall(text)
    text = _DISPLAY.sub(" ", text)
    for line in text.split("\n\n"):
        spans += _INLINE.findall(line)
    return spans


def page_tokens(markdown: str) -> set[str]:
    return {token for span in math_of(markdown) for token in math_tokens(span)}


# ---------------------------------------------------------------------------------------------
# The register


def register_sections(markdown: str) -> dict[str, list[tuple[set[str], str]]]:
    """Section heading -> [(tokens of a row's first column, the row's text)] for every table row."""
    sections: dict[str, list[tuple[set[str], str]]] = defaultdict(list)
    heading = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        elif heading and line.startswith("|") and not re.match(r"^\|[\s:|-]+\|?$", line):
            first = line.strip("|").split("|")[0]
            tokens = {token for span in _INLINE.findall(first) for token in math_tokens(span)}
            if tokens:
                sections[heading].append((tokens, line))
    return dict(sections)


def part_of_heading(heading: str) -> str | None:
    match = re.match(r"Part ([IVX]+)\b", heading)
    return match[1] if match else None


class Register:
    def __init__(self, markdown: str):
        sections = register_sections(markdown)
        general = [h for h in sections if h.lower().startswith("general")]
        exceptions = [h for h in sections if "exception" in h.lower()]
        assert len(general) == 1 and len(exceptions) == 1, (
            "book/notation.md needs exactly one '## General' and one '## ... exceptions' section, "
            f"found {sorted(sections)}"
        )
        self.general = {t for tokens, _ in sections[general[0]] for t in tokens}
        self.exceptions = {t for tokens, _ in sections[exceptions[0]] for t in tokens}
        self.parts: dict[str, set[str]] = defaultdict(set)
        for heading, rows in sections.items():
            part = part_of_heading(heading)
            if part:
                for tokens, _ in rows:
                    self.parts[part] |= tokens - self.general

    def owners(self, token: str) -> list[str]:
        return sorted(part for part, tokens in self.parts.items() if token in tokens)


def chapters_by_part() -> dict[str, list[str]]:
    """Part numeral -> the chapters that _toc.yml lists under that part's caption."""
    result: dict[str, list[str]] = defaultdict(list)
    part = None
    for line in (REPO / "_toc.yml").read_text().splitlines():
        caption = re.search(r"caption:\s*\"?Part ([IVX]+)\b", line)
        if caption:
            part = caption[1]
        elif re.search(r"caption:", line):
            part = None
        page = re.search(r"file:\s*book/(\S+)", line)
        if page and part:
            result[part].append(page[1])
    return dict(result)


def must_register(token: str) -> bool:
    """Greek letters, capitals and fonted symbols must be registered; small letters need not be."""
    return token.startswith("\\") or token.isupper()


@pytest.fixture(scope="module")
def register() -> Register:
    return Register((BOOK / "notation.md").read_text())


CHAPTERS = [(part, page) for part, pages in chapters_by_part().items() for page in pages]


def test_every_part_has_chapters_and_a_register_section(register):
    assert set(chapters_by_part()) == {"I", "II", "III", "IV"}
    assert set(register.parts) == {"I", "II", "III", "IV"}


@pytest.mark.parametrize(("part", "page"), CHAPTERS, ids=[page for _, page in CHAPTERS])
def test_chapter_uses_only_its_own_and_general_symbols(register, part, page):
    used = page_tokens((BOOK / f"{page}.md").read_text())
    allowed = register.general | register.parts[part]
    clashes = {t: register.owners(t) for t in sorted(used - allowed) if register.owners(t)}
    missing = sorted(t for t in used - allowed if must_register(t) and not register.owners(t))
    assert not clashes, (
        f"book/{page}.md (Part {part}) uses symbols the register gives to other parts: {clashes}; "
        f"choose another symbol, or register this meaning under Part {part} and list the symbol "
        "among the deliberate exceptions"
    )
    assert not missing, (
        f"book/{page}.md (Part {part}) uses symbols that book/notation.md does not register: "
        f"{missing}; add a row for each under Part {part} (or General)"
    )


def test_a_symbol_in_two_parts_is_a_listed_exception(register):
    shared = defaultdict(list)
    for part, tokens in register.parts.items():
        for token in tokens:
            shared[token].append(part)
    unlisted = {t: sorted(p) for t, p in shared.items()
                if len(p) > 1 and t not in register.exceptions}
    assert not unlisted, (
        f"symbols registered in more than one part, with no row among the exceptions: {unlisted}"
    )


# ---------------------------------------------------------------------------------------------
# The detector itself


def test_tokens_distinguish_fonts_and_ignore_words_and_accents():
    tokens = math_tokens(
        r"\hat{\mathbf{C}}(\mathbf{r}) = \sum_i w_i \mathbf{c}_{\mathrm{bg}} "
        r"+ \operatorname{sigmoid}(\ell) \mathcal{L} \mathbb{E} \mathbf x \alpha_i"
    )
    assert tokens == [
        r"\mathbf{C}", r"\mathbf{r}", "w", r"\mathbf{c}", r"\ell",
        r"\mathcal{L}", r"\mathbb{E}", r"\mathbf{x}", r"\alpha",
    ]


def test_latin_subscripts_are_labels_but_greek_and_fonted_ones_are_symbols():
    assert math_tokens(r"t_f - t_{n} + T_{N+1} p_\theta(x) + q_{\phi, k} + c_{\mathbf{x}}") == [
        "t", "t", "T", "p", r"\theta", "x", "q", r"\phi", "c", r"\mathbf{x}",
    ]


def test_math_is_read_from_prose_and_math_blocks_but_not_code():
    page = (
        "Text $a + \\beta$ and $$\\Gamma$$ (label), $\\mathbf{x} +\n \\omega$ split over lines\n\n"
        "```{code-cell} ipython3\nx = '$Q$'\n```\n\n"
        "```{math}\n\\kappa\n```\n\nPrice 5 \\$ and `$K$` in code.\n"
    )
    assert page_tokens(page) == {"a", r"\beta", r"\Gamma", r"\kappa", r"\mathbf{x}", r"\omega"}


def test_register_rows_register_their_first_column_less_general_symbols():
    register = Register(
        "## General\n| symbol | meaning |\n|---|---|\n| $i$ | an index |\n\n"
        "## Part I: x\n| $T_i$ | transmittance |\n\n"
        "## Part III: y\n| $T$ | length |\n\n"
        "## Deliberate exceptions\n| $T$ | both |\n"
    )
    assert register.general == {"i"}
    assert register.parts == {"I": {"T"}, "III": {"T"}}
    assert register.owners("T") == ["I", "III"] and "T" in register.exceptions
