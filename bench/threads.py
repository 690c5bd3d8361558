"""Seconds per training step of the language-model lab and the VAE, at 1 and at 2 CPU threads.

The arms are interleaved in one process (1, 2, 1, 2, ...) and the median of each is printed, so
that a change in the machine's load affects both alike. The chapters use what this favours.

    python bench/threads.py [--repeats R] [--steps S]
"""

from __future__ import annotations

import torch
from reference import thread_bench  # bench/reference.py

from dgm.lm import GPT, GPTConfig, get_batch
from dgm.vae import VAE, analytic_kl_loss


def lm_step():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=96, block_size=128, n_layer=4, n_head=4, n_embd=128))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.randint(96, (100_000,))

    def step():
        x, y = get_batch(data, 128, 32)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def vae_step():
    torch.manual_seed(0)
    model = VAE(784, (500,), 32, (500, 500))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, fused=True)
    x = (torch.rand(128, 784) < 0.13).float()

    def step():
        loss = analytic_kl_loss(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    thread_bench(__doc__.split("\n")[0], {
        "language model (lm_lab)": lm_step, "VAE (vae_experiments)": vae_step,
    })

if __name__ == "__main__":
    main()
