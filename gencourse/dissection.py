"""GAN dissection (Bau et al., 2019, lecture 11): the agreement (IoU) between a unit's
thresholded activation map and a concept's mask."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def unit_iou(activations: torch.Tensor, concept: torch.Tensor, quantile: float = 0.9) -> torch.Tensor:
    """GAN dissection's agreement between units and a concept: each unit u's activation maps
    a_u (n, H', W') are upsampled (bilinear) to the concept masks' size (n, H, W), thresholded at
    the unit's ``quantile`` over all images and positions, and compared with the masks by
    IoU_u = |{a_u > t_u} ∩ concept| / |{a_u > t_u} ∪ concept|. Returns (C,)."""
    if activations.dim() != 4 or concept.dim() != 3 or len(activations) != len(concept):
        raise ValueError(
            f"expected activations (n, C, H', W') and masks (n, H, W), got {tuple(activations.shape)} "
            f"and {tuple(concept.shape)}"
        )
    up = F.interpolate(activations, size=concept.shape[-2:], mode="bilinear", align_corners=False)
    flat = up.transpose(0, 1).reshape(up.shape[1], -1)
    thresholds = torch.quantile(flat, quantile, dim=1)
    on = flat > thresholds[:, None]
    mask = concept.reshape(1, -1).bool()
    inter = (on & mask).sum(1).float()
    union = (on | mask).sum(1).float()
    return inter / union.clamp_min(1)
