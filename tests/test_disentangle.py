"""Tests of gencourse.disentangle (conditional GANs, InfoGAN, InfoGAN-CR, disentanglement
metrics) and of the planted-disc data set of gencourse.data, each against an independent
computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics
import torch
from torch import nn

from gencourse.data import disc_factors_from_images, planted_discs, render_discs, sample_disc_factors
from gencourse.disentangle import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    InfoGANDiscriminator,
    PairClassifier,
    contrastive_pairs,
    discrete_entropy,
    discrete_mutual_information,
    discretize,
    factorvae_metric,
    gaussian_code_nll,
    image_mlp_generator,
    latent_traversal,
    mutual_information_gap,
    one_hot,
    sample_codes,
    train_conditional_gan,
    train_infogan,
)
from gencourse.gan import MLPDiscriminator, data_sampler
from gencourse.nets import DCGANDiscriminator

# ---------------------------------------------------------------------------------------------
# the planted data set


def _centroids(images: torch.Tensor) -> torch.Tensor:
    """Centre of mass (x right, y up) of each image, relative to the canvas centre."""
    size = images.shape[-1]
    axis = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    w = images[:, 0].double()
    m = w.sum((1, 2))
    return torch.stack([(w * axis).sum((1, 2)) / m, (w * -axis[:, None]).sum((1, 2)) / m], 1)


def test_discs_are_placed_by_angle_and_radius():
    images, factors = planted_discs(200, size=32, seed=3)
    assert images.shape == (200, 1, 32, 32) and factors.shape == (200, 2)
    assert images.min() >= 0 and images.max() <= 1
    expected = 16 * factors[:, 1:].double() * torch.stack([factors[:, 0].cos(), factors[:, 0].sin()], 1)
    assert torch.allclose(_centroids(images), expected.double(), atol=0.05)
    # the area of a disc of radius ρ = 0.12·32 pixels, up to the one-pixel edge ramp
    assert torch.allclose(images.sum((1, 2, 3)), torch.full((200,), math.pi * 3.84**2), rtol=0.02)


def test_disc_factors_are_independent_uniforms_and_seeded():
    f = sample_disc_factors(20_000, torch.Generator().manual_seed(0))
    assert f[:, 0].min() >= 0 and f[:, 0].max() <= 1.5 * math.pi
    assert f[:, 1].min() >= 0.25 and f[:, 1].max() <= 0.75
    assert scipy.stats.kstest(f[:, 0].numpy(), "uniform", args=(0, 1.5 * math.pi)).pvalue > 1e-3
    assert abs(np.corrcoef(f.numpy().T)[0, 1]) < 0.03
    a, b = planted_discs(10, seed=5), planted_discs(10, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], planted_discs(10, seed=6)[1])


def test_factors_are_read_back_from_the_images():
    images, factors = planted_discs(500, size=16, seed=1)
    recovered = disc_factors_from_images(images)
    assert torch.allclose(recovered, factors, atol=0.03)
    # a disc drawn at angle −π/2 is read back at 3π/2 (angles in [0, 2π))
    below = disc_factors_from_images(render_discs(torch.tensor([-math.pi / 2]), torch.tensor([0.5]), 32))
    assert torch.allclose(below, torch.tensor([[1.5 * math.pi, 0.5]]), atol=1e-3)
    with pytest.raises(ValueError, match="expected images"):
        disc_factors_from_images(torch.zeros(2, 16, 16))


def test_disc_bad_arguments():
    with pytest.raises(ValueError, match="same length"):
        render_discs(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="size"):
        render_discs(torch.zeros(1), torch.zeros(1), size=4)
    with pytest.raises(ValueError, match="positive"):
        sample_disc_factors(0)


# ---------------------------------------------------------------------------------------------
# conditional GANs


def test_one_hot_and_its_errors():
    assert torch.equal(one_hot(torch.tensor([2, 0]), 3), torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    with pytest.raises(ValueError, match="lie in"):
        one_hot(torch.tensor([3]), 3)


def test_conditional_nets_use_the_label():
    torch.manual_seed(0)
    g, d = ConditionalGenerator(8, 10, width=8), ConditionalDiscriminator(10, width=8)
    g.eval()
    z = torch.randn(4, 8)
    x0, x1 = g(z, torch.zeros(4, dtype=torch.long)), g(z, torch.ones(4, dtype=torch.long))
    assert x0.shape == (4, 1, 28, 28) and not torch.allclose(x0, x1)
    s0, s1 = d(x0, torch.zeros(4, dtype=torch.long)), d(x0, torch.ones(4, dtype=torch.long))
    assert s0.shape == (4,) and not torch.allclose(s0, s1)


def test_train_conditional_gan_is_seeded():
    gen = torch.Generator().manual_seed(0)
    images, labels = torch.rand(64, 1, 28, 28, generator=gen), torch.randint(10, (64,), generator=gen)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        g, d = ConditionalGenerator(8, 10, width=8), ConditionalDiscriminator(10, width=8)
        runs.append(train_conditional_gan(g, d, images, labels, steps=3, batch_size=8, seed=2))
    assert runs[0] == runs[1] and set(runs[0]) == {"step", "d_loss", "g_loss"}
    with pytest.raises(ValueError, match="labels"):
        train_conditional_gan(g, d, images, labels[:3], steps=1)


# ---------------------------------------------------------------------------------------------
# InfoGAN and InfoGAN-CR


def test_codes_are_uniform_on_the_cube():
    c = sample_codes(50_000, 3, torch.Generator().manual_seed(0))
    assert c.min() >= -1 and c.max() <= 1
    assert torch.allclose(c.var(0), torch.full((3,), 1 / 3), atol=0.01)


def test_gaussian_code_nll_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, c = torch.randn(7, 3, generator=gen), torch.randn(7, 3, generator=gen)
    for std in (1.0, 0.3):
        ref = -torch.distributions.Normal(mu, std).log_prob(c).sum(1).mean()
        assert torch.isclose(gaussian_code_nll(mu, c, std), ref, atol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        gaussian_code_nll(mu, c[:, :2])


@pytest.mark.parametrize(
    "make", [lambda: MLPDiscriminator(16 * 16, (32, 16)), lambda: DCGANDiscriminator(1, 8)]
)
def test_info_discriminator_keeps_the_score_of_its_discriminator(make):
    torch.manual_seed(0)
    d = make()
    size = 16 if isinstance(d, MLPDiscriminator) else 28
    x = torch.rand(5, 1, size, size)
    info = InfoGANDiscriminator(d, n_codes=3)
    score, q = info(x)
    assert torch.allclose(score, d(x), atol=1e-6) and q.shape == (5, 3)
    assert torch.equal(info.encode(x), q)
    h = PairClassifier(make() if size == 16 else DCGANDiscriminator(2, 8), 3)
    if size == 16:
        h = PairClassifier(MLPDiscriminator(2 * 16 * 16, (32, 16)), 3)
    assert h(x, x).shape == (5, 3)
    with pytest.raises(ValueError, match="nn.Sequential"):
        InfoGANDiscriminator(nn.Linear(3, 1), 2)


def test_contrastive_pairs_share_exactly_the_chosen_code_and_the_noise():
    l1, l2, idx = contrastive_pairs(4000, 3, 2, torch.Generator().manual_seed(0), gap=0.5)
    c1, c2 = l1[:, :3], l2[:, :3]
    chosen = torch.nn.functional.one_hot(idx, 3).bool()
    assert torch.equal(c1[chosen], c2[chosen])
    assert (c1[~chosen] - c2[~chosen]).abs().min() >= 0.5 - 1e-6
    assert torch.equal(l1[:, 3:], l2[:, 3:])
    assert c1.abs().max() <= 1 and c2.abs().max() <= 1
    counts = torch.bincount(idx, minlength=3).numpy()
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_latent_traversal_sets_one_coordinate():
    base = torch.randn(2, 4)
    out = latent_traversal(nn.Identity(), base, 1, [-1.0, 0.0, 1.0])
    assert out.shape == (6, 4)
    assert torch.equal(out[:, 1], torch.tensor([-1.0, 0, 1, -1, 0, 1]))
    assert torch.equal(out[:3, [0, 2, 3]], base[:1, [0, 2, 3]].expand(3, -1))
    with pytest.raises(ValueError, match="index"):
        latent_traversal(nn.Identity(), base, 4, [0.0])


def _tiny_infogan(seed: int, cr: bool):
    torch.manual_seed(seed)
    g = image_mlp_generator(3, 12, (16, 32))
    d = InfoGANDiscriminator(MLPDiscriminator(144, (32, 16)), 2)
    h = PairClassifier(MLPDiscriminator(288, (32, 16)), 2) if cr else None
    return g, d, h


def test_train_infogan_is_seeded_and_logs_its_losses():
    images, _ = planted_discs(64, size=12, seed=0)
    runs = []
    for _ in range(2):
        g, d, h = _tiny_infogan(0, cr=True)
        runs.append(train_infogan(g, d, data_sampler(images), 2, 1, steps=4, pair_classifier=h, batch_size=8))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"step", "d_loss", "g_loss", "info_loss", "cr_loss", "cr_accuracy"}
    assert all(np.isfinite(runs[0]["cr_loss"]))
    g, d, _ = _tiny_infogan(0, cr=False)
    plain = train_infogan(g, d, data_sampler(images), 2, 1, steps=2, batch_size=8)
    assert all(math.isnan(v) for v in plain["cr_loss"])


def test_the_q_head_learns_the_codes():
    """With the adversarial term switched off by a huge info weight, Q and G quickly make the
    codes predictable: the info loss falls towards its floor (k/2) log 2π."""
    images, _ = planted_discs(64, size=12, seed=0)
    g, d, _ = _tiny_infogan(0, cr=False)
    hist = train_infogan(
        g, d, data_sampler(images), 2, 1, steps=150, info_weight=50.0, batch_size=32, lr_d=2e-3
    )
    floor = math.log(2 * math.pi)
    start, end = np.mean(hist["info_loss"][:5]), np.mean(hist["info_loss"][-10:])
    assert start > floor + 0.25 and end < floor + 0.1


# ---------------------------------------------------------------------------------------------
# disentanglement metrics on cases with a known answer


def _factor_sampler(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 2, generator=gen)


def test_factorvae_metric_known_answers():
    identity = lambda x: x  # noqa: E731 -- "rendering" returns the factors themselves
    perfect = factorvae_metric(identity, _factor_sampler, identity, n_votes=200, seed=0)
    assert perfect["score"] == 1.0
    swapped = factorvae_metric(lambda x: x.flip(1) ** 3, _factor_sampler, identity, n_votes=200, seed=0)
    assert swapped["score"] == 1.0  # a permutation of monotone functions of the factors

    def noise(x: torch.Tensor) -> torch.Tensor:
        return torch.randn(len(x), 3)

    chance = factorvae_metric(noise, _factor_sampler, identity, n_votes=1000, seed=0)
    assert 0.4 < chance["score"] < 0.6  # 1/K for K = 2 factors
    rotation = torch.tensor([[1.0, 1.0], [-1.0, 1.0]]) / math.sqrt(2)
    entangled = factorvae_metric(lambda x: (x - 0.5) @ rotation, _factor_sampler, identity, n_votes=1000)
    assert entangled["score"] < 0.75
    assert perfect["votes"].sum() == 100


def test_discrete_information_matches_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 2000)
    b = (a + rng.integers(0, 2, 2000)) % 5
    assert math.isclose(
        discrete_mutual_information(a, b), sklearn.metrics.mutual_info_score(a, b), rel_tol=1e-10
    )
    assert math.isclose(discrete_entropy(a), scipy.stats.entropy(np.bincount(a)), rel_tol=1e-10)
    assert math.isclose(discrete_mutual_information(a, a), discrete_entropy(a), rel_tol=1e-10)


def test_discretize_uses_equal_width_bins():
    x = np.array([[0.0], [0.49], [0.5], [1.0]])
    assert discretize(x, bins=2)[:, 0].tolist() == [0, 0, 1, 1]
    assert discretize(np.zeros((3, 1)), bins=4)[:, 0].tolist() == [0, 0, 0]


def test_mig_known_answers():
    f = torch.rand(5000, 2, generator=torch.Generator().manual_seed(0))
    perfect = mutual_information_gap(f, f)
    assert perfect["mig"] > 0.95
    duplicated = mutual_information_gap(torch.stack([f[:, 0], f[:, 0], f[:, 1]], 1), f)
    assert abs(duplicated["mig"] - 0.5) < 0.03  # factor 0 is split over two codes: gap 0
    noise = mutual_information_gap(torch.rand(5000, 2, generator=torch.Generator().manual_seed(1)), f)
    assert noise["mig"] < 0.03
    assert perfect["mi"].shape == (2, 2)
