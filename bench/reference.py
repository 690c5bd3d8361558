"""What the benchmarks share: the matmul yardstick they divide by, and the 1-vs-2-thread timing.

Imported by the benchmark scripts of this folder (run as ``python bench/<script>.py``, which
puts this folder on the import path).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a ``size`` x ``size`` float32 matrix product, at torch's current threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def seconds_per_step(step, threads: int, steps: int) -> float:
    """Mean seconds of ``step()`` at ``threads`` threads, after one warm-up call."""
    torch.set_num_threads(threads)
    step()  # warm-up at this thread count
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def compare_threads(name: str, step, repeats: int, steps: int) -> None:
    """Print the median seconds per step at 1 and at 2 threads, the arms interleaved."""
    times = {1: [], 2: []}
    for _ in range(repeats):
        for threads in times:
            times[threads].append(seconds_per_step(step, threads, steps))
    one, two = (statistics.median(times[t]) for t in (1, 2))
    print(f"{name}: {one * 1e3:.1f} ms/step at 1 thread, {two * 1e3:.1f} ms at 2 "
          f"(speed-up {one / two:.2f}x)")


def thread_bench(description: str, arms) -> None:
    """The command line of a 1-vs-2-thread benchmark: ``arms`` maps a name to a function that
    builds one step; each is timed by :func:`compare_threads` with ``--repeats`` and ``--steps``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs; median of {args.repeats} interleaved runs of {args.steps} steps")
    for name, make in arms.items():
        compare_threads(name, make(), args.repeats, args.steps)
