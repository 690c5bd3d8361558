"""How much a rebuild re-runs after one edit, and how long it takes.

    python bench/rebuild.py            # quick mode, into _build/quick (as the tests build)
    python bench/rebuild.py --full     # full size, into _build (run `make book` first)
    python bench/rebuild.py --full --only no-change,vae-plot-cell,nerf-module

Each scenario makes one edit in this checkout, rebuilds with the bare ``jupyter-book build``
command, records which chapters were executed and the wall time, then undoes the edit and
rebuilds again (the undo is timed too: an undone module edit re-runs its chapters once more,
an undone cell edit finds the chapter's earlier result still valid). Edits are always undone,
even on failure. The first build (to bring the cache up to date) is not timed. Editing
``dgm/vae.py`` in full mode retrains both VAEs, twice (edit and undo): leave it out with
``--only`` unless there is an hour to spare.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXECUTED = re.compile(r"book/(\w+)\.md: Executing notebook")


@dataclass
class Scenario:
    name: str
    path: str  # the file edited, relative to the repository
    expected: set[str]  # chapters that must execute after the edit

    def expected_after_undo(self) -> set[str]:
        """An edited module's old records were dropped, so its chapters run again; a chapter
        whose cells come back as they were finds its old, still valid, record instead."""
        return set() if self.path.endswith(".md") else self.expected

    def edit(self, text: str) -> str:
        if self.path.endswith(".md"):  # a comment line at the end of the training-curve cell
            anchor = 'glue("vae-fig-curves", fig, display=False)\n'
            assert anchor in text, f"{self.path} no longer has the cell this bench edits"
            return text.replace(anchor, anchor + "# an edit to a plotting cell\n", 1)
        return text + "\n# an edit to this module\n"


SCENARIOS = [
    Scenario("no-change", "", set()),
    Scenario("vae-plot-cell", "book/vae_experiments.md", {"vae_experiments"}),
    Scenario("nerf-module", "code/dgm/nerf.py", {"nerf_lab", "nerf_theory"}),
    Scenario("vae-module", "code/dgm/vae.py", {"vae_experiments"}),
    Scenario("gaussian-kl-script", "derivations/gaussian_kl.py", {"checks"}),
]


def build(full: bool) -> tuple[float, set[str], int]:
    """One bare build; returns wall seconds, executed chapters, and the exit code."""
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(REPO),
               "-n", "-W", "--keep-going"]
    env = dict(os.environ)
    if full:
        env.pop("DGM_QUICK", None)
    else:
        command += ["--path-output", str(REPO / "_build" / "quick")]
        env["DGM_QUICK"] = "1"
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
    return seconds, set(EXECUTED.findall(result.stdout)), result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full-size build into _build")
    parser.add_argument("--only", help="comma-separated scenario names")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    mode = "full" if args.full else "quick"
    print(f"mode {mode}; {os.cpu_count()} CPUs; bringing the cache up to date first")
    seconds, ran, code = build(args.full)
    print(f"  initial build: {seconds:.1f} s, executed {sorted(ran) or 'nothing'} (exit {code})")
    if code:
        return code
    failures = 0
    print(f"{'scenario':<20}{'step':<7}{'seconds':>9}  executed  (expected)")
    for scenario in chosen:
        path = REPO / scenario.path if scenario.path else None
        original = path.read_text() if path else None
        try:
            if path:
                path.write_text(scenario.edit(original))
            steps = [("edit", build(args.full))]
        finally:
            if path:
                path.write_text(original)
        if path:
            steps.append(("undo", build(args.full)))
        for step, (seconds, ran, code) in steps:
            expected = scenario.expected if step == "edit" else scenario.expected_after_undo()
            ok = code == 0 and ran == expected
            failures += not ok
            print(f"{scenario.name:<20}{step:<7}{seconds:9.1f}  {sorted(ran) or '[]'}"
                  f"  ({sorted(expected) or '[]'}){'' if ok else '  <-- UNEXPECTED'}")
    print("every scenario re-ran exactly the expected chapters" if not failures
          else f"{failures} step(s) did not re-run exactly the expected chapters")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
