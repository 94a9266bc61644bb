import math

import numpy as np
import pytest
import torch

from gencourse.dip import SkipNet, dip_input, fit_dip, total_variation


def small_net(seed: int = 0, skip_channels: int = 2) -> SkipNet:
    torch.manual_seed(seed)
    return SkipNet(in_channels=4, out_channels=1, channels=(8, 8), skip_channels=skip_channels)


def test_skipnet_maps_the_input_to_an_image_in_the_unit_interval():
    z = dip_input(4, 16, 12, seed=0)
    for skip in (0, 2):
        out = small_net(skip_channels=skip)(z)
        assert out.shape == (1, 1, 16, 12) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError):
        small_net()(dip_input(4, 14, 12))  # 14 is not a multiple of 2² = 4
    with pytest.raises(ValueError):
        SkipNet(channels=())


def test_dip_input_is_uniform_on_zero_to_scale_and_repeats():
    z = dip_input(8, 32, 32, seed=3, scale=0.1)
    assert z.shape == (1, 8, 32, 32) and torch.equal(z, dip_input(8, 32, 32, seed=3, scale=0.1))
    assert z.min() >= 0 and z.max() <= 0.1
    assert abs(z.mean().item() - 0.05) < 3 * 0.1 / math.sqrt(12 * z.numel())
    assert abs(z.var().item() - 0.01 / 12) < 1e-4


def test_total_variation_matches_a_hand_computation():
    x = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])
    # horizontal: |1−0| + |3−1| + 0 + 0 = 3; vertical: |2−0| + |2−1| + |2−3| = 4
    assert total_variation(x).tolist() == [7.0]
    y = torch.rand(3, 2, 5, 4)
    ref = np.abs(np.diff(y.numpy(), axis=2)).sum((1, 2, 3)) + np.abs(np.diff(y.numpy(), axis=3)).sum(
        (1, 2, 3)
    )
    assert np.allclose(total_variation(y).numpy(), ref, atol=1e-5)


def test_fit_dip_changes_the_weights_not_the_input_and_logs_psnr():
    gen = torch.Generator().manual_seed(1)
    clean = torch.linspace(0, 1, 16).repeat(16, 1)[None, None]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=gen)
    net, z = small_net(), dip_input(4, 16, 16, seed=2)
    z_before, w_before = z.clone(), [p.detach().clone() for p in net.parameters()]
    outputs = []
    history = fit_dip(net, z, noisy, steps=60, lr=0.01, clean=clean, callback=lambda s, o: outputs.append(o))
    assert torch.equal(z, z_before) and z.grad is None  # the minimisation is over w, not z
    assert any(not torch.equal(a, b) for a, b in zip(w_before, net.parameters(), strict=True))
    assert history["step"] == list(range(60)) and history["loss"][-1] < 0.5 * history["loss"][0]
    mse = [float(((o.clamp(0, 1) - clean) ** 2).mean()) for o in outputs]
    assert np.allclose(history["psnr"], [10 * math.log10(1 / e) for e in mse], atol=1e-4)
    assert np.allclose(history["loss"], [float(((o - noisy) ** 2).mean()) for o in outputs], rtol=1e-5)
    again = fit_dip(small_net(), z, noisy, steps=60, lr=0.01, clean=clean)
    assert again["loss"] == history["loss"]  # seeded and deterministic


def test_fit_dip_stops_at_the_noise_level_and_takes_an_operator():
    gen = torch.Generator().manual_seed(4)
    clean = torch.rand(1, 1, 16, 16, generator=gen)
    mask = torch.rand(16, 16, generator=gen) > 0.5
    target = clean[..., mask]
    history = fit_dip(
        small_net(),
        dip_input(4, 16, 16),
        target,
        steps=500,
        lr=0.02,
        operator=lambda x: x[..., mask],
        stop_loss=0.02,
    )
    assert len(history["loss"]) < 500 and history["loss"][-1] <= 0.02 < min(history["loss"][:-1])
    with pytest.raises(ValueError):
        fit_dip(small_net(), dip_input(4, 16, 16), clean, steps=1, operator=lambda x: x[..., mask])
    history = fit_dip(small_net(), dip_input(4, 16, 16), clean, steps=3, tv_weight=0.1, input_noise=0.05)
    assert len(history["loss"]) == 3 and "psnr" not in history
