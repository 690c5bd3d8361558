"""An executed MyST notebook made into one that plain Jupyter opens and runs.

myst-nb executes a chapter's MyST Markdown as a notebook whose Markdown cells still hold MyST:
roles such as ``{glue:text}`key:.3f``` and ``{eq}`label```, and fenced directives such as
``{literalinclude}``, ``{prf:proof}`` and ``{solution}``. Plain Jupyter shows those as raw text.
:func:`plain_notebook` rewrites every Markdown cell into plain Markdown and LaTeX:

- glued values appear as their values (text formatted as the page formats it, figures as
  attached images, Markdown inline), and the glue outputs leave the code cells;
- equation labels become the page's equation numbers (``\\tag``), and references name them;
- a ``{literalinclude}`` becomes a fenced block of the source it shows;
- theorems, proofs and admonitions become a bold heading over a quoted body (a proof ends with
  a tombstone), exercises become headed sections, and solutions and dropdowns become
  ``<details>`` elements, folded; definition lists become bulleted terms;
- citations become author-year references, listed at the end; links to other pages name them;
- hidden cells (``remove-cell``) stay, with their source folded, except the page's
  reproducibility card, which describes the build; ``from myst_nb import glue`` becomes a short
  ``glue`` that shows figures and displayed values, so the code runs with only ``dgm`` installed.

The outputs are the build's. The result validates against the nbformat schema.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from myst_nb.core.variables import format_plain_text

ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<content>[^`]+)`")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\((?P<label>[\w:-]+)\)=\s*$")
EQUATION_LABEL = re.compile(r"^(?P<indent>\s*)\$\$\s*\((?P<label>[\w:-]+)\)\s*$")
DEFINITION = re.compile(r"^: (?P<text>.*)$")
MD_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>[\w/-]+)\.md(?:#[\w-]+)?\)")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)

GLUE_SHIM = (
    "import IPython.display\n"
    "import matplotlib.figure\n\n\n"
    "def glue(name, value, display=True):\n"
    "    \"\"\"The book's build keeps `value` under `name` for its text; here figures and\n"
    "    displayed values are shown.\"\"\"\n"
    "    if display or isinstance(value, matplotlib.figure.Figure):\n"
    "        IPython.display.display(value)\n"
)
QUOTED = {  # directive -> the bold heading over its quoted body
    "prf:theorem": "Theorem", "prf:lemma": "Lemma", "prf:proposition": "Proposition",
    "prf:corollary": "Corollary", "prf:definition": "Definition", "prf:assumption": "Assumption",
    "prf:remark": "Remark", "prf:proof": "Proof", "admonition": "",
    "note": "Note", "warning": "Warning", "tip": "Tip", "important": "Important",
    "margin": "Aside", "supp": "Aside",
}
HEADED = {"exercise": "Exercise"}  # directive -> the section heading it becomes
DROPPED = {"bibliography", "toctree", "tableofcontents"}


@dataclass
class References:
    """What the page's text refers to: equation numbers, section titles, page titles."""

    equations: dict[str, tuple[str, int]] = field(default_factory=dict)  # label -> page, number
    labels: dict[str, str] = field(default_factory=dict)  # label -> title (sections, theorems)
    pages: dict[str, str] = field(default_factory=dict)  # docname -> title
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> short, full
    page: str = ""  # the docname of the page being converted


