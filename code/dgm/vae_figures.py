"""Figures of the VAE chapters that are drawn rather than computed: the reparameterized
computation graph, and latent interpolations laid out with their weights under each column.

Nothing here trains or evaluates a model, and :mod:`dgm.vae` does not import this module, so an
edit to a figure never changes the key of a stored VAE.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyBboxPatch

from dgm.plotting import tile

FORWARD = "#222222"
GRADIENT = "#c0392b"
BLOCKED = "#7f8c8d"


def _box(ax, xy, text, width=1.3, height=0.62, face="#ffffff", edge=FORWARD, style="-",
         fontsize=11):
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.04,rounding_size=0.12", linewidth=1.3,
                                linestyle=style, facecolor=face, edgecolor=edge, zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)


def _arrow(ax, start, end, colour=FORWARD, style="-", rad=0.0, width=1.3):
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=width, linestyle=style,
                                shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}"))


def computation_graph():
    """The VAE's forward pass with the reparameterization trick, and where gradients flow.

    Black arrows: the forward computation x -> encoder -> (mu, log sigma^2) -> z = mu + sigma *
    eps -> decoder -> logits -> loss, with the KL term computed from (mu, log sigma^2). Red
    dashed arrows: the backward pass, which reaches the decoder's theta through the logits and the
    encoder's phi through z. The noise eps is a sampled leaf: nothing flows into it, and none is
    needed.
    """
    fig, ax = plt.subplots(figsize=(11.5, 4.4))
    ax.set_xlim(-0.9, 11.1)
    ax.set_ylim(-2.55, 2.25)
    ax.axis("off")
    y = 0.0
    nodes = {
        "x": (0.0, y), "encoder": (1.75, y), "mu": (3.55, 0.62), "logvar": (3.55, -0.62),
        "z": (5.65, y), "decoder": (7.55, y), "logits": (9.05, y), "loss": (10.4, y),
        "eps": (5.65, -2.0), "kl": (7.55, 1.55),
    }
    _box(ax, nodes["x"], "image $x$", width=1.2, face="#f4f4f4")
    _box(ax, nodes["encoder"], "encoder\n$\\phi$", width=1.25)
    _box(ax, nodes["mu"], "$\\mu$", width=0.95, height=0.5)
    _box(ax, nodes["logvar"], "$\\log\\sigma^2$", width=0.95, height=0.5)
    _box(ax, nodes["z"], "$z = \\mu + \\sigma \\odot \\varepsilon$", width=1.95)
    _box(ax, nodes["eps"], "$\\varepsilon \\sim \\mathcal{N}(0, I)$\nsampled leaf",
         width=1.95, height=0.72, face="#f4f4f4", edge=BLOCKED, style="--", fontsize=10)
    _box(ax, nodes["decoder"], "decoder\n$\\theta$", width=1.25)
    _box(ax, nodes["logits"], "logits $\\eta$", width=1.15)
    _box(ax, nodes["loss"], "loss $\\mathcal{L}$", width=1.05, face="#fdf2e9")
    _box(ax, nodes["kl"], "KL$(q \\,\\Vert\\, p(z))$", width=1.6, height=0.5, fontsize=10)

    def forward(a, b, dx=(0.0, 0.0), rad=0.0):
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        _arrow(ax, (x0 + dx[0], y0), (x1 + dx[1], y1), rad=rad)

    forward("x", "encoder", (0.62, -0.65))
    _arrow(ax, (2.4, 0.15), (3.07, 0.6))
    _arrow(ax, (2.4, -0.15), (3.07, -0.6))
    _arrow(ax, (4.03, 0.55), (4.67, 0.12))
    _arrow(ax, (4.03, -0.55), (4.67, -0.12))
    _arrow(ax, (5.65, -1.62), (5.65, -0.33))
    forward("z", "decoder", (0.98, -0.65))
    forward("decoder", "logits", (0.65, -0.6))
    forward("logits", "loss", (0.6, -0.55))
    _arrow(ax, (4.03, 0.75), (6.75, 1.55), rad=-0.15)
    # log sigma^2 enters the KL too: up through the gap between the mu box and z's box.
    ax.plot([4.03, 4.35, 4.35], [-0.62, -0.62, 1.2], color=FORWARD, lw=1.3, zorder=1)
    _arrow(ax, (4.35, 1.2), (6.75, 1.45))
    _arrow(ax, (8.35, 1.5), (10.3, 0.33), rad=-0.2)

    # The backward pass: red, dashed, curving under the forward arrows it retraces.
    red = dict(colour=GRADIENT, style="--", width=1.6)
    bottom = -0.33
    _arrow(ax, (10.25, bottom), (9.2, bottom), rad=-0.6, **red)
    _arrow(ax, (8.9, bottom), (7.75, bottom), rad=-0.6, **red)
    _arrow(ax, (7.35, bottom), (6.2, bottom), rad=-0.6, **red)
    _arrow(ax, (4.85, 0.3), (4.03, 0.85), rad=0.35, **red)
    _arrow(ax, (4.85, -0.3), (4.03, -0.85), rad=-0.35, **red)
    _arrow(ax, (3.07, 0.82), (2.25, 0.36), rad=0.35, **red)
    _arrow(ax, (3.07, -0.82), (2.25, -0.36), rad=-0.35, **red)
    _arrow(ax, (10.6, 0.33), (8.38, 1.72), rad=0.25, **red)
    _arrow(ax, (6.75, 1.7), (3.75, 0.9), rad=0.2, **red)
    ax.text(7.55, -0.95, "$\\partial\\mathcal{L}/\\partial\\theta$", color=GRADIENT,
            ha="center", va="center", fontsize=11)
    ax.text(1.75, -0.95, "$\\partial\\mathcal{L}/\\partial\\phi$", color=GRADIENT,
            ha="center", va="center", fontsize=11)
    ax.text(3.55, -1.12, "$\\partial z/\\partial\\mu = 1$\n"
            "$\\partial z/\\partial\\log\\sigma^2 = \\frac{1}{2}\\sigma\\odot\\varepsilon$",
            color=GRADIENT, ha="center", va="top", fontsize=9.5)
    # No gradient into the noise or the data.
    ax.text(5.8, -1.0, "no gradient into $\\varepsilon$", color=BLOCKED, ha="left",
            va="center", fontsize=9.5)
    ax.text(0.0, -0.55, "no gradient\nneeded", color=BLOCKED, ha="center", va="top", fontsize=9)
    ax.plot([], [], color=FORWARD, label="forward pass")
    ax.plot([], [], color=GRADIENT, ls="--", label="backward pass (gradient)")
    ax.legend(loc="upper left", frameon=False, fontsize=10)
    fig.tight_layout()
    return fig


def interpolation_figure(blocks: list[tuple[str, dict[str, torch.Tensor]]], weights, size=28):
    """Rows of interpolation frames, grouped in blocks, each weight written under its column.

    ``blocks`` lists (title, {row label: frames (n, size * size)}); ``weights`` the n
    interpolation weights, printed under the last row of every block.
    """
    weights = [float(w) for w in weights]
    n = len(weights)
    n_rows = sum(len(rows) for _, rows in blocks)
    heights = []
    for _, rows in blocks:
        heights += [1.0] * len(rows) + [0.55]
    heights = heights[:-1]
    fig = plt.figure(figsize=(0.85 * n + 1.6, 0.85 * n_rows + 0.55 * (len(blocks) - 1) + 1.0))
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.08)
    slot = 0
    for title, rows in blocks:
        for row, (label, frames) in enumerate(rows.items()):
            if len(frames) != n:
                raise ValueError(f"row {label!r} of block {title!r} has {len(frames)} frames, "
                                 f"expected one per weight ({n})")
            ax = fig.add_subplot(grid[slot])
            slot += 1
            mosaic = tile(frames.reshape(-1, size, size), nrow=n)  # (size, n * (size + 1) - 1)
            ax.imshow(mosaic.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.set_yticks([])
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
            centres = [c * (size + 1) + (size - 1) / 2 for c in range(n)]
            ax.set_xticks(centres)
            last = row == len(rows) - 1
            ax.set_xticklabels([f"{w:.1f}" for w in weights] if last else [], fontsize=9)
            ax.tick_params(length=0)
            if row == 0:
                ax.set_title(title, fontsize=11, loc="left")
            if last:
                ax.set_xlabel("$\\lambda$", fontsize=11, labelpad=1)
        slot += 1  # the spacer between blocks
    return fig
