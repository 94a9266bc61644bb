"""Tests of gencourse.gan (losses, penalties, packing, the training loop, the nets) and of the
divergences that the GAN lectures use, each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gencourse.divergences import js_divergence, parallel_lines, wasserstein1_1d
from gencourse.gan import (
    LOSSES,
    MLPDiscriminator,
    MLPGenerator,
    StackedMLP,
    clip_weights,
    data_sampler,
    discriminator_loss,
    dragan_penalty,
    generator_loss,
    gradient_penalty,
    pack_samples,
    sample_latent,
    snapshot_steps,
    train_gan,
    trained_dcgan,
    trivial_generators,
)
from gencourse.nets import DCGANDiscriminator, DCGANGenerator

# ---------------------------------------------------------------------------------------------
# losses


def _naive_losses(name: str, dr: torch.Tensor, df: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The table of Lucic et al. (2018), written literally with D = σ(logit) for mm/ns."""
    s_r, s_f = torch.sigmoid(dr), torch.sigmoid(df)
    if name in ("mm", "ns"):
        l_d = -torch.log(s_r).mean() - torch.log(1 - s_f).mean()
        l_g = torch.log(1 - s_f).mean() if name == "mm" else -torch.log(s_f).mean()
    elif name == "wgan":
        l_d, l_g = -dr.mean() + df.mean(), -df.mean()
    elif name == "lsgan":
        l_d, l_g = ((dr - 1) ** 2).mean() + (df**2).mean(), ((df - 1) ** 2).mean()
    else:
        l_d = torch.clamp(1 - dr, min=0).mean() + torch.clamp(1 + df, min=0).mean()
        l_g = -df.mean()
    return l_d, l_g


@pytest.mark.parametrize("name", LOSSES)
def test_losses_match_the_table(name):
    gen = torch.Generator().manual_seed(0)
    dr, df = (
        3 * torch.randn(50, generator=gen, dtype=torch.float64),
        3 * torch.randn(40, generator=gen, dtype=torch.float64),
    )
    l_d, l_g = _naive_losses(name, dr, df)
    torch.testing.assert_close(discriminator_loss(name, dr, df), l_d)
    torch.testing.assert_close(generator_loss(name, df), l_g)


