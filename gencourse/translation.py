"""Image-to-image translation (lecture 11): pix2pix and CycleGAN.

* pix2pix (Isola et al., 2017): a generator G(x) trained on pairs (x, y) with the conditional
  GAN loss plus an L1 term, min_G max_D L_cGAN(G, D) + λ E‖y − G(x)‖₁, where the discriminator
  sees the pair, D(x, y) versus D(x, G(x)), and judges overlapping patches (PatchGAN).
* CycleGAN (Zhu et al., 2017): two generators G: A → B and F: B → A trained on unpaired
  images with two GAN losses plus the cycle-consistency loss
  E_a ‖F(G(a)) − a‖₁ + E_b ‖G(F(b)) − b‖₁.

The lecture's other pieces live in their own modules and are re-exported here under their old
names: AdaIN, the mapping network, the tiny style-based generator, style mixing and
progressive growing's fade-in in :mod:`gencourse.style`; GAN dissection's ``unit_iou`` in
:mod:`gencourse.dissection`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gencourse.dissection import unit_iou
from gencourse.gan import discriminator_loss, generator_loss
from gencourse.restoration import EncoderDecoder
from gencourse.style import (
    MappingNetwork,
    StyleBlock,
    TinyStyleGenerator,
    adain,
    adain_from,
    channel_stats,
    fade_in,
    style_mix,
)
from gencourse.train import Player, Step, adversarial_fit

__all__ = [
    "PatchDiscriminator",
    "UnitClamp",
    "cycle_consistency_loss",
    "receptive_field",
    "train_cyclegan",
    "train_pix2pix",
    "translation_generator",
    # re-exported from their own modules (the old names keep working)
    "MappingNetwork",
    "StyleBlock",
    "TinyStyleGenerator",
    "adain",
    "adain_from",
    "channel_stats",
    "fade_in",
    "style_mix",
    "unit_iou",
]

# ---------------------------------------------------------------------------------------------
# pix2pix


class _UnitClampFunction(torch.autograd.Function):
    """clamp(a, 0, 1); backward: the incoming gradient g where 0 ≤ a ≤ 1, and outside the
    interval only where a descent step a ← a − ηg moves a back towards it (g < 0 below 0,
    g > 0 above 1); 0 elsewhere."""

    @staticmethod
    def forward(ctx, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return a.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (a,) = ctx.saved_tensors
        inside = (a >= 0) & (a <= 1)
        back_in = ((a < 0) & (grad < 0)) | ((a > 1) & (grad > 0))
        return grad * (inside | back_in)


class UnitClamp(nn.Module):
    """Outputs in [0, 1] by clamp(a, 0, 1), with a gradient that does not vanish outside the
    interval: it passes wherever a descent step moves a back into [0, 1] (and is 0 where the
    step would push a further out, so that nothing drifts away unseen).

    A sigmoid would keep outputs in [0, 1] too, but trained with L1 on MNIST (four pixels in five
    black) every logit sinks far below 0 within a few hundred steps, the gradient σ'(a) vanishes
    and the generator outputs black for every input (lecture 11 measures it). A plain clamp has
    no gradient outside [0, 1], and a straight-through one lets an adversarial loss push the
    pre-activations arbitrarily far out.
    """

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return _UnitClampFunction.apply(a)


def translation_generator(
    in_channels: int = 1, out_channels: int = 1, width: int = 32, levels: int = 2
) -> nn.Sequential:
    """An image-to-image generator: the encoder-decoder with symmetric skips of lecture 8
    (:class:`~gencourse.restoration.EncoderDecoder`, additive skips as in RED-Net rather than
    pix2pix's concatenated U-Net skips), with LeakyReLU(0.2) units, which cannot die under an
    adversarial loss, and :class:`UnitClamp`, so that outputs lie in [0, 1] without a
    saturating gradient."""
    # EncoderDecoder keeps its weights channels-last itself (faster CPU convolutions)
    return nn.Sequential(
        EncoderDecoder(in_channels, out_channels, width, levels, skips=True, negative_slope=0.2), UnitClamp()
    )


class PatchDiscriminator(nn.Module):
    """A PatchGAN discriminator: ``n_layers`` stride-2 4×4 convolutions (LeakyReLU 0.2) and a
    final 3×3 convolution to one logit per patch, shape (n, 1, h', w'). Each logit sees a
    receptive field of 4 + 3·2 + … pixels (see :func:`receptive_field`), not the whole image.
    For pix2pix it takes the pair (x, y) stacked as channels (``in_channels`` = C_x + C_y)."""

    def __init__(self, in_channels: int = 2, width: int = 32, n_layers: int = 2) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be positive, got {n_layers}")
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(n_layers):
            layers += [nn.Conv2d(channels, width * 2**i, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = width * 2**i
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.kernels = [4] * n_layers + [3]
        self.strides = [2] * n_layers + [1]
        self.to(memory_format=torch.channels_last)  # CPU convolutions: a third less time per step

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat(images, dim=1))


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """The receptive field r of a stack of convolutions with the given kernel sizes and
    strides: r = 1 + Σ_l (k_l − 1) Π_{m<l} s_m."""
    if len(kernels) != len(strides):
        raise ValueError(f"{len(kernels)} kernel sizes but {len(strides)} strides")
    r, jump = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        r += (k - 1) * jump
        jump *= s
    return r


def train_pix2pix(
    generator: nn.Module,
    discriminator: nn.Module | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    l1_weight: float = 100.0,
    adv_weight: float = 1.0,
    conditional: bool = True,
    loss: str = "ns",
    batch_size: int = 32,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    seed: int = 0,
    desc: str = "pix2pix",
) -> dict[str, list[float]]:
    """pix2pix's objective on paired data (x, y) = (``inputs``, ``targets``):

        min_G  adv_weight · L_G + l1_weight · E‖y − G(x)‖₁   (mean absolute error per pixel),

    with L_G = ``generator_loss(loss, D(x, G(x)))`` and D minimising
    ``discriminator_loss(loss, D(x, y), D(x, G(x)))``. With ``conditional=False`` the
    discriminator sees only the output, D(y) versus D(G(x)) (SRGAN's choice). With
    ``discriminator=None`` (or ``adv_weight=0``) this is plain L1 regression. Returns
    ``{"step", "l1", "g_adv", "d_loss"}`` (nan entries for the parts that are off).
    """
    if inputs.shape[0] != targets.shape[0] or inputs.dim() != 4 or targets.dim() != 4:
        raise ValueError(
            f"expected paired batches (N, C, H, W), got {tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    if l1_weight < 0 or adv_weight < 0 or (l1_weight == 0 and (adv_weight == 0 or discriminator is None)):
        raise ValueError(
            f"need a positive weight on some loss, got l1_weight={l1_weight}, adv_weight={adv_weight}"
        )
    use_adv = discriminator is not None and adv_weight > 0

    def judge(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return discriminator(x, y) if conditional else discriminator(y)

    def translate(t: Step) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch of pairs (x, y) and G(x), drawn once per step and shared by D and G."""
        if "fake" not in t.shared:
            idx = torch.randint(len(inputs), (batch_size,), generator=t.rng)
            x, y = inputs[idx].to(t.device), targets[idx].to(t.device)
            t.shared.update(x=x, y=y, fake=generator(x))
        return t.shared["x"], t.shared["y"], t.shared["fake"]

    def d_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D: real pairs (x, y) against translated pairs (x, G(x))."""
        x, y, fake = translate(t)
        d_loss = discriminator_loss(loss, judge(x, y), judge(x, fake.detach()))
        return d_loss, {"d_loss": d_loss}

    def g_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G: adv_weight · L_G + l1_weight · E‖y − G(x)‖₁."""
        x, y, fake = translate(t)
        g_adv = generator_loss(loss, judge(x, fake)) if use_adv else None
        l1 = (fake - y).abs().mean()
        return l1_weight * l1 + (adv_weight * g_adv if use_adv else 0.0), {"l1": l1, "g_adv": g_adv}

    adam = lambda module: torch.optim.Adam(module.parameters(), lr=lr, betas=betas)  # noqa: E731
    d = Player([discriminator], d_step, adam(discriminator)) if use_adv else None
    return adversarial_fit(
        d,
        Player([generator], g_step, adam(generator)),
        steps,
        seed=seed,
        keys=("l1", "g_adv", "d_loss"),
        desc=desc,
    )


# ---------------------------------------------------------------------------------------------
# CycleGAN


def cycle_consistency_loss(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """The cycle-consistency loss E‖F(G(x)) − x‖₁ of one direction, as the mean absolute error
    per pixel between ``x`` and its round trip ``reconstruction`` = F(G(x))."""
    if x.shape != reconstruction.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} and {tuple(reconstruction.shape)}")
    return (reconstruction - x).abs().mean()


def train_cyclegan(
    g_ab: nn.Module,
    g_ba: nn.Module,
    d_a: nn.Module,
    d_b: nn.Module,
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    steps: int,
    cycle_weight: float = 10.0,
    loss: str = "lsgan",
    batch_size: int = 32,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    seed: int = 0,
    desc: str = "CycleGAN",
) -> dict[str, list[float]]:
    """CycleGAN on unpaired samples of two domains A and B:

        L(G, F, D_A, D_B) = L_GAN(G, D_B) + L_GAN(F, D_A) + λ [E_a ‖F(G(a)) − a‖₁ + E_b ‖G(F(b)) − b‖₁],

    G = ``g_ab``, F = ``g_ba``, λ = ``cycle_weight``, with the least-squares GAN loss by default
    (as in the paper). Each step draws independent batches of a and b (no pairs), updates both
    discriminators on real versus translated images, then both generators. Returns
    ``{"step", "cycle", "g_adv", "d_loss"}``.
    """
    if images_a.dim() != 4 or images_b.dim() != 4:
        raise ValueError(
            f"expected image batches (N, C, H, W), got {tuple(images_a.shape)}, {tuple(images_b.shape)}"
        )

    def d_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Both discriminators: real images of their domain against translated ones."""
        a = images_a[torch.randint(len(images_a), (batch_size,), generator=t.rng)].to(t.device)
        b = images_b[torch.randint(len(images_b), (batch_size,), generator=t.rng)].to(t.device)
        fake_b, fake_a = g_ab(a), g_ba(b)
        t.shared.update(a=a, b=b, fake_a=fake_a, fake_b=fake_b)
        d_loss = discriminator_loss(loss, d_b(b), d_b(fake_b.detach())) + discriminator_loss(
            loss, d_a(a), d_a(fake_a.detach())
        )
        return d_loss, {"d_loss": d_loss}

    def g_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Both generators: the two GAN losses + λ × the two cycle-consistency losses."""
        a, b, fake_a, fake_b = (t.shared[k] for k in ("a", "b", "fake_a", "fake_b"))
        g_adv = generator_loss(loss, d_b(fake_b)) + generator_loss(loss, d_a(fake_a))
        cycle = cycle_consistency_loss(a, g_ba(fake_b)) + cycle_consistency_loss(b, g_ab(fake_a))
        return g_adv + cycle_weight * cycle, {"cycle": cycle, "g_adv": g_adv}

    def adam(*modules: nn.Module) -> torch.optim.Adam:
        return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=lr, betas=betas)

    return adversarial_fit(
        Player([d_a, d_b], d_step, adam(d_a, d_b)), Player([g_ab, g_ba], g_step, adam(g_ab, g_ba)),
        steps, seed=seed, keys=("cycle", "g_adv", "d_loss"), desc=desc,
    )  # fmt: skip
