"""Figures used across the lectures: image grids, training curves, 2-D latent manifolds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes


def make_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile images of shape (N, H, W) or (N, C, H, W) (C = 1 or 3) into one array
    (rows·H, nrow·W[, 3]), padded with ``pad`` pixels of white between images."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, H, W) or (N, C, H, W) with C in (1, 3), got {arr.shape}")
    n, c, h, w = arr.shape
    nrow = max(1, min(nrow, n))
    rows = -(-n // nrow)
    grid = np.ones((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, top : top + h, left : left + w] = arr[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def show_images(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Show a grid of images in [0, 1] (grey or RGB) on ``ax`` (a new figure if None)."""
    grid = make_grid(images, nrow)
    if ax is None:
        _, ax = plt.subplots(
            figsize=(min(12, 0.8 * nrow + 1), 0.8 * grid.shape[0] / grid.shape[1] * nrow + 1)
        )
    ax.imshow(np.clip(grid, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_history(
    history: dict[str, Sequence[float]],
    keys: Sequence[str],
    smooth: int = 1,
    ax: Axes | None = None,
    xkey: str = "step",
) -> Axes:
    """Plot ``history[key]`` against ``history[xkey]`` for each key, with a running mean over
    ``smooth`` points."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    x = np.asarray(history[xkey])
    for key in keys:
        y = np.asarray(history[key], dtype=float)
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        ax.plot(x[len(x) - len(y) :], y, label=key)
    ax.set_xlabel(xkey)
    ax.legend()
    return ax


def latent_manifold(
    decode: Callable[[torch.Tensor], torch.Tensor], n: int = 15, span: float = 2.5
) -> torch.Tensor:
    """Decode the n×n grid of 2-D latent points z = (z₁, z₂) ∈ [−span, span]², z₁ increasing
    to the right and z₂ decreasing down the rows; returns the decoded (n·n, C, H, W) images."""
    axis = torch.linspace(-span, span, n)
    zz = torch.stack(torch.meshgrid(axis.flip(0), axis, indexing="ij"), dim=-1).reshape(-1, 2)
    return decode(zz[:, [1, 0]])
