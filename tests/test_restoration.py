"""Tests of gencourse.restoration (and of the CT phantoms in gencourse.data) against hand-computed
values, scikit-image, autograd and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gencourse.data import random_ellipse_phantoms, shepp_logan
from gencourse.restoration import (
    EncoderDecoder,
    checkerboard_index,
    ct_reconstructions,
    dice_coefficient,
    dice_gradient,
    dice_loss,
    discs_in_noise,
    fbp,
    image_quality,
    line_integrals,
    low_dose_ct,
    noisy_line_integrals,
    pixel_loss,
    predict,
    projection_angles,
    psnr,
    ssim,
    train_pixelwise,
    upsampler,
)

# ---------------------------------------------------------------------------------------------
# Dice


def test_dice_hand_computed_overlaps():
    pred = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 0]])
    target = torch.tensor([[1.0, 0, 1, 0], [1, 1, 1, 0]])
    # image 1: |A ∩ B| = 1, |A| = |B| = 2 → 2/4; image 2: identical → 1
    per_image = dice_coefficient(pred, target, eps=1e-9, reduction="none")
    assert torch.allclose(per_image, torch.tensor([0.5, 1.0]), atol=1e-6)
    assert dice_coefficient(pred, target, eps=1e-9).item() == pytest.approx(0.75, abs=1e-6)
    # |A ∩ B| = 2, |A| = 3, |B| = 5 → 4/8
    a = torch.tensor([[[1.0, 1, 1, 0, 0, 0]]])
    b = torch.tensor([[[0.0, 1, 1, 1, 1, 1]]])
    assert dice_coefficient(a, b, eps=1e-9).item() == pytest.approx(0.5, abs=1e-6)


def test_dice_edge_cases_and_soft_values():
    empty = torch.zeros(2, 1, 3, 3)
    assert torch.allclose(dice_coefficient(empty, empty, reduction="none"), torch.ones(2))
    disjoint = dice_coefficient(torch.tensor([[1.0, 0]]), torch.tensor([[0.0, 1]]), eps=1e-9)
    assert disjoint.item() == pytest.approx(0.0, abs=1e-6)
    # soft: p = (0.5, 0.5), t = (1, 0): 2·0.5 / (1 + 1) = 0.5
    soft = dice_coefficient(torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 0.0]]), eps=1e-9)
    assert soft.item() == pytest.approx(0.5, abs=1e-6)
    assert dice_loss(torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        0.5, abs=1e-5
    )


def test_dice_matches_set_counting():
    rng = np.random.default_rng(0)
    a = rng.random((5, 1, 7, 9)) < 0.3
    b = rng.random((5, 1, 7, 9)) < 0.4
    expected = [2 * (x & y).sum() / (x.sum() + y.sum()) for x, y in zip(a, b, strict=True)]
    got = dice_coefficient(torch.tensor(a).double(), torch.tensor(b).double(), eps=1e-12, reduction="none")
    assert np.allclose(got.numpy(), expected)


def test_dice_gradient_matches_autograd():
    gen = torch.Generator().manual_seed(0)
    p = torch.rand(3, 1, 5, 5, generator=gen, dtype=torch.float64).requires_grad_()
    t = (torch.rand(3, 1, 5, 5, generator=gen, dtype=torch.float64) < 0.2).double()
    d = dice_coefficient(p, t, eps=0.1, reduction="none")
    (grad,) = torch.autograd.grad(d.sum(), p)
    assert torch.allclose(grad, dice_gradient(p.detach(), t, eps=0.1), atol=1e-12)


def test_dice_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        dice_coefficient(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="reduction"):
        dice_coefficient(torch.zeros(2, 4), torch.zeros(2, 4), reduction="sum")
    with pytest.raises(ValueError, match="at least 2"):
        dice_coefficient(torch.zeros(4), torch.zeros(4))


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM


@pytest.mark.parametrize("data_range", [1.0, 2.5])
def test_psnr_matches_skimage(data_range):
    rng = np.random.default_rng(1)
    x = rng.random((16, 16))
    y = x + 0.05 * rng.standard_normal((16, 16))
    expected = peak_signal_noise_ratio(x, y, data_range=data_range)
    assert psnr(x, y, data_range) == pytest.approx(expected, rel=1e-10)
    assert psnr(torch.tensor(x), torch.tensor(y), data_range) == pytest.approx(expected, rel=1e-6)


def test_psnr_hand_value_and_edge_cases():
    x = np.zeros((2, 2))
    assert psnr(x, x + 0.1) == pytest.approx(20.0)  # MSE 0.01 → 10 log10(1/0.01)
    assert psnr(x, x) == math.inf
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, data_range=0)


def test_ssim_and_image_quality_match_skimage():
    rng = np.random.default_rng(2)
    ref = torch.tensor(rng.random((3, 1, 20, 20)), dtype=torch.float32)
    noisy = ref + 0.1 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    q = image_quality(noisy, ref)
    for i in range(3):
        a, b = noisy[i, 0].double().numpy(), ref[i, 0].double().numpy()
        assert q["psnr"][i] == pytest.approx(peak_signal_noise_ratio(b, a, data_range=1.0))
        assert q["ssim"][i] == pytest.approx(structural_similarity(a, b, data_range=1.0))
    assert ssim(ref[0], ref[0]) == pytest.approx(1.0)
    assert q["ssim"].max() < 1.0
    with pytest.raises(ValueError):
        image_quality(noisy[:, 0], ref[:, 0])


# ---------------------------------------------------------------------------------------------
# Upsampling and the checkerboard index


def test_checkerboard_index_known_images():
    i, j = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    board = ((i + j) % 2).double()
    assert checkerboard_index(board).item() == pytest.approx(1.0)
    assert checkerboard_index(3 + 0.5 * board).item() == pytest.approx(1.0)
    ramp = (i + 0.0).double()  # 0,1,2,...: its even/odd rows differ by 1 in mean
    # phase means: rows a=0 → 3, a=1 → 4; Var of phase means 0.25; Var(ramp) = (64 − 1)/12
    assert checkerboard_index(ramp).item() == pytest.approx(0.25 / (63 / 12))
    assert checkerboard_index(torch.zeros(4, 4)).item() == 0.0
    with pytest.raises(ValueError, match="multiple"):
        checkerboard_index(torch.zeros(5, 4))


def test_checkerboard_index_of_white_noise():
    # E[(1/4) Σ (m_ab − ȳ)²] / σ² = (3/4) · 4/(HW) = 3/(HW) for white noise
    noise = torch.randn(2000, 16, 16, generator=torch.Generator().manual_seed(0))
    assert checkerboard_index(noise).mean().item() == pytest.approx(3 / 256, rel=0.1)


def test_upsamplers_shapes_and_overlap_counts():
    x = torch.ones(1, 1, 6, 6)
    for kind in ("deconv3", "deconv4", "resize"):
        assert upsampler(kind, 1, 2)(torch.zeros(2, 1, 5, 7)).shape == (2, 2, 10, 14)
    counts = {}
    for kind in ("deconv3", "deconv4"):
        layer = upsampler(kind, 1, 1)
        torch.nn.init.ones_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
        counts[kind] = layer(x).detach()[0, 0, 2:-2, 2:-2]
    # kernel 3, stride 2: even rows get 1 tap, odd rows 2 → 1, 2, 4 taps in 2-D
    assert torch.equal(counts["deconv3"][::2, ::2], torch.ones(4, 4))
    assert torch.equal(counts["deconv3"][1::2, ::2], 2 * torch.ones(4, 4))
    assert torch.equal(counts["deconv3"][1::2, 1::2], 4 * torch.ones(4, 4))
    assert torch.equal(counts["deconv4"], 4 * torch.ones(8, 8))  # kernel 4, stride 2: even
    torch.manual_seed(0)
    resized = upsampler("resize", 1, 1)(x).detach()[0, 0, 1:-1, 1:-1]
    assert torch.allclose(resized, resized[0, 0].expand_as(resized))
    with pytest.raises(ValueError, match="known: deconv3, deconv4, resize"):
        upsampler("bilinear", 1, 1)


# ---------------------------------------------------------------------------------------------
# The encoder-decoder


def test_encoder_decoder_shapes_residual_and_skips():
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = EncoderDecoder(width=4, levels=2, skips=True, residual=True)
    assert net(x).shape == x.shape
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    assert torch.equal(net(x), x)  # residual output x − r(x) with r ≡ 0
    torch.manual_seed(0)
    with_skips = EncoderDecoder(2, 3, width=4, levels=1, skips=True)
    torch.manual_seed(0)
    without = EncoderDecoder(2, 3, width=4, levels=1, skips=False)
    x2 = torch.randn(1, 2, 8, 8)
    assert with_skips(x2).shape == (1, 3, 8, 8)
    assert not torch.allclose(with_skips(x2), without(x2))
    with pytest.raises(ValueError, match="residual"):
        EncoderDecoder(1, 2, residual=True)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 1, 10, 12))
    with pytest.raises(ValueError, match="known"):
        EncoderDecoder(upsample="pixelshuffle")


def test_encoder_decoder_leaky_units_pass_gradient_where_relus_are_silent():
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    relu = EncoderDecoder(width=4, levels=1)
    torch.manual_seed(0)
    leaky = EncoderDecoder(width=4, levels=1, negative_slope=0.2)
    for net in (relu, leaky):  # every pre-activation of the head negative: ReLU units all silent
        torch.nn.init.constant_(net.head.bias, -100.0)
    relu(x).sum().backward()
    leaky(x).sum().backward()
    assert relu.head.weight.grad.abs().max() == 0
    assert leaky.head.weight.grad.abs().max() > 0
    torch.manual_seed(0)
    assert torch.equal(EncoderDecoder(width=4, levels=1, negative_slope=0.0)(x), _fresh_relu_output(x))


def _fresh_relu_output(x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    return EncoderDecoder(width=4, levels=1)(x)


def test_pixel_losses():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, 4, 4, generator=gen)
    t = (torch.rand(2, 1, 4, 4, generator=gen) < 0.5).float()
    p = torch.sigmoid(z)
    bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    assert pixel_loss("bce", z, t).item() == pytest.approx(bce.item(), rel=1e-5)
    assert pixel_loss("mse", z, t).item() == pytest.approx(((z - t) ** 2).mean().item(), rel=1e-6)
    assert pixel_loss("dice", z, t).item() == pytest.approx(dice_loss(p, t).item(), rel=1e-6)
    with pytest.raises(ValueError, match="known: mse, bce, dice"):
        pixel_loss("l1", z, t)


def test_train_pixelwise_learns_and_is_deterministic():
    images, masks = discs_in_noise(64, size=16, radius=(2.0, 4.0), noise=0.3, seed=0)

    def run():
        torch.manual_seed(0)
        net = EncoderDecoder(1, 1, width=8, levels=1)
        hist = train_pixelwise(net, images, masks, steps=60, loss="bce", batch_size=16, lr=3e-3, augment=True)
        return net, hist

    net, hist = run()
    _, again = run()
    assert hist["loss"] == again["loss"]
    assert np.mean(hist["loss"][-10:]) < 0.5 * np.mean(hist["loss"][:5])
    pred = (predict(net, images) > 0).float()
    assert dice_coefficient(pred, masks).item() > 0.7


def test_discs_in_noise():
    images, masks = discs_in_noise(50, size=32, radius=(2.0, 3.0), n_discs=(1, 1), noise=0.0, seed=3)
    assert images.shape == masks.shape == (50, 1, 32, 32)
    assert torch.equal(images, masks)
    area = masks.sum(dim=(1, 2, 3))
    assert area.min() >= math.pi * 4 * 0.6 and area.max() <= math.pi * 9 * 1.4
    again, _ = discs_in_noise(50, size=32, radius=(2.0, 3.0), n_discs=(1, 1), noise=0.0, seed=3)
    assert torch.equal(again, images)


# ---------------------------------------------------------------------------------------------
# CT


def _disc(size: int, radius: float) -> np.ndarray:
    axis = (np.arange(size) + 0.5) / size * 2 - 1
    xx, yy = np.meshgrid(axis, axis)
    return (xx**2 + yy**2 <= radius**2).astype(float)


def test_projection_angles():
    assert np.allclose(projection_angles(4), [0, 45, 90, 135])
    assert np.allclose(projection_angles([10, 20]), [10, 20])
    with pytest.raises(ValueError):
        projection_angles(0)


def test_line_integrals_of_a_disc_match_chord_lengths():
    # a unit-intensity disc of radius R (half-widths): chord 2√(R² − s²) half-widths = √(R² − s²) widths
    size, radius, attenuation = 128, 0.5, 4.0
    p = line_integrals(_disc(size, radius), [0.0, 60.0], attenuation)
    s = (np.arange(size) + 0.5 - size / 2) / (size / 2)
    chord = attenuation * np.sqrt(np.clip(radius**2 - s**2, 0, None))
    assert np.abs(p[:, 0] - chord).max() < 0.05 * attenuation * radius
    assert p[size // 2, 1] == pytest.approx(attenuation * radius, rel=0.02)


def test_poisson_line_integrals_mean_variance_and_clipping():
    p = np.full(200_000, 1.5)
    noisy = noisy_line_integrals(p, photons=1e4, rng=0)
    # delta method: p̂ ≈ p + N(0, e^p / I0)
    assert noisy.mean() == pytest.approx(1.5, abs=2e-3)
    assert noisy.var() == pytest.approx(math.exp(1.5) / 1e4, rel=0.03)
    assert np.array_equal(noisy_line_integrals(p[:5], math.inf), p[:5])
    starved = noisy_line_integrals(np.full(1000, 50.0), photons=100.0, rng=1)
    assert np.allclose(starved, math.log(100.0))  # counts clipped at 1 → −log(1/I0)
    with pytest.raises(ValueError):
        noisy_line_integrals(p, photons=0)


def test_low_dose_ct_noise_falls_with_dose_and_vanishes_at_high_dose():
    phantom = shepp_logan(64)
    noiseless = low_dose_ct(phantom, math.inf, 60)
    assert psnr(noiseless, phantom[0]) > 25  # FBP itself reconstructs the phantom
    errors = [
        np.sqrt(np.mean((low_dose_ct(phantom, i0, 60, seed=0) - noiseless) ** 2))
        for i0 in (1e2, 1e3, 1e4, 1e5)
    ]
    assert all(a > 2 * b for a, b in zip(errors[:-1], errors[1:], strict=True))  # ≈ √10 per decade
    very_high = low_dose_ct(phantom, 1e12, 60, seed=0)
    assert np.abs(very_high - noiseless).max() < 1e-3
    assert np.allclose(noiseless, fbp(line_integrals(phantom, 60), 60))


def test_ct_reconstructions_batch():
    phantoms = random_ellipse_phantoms(3, size=32, seed=0)
    low, exact = ct_reconstructions(phantoms, [1e3, math.inf], 30, seed=0)
    assert low.shape == exact.shape == (3, 1, 32, 32) and low.dtype == torch.float32
    for i in range(3):
        assert np.allclose(exact[i, 0].numpy(), low_dose_ct(phantoms[i], math.inf, 30), atol=1e-5)
    assert (image_quality(low, exact)["psnr"] < 60).all()
    with pytest.raises(ValueError):
        ct_reconstructions(phantoms[:, 0], [1e3], 30)


def test_phantoms():
    a = random_ellipse_phantoms(4, size=32, seed=5)
    assert a.shape == (4, 1, 32, 32) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1 and a.max() > 0.9  # the skull has intensity 1
    assert torch.equal(a, random_ellipse_phantoms(4, size=32, seed=5))
    assert not torch.equal(a, random_ellipse_phantoms(4, size=32, seed=6))
    axis = (torch.arange(32) + 0.5) / 32 * 2 - 1
    outside = axis[:, None] ** 2 + axis[None, :] ** 2 > 1
    assert a[:, 0][:, outside].abs().max() == 0  # zero outside the inscribed circle
    sl = shepp_logan(48)
    assert sl.shape == (1, 48, 48) and 0 <= sl.min() and sl.max() <= 1