def test_losses_hand_computed_values():
    one, zero = torch.tensor([1.0]), torch.tensor([0.0])
    # at logit 0, D = 1/2: L_D = 2 log 2, mm L_G = log(1/2), ns L_G = log 2
    assert discriminator_loss("mm", zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_loss("mm", zero).item() == pytest.approx(-math.log(2))
    assert generator_loss("ns", zero).item() == pytest.approx(math.log(2))
    assert discriminator_loss("lsgan", one, zero).item() == 0.0
    assert discriminator_loss("lsgan", zero, one).item() == 2.0
    assert discriminator_loss("hinge", torch.tensor([2.0]), torch.tensor([-3.0])).item() == 0.0
    assert discriminator_loss("hinge", zero, zero).item() == 2.0
    assert discriminator_loss("wgan", torch.tensor([5.0]), torch.tensor([2.0])).item() == -3.0


@pytest.mark.parametrize("name", LOSSES)
def test_losses_finite_at_extreme_logits(name):
    d = torch.tensor([-200.0, 200.0], requires_grad=True)
    for value in (discriminator_loss(name, d, d.flip(0)), generator_loss(name, d)):
        (grad,) = torch.autograd.grad(value, d)
        assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_mm_ns_extreme_logits_exact():
    # −log σ(−200) = 200 + log(1 + e^{−200}) ≈ 200; the naive formula gives inf
    big = torch.tensor([200.0])
    assert discriminator_loss("mm", -big, big).item() == pytest.approx(400.0)
    assert generator_loss("ns", -big).item() == pytest.approx(200.0)
    assert generator_loss("mm", -big).item() == pytest.approx(-math.exp(-200), abs=1e-80)


def test_generator_gradients_against_d():
    """d/dl log(1 − σ(l)) = −σ(l) (vanishes as D → 0); d/dl −log σ(l) = −(1 − σ(l))."""
    logits = torch.linspace(-8, 8, 9, dtype=torch.float64, requires_grad=True)
    d = torch.sigmoid(logits).detach()
    (g_mm,) = torch.autograd.grad(generator_loss("mm", logits) * len(logits), logits)
    (g_ns,) = torch.autograd.grad(generator_loss("ns", logits) * len(logits), logits)
    torch.testing.assert_close(g_mm, -d)
    torch.testing.assert_close(g_ns, -(1 - d))


def test_unknown_loss_lists_known_names():
    with pytest.raises(ValueError, match="'mm', 'ns', 'wgan', 'lsgan', 'hinge'"):
        discriminator_loss("wgan-gp", torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="known losses"):
        generator_loss("bce", torch.zeros(2))


@settings(max_examples=30, deadline=None)
@given(a=st.floats(0.05, 0.95), b=st.floats(0.05, 0.95))
def test_pointwise_optimal_discriminator(a, b):
    """For p(x) = a, q(x) = b, a log D + b log(1 − D) is maximised at D* = a/(a + b), i.e. at
    logit log(a/b): there the gradient of the package's weighted L_D vanishes, and it is
    larger on both sides."""
    big = torch.tensor([1e3], dtype=torch.float64)

    def weighted(logit: torch.Tensor) -> torch.Tensor:
        # a × (real term) + b × (fake term), each isolated by a saturated other argument
        return a * discriminator_loss("ns", logit, -big) + b * discriminator_loss("ns", big, logit)

    star = torch.tensor([math.log(a / b)], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(weighted(star), star)
    assert abs(grad.item()) < 1e-12
    for eps in (-1e-3, 1e-3):
        assert weighted(star.detach() + eps).item() > weighted(star.detach()).item()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6),
    st.lists(st.floats(0.01, 1.0), min_size=6, max_size=6),
)
def test_value_at_optimal_discriminator_is_js(p_raw, q_raw):
    """V(D*, G) = Σ p log D* + Σ q log(1 − D*) = −log 4 + 2 JS(p‖q); JS checked against scipy."""
    k = len(p_raw)
    p = np.array(p_raw) / sum(p_raw)
    q = np.array(q_raw[:k]) / sum(q_raw[:k])
    d_star = p / (p + q)
    value = float(np.sum(p * np.log(d_star)) + np.sum(q * np.log(1 - d_star)))
    js = js_divergence(p, q)
    assert js == pytest.approx(scipy.spatial.distance.jensenshannon(p, q) ** 2, abs=1e-10)
    assert value == pytest.approx(-math.log(4) + 2 * js, abs=1e-10)
    # and the package's L_D at the logits log(p/q), weighted by p and q, is −V
    logits = torch.tensor(np.log(p / q))
    l_d = sum(
        float(pi) * discriminator_loss("mm", li[None], torch.tensor([-1e3]))
        + float(qi) * discriminator_loss("mm", torch.tensor([1e3]), li[None])
        for pi, qi, li in zip(p, q, logits, strict=True)
    )
    assert float(l_d) == pytest.approx(-value, abs=1e-8)


def test_lsgan_optimum_and_signed_version():
    """LSGAN's L_D, pointwise a(D − 1)² + bD², is minimised at D = a/(a + b); the version with
    a leading minus sign on the first term is unbounded below as D(x) moves away from 1."""
    a, b = 0.7, 0.2
    grid = torch.linspace(-3, 3, 60001, dtype=torch.float64)
    values = a * (grid - 1) ** 2 + b * grid**2
    assert grid[values.argmin()].item() == pytest.approx(a / (a + b), abs=1e-4)
    signed = -a * (grid - 1) ** 2 + b * 0.5**2  # the slides’ L_D at a fixed D(G(z)) = 0.5
    assert abs(grid[signed.argmin()].item() - 1) == pytest.approx(4.0)  # the far end of the grid


