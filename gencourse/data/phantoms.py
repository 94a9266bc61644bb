"""CT phantoms (lecture 8): scikit-image's Shepp–Logan head and random ellipse phantoms."""

from __future__ import annotations

import math

import numpy as np
import torch


def _resize_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``×``factor`` blocks: an anti-aliased downsampling by ``factor``."""
    h, w = image.shape
    return image.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def shepp_logan(size: int = 64) -> torch.Tensor:
    """The modified Shepp–Logan head phantom bundled with scikit-image (400×400, values in
    [0, 1]), resized with anti-aliasing to ``size``×``size``; shape (1, size, size), float32."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    image = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    return torch.from_numpy(np.clip(image, 0.0, 1.0).astype(np.float32)).unsqueeze(0)


def _ellipse_mask(
    xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, a: float, b: float, angle: float
) -> np.ndarray:
    """Points (x, y) with ((x')/a)² + ((y')/b)² ≤ 1, (x', y') the point relative to (cx, cy)
    rotated by −angle."""
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def random_ellipse_phantom(size: int, rng: np.random.Generator, supersample: int = 2) -> np.ndarray:
    """One random head-like phantom on [−1, 1]², drawn inside the inscribed circle:

    a bright skull (intensity 1) around soft tissue of intensity t ~ U[0.15, 0.35], and 4 to 10
    inner ellipses (centres within radius 0.55, semi-axes U[0.03, 0.25], any rotation) that add
    U[−0.2, 0.4] each; clipped to [0, 1], rendered at ``supersample``× and block-averaged.
    """
    n = size * supersample
    axis = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    xx, yy = np.meshgrid(axis, -axis)
    a, b = rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.92)
    tilt = rng.uniform(-0.3, 0.3)
    thick = rng.uniform(0.03, 0.07)
    image = np.where(_ellipse_mask(xx, yy, 0.0, 0.0, a, b, tilt), 1.0, 0.0)
    inside = _ellipse_mask(xx, yy, 0.0, 0.0, a - thick, b - thick, tilt)
    image[inside] = rng.uniform(0.15, 0.35)
    for _ in range(int(rng.integers(4, 11))):
        r, phi = 0.55 * math.sqrt(rng.uniform()), rng.uniform(0.0, 2 * math.pi)
        mask = _ellipse_mask(
            xx,
            yy,
            r * math.cos(phi),
            r * math.sin(phi),
            rng.uniform(0.03, 0.25),
            rng.uniform(0.03, 0.25),
            rng.uniform(0.0, math.pi),
        )
        image[mask & inside] += rng.uniform(-0.2, 0.4)
    return _resize_mean(np.clip(image, 0.0, 1.0), supersample)


def random_ellipse_phantoms(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` random ellipse phantoms (see :func:`random_ellipse_phantom`), shape (n, 1, size,
    size), float32 in [0, 1]; the same ``seed`` gives the same phantoms."""
    if n < 1 or size < 8:
        raise ValueError(f"need n ≥ 1 and size ≥ 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    images = np.stack([random_ellipse_phantom(size, rng) for _ in range(n)])
    return torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
