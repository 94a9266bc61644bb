import math

import numpy as np
import pytest
import torch

from gencourse.dip import PixelImage, SkipNet, dip_input, fit_dip, fit_dip_batch, total_variation


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


def _double_nets(n: int) -> list[SkipNet]:
    return [small_net(seed=i).double() for i in range(n)]


@pytest.mark.parametrize("shared_input", [True, False])
def test_fit_dip_batch_follows_each_members_own_fit_dip_run(shared_input):
    """In double precision the batched fit is the same computation as one fit_dip per member:
    same losses, same weights, with an operator, a TV term and one member stopping early."""
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 1, 16, 16, generator=gen, dtype=torch.float64)
    a = torch.randn(40, 256, generator=gen, dtype=torch.float64) / 16

    def operator(x):
        return x.flatten(1) @ a.T

    targets = operator(clean) + torch.tensor([[0.0], [3.0], [3.0]], dtype=torch.float64)  # 1, 2: far
    if shared_input:
        z = dip_input(4, 16, 16, seed=5).double()
        zs = [z] * 3
    else:
        z = torch.cat([dip_input(4, 16, 16, seed=i) for i in range(3)]).double()
        zs = [z[i : i + 1] for i in range(3)]
    solo = _double_nets(3)
    # a stop level that member 0's run reaches within the first steps and the others do not
    first = fit_dip(_double_nets(1)[0], zs[0], targets[:1], 4, operator=operator, tv_weight=0.1)["loss"]
    stop = first[2] * (1 + 1e-9)
    solo_hist = [
        fit_dip(net, zs[i], targets[i : i + 1], 12, operator=operator, tv_weight=0.1, stop_loss=stop)
        for i, net in enumerate(solo)
    ]
    batch = _double_nets(3)
    batch_hist = fit_dip_batch(batch, z, targets, 12, operator=operator, tv_weight=0.1, stop_loss=stop)
    assert len(solo_hist[0]["loss"]) == len(batch_hist[0]["loss"]) <= 3  # member 0 stopped early
    for i in range(3):
        assert np.allclose(solo_hist[i]["loss"], batch_hist[i]["loss"], rtol=1e-10, atol=0)
        with torch.no_grad():
            assert torch.allclose(solo[i](zs[i]), batch[i](zs[i]), rtol=0, atol=1e-10)
        # every weight that shapes the output agrees; a convolution's bias right before a batch
        # norm does not (the norm subtracts it, so its gradient is rounding noise that Adam's
        # normalised steps turn into steps of any sign)
        cancelled = {
            f"{name}.0.bias"
            for name, mod in solo[i].named_modules()
            if isinstance(mod, torch.nn.Sequential) and isinstance(mod[0], torch.nn.Conv2d)
            if len(mod) > 1 and isinstance(mod[1], torch.nn.BatchNorm2d)
        }
        assert cancelled and len(cancelled) < len(list(solo[i].parameters()))
        for (name, p), q in zip(solo[i].named_parameters(), batch[i].parameters(), strict=True):
            if name not in cancelled:
                assert torch.allclose(p, q, rtol=0, atol=1e-9), name
    assert max(len(h["loss"]) for h in batch_hist) == 12
    assert not torch.equal(batch[0].out.weight, batch[1].out.weight)


def test_fit_dip_batch_rejects_mismatched_inputs():
    nets = [small_net(0), small_net(1)]
    z = dip_input(4, 16, 16)
    with pytest.raises(ValueError, match="one target per network"):
        fit_dip_batch(nets, z, torch.rand(3, 1, 16, 16), 1)
    with pytest.raises(ValueError, match="one architecture"):
        fit_dip_batch([small_net(0), small_net(0, skip_channels=0)], z, torch.rand(2, 1, 16, 16), 1)
    with pytest.raises(ValueError, match="z must be"):
        fit_dip_batch(nets, dip_input(4, 16, 16).expand(3, -1, -1, -1), torch.rand(2, 1, 16, 16), 1)
    with pytest.raises(ValueError, match="shape"):
        fit_dip_batch(nets, z, torch.rand(2, 5), 1)


def test_stacked_skipnet_is_its_members_side_by_side():
    """SkipNet.stack: member s of the stacked network computes nets[s] on z[s] (train mode, batch
    statistics per member, and their running averages), gradients included; unstack writes back."""
    nets = [small_net(seed=i) for i in range(3)]
    stacked = SkipNet.stack(nets)
    assert stacked.members == 3 and stacked.down[0][0][0].groups == 3
    z = torch.stack([dip_input(4, 16, 16, seed=i) for i in range(3)])  # (3, 1, 4, 16, 16)
    out = stacked(z)
    assert out.shape == (3, 1, 1, 16, 16)
    out.pow(2).sum().backward()
    for s, net in enumerate(nets):
        alone = net(z[s])
        torch.testing.assert_close(out[s], alone, rtol=1e-5, atol=1e-6)
        alone.pow(2).sum().backward()
        torch.testing.assert_close(
            stacked.out.weight.grad.chunk(3)[s], net.out.weight.grad, rtol=1e-4, atol=1e-6
        )
        running = stacked.down[0][0][1].running_mean.chunk(3)[s]
        torch.testing.assert_close(running, net.down[0][0][1].running_mean)
    with torch.no_grad():
        for p in stacked.parameters():
            p.add_(0.5)
    copies = [small_net(seed=9) for _ in range(3)]
    stacked.unstack([copies[0], None, copies[2]])
    assert torch.equal(copies[2].out.weight, stacked.out.weight.chunk(3)[2])
    assert torch.equal(copies[1].out.weight, small_net(seed=9).out.weight)  # None: left as it was
    with pytest.raises(ValueError, match="one architecture"):
        SkipNet.stack([small_net(0), small_net(0, skip_channels=0)])
    with pytest.raises(ValueError, match="expected inputs"):
        stacked(z[:2])


def test_pixel_image_is_a_free_image_and_stacks():
    images = [PixelImage(1, 4, 4) for _ in range(2)]
    with torch.no_grad():
        images[1].pixels.fill_(0.25)
    assert torch.equal(images[0](torch.randn(1, 3, 4, 4)), torch.zeros(1, 1, 4, 4))
    stacked = PixelImage.stack(images)
    assert stacked(None).shape == (2, 1, 1, 4, 4) and float(stacked.pixels[1].detach().mean()) == 0.25
    target = torch.rand(2, 1, 4, 4)
    fit_dip_batch(images, dip_input(1, 4, 4), target, 300, lr=0.05)
    for s in range(2):  # no prior: the pixels fit the target exactly
        torch.testing.assert_close(images[s].pixels[0], target[s], atol=1e-3, rtol=0)


def test_stacking_draws_nothing_from_the_global_random_stream():
    nets = [small_net(seed=i) for i in range(2)]
    state = torch.get_rng_state()
    SkipNet.stack(nets)
    PixelImage.stack([PixelImage(1, 4, 4), PixelImage(1, 4, 4)])
    assert torch.equal(torch.get_rng_state(), state)
