"""Seconds for the chapter's importance-weighted evaluation, and its fraction of the matmul rate.

The chapter scores each VAE on the whole MNIST test set (10,000 binarized digits) with S = 1000
importance samples per digit, through ``dgm.vae.dataset_bounds`` in batches of 100 digits. This
times that call on one model of the chapter's size (784-500-64 encoder, 32-500-500-784 decoder;
the weights are a fresh initialisation, which costs the same arithmetic as trained ones) and
divides the decoder's multiply-adds (two FLOPs each) by the time, against a plain float32
2048 x 2048 matrix product timed before and after in the same process.

A second part times ``importance_log_weights`` on one batch of 100 digits at several chunk sizes
(``max_rows``, decoder rows per matrix product), interleaved over ``--rounds`` rounds, median
printed, so that the default chunk size is a measured choice.

    python bench/iwae_eval.py [--images N] [--k S] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from reference import matmul_gflops  # bench/reference.py

from dgm.data import dynamic_binarize, ensure_mnist, images_to_unit, load_mnist
from dgm.vae import VAE, dataset_bounds, importance_log_weights

CHUNK_ROWS = (1024, 2048, 4096, 8192, 16384, 65536)


def decoder_flops(model: VAE, draws: int) -> float:
    """FLOPs of decoding ``draws`` latent codes (the encoder's share is K times smaller)."""
    macs = sum(m.in_features * m.out_features for m in model.decoder
               if isinstance(m, torch.nn.Linear))
    return 2.0 * macs * draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="test digits (all: 10000)")
    parser.add_argument("--k", type=int, default=1000, help="importance samples per digit")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the chunk-size sweep")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    ensure_mnist()
    fixed = torch.Generator().manual_seed(2014)
    test_x = dynamic_binarize(images_to_unit(load_mnist("test")[0]), fixed)[: args.images]
    torch.manual_seed(0)
    model = VAE(784, (500,), 32, (500, 500)).eval()

    peak_before = matmul_gflops()
    start = time.perf_counter()
    elbo, iwae = dataset_bounds(model, test_x, args.k, batch_size=100,
                                generator=torch.Generator().manual_seed(11), progress=False)
    seconds = time.perf_counter() - start
    peak = statistics.mean([peak_before, matmul_gflops()])
    rate = decoder_flops(model, args.k * len(test_x)) / seconds / 1e9
    assert torch.isfinite(iwae).all() and (iwae >= elbo).all()
    print(f"dataset_bounds, S = {args.k} on {len(test_x)} digits: {seconds:.1f} s, "
          f"{rate:.1f} GFLOP/s of decoder work")
    print(f"plain fp32 matmul (2048 x 2048): {peak:.1f} GFLOP/s (mean of before and after)")
    print(f"fraction of the matmul rate: {100 * rate / peak:.0f} %")

    batch = test_x[:100]
    times = {rows: [] for rows in CHUNK_ROWS}
    importance_log_weights(model, batch, args.k)  # warm-up
    for _ in range(args.rounds):
        for rows in CHUNK_ROWS:
            start = time.perf_counter()
            importance_log_weights(model, batch, args.k, max_rows=rows)
            times[rows].append(time.perf_counter() - start)
    for rows, values in times.items():
        median = statistics.median(values)
        print(f"max_rows = {rows:>6}: {1e3 * median:7.1f} ms per batch of 100 digits "
              f"({decoder_flops(model, args.k * 100) / median / 1e9:.1f} GFLOP/s)")
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
