"""The yardstick the benchmarks divide by: the rate of a plain float32 matrix product here.

Imported by the benchmark scripts of this folder (run as ``python bench/<script>.py``, which
puts this folder on the import path).
"""

from __future__ import annotations

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