@dataclass
class Converter:
    glue: dict[str, dict]  # key -> mime bundle
    source_dir: Path  # the folder of the page's source, for literalinclude
    references: References
    attachments: dict[str, dict] = field(default_factory=dict)
    cited: dict[str, str] = field(default_factory=dict)  # key -> the full reference

    # -- roles ----------------------------------------------------------------------------

    def role(self, match: re.Match) -> str:
        role, content = match["role"], match["content"]
        if role in ("glue:text", "glue"):
            key, _, spec = content.partition(":") if role == "glue:text" else (content, "", "")
            return format_plain_text(self.bundle(key).get("text/plain", ""), spec)
        if role == "glue:md":
            return self.bundle(content).get("text/markdown", "").strip()
        if role == "eq":
            return self.equation(content)
        if role == "math":
            return f"${content}$"
        if role in ("cite", "cite:p", "cite:t"):
            return "(" + "; ".join(self.citation(k.strip()) for k in content.split(",")) + ")"
        explicit = EXPLICIT.match(content)
        text, target = (explicit["text"], explicit["target"]) if explicit else (None, content)
        if role == "doc":
            page = target.removesuffix(".md")
            return text or self.references.pages.get(page, page)
        return text or self.references.labels.get(target, target)

    def equation(self, label: str) -> str:
        page, number = self.references.equations.get(label, (self.references.page, None))
        if number is None:
            return f"({label})"
        if page == self.references.page:
            return f"({number})"
        return f"({number}) of *{self.references.pages.get(page, page)}*"

    def citation(self, key: str) -> str:
        short, full = self.references.citations.get(key, (key, key))
        self.cited[key] = full
        return short

    def link(self, match: re.Match) -> str:
        page = match["target"]
        title = self.references.pages.get(page) or self.references.pages.get(Path(page).name)
        return f"{match['text']} (the book's page *{title}*)" if title else match["text"]

    def bundle(self, key: str) -> dict:
        if key not in self.glue:
            raise KeyError(f"the page refers to glue key {key!r}, which no cell glued")
        return self.glue[key]

    def inline(self, text: str) -> str:
        return MD_LINK.sub(self.link, ROLE.sub(self.role, text))

    # -- blocks ---------------------------------------------------------------------------

    def convert(self, text: str) -> str:
        """Plain Markdown for MyST ``text``. Roles are replaced paragraph by paragraph (a role may
        wrap onto the next line), never inside the code that a directive becomes."""
        lines, out, prose, i = text.split("\n"), [], [], 0

        def flush():
            if prose:
                out.append(self.inline("\n".join(prose)))
                prose.clear()

        while i < len(lines):
            line = lines[i]
            opening = FENCE.match(line)
            if opening:
                flush()
                end = self.closing(lines, i, opening)
                out += self.directive(opening["name"], opening["arg"].strip(), lines[i + 1:end])
                i = end + 1
                continue
            label = EQUATION_LABEL.match(line)
            definition = DEFINITION.match(line)
            if label:
                _, number = self.references.equations.get(label["label"], (None, None))
                indent = label["indent"]
                prose.append(f"{indent}\\tag{{{number}}}\n{indent}$$" if number else f"{indent}$$")
            elif definition and prose and prose[-1].strip():  # "term" / ": definition"
                if not prose[-1].startswith("- **"):
                    prose[-1] = f"- **{prose[-1].strip()}**"
                prose.append(f"  {definition['text']}")
            elif not (TARGET.match(line) or line.startswith("% ")):
                prose.append(line)
            i += 1
        flush()
        return "\n".join(out)

    @staticmethod
    def closing(lines: list[str], start: int, opening: re.Match) -> int:
        fence, indent = opening["fence"], opening["indent"]
        pattern = re.compile(rf"^{indent}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        depth = 0
        for j in range(start + 1, len(lines)):
            nested = FENCE.match(lines[j])
            if nested and nested["fence"][0] == fence[0] and len(nested["fence"]) == len(fence):
                depth += 1
            elif pattern.match(lines[j]):
                if depth == 0:
                    return j
                depth -= 1
        raise ValueError(f"unclosed directive {{{opening['name']}}} at line {start + 1}")

    @staticmethod
    def split_options(body: list[str]) -> tuple[dict[str, str], list[str]]:
        options, rest = {}, list(body)
        while rest and (match := OPTION.match(rest[0])):
            options[match["key"]] = match["value"].strip()
            rest.pop(0)
        return options, rest

    def directive(self, name: str, arg: str, body: list[str]) -> list[str]:
        options, rest = self.split_options(body)
        # Verbatim bodies first: their text is code or TeX, never MyST to convert.
        if name in DROPPED:
            return []
        if name == "literalinclude":
            return self.literalinclude(arg, options)
        if name in ("code-block", "code"):
            return [f"```{arg.split()[0] if arg else ''}", *rest, "```"]
        if name == "math":
            return ["$$", *rest, "$$"]
        if name == "glue:md":
            return [self.bundle(arg).get("text/markdown", "").strip()]
        if name == "nb-exec-table":
            return ["*(The table of execution times is on the book's HTML page.)*"]
        inner = self.convert("\n".join(rest)).strip("\n")
        if name == "glue:figure":
            return self.figure(arg, inner)
        if name == "solution":
            summary = f"Solution to {self.references.labels.get(arg, arg)}"
            return ["<details>", f"<summary>{summary}</summary>", "", inner, "", "</details>"]
        if name == "dropdown":
            summary = self.inline(arg) or "Details"
            return ["<details>", f"<summary>{summary}</summary>", "", inner, "", "</details>"]
        if name in HEADED:
            title = self.references.labels.get(options.get("label"), HEADED[name])
            return ["", f"#### {title}", "", inner, ""]
        if name in QUOTED:
            heading, title = QUOTED[name], self.inline(arg)
            if title:
                heading = f"{heading} ({title})" if heading else title
            body = inner + (" $\\blacksquare$" if name == "prf:proof" else "")
            quoted = [f"> {line}" if line else ">" for line in body.split("\n")]
            return ["", f"> **{heading or 'Note'}.**", ">", *quoted, ""]
        return [inner]  # anything else: its content

    def literalinclude(self, arg: str, options: dict[str, str]) -> list[str]:
        path = (self.source_dir / arg).resolve()
        source = path.read_text(encoding="utf-8")
        if "pyobject" in options:
            source = python_object_source(source, options["pyobject"], path)
        language = options.get("language", "python")
        shown = "/".join(path.parts[path.parts.index("code") + 1:]) if "code" in path.parts \
            else path.name
        return [f"From `{shown}`:", "", f"```{language}", source.rstrip("\n"), "```"]

    def figure(self, key: str, caption: str) -> list[str]:
        bundle = self.bundle(key)
        for mime, suffix in (("image/png", "png"), ("image/jpeg", "jpg")):
            if mime in bundle:
                name = f"{key}.{suffix}"
                data = bundle[mime]
                self.attachments[name] = {mime: data if isinstance(data, str) else "".join(data)}
                alt = re.split(r"(?<=[.:])\s", caption.strip(), maxsplit=1)[0].strip(".:")
                alt = re.sub(r"[\[\]$*`]", "", alt) or key
                return [f"![{alt}](attachment:{name})", "", f"*{caption.strip()}*"]
        return [bundle.get("text/plain", ""), "", f"*{caption.strip()}*"]


def python_object_source(source: str, name: str, path: Path) -> str:
    """The source of the function or class ``name`` (``Class.method`` allowed) in ``source``."""
    lines = source.split("\n")
    scope = ast.parse(source).body
    node = None
    for part in name.split("."):
        node = next((n for n in scope if isinstance(n, ast.FunctionDef | ast.ClassDef |
                                                    ast.AsyncFunctionDef) and n.name == part),
                    None)
        if node is None:
            raise ValueError(f"{path} has no object {name!r} to include")
        scope = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(lines[start - 1:node.end_lineno])


def glue_data(notebook) -> dict[str, dict]:
    """Every glued value of an executed notebook: key -> its mime bundle."""
    data = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if meta:
                prefix = len(meta.get("mime_prefix", ""))
                data[meta["name"]] = {k[prefix:]: v for k, v in output["data"].items()}
    return data


def plain_code_cell(cell):
    """A code cell without its glue outputs or the ``myst_nb`` import; hidden input stays folded."""
    cell = copy.deepcopy(cell)
    cell.outputs = [o for o in cell.get("outputs", [])
                    if "scrapbook" not in o.get("metadata", {})]
    cell.source = re.sub(r"^from myst_nb import glue\n?", "", cell.source, flags=re.MULTILINE)
    tags = cell.metadata.get("tags", [])
    if "remove-output" in tags:
        cell.outputs = []
    if "remove-input" in tags or "remove-cell" in tags:
        cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
    if "remove-cell" in tags:
        cell.metadata["jupyter"]["outputs_hidden"] = True
    cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags", "jupyter")}
    return cell


def header(title: str) -> str:
    return (
        f"*This notebook is the chapter “{title}” of the book* Deep Generative Models, Derived "
        "and Run*, with the outputs of the book's build; the box at its end says how they were "
        "made. To run it, install the book's `dgm` package (`pip install -e .` in a clone of "
        "the book's repository). Set `DGM_QUICK=1` before starting Jupyter for a short smoke "
        "run; trained models are stored under `DGM_RESULTS` (by default `_build/results` in the "
        "repository) and read back on the next run.*"
    )


def plain_notebook(executed, source_dir: Path, references: References | None = None):
    """The executed notebook ``executed`` (nbformat v4) as a plain Jupyter notebook."""
    references = references or References()
    glue = glue_data(executed)
    title = references.pages.get(references.page, references.page or "this chapter")
    cells, cited, shim = [nbformat.v4.new_markdown_cell(header(title))], {}, False
    for cell in executed.cells:
        if cell.cell_type == "code":
            if "repro_card(" in cell.source:  # the build's card: shown below as Markdown
                continue
            plain = plain_code_cell(cell)
            if not shim and "glue(" in cell.source:  # the first cell that glues defines glue
                plain.source = GLUE_SHIM + "\n\n" + plain.source.lstrip()
                shim = True
            cells.append(plain)
            continue
        converter = Converter(glue, source_dir, references)
        text = converter.convert(cell.source).strip()
        text = re.sub(r"\n{3,}", "\n\n", text)
        cited.update(converter.cited)
        if not text:
            continue
        markdown = nbformat.v4.new_markdown_cell(text)
        if converter.attachments:
            markdown.attachments = converter.attachments
        cells.append(markdown)
    if cited:
        listing = "\n".join(f"- {full}" for _, full in sorted(cited.items(), key=lambda kv: kv[1]))
        cells.append(nbformat.v4.new_markdown_cell(f"#### Works cited\n\n{listing}"))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index}"
    nbformat.validate(notebook)
    return notebook