# ---------------------------------------------------------------------------------------------
# penalties


class Linear(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


def test_gradient_penalty_linear_critic():
    """For D(x) = w·x, ∇D = w everywhere, so the penalty is (‖w‖ − 1)² exactly."""
    w = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64)
    critic = Linear(w)
    real, fake = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 4, dtype=torch.float64)
    pen = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    assert pen.item() == pytest.approx(16.0)
    (grad,) = torch.autograd.grad(pen, critic.w)  # d/dw (‖w‖ − 1)² = 2(‖w‖ − 1) w/‖w‖
    torch.testing.assert_close(grad, 2 * 4 * w / 5)
    assert dragan_penalty(critic, real, torch.Generator().manual_seed(0)).item() == pytest.approx(16.0)


def test_gradient_penalty_at_interpolates():
    """For D(x) = ½‖x‖², ∇D(x̂) = x̂; with real = 0 and fake = e₁ the interpolates are (1 − α)e₁,
    so the penalty is E(1 − α − 1)² = E α² = 1/3 (Monte Carlo, with the α drawn by the seed)."""

    def critic(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.pow(2).sum(1)

    n = 20000
    real, fake = torch.zeros(n, 3, dtype=torch.float64), torch.zeros(n, 3, dtype=torch.float64)
    fake[:, 0] = 1
    pen = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1))
    assert pen.item() == pytest.approx(1 / 3, abs=0.01)
    again = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1))
    assert pen.item() == again.item()
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(critic, real, fake[:10])


def test_dragan_penalty_points_near_data():
    """DRAGAN's points are x + αδ with 0 ≤ αδ ≤ scale·std(x) coordinate-wise: record them."""
    seen = []

    def critic(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().clone())
        return x.sum(1)

    real = torch.randn(500, 2)
    pen = dragan_penalty(critic, real, torch.Generator().manual_seed(0), scale=0.5)
    offset = seen[0] - real
    assert offset.min() >= 0 and offset.max() <= 0.5 * real.std() + 1e-6 and offset.max() > 0.3 * real.std()
    assert pen.item() == pytest.approx((math.sqrt(2) - 1) ** 2)  # ∇D = (1, 1)
    assert dragan_penalty(critic, real, scale=0.0).item() == pytest.approx((math.sqrt(2) - 1) ** 2)
    torch.testing.assert_close(seen[-1], real)


def test_clip_weights_and_pack():
    net = MLPDiscriminator(2, (8,))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(100)
    clip_weights(net, 0.01)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())
    with pytest.raises(ValueError):
        clip_weights(net, 0.0)
    x = torch.arange(12.0).reshape(6, 2)
    torch.testing.assert_close(pack_samples(x, 3), torch.tensor([[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))
    imgs = torch.randn(6, 1, 4, 4)
    packed = pack_samples(imgs, 2)
    assert packed.shape == (3, 2, 4, 4)
    torch.testing.assert_close(packed[1, 1], imgs[3, 0])
    with pytest.raises(ValueError):
        pack_samples(x, 4)


# ---------------------------------------------------------------------------------------------
# nets and training


def test_net_shapes():
    g, d = DCGANGenerator(16, 8), DCGANDiscriminator(1, 8)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert d(x).shape == (5,)
    assert DCGANDiscriminator(3, 8)(torch.rand(2, 3, 28, 28)).shape == (2,)
    assert MLPGenerator(3, (8,), 2)(torch.randn(4, 3)).shape == (4, 2)
    assert MLPDiscriminator(4, (8, 8))(torch.randn(4, 4)).shape == (4,)


def test_data_sampler_and_latent():
    data = torch.arange(10.0)[:, None]
    s = data_sampler(data)(1000, torch.Generator().manual_seed(0))
    assert set(s.squeeze().tolist()) == set(range(10))
    z = sample_latent(20000, 2, torch.Generator().manual_seed(0))
    assert abs(z.mean().item()) < 0.02 and z.std().item() == pytest.approx(1.0, abs=0.02)


def test_trivial_generators_fit_the_box_and_the_moments():
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(5000, 2, generator=gen) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]]) + torch.tensor(
        [1.0, -3.0]
    )
    out = trivial_generators(data, 20_000, gen)
    uni, gau = out["uniform on the data's box"], out["one Gaussian fitted"]
    assert uni.shape == gau.shape == (20_000, 2)
    lo, hi = data.min(0).values, data.max(0).values
    assert (uni >= lo).all() and (uni <= hi).all()
    assert torch.allclose(uni.mean(0), (lo + hi) / 2, atol=0.1)  # uniform: mean at the box's centre
    assert torch.allclose(gau.mean(0), data.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(gau.T), torch.cov(data.T), atol=0.1)
    with pytest.raises(ValueError):
        trivial_generators(torch.zeros(1, 2), 10)


