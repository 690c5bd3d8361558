"""Seconds per training epoch of the classic 784-400-20 VAE on MNIST, loaded two ways.

Baseline: the pattern of the classic PyTorch VAE example -- a torchvision ``MNIST`` data set
with ``transforms.ToTensor()``, read item by item through a ``DataLoader`` (batch 128, shuffled,
no worker processes), the loss computed from sigmoid outputs, and the example's optimiser,
``Adam(lr=1e-3)``. Ours: ``dgm`` -- the data set held as one tensor, minibatches cut by indexing,
dynamic binarization, ``analytic_kl_loss`` and the fused, single-kernel Adam update that
``dgm.vae.train_vae`` uses. The baseline is timed a second time with that same fused Adam, so
that the part of the speed-up due to the data pipeline and the part due to the optimiser can be
told apart. Each run is one full epoch after a short warm-up, in the same process.

Printed: seconds per epoch for each, ``ratio: X`` (classic example / ours), the ratio with the
same optimiser on both sides, and our effective
GFLOP/s -- the multiply-adds of the forward and backward passes of the linear layers, divided by
our epoch time -- as a fraction of a plain float32 matrix product measured here. The machine's
load is printed too: on a shared machine every figure is an upper bound on the cost.

    python bench/vae_throughput.py [--threads N] [--epochs E]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from dgm.config import data_dir
from dgm.data import dynamic_binarize, ensure_mnist, images_to_unit, load_mnist
from dgm.training import train_epoch
from dgm.vae import VAE, analytic_kl_loss

BATCH = 128
CLASSIC_ADAM = {"lr": 1e-3}  # the classic example's optimiser
FUSED_ADAM = {"lr": 1e-3, "fused": True}  # the optimiser of dgm.vae.train_vae
HIDDEN, Z_DIM, PIXELS = 400, 20, 784


class ClassicVAE(nn.Module):
    """784-400-20 VAE laid out as in the classic example: fc1, fc21/fc22, fc3, fc4."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, Z_DIM)
        self.fc22 = nn.Linear(HIDDEN, Z_DIM)
        self.fc3 = nn.Linear(Z_DIM, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, PIXELS)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, PIXELS)))  # (B, 784) -> (B, 400)
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def classic_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x.view(-1, PIXELS), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def baseline_epoch(loader, adam=CLASSIC_ADAM, max_batches=None) -> float:
    model = ClassicVAE()
    optimizer = torch.optim.Adam(model.parameters(), **adam)
    model.train()
    start = time.perf_counter()
    for i, (x, _) in enumerate(loader):
        if max_batches is not None and i == max_batches:
            break
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss = classic_loss(recon, x, mu, logvar)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def ours_epoch(train_x, generator, n=None) -> float:
    model = VAE(hidden=(HIDDEN,), z_dim=Z_DIM)
    optimizer = torch.optim.Adam(model.parameters(), **FUSED_ADAM)
    data = train_x if n is None else train_x[:n]
    start = time.perf_counter()
    train_epoch(
        model, optimizer, analytic_kl_loss, data, BATCH, generator,
        transform=lambda b: dynamic_binarize(b, generator), progress=False,
    )
    return time.perf_counter() - start


def flops_per_epoch(n_images: int) -> float:
    """Forward + backward multiply-adds of the linear layers (x2 for FLOPs).

    Forward: one multiply-add per weight per image. Backward: the gradient with respect to the
    weights costs the same again, and so does the gradient with respect to each layer's input
    (except the first layer's, which is not needed).
    """
    encoder = PIXELS * HIDDEN + HIDDEN * 2 * Z_DIM
    decoder = Z_DIM * HIDDEN + HIDDEN * PIXELS
    forward = encoder + decoder
    backward = 2 * forward - PIXELS * HIDDEN
    return 2.0 * (forward + backward) * n_images


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per method (best)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    print(f"torch {torch.__version__}, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    ensure_mnist()
    loader = DataLoader(
        datasets.MNIST(str(data_dir()), train=True, download=False,
                       transform=transforms.ToTensor()),
        batch_size=BATCH, shuffle=True,
    )
    train_x = images_to_unit(load_mnist("train")[0])  # (60000, 784), loaded once

    baseline_epoch(loader, max_batches=20)  # warm-up
    ours_epoch(train_x, generator, n=20 * BATCH)
    baseline = min(baseline_epoch(loader) for _ in range(args.epochs))
    baseline_fused = min(baseline_epoch(loader, FUSED_ADAM) for _ in range(args.epochs))
    ours = min(ours_epoch(train_x, generator) for _ in range(args.epochs))
    peak = matmul_gflops()
    effective = flops_per_epoch(len(train_x)) / ours / 1e9

    print(f"baseline (per-item DataLoader + ToTensor, Adam): {baseline:.2f} s/epoch")
    print(f"baseline with the fused Adam of dgm:            {baseline_fused:.2f} s/epoch")
    print(f"ours (tensor-resident, dgm.training):            {ours:.2f} s/epoch")
    print(f"ratio: {baseline / ours:.2f}")
    print(f"ratio with the same optimiser: {baseline_fused / ours:.2f}")
    print(f"plain fp32 matmul (2048 x 2048): {peak:.1f} GFLOP/s")
    print(f"ours effective: {effective:.1f} GFLOP/s = {100 * effective / peak:.0f} % of the matmul")
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
