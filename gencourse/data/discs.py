"""A planted-factor data set (lecture 10): a disc placed by angle and radius around the centre."""

from __future__ import annotations

import math

import torch

DISC_ANGLE_RANGE = (0.0, 1.5 * math.pi)
DISC_RADIUS_RANGE = (0.25, 0.75)


def render_discs(
    angle: torch.Tensor, radius: torch.Tensor, size: int = 32, disc_radius: float = 0.12
) -> torch.Tensor:
    """Images (n, 1, size, size) of one bright disc each, centred at the point at polar
    coordinates (``radius``·size/2, ``angle``) around the canvas centre (angle measured
    anticlockwise from the x axis, image rows pointing down). Pixel (i, j) has centre
    p = (j + ½ − size/2, size/2 − i − ½) and value clamp(ρ − ‖p − m‖ + ½, 0, 1), ρ =
    ``disc_radius``·size: 1 inside the disc, 0 outside, a one-pixel linear ramp on the edge."""
    angle = torch.as_tensor(angle, dtype=torch.float32).reshape(-1)
    radius = torch.as_tensor(radius, dtype=torch.float32).reshape(-1)
    if angle.shape != radius.shape:
        raise ValueError(f"angle and radius must have the same length, got {len(angle)} and {len(radius)}")
    if size < 8 or not 0 < disc_radius < 0.5:
        raise ValueError(
            f"need size ≥ 8 and 0 < disc_radius < 0.5, got size={size}, disc_radius={disc_radius}"
        )
    half = size / 2
    axis = torch.arange(size, dtype=torch.float32) + 0.5 - half
    cx = (radius * half * torch.cos(angle))[:, None, None]
    cy = (radius * half * torch.sin(angle))[:, None, None]
    dist = torch.sqrt((axis[None, None, :] - cx) ** 2 + (-axis[None, :, None] - cy) ** 2)
    return (disc_radius * size - dist + 0.5).clamp(0.0, 1.0).unsqueeze(1)


def sample_disc_factors(
    n: int,
    generator: torch.Generator | None = None,
    angle_range: tuple[float, float] = DISC_ANGLE_RANGE,
    radius_range: tuple[float, float] = DISC_RADIUS_RANGE,
) -> torch.Tensor:
    """n independent factor pairs (angle, radius), angle ~ U[``angle_range``] (radians) and
    radius ~ U[``radius_range``] (a fraction of half the canvas); shape (n, 2)."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    (a0, a1), (r0, r1) = angle_range, radius_range
    if not (a0 < a1 and 0 <= r0 < r1 <= 1):
        raise ValueError(f"need angle_range a0 < a1 and 0 ≤ r0 < r1 ≤ 1, got {angle_range}, {radius_range}")
    u = torch.rand(n, 2, generator=generator)
    return torch.stack([a0 + (a1 - a0) * u[:, 0], r0 + (r1 - r0) * u[:, 1]], dim=1)


def planted_discs(
    n: int, size: int = 32, seed: int = 0, disc_radius: float = 0.12
) -> tuple[torch.Tensor, torch.Tensor]:
    """The planted two-factor data set of InfoGAN-CR (Lin et al., 2020), here on a
    ``size``×``size`` canvas (the paper's is 64×64): ``n`` images of a disc whose position is
    set by two independent factors, angle ~ U[0, 3π/2] and radius ~ U[0.25, 0.75] (a fraction
    of half the canvas) around the centre. Returns (images (n, 1, size, size) in [0, 1],
    factors (n, 2) = (angle, radius)); the same ``seed`` gives the same data."""
    factors = sample_disc_factors(n, torch.Generator().manual_seed(seed))
    return render_discs(factors[:, 0], factors[:, 1], size, disc_radius), factors


def disc_factors_from_images(images: torch.Tensor) -> torch.Tensor:
    """Read the factors (angle, radius) back from disc images (n, 1, size, size): the centre
    of mass m = Σ p·x_p / Σ x_p of the pixel centres p (x right, y up, origin at the canvas
    centre) in polar coordinates, angle = atan2(m_y, m_x) mod 2π and radius = ‖m‖/(size/2).
    Exact for :func:`render_discs` up to the pixel grid; shape (n, 2)."""
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"expected images (n, 1, size, size), got shape {tuple(images.shape)}")
    size = images.shape[-1]
    axis = torch.arange(size, dtype=torch.float32, device=images.device) + 0.5 - size / 2
    w = images[:, 0].float()
    mass = w.sum((1, 2)).clamp_min(1e-8)
    mx = (w * axis[None, None, :]).sum((1, 2)) / mass
    my = (w * -axis[None, :, None]).sum((1, 2)) / mass
    return torch.stack([torch.atan2(my, mx) % (2 * math.pi), torch.sqrt(mx**2 + my**2) / (size / 2)], dim=1)