class Shift(nn.Module):
    """G(z) = z + b: the generator of N(b, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.b


class Quadratic(nn.Module):
    """D(x) = w₁x + w₂x² + c: contains the log-ratio of any two Gaussians."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([x, x**2], 1)).squeeze(1)


@pytest.mark.parametrize(
    "loss, kwargs",
    [
        ("ns", {}),
        ("mm", {}),
        ("lsgan", {}),
        ("hinge", {}),
        ("wgan", {"penalty": "gp", "n_critic": 5}),
        ("ns", {"penalty": "dragan"}),
        ("wgan", {"clip": 0.5, "n_critic": 5}),
    ],
)
def test_train_gan_learns_a_shift(loss, kwargs):
    """Data N(2, 1), generator N(b, 1): every loss moves b from 0 to about 2. (With a penalty
    this critic overshoots: the two-sided penalty has a well at slope +1 that the critic
    leaves slowly once b passes 2, so for those only reaching the target is checked.)"""
    torch.manual_seed(0)
    g, d = Shift(), Quadratic()
    target, steps = 2.0, 300
    path = []
    hist = train_gan(
        g, d, lambda n, gen: target + torch.randn(n, 1, generator=gen), 1, steps,
        loss=loss, lr_g=0.01, lr_d=0.05, betas=(0.0, 0.9), batch_size=128, seed=0,
        callback=lambda step, gen_net, disc: path.append(gen_net.b.item()), **kwargs,
    )  # fmt: skip
    assert min(abs(b - target) for b in path) < 0.15
    if "penalty" not in kwargs:
        assert abs(path[-1] - target) < 0.25
    assert set(hist) == {"step", "d_loss", "g_loss", "d_real", "d_fake", "penalty"}
    assert all(len(v) == steps for v in hist.values()) and len(path) == steps
    if "clip" in kwargs:
        assert all(p.abs().max() <= kwargs["clip"] for p in d.parameters())
    if "penalty" in kwargs:
        assert max(hist["penalty"]) > 0
    else:
        assert max(hist["penalty"]) == 0


def _run(seed: int, **kwargs) -> tuple[dict, list[torch.Tensor]]:
    torch.manual_seed(123)
    g, d = MLPGenerator(2, (16,)), MLPDiscriminator(2, (16,))
    real = torch.randn(500, 2)
    hist = train_gan(g, d, data_sampler(real), 2, 20, batch_size=32, seed=seed, **kwargs)
    return hist, [p.detach().clone() for p in g.parameters()]


def test_train_gan_deterministic():
    h1, p1 = _run(0, loss="wgan", penalty="gp", n_critic=2)
    h2, p2 = _run(0, loss="wgan", penalty="gp", n_critic=2)
    h3, _ = _run(1, loss="wgan", penalty="gp", n_critic=2)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert h1["g_loss"] != h3["g_loss"]


