"""Tests of gencourse.translation (pix2pix, CycleGAN, AdaIN, the mapping network, style mixing,
progressive growing's fade-in, GAN dissection's IoU), each against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gencourse.translation import (
    MappingNetwork,
    PatchDiscriminator,
    StyleBlock,
    TinyStyleGenerator,
    UnitClamp,
    adain,
    adain_from,
    channel_stats,
    cycle_consistency_loss,
    fade_in,
    receptive_field,
    style_mix,
    train_cyclegan,
    train_pix2pix,
    translation_generator,
    unit_iou,
)

# ---------------------------------------------------------------------------------------------
# pix2pix and the PatchGAN discriminator


def test_translation_generator_maps_images_to_images_in_the_unit_interval():
    torch.manual_seed(0)
    g = translation_generator(width=8)
    y = g(torch.rand(3, 1, 28, 28))
    assert y.shape == (3, 1, 28, 28) and y.min() >= 0 and y.max() <= 1


def test_unit_clamp_clamps_and_passes_the_gradient_only_back_towards_the_interval():
    a = torch.tensor([-2.0, -2.0, 0.3, 0.3, 1.5, 1.5], requires_grad=True)
    out = UnitClamp()(a)
    assert out.tolist() == pytest.approx([0.0, 0.0, 0.3, 0.3, 1.0, 1.0])
    g = torch.tensor([-1.0, 1.0, -2.0, 2.0, -3.0, 3.0])
    (out * g).sum().backward()
    # below 0 a descent step (a ← a − ηg) moves a up only if g < 0; above 1, down only if g > 0
    assert a.grad.tolist() == [-1.0, 0.0, -2.0, 2.0, 0.0, 3.0]


def test_unit_clamp_lets_l1_pull_a_pixel_back_from_below_zero():
    a = torch.tensor([-5.0], requires_grad=True)
    opt = torch.optim.SGD([a], lr=1.0)
    for _ in range(10):
        opt.zero_grad()
        (UnitClamp()(a) - 1.0).abs().sum().backward()
        opt.step()
    assert 0.0 <= a.item() <= 1.0


def test_receptive_field_by_hand():
    assert receptive_field([3, 3, 3], [1, 1, 1]) == 7
    assert receptive_field([4, 4, 3], [2, 2, 1]) == 1 + 3 + 3 * 2 + 2 * 4
    with pytest.raises(ValueError, match="strides"):
        receptive_field([3], [1, 1])


def test_patch_discriminator_receptive_field_matches_the_gradient_support():
    """The input pixels that one output logit depends on form a square of side r."""
    torch.manual_seed(0)
    d = PatchDiscriminator(in_channels=2, width=4, n_layers=2)
    x = torch.randn(1, 2, 64, 64, requires_grad=True)
    out = d(x[:, :1], x[:, 1:])
    assert out.shape == (1, 1, 16, 16)
    out[0, 0, 8, 8].backward()
    support = (x.grad.abs().sum((0, 1)) > 0).nonzero()
    side = support.max(0).values - support.min(0).values + 1
    assert side.tolist() == [receptive_field(d.kernels, d.strides)] * 2


def test_pix2pix_l1_only_fits_and_is_seeded():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 28, 28, generator=gen)
    y = 1 - x  # a paired task a small network learns quickly
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        g = translation_generator(width=8)
        runs.append(train_pix2pix(g, None, x, y, steps=25, batch_size=4, lr=3e-3))
    assert runs[0]["l1"] == runs[1]["l1"]
    assert np.mean(runs[0]["l1"][-5:]) < 0.8 * np.mean(runs[0]["l1"][:5])
    assert all(np.isnan(runs[0]["d_loss"]))


@pytest.mark.parametrize("conditional", [True, False])
def test_pix2pix_with_a_discriminator_runs(conditional):
    torch.manual_seed(0)
    x, y = torch.rand(16, 1, 28, 28), torch.rand(16, 1, 28, 28)
    d = PatchDiscriminator(2 if conditional else 1, width=4)
    hist = train_pix2pix(
        translation_generator(width=8), d, x, y, steps=2, batch_size=4, conditional=conditional
    )
    assert all(np.isfinite(hist["d_loss"])) and all(np.isfinite(hist["g_adv"]))
    with pytest.raises(ValueError, match="positive weight"):
        train_pix2pix(translation_generator(width=8), None, x, y, steps=1, l1_weight=0)
    with pytest.raises(ValueError, match="paired"):
        train_pix2pix(translation_generator(width=8), None, x, y[:3], steps=1)


# ---------------------------------------------------------------------------------------------
# CycleGAN


def test_cycle_consistency_loss_is_the_mean_absolute_error():
    a, b = torch.rand(4, 1, 5, 5), torch.rand(4, 1, 5, 5)
    assert torch.isclose(cycle_consistency_loss(a, b), torch.tensor(np.abs(a.numpy() - b.numpy()).mean()))
    with pytest.raises(ValueError, match="shapes"):
        cycle_consistency_loss(a, b[:2])


def _identity_conv() -> nn.Conv2d:
    conv = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    return conv


def test_cyclegan_round_trip_of_identity_maps_costs_nothing():
    torch.manual_seed(0)
    a, b = torch.rand(16, 1, 8, 8), torch.rand(16, 1, 8, 8)
    d_a, d_b = PatchDiscriminator(1, 4, 1), PatchDiscriminator(1, 4, 1)
    hist = train_cyclegan(_identity_conv(), _identity_conv(), d_a, d_b, a, b, steps=1, batch_size=4, lr=0.0)
    assert hist["cycle"][0] == pytest.approx(0.0, abs=1e-7)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        g, f = translation_generator(width=4), translation_generator(width=4)
        d_a, d_b = PatchDiscriminator(1, 4), PatchDiscriminator(1, 4)
        runs.append(train_cyclegan(g, f, d_a, d_b, a, b, steps=2, batch_size=4))
    assert runs[0]["cycle"] == runs[1]["cycle"] and runs[0]["d_loss"] == runs[1]["d_loss"]
    assert runs[0]["cycle"][0] > 0


# ---------------------------------------------------------------------------------------------
# AdaIN, mapping network, style-based generator


def test_channel_stats_match_numpy():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    mean, std = channel_stats(x, eps=0.0)
    assert torch.allclose(mean[..., 0, 0], torch.tensor(x.numpy().mean(axis=(2, 3))))
    assert torch.allclose(std[..., 0, 0], torch.tensor(x.numpy().std(axis=(2, 3))))
    with pytest.raises(ValueError, match="features"):
        channel_stats(torch.zeros(3, 4))


def test_adain_output_has_the_style_statistics():
    gen = torch.Generator().manual_seed(0)
    content = 3 * torch.randn(4, 6, 8, 8, generator=gen) + 2
    style = 0.5 * torch.randn(4, 6, 5, 5, generator=gen) - 1
    out = adain_from(content, style, eps=0.0)
    m_out, s_out = channel_stats(out, eps=0.0)
    m_sty, s_sty = channel_stats(style, eps=0.0)
    assert torch.allclose(m_out, m_sty, atol=1e-5) and torch.allclose(s_out, s_sty, atol=1e-5)
    # AdaIN forgets the content's own per-channel affine statistics
    assert torch.allclose(adain_from(5 * content - 7, style, eps=0.0), out, atol=1e-4)
    mean, std = torch.randn(4, 6, generator=gen), torch.rand(4, 6, generator=gen) + 0.5
    m2, s2 = channel_stats(adain(content, mean, std, eps=0.0), eps=0.0)
    assert torch.allclose(m2[..., 0, 0], mean, atol=1e-5) and torch.allclose(s2[..., 0, 0], std, atol=1e-5)


def test_adain_equals_the_formula_written_out_values_and_gradients():
    """AdaIN by the fused instance norm = σ_s (x − μ(x)) / σ(x) + μ_s with channel_stats."""
    gen = torch.Generator().manual_seed(1)
    content = (3 * torch.randn(5, 4, 7, 6, generator=gen, dtype=torch.float64) + 1).requires_grad_()
    mean = torch.randn(5, 4, generator=gen, dtype=torch.float64).requires_grad_()
    std = (torch.rand(5, 4, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    mu, sigma = channel_stats(content, eps=1e-5)
    written = std[..., None, None] * (content - mu) / sigma + mean[..., None, None]
    fused = adain(content, mean, std, eps=1e-5)
    assert torch.allclose(fused, written, rtol=0, atol=1e-10)
    weights = torch.randn(fused.shape, generator=gen, dtype=torch.float64)
    g_fused = torch.autograd.grad((weights * fused).sum(), (content, mean, std))
    g_written = torch.autograd.grad((weights * written).sum(), (content, mean, std))
    for a, b in zip(g_fused, g_written, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)
    with pytest.raises(ValueError):
        adain(torch.zeros(3, 4), mean, std)


def test_mapping_network_normalises_z():
    torch.manual_seed(0)
    f = MappingNetwork(latent_dim=8, w_dim=16, depth=2)
    z = torch.randn(5, 8)
    assert f(z).shape == (5, 16)
    assert torch.allclose(f(z), f(3.0 * z), atol=1e-5)  # pixel norm: only the direction of z matters


def test_style_block_imposes_its_style():
    torch.manual_seed(0)
    block = StyleBlock(4, 6, w_dim=8, upsample=True)
    h, w = torch.randn(3, 4, 7, 7), torch.randn(3, 8)
    out = block(h, w)
    assert out.shape == (3, 6, 14, 14)
    mean, std = block.style(w)
    m, s = channel_stats(out)
    assert torch.allclose(m[..., 0, 0], mean, atol=1e-4)
    assert torch.allclose(s[..., 0, 0], std.abs(), atol=1e-2)


def test_style_mixing_extremes_are_the_two_parents():
    torch.manual_seed(0)
    g = TinyStyleGenerator(latent_dim=8, w_dim=8, channels=8, depth=2)
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    x1 = g(z1)
    assert x1.shape == (2, 1, 28, 28) and x1.min() >= 0 and x1.max() <= 1
    assert torch.allclose(style_mix(g, z1, z2, g.n_styles), x1)
    assert torch.allclose(style_mix(g, z1, z2, 0), g(z2))
    mixed = style_mix(g, z1, z2, 2)
    assert not torch.allclose(mixed, x1) and not torch.allclose(mixed, g(z2))
    with pytest.raises(ValueError, match="crossover"):
        style_mix(g, z1, z2, 5)
    with pytest.raises(ValueError, match="codes"):
        g.synthesize([torch.zeros(1, 8)])


# ---------------------------------------------------------------------------------------------
# progressive growing, dissection


def test_fade_in_interpolates_between_the_upsampled_old_and_the_new_output():
    old, new = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 8, 8)
    up = old.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert torch.equal(fade_in(old, new, 0.0), up)
    assert torch.equal(fade_in(old, new, 1.0), new)
    assert torch.allclose(fade_in(old, new, 0.25), 0.75 * up + 0.25 * new)
    with pytest.raises(ValueError, match="alpha"):
        fade_in(old, new, 1.5)


def test_unit_iou_by_hand():
    concept = torch.zeros(2, 4, 4)
    concept[:, :2, :2] = 1  # the top-left quarter of each image
    acts = torch.stack([concept, 1 - concept, torch.zeros(2, 4, 4)], 1)
    acts[:, 2, 0, :] = 1  # unit 2: the top row (2 of its 4 pixels lie in the concept)
    iou = unit_iou(acts, concept, quantile=0.5)
    assert torch.allclose(iou, torch.tensor([1.0, 0.0, 2 / (4 + 4 - 2)]))
