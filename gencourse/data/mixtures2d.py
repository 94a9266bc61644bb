"""Two-dimensional Gaussian mixtures: PacGAN's grid and ring (lectures 2, 4 and 12).

p(x) = (1/K) Σᵢ N(x; cᵢ, std² I), sampled exactly and with a closed-form log-density, so that
mode counts and likelihoods on them can be checked against the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Mixture2D:
    """An equal-weight mixture of isotropic Gaussians N(cᵢ, std² I) in the plane."""

    centers: torch.Tensor
    std: float

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points: a uniformly chosen center plus N(0, std² I) noise; shape (n, 2)."""
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        k = torch.randint(len(self.centers), (n,), generator=generator)
        return self.centers[k] + self.std * torch.randn(n, 2, generator=generator)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log (1/K) Σᵢ N(x; cᵢ, std² I), shape (n,)."""
        d2 = torch.cdist(x, self.centers).pow(2)
        log_comp = -d2 / (2 * self.std**2) - math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(log_comp, dim=1) - math.log(len(self.centers))


def grid_mixture(size: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture2D:
    """PacGAN's grid: size² modes at {−4, −2, 0, 2, 4}² (for the defaults), std 0.05."""
    axis = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) * spacing
    centers = torch.cartesian_prod(axis, axis)
    return Mixture2D(centers, std)


def ring_mixture(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture2D:
    """PacGAN's ring: n_modes modes evenly spaced on a circle of ``radius`` (1), std 0.01.
    (WGAN-GP's "8 Gaussians" is radius 2, std 0.02.)"""
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float32) / n_modes
    centers = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return Mixture2D(centers, std)