def test_train_gan_pack_and_prepare():
    """With pack = m the discriminator sees (batch, m·d) inputs, built after prepare_d_input."""
    shapes = []

    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = MLPDiscriminator(6, (8,))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shapes.append(tuple(x.shape))
            return self.inner(x)

    g = MLPGenerator(2, (8,))
    train_gan(g, Recorder(), data_sampler(torch.randn(100, 2)), 2, 2, batch_size=10, pack=3, seed=0)
    assert set(shapes) == {(10, 6)}
    shapes.clear()
    train_gan(
        g, Recorder(), data_sampler(torch.randn(100, 2)), 2, 2, batch_size=10, seed=0,
        prepare_d_input=lambda x: torch.cat([x, x, x], 1),
    )  # fmt: skip
    assert set(shapes) == {(10, 6)}


def test_train_gan_frozen_generator_trains_critic_only():
    """A generator without trainable parameters stays fixed; the critic (WGAN-GP) then
    estimates W₁ between N(0, I₂) and the fixed N((2, 0), I₂), which is 2. (In 1-D the
    two-sided penalty can trap a critic that starts with the wrong slope at a local optimum:
    its gradient cannot turn round without passing through norm 0; in 2-D it can rotate.)"""
    g = nn.Linear(2, 2)
    with torch.no_grad():
        g.weight.copy_(torch.eye(2))
        g.bias.copy_(torch.tensor([2.0, 0.0]))
    g.requires_grad_(False)
    torch.manual_seed(0)
    d = MLPDiscriminator(2, (16,))
    hist = train_gan(
        g, d, lambda n, gen: torch.randn(n, 2, generator=gen), 2, 400,
        loss="wgan", penalty="gp", lr_d=1e-2, batch_size=256, seed=0,
    )  # fmt: skip
    assert torch.equal(g.weight, torch.eye(2)) and g.bias.tolist() == [2.0, 0.0]
    w_est = np.mean(np.array(hist["d_real"][-50:]) - np.array(hist["d_fake"][-50:]))
    assert w_est == pytest.approx(2.0, abs=0.2)
    with pytest.raises(ValueError, match="no trainable"):
        train_gan(g, g, lambda n, gen: torch.randn(n, 2, generator=gen), 2, 1)


def test_train_gan_rejects_bad_arguments():
    g, d = MLPGenerator(2, (8,)), MLPDiscriminator(2, (8,))
    sample = data_sampler(torch.randn(10, 2))
    with pytest.raises(ValueError, match="known losses"):
        train_gan(g, d, sample, 2, 1, loss="wgan-gp")
    with pytest.raises(ValueError, match="known penalties"):
        train_gan(g, d, sample, 2, 1, penalty="r1")
    with pytest.raises(ValueError, match="known optimizers"):
        train_gan(g, d, sample, 2, 1, optimizer="sgd")
    for bad in ({"n_critic": 0}, {"batch_size": 0}, {"pack": 0}, {"clip": -1.0}):
        with pytest.raises(ValueError):
            train_gan(g, d, sample, 2, 1, **bad)


# ---------------------------------------------------------------------------------------------
# the divergences used by the GAN lectures


def test_parallel_lines_and_wasserstein():
    for theta in (-1.5, 0.3, 2.0):
        assert parallel_lines(theta) == {"W": abs(theta), "JS": math.log(2), "KL": math.inf, "TV": 1.0}
        # Monte Carlo: the x-coordinates are 0 and θ, so W₁ of the first coordinates is |θ|
        assert wasserstein1_1d(np.zeros(100), np.full(100, theta)) == pytest.approx(abs(theta))
    assert parallel_lines(0.0) == {"W": 0.0, "JS": 0.0, "KL": 0.0, "TV": 0.0}
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=300), rng.normal(1, 2, size=200)
    assert wasserstein1_1d(u, v) == pytest.approx(scipy.stats.wasserstein_distance(u, v))


