"""Small matplotlib helpers for the book's figures: image grids with labelled rows."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch


def tile(images: torch.Tensor, nrow: int, pad: int = 1) -> torch.Tensor:
    """Images (N, H, W) -> one (rows * (H + pad) - pad, nrow * (W + pad) - pad) mosaic.

    Filled row by row; missing cells at the end stay at 1 (white on a reversed grey map).
    """
    if images.dim() != 3:
        raise ValueError(f"images must have shape (N, H, W), got {tuple(images.shape)}")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    n, h, w = images.shape
    rows = -(-n // nrow)
    canvas = torch.ones(rows * (h + pad) - pad, nrow * (w + pad) - pad)
    for i, image in enumerate(images.detach().float().cpu()):
        r, c = divmod(i, nrow)
        canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = image
    return canvas


def image_rows(rows: dict[str, torch.Tensor], size: int = 28, scale: float = 0.9):
    """One figure with a row of images per entry of ``rows`` ({label: (N, size*size)}).

    Pixel values are probabilities in [0, 1], drawn black on white.
    """
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(scale * n, scale * 1.15 * len(rows)), squeeze=False
    )
    for ax, (label, images) in zip(axes[:, 0], rows.items(), strict=True):
        grid = tile(images.reshape(-1, size, size), nrow=n)  # (size, n * (size + 1) - 1)
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
