"""Seconds per MNIST training epoch of a VAE: data pipelines, and the book's loop vs a bare one.

Two groups of arms, all interleaved in one process (one epoch of each arm per round, for
``--rounds`` rounds), so that a change in the machine's load affects every arm alike; the median
over the rounds is printed.

The classic 784-400-20 VAE of the PyTorch examples, fed three ways:

- ``classic``: the example's pattern -- a torchvision ``MNIST`` data set with
  ``transforms.ToTensor()`` read item by item through a ``DataLoader`` (batch 128, shuffled, no
  worker processes), the loss computed from sigmoid outputs, ``Adam(lr=1e-3)``;
- ``classic, fused Adam``: the same, with the single-kernel Adam update that the book uses;
- ``TensorDataset loader``: the same model and fused Adam, but the images already held as one
  tensor and served by ``DataLoader(TensorDataset(...))``, which still collates item by item;
  the gap to ``classic, fused Adam`` is the cost of PIL and ``ToTensor``, and the gap to
  ``dgm`` below is the cost of the loader;
- ``dgm``: ``dgm.training.train_epoch`` on the same model: minibatches cut from the tensor by
  indexing, dynamic binarization and ``analytic_kl_loss``.

The book's model (the chapter's: 784-500-64 encoder, 32-500-500-784 decoder, batch 128, Adam
with lr 2e-3, dynamic binarization, Bernoulli likelihood from logits and the analytic KL):

- ``book loop``: what ``dgm.vae.train_vae`` runs for one epoch -- ``train_epoch`` with its
  schedule, its per-step loss check and the shared checks switched off as ``train_vae`` does;
- ``bare loop``: the same arithmetic written out by hand with no library code in the loop: index,
  binarize, encode, reparameterize, decode, BCE-with-logits, KL, backward, fused Adam step.

Printed: seconds per epoch (median), the book loop / bare loop ratio, and the book loop's
effective GFLOP/s -- the multiply-adds of the forward and backward passes of its linear layers
over its epoch time -- as a fraction of a plain float32 2048 x 2048 matrix product, itself timed
once per round and taken at its median. The load average is printed before and after.

    python bench/vae_throughput.py [--threads N] [--rounds R]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
from reference import matmul_gflops  # bench/reference.py
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets, transforms

from dgm.config import data_dir
from dgm.data import dynamic_binarize, ensure_mnist, images_to_unit, load_mnist
from dgm.inputs import unchecked
from dgm.training import train_epoch, warmup_cosine
from dgm.vae import VAE, analytic_kl_loss

BATCH = 128
CLASSIC_ADAM = {"lr": 1e-3}  # the classic example's optimiser
FUSED_ADAM = {"lr": 1e-3, "fused": True}  # the optimiser of dgm.vae.train_vae
HIDDEN, Z_DIM, PIXELS = 400, 20, 784
BOOK = {"hidden": (500,), "z_dim": 32, "decoder_hidden": (500, 500), "lr": 2e-3}  # the chapter's


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


def loader_epoch(loader, adam) -> float:
    """One epoch of the classic model and loss, fed by ``loader``."""
    model = ClassicVAE()
    optimizer = torch.optim.Adam(model.parameters(), **adam)
    model.train()
    start = time.perf_counter()
    for x, *_ in loader:
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        classic_loss(recon, x, mu, logvar).backward()
        optimizer.step()
    return time.perf_counter() - start


def dgm_epoch(train_x, generator) -> float:
    """One epoch of the classic model through dgm.training.train_epoch."""
    model = VAE(hidden=(HIDDEN,), z_dim=Z_DIM)
    optimizer = torch.optim.Adam(model.parameters(), **FUSED_ADAM)
    start = time.perf_counter()
    train_epoch(
        model, optimizer, analytic_kl_loss, train_x, BATCH, generator,
        transform=lambda b: dynamic_binarize(b, generator), progress=False,
    )
    return time.perf_counter() - start


def book_model() -> tuple[VAE, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = VAE(PIXELS, BOOK["hidden"], BOOK["z_dim"], BOOK["decoder_hidden"])
    return model, torch.optim.Adam(model.parameters(), lr=BOOK["lr"], fused=True)


def book_loop_epoch(train_x, generator) -> float:
    """One epoch as dgm.vae.train_vae runs it: train_epoch, its schedule, the checks off."""
    model, optimizer = book_model()
    scheduler = warmup_cosine(optimizer, math.ceil(len(train_x) / BATCH), warmup=10)
    start = time.perf_counter()
    with unchecked():
        train_epoch(
            model, optimizer, analytic_kl_loss, train_x, BATCH, generator,
            transform=lambda b: dynamic_binarize(b, generator), scheduler=scheduler,
            progress=False,
        )
    return time.perf_counter() - start


def bare_loop_epoch(train_x, generator) -> float:
    """The book loop's arithmetic with nothing else: no schedule, checks or library calls."""
    model, optimizer = book_model()
    model.train()
    start = time.perf_counter()
    for index in torch.randperm(len(train_x), generator=generator).split(BATCH):
        grey = train_x[index]  # (b, 784)
        x = (torch.rand(grey.shape, generator=generator) < grey).float()  # binarized
        mu, logvar = model.encoder(x).chunk(2, dim=-1)  # (b, 32) each
        eps = torch.randn(mu.shape, generator=generator)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = model.decoder(z)  # (b, 784)
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum() / len(x)
        loss = nll + kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def linear_flops(model: nn.Module, n_images: int) -> float:
    """FLOPs of the forward and backward passes of ``model``'s linear layers over ``n_images``.

    Forward: one multiply-add per weight per image. Backward: the gradient with respect to the
    weights costs as much again, and so does the gradient with respect to each layer's input,
    except the first layer's (the data need no gradient). A multiply-add is two FLOPs.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    forward = sum(m.in_features * m.out_features for m in layers)
    backward = 2 * forward - layers[0].in_features * layers[0].out_features
    return 2.0 * (forward + backward) * n_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=3, help="epochs per arm (median)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    print(f"torch {torch.__version__}, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"median of {args.rounds} interleaved epochs per arm")
    ensure_mnist()
    train_x = images_to_unit(load_mnist("train")[0])  # (60000, 784), loaded once
    classic_loader = DataLoader(
        datasets.MNIST(str(data_dir()), train=True, download=False,
                       transform=transforms.ToTensor()),
        batch_size=BATCH, shuffle=True,
    )
    tensor_loader = DataLoader(TensorDataset(train_x), batch_size=BATCH, shuffle=True)
    arms = {
        "classic (torchvision MNIST + ToTensor, Adam)": lambda: loader_epoch(
            classic_loader, CLASSIC_ADAM),
        "classic, fused Adam": lambda: loader_epoch(classic_loader, FUSED_ADAM),
        "TensorDataset loader, fused Adam": lambda: loader_epoch(tensor_loader, FUSED_ADAM),
        "dgm (tensor-resident, train_epoch)": lambda: dgm_epoch(train_x, generator),
        "book loop (book's model, as train_vae)": lambda: book_loop_epoch(train_x, generator),
        "bare loop (same arithmetic by hand)": lambda: bare_loop_epoch(train_x, generator),
    }
    warm = train_x[: 20 * BATCH]
    book_loop_epoch(warm, generator)  # warm-up of the kernels and the allocator
    bare_loop_epoch(warm, generator)
    dgm_epoch(warm, generator)
    seconds = {name: [] for name in arms}
    peaks = []
    for _ in range(args.rounds):
        for name, arm in arms.items():
            seconds[name].append(arm())
        peaks.append(matmul_gflops())
    median = {name: statistics.median(times) for name, times in seconds.items()}
    peak = statistics.median(peaks)

    for name, value in median.items():
        spread = max(seconds[name]) - min(seconds[name])
        print(f"{name:<44} {value:6.2f} s/epoch (range {spread:.2f} s)")
    classic, dgm = median["classic, fused Adam"], median["dgm (tensor-resident, train_epoch)"]
    tensor = median["TensorDataset loader, fused Adam"]
    print(f"classic example / dgm: {median[next(iter(arms))] / dgm:.2f}; "
          f"with the same optimiser: {classic / dgm:.2f}")
    print(f"PIL + ToTensor: {classic - tensor:.2f} s/epoch; "
          f"the DataLoader's collation: {tensor - dgm:.2f} s/epoch")
    book = median["book loop (book's model, as train_vae)"]
    bare = median["bare loop (same arithmetic by hand)"]
    effective = linear_flops(book_model()[0], len(train_x)) / book / 1e9
    print(f"book loop / bare loop: {book / bare:.3f} "
          f"({1e3 * book / math.ceil(len(train_x) / BATCH):.2f} ms/step)")
    print(f"plain fp32 matmul (2048 x 2048): {peak:.1f} GFLOP/s (median of {len(peaks)})")
    print(f"book loop effective: {effective:.1f} GFLOP/s = {100 * effective / peak:.0f} % "
          "of the matmul")
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