def test_stacked_mlp_runs_each_copy_on_its_own_rows_with_its_own_gradient():
    torch.manual_seed(0)
    gens = [MLPGenerator(2, (8, 8), 3) for _ in range(3)]
    discs = [MLPDiscriminator(3, (8,)) for _ in range(3)]
    g, d = StackedMLP(gens), StackedMLP(discs)
    z = torch.randn(3 * 5, 2)
    x = g(z)
    for s in range(3):
        torch.testing.assert_close(x[5 * s : 5 * s + 5], gens[s](z[5 * s : 5 * s + 5]))
    scores = d(x)
    assert scores.shape == (15,)
    # the mean over all rows is 1/S × the sum of the copies' own means: gradients match
    scores.mean().backward()
    for s in range(3):
        discs[s].zero_grad()
        discs[s](gens[s](z[5 * s : 5 * s + 5])).mean().backward()
        torch.testing.assert_close(3 * d.weights[0].grad[s], discs[s].net[0].weight.grad.t())
    with pytest.raises(ValueError, match="cannot be split"):
        g(torch.randn(4, 2))
    with pytest.raises(ValueError, match="same network class"):
        StackedMLP([gens[0], discs[0]])


def test_stacked_mlp_trains_with_train_gan_like_separate_runs_on_average():
    from gencourse.data import grid_mixture

    mix = grid_mixture(2, spacing=2.0, std=0.05)
    copies = []
    for seed in range(2):
        torch.manual_seed(seed)
        copies.append((MLPGenerator(2, (32, 32), 2), MLPDiscriminator(2, (32, 32))))
    g, d = StackedMLP([c[0] for c in copies]), StackedMLP([c[1] for c in copies])
    before = g(torch.randn(2 * 500, 2, generator=torch.Generator().manual_seed(1))).detach()
    train_gan(g, d, mix.sample, 2, 300, lr_g=1e-3, lr_d=1e-3, batch_size=2 * 64, seed=0, penalty="gp")
    after = g(torch.randn(2 * 500, 2, generator=torch.Generator().manual_seed(1))).detach()
    # each copy moves its samples from near the origin towards the data (|x| ≈ √2 at the modes)
    for s in range(2):
        rows = slice(500 * s, 500 * (s + 1))
        assert after[rows].norm(dim=1).mean() > before[rows].norm(dim=1).mean() + 0.5


def test_snapshot_steps_one_three_ten():
    assert snapshot_steps(0) == [] and snapshot_steps(5) == [5]
    with pytest.raises(ValueError, match="non-negative"):
        snapshot_steps(-1)
    assert snapshot_steps(30) == [10, 30]
    assert snapshot_steps(200) == [10, 30, 100, 200]
    assert snapshot_steps(4_000) == [10, 30, 100, 300, 1_000, 3_000, 4_000]
    assert snapshot_steps(20_000) == [10, 30, 100, 300, 1_000, 3_000, 10_000, 20_000]


def test_trained_dcgan_keeps_the_generator_along_the_way(monkeypatch):
    monkeypatch.delenv("GENCOURSE_CACHE", raising=False)
    images = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    g, _, history = trained_dcgan(images, latent_dim=4, steps=12, seed=0)
    kept = history["generators"]
    assert list(kept) == [10, 12] and len(history["g_loss"]) == 12
    for name, value in g.state_dict().items():  # the last snapshot is the final generator
        assert torch.equal(kept[12][name], value)
    assert not torch.equal(kept[10]["body.3.weight"], kept[12]["body.3.weight"])  # a copy, not a view
    # training the same run to step 10 gives the snapshot's weights
    g10, _, _ = trained_dcgan(images, latent_dim=4, steps=10, seed=0)
    for name, value in g10.state_dict().items():
        assert torch.equal(kept[10][name], value)
