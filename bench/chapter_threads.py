"""Seconds to execute one whole chapter at 1 and at 2 CPU threads, interleaved (1, 2, 1, 2, ...).

For chapters whose work is many small operations rather than a few large ones, a step benchmark
says little, so this one runs the chapter itself, as the build does (a fresh kernel, top to
bottom, in the chapter's folder), with every ``torch.set_num_threads`` call in it replaced by
the thread count under test. Results come from the result store as in a rebuild, so point
``DGM_RESULTS`` at an empty folder if the chapter trains something. The median of each arm is
printed.

    python bench/chapter_threads.py book/change_of_variables.md [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from pathlib import Path

from myst_nb.core.read import read_myst_markdown_notebook
from nbclient import NotebookClient

SET_THREADS = re.compile(r"torch\.set_num_threads\([^\n]*\)")


def seconds_to_execute(chapter: Path, threads: int) -> float:
    notebook = read_myst_markdown_notebook(chapter.read_text(encoding="utf-8"))
    found = 0
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source, n = SET_THREADS.subn(f"torch.set_num_threads({threads})", cell.source)
            found += n
    if not found:
        raise SystemExit(f"{chapter} never calls torch.set_num_threads; nothing to compare")
    start = time.perf_counter()
    NotebookClient(notebook, timeout=3600, kernel_name="python3",
                   resources={"metadata": {"path": str(chapter.parent)}}).execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chapter = args.chapter.resolve()
    print(f"{chapter.name}: load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, "
          f"median of {args.repeats} interleaved runs per thread count")
    times = {1: [], 2: []}
    for _ in range(args.repeats):
        for threads in times:
            times[threads].append(seconds_to_execute(chapter, threads))
    one, two = (statistics.median(times[t]) for t in (1, 2))
    print(f"1 thread: {one:.1f} s (runs {', '.join(f'{t:.1f}' for t in times[1])}); "
          f"2 threads: {two:.1f} s (runs {', '.join(f'{t:.1f}' for t in times[2])}); "
          f"2 threads take {two / one:.2f}x the time of 1")
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
