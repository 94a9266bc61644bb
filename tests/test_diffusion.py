"""gencourse.diffusion against independent computations: Monte Carlo, Bayes on a grid,
torch.distributions, the Nichol & Dhariwal formula, and Gaussian data whose ε-predictor is
known in closed form."""

import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from gencourse.diffusion import (
    MixtureEps,
    MLPDenoiser,
    UNet,
    alpha_bars,
    betas_from_alpha_bars,
    clip_x0,
    cosine_betas,
    ddim_indices,
    ddpm_loss,
    dps_sample,
    elbo_terms,
    elbo_weights,
    guided,
    linear_betas,
    predict_x0,
    q_posterior,
    q_sample,
    sample_ddim,
    sample_ddpm,
    score_from_eps,
    timestep_embedding,
    train_diffusion,
    v_weights,
    with_labels,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def short_betas(T: int = 200) -> torch.Tensor:
    """A linear schedule over T steps with the total noise of Ho et al.'s over 1000 (β capped at 0.5)."""
    return linear_betas(T, 0.1 / T, min(20 / T, 0.5), dtype=torch.float64)


# ----------------------------------------------------------------------------- schedules


def test_linear_betas_endpoints_and_spacing():
    b = linear_betas(1000, dtype=torch.float64)
    assert b.shape == (1000,) and b.dtype == torch.float64
    assert math.isclose(b[0].item(), 1e-4) and math.isclose(b[-1].item(), 0.02)
    assert torch.allclose(b.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))
    assert linear_betas(10).dtype == torch.float32


def test_alpha_bars_is_the_cumulative_product():
    b = linear_betas(50, 0.01, 0.3, dtype=torch.float64)
    ab = alpha_bars(b)
    prod = 1.0
    for t in range(50):
        prod *= 1 - b[t].item()
        assert math.isclose(ab[t].item(), prod, rel_tol=1e-12)
    assert torch.allclose(betas_from_alpha_bars(ab), b, rtol=1e-10)


def test_cosine_schedule_matches_nichol_dhariwal():
    T, s = 1000, 0.008

    def f(t):
        return np.cos((t / T + s) / (1 + s) * np.pi / 2) ** 2

    # Nichol & Dhariwal: alphā(t) = f(t)/f(0); our index t is reached by t + 1 steps
    expected = f(np.arange(1, T + 1)) / f(0)
    b = cosine_betas(T, s, dtype=torch.float64)
    ab = alpha_bars(b).numpy()
    unclipped = b.numpy() < 0.999
    k = int(np.argmin(unclipped)) if not unclipped.all() else T  # first clipped index
    assert np.allclose(ab[:k], expected[:k], rtol=1e-9, atol=1e-15)
    assert b.max().item() == pytest.approx(0.999)  # the last beta is clipped, as in their code
    direct = 1 - expected[1:] / expected[:-1]
    assert np.allclose(b.numpy()[1:k], direct[: k - 1], rtol=1e-9)


# ----------------------------------------------------------------------------- forward process


def test_q_sample_moments_by_monte_carlo_and_by_stepping():
    b = short_betas(100)
    ab = alpha_bars(b)
    x0 = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    n, t_idx = 200_000, 30
    t = torch.full((n,), t_idx, dtype=torch.long)
    xt = q_sample(x0.expand(n, 2), t, torch.randn(n, 2, generator=gen(1), dtype=torch.float64), ab)
    a = ab[t_idx].item()
    se_mean = math.sqrt((1 - a) / n)
    assert torch.allclose(xt.mean(0), math.sqrt(a) * x0[0], atol=5 * se_mean)
    assert torch.allclose(xt.var(0), torch.full((2,), 1 - a, dtype=torch.float64), rtol=0.02)
    # the same law by t + 1 single steps x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) z
    x = x0.expand(n, 2).clone()
    g = gen(2)
    for s in range(t_idx + 1):
        x = (1 - b[s]).sqrt() * x + b[s].sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
    assert torch.allclose(x.mean(0), math.sqrt(a) * x0[0], atol=5 * se_mean)
    assert torch.allclose(x.var(0), torch.full((2,), 1 - a, dtype=torch.float64), rtol=0.02)


def test_q_sample_uses_each_items_own_t():
    ab = alpha_bars(short_betas(10))
    x0, noise = torch.ones(3, 1, dtype=torch.float64), torch.zeros(3, 1, dtype=torch.float64)
    t = torch.tensor([0, 4, 9])
    assert torch.allclose(q_sample(x0, t, noise, ab)[:, 0], ab[t].sqrt())


def test_q_posterior_against_bayes_on_a_grid():
    b = short_betas(50)
    ab = alpha_bars(b)
    x0v, xtv = 0.7, -0.3
    grid = torch.linspace(-8, 8, 400_001, dtype=torch.float64)
    for t in (1, 5, 25, 49):
        prior = D.Normal(math.sqrt(ab[t - 1]) * x0v, math.sqrt(1 - ab[t - 1])).log_prob(grid)
        lik = D.Normal((1 - b[t]).sqrt() * grid, b[t].sqrt()).log_prob(torch.tensor(xtv, dtype=torch.float64))
        w = torch.softmax(prior + lik, 0)
        mean_grid = (w * grid).sum()
        var_grid = (w * (grid - mean_grid) ** 2).sum()
        mean, var = q_posterior(
            torch.tensor([[x0v]], dtype=torch.float64),
            torch.tensor([[xtv]], dtype=torch.float64),
            torch.tensor([t]),
            b,
        )
        assert math.isclose(mean.item(), mean_grid.item(), abs_tol=1e-6)
        assert math.isclose(var.item(), var_grid.item(), rel_tol=1e-5)


def test_q_posterior_as_a_product_of_gaussians():
    """N(x; m1, v1) N(xt; a x, v2) ∝ N(x; m, v), 1/v = 1/v1 + a²/v2, m = v (m1/v1 + a xt/v2)."""
    b = short_betas(30)
    ab = alpha_bars(b)
    x0, xt = (
        torch.randn(4, 3, generator=gen(3), dtype=torch.float64),
        torch.randn(4, 3, generator=gen(4), dtype=torch.float64),
    )
    t = torch.tensor([1, 7, 15, 29])
    mean, var = q_posterior(x0, xt, t, b)
    v1, a, v2 = 1 - ab[t - 1], (1 - b[t]).sqrt(), b[t]
    v = 1 / (1 / v1 + a**2 / v2)
    m = v[:, None] * (ab[t - 1].sqrt()[:, None] * x0 / v1[:, None] + a[:, None] * xt / v2[:, None])
    assert torch.allclose(var.flatten(), v) and torch.allclose(mean, m)


# ----------------------------------------------------------------------------- loss, Tweedie, ELBO


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x, t):
        return self.w * x + 1e-3 * t[:, None].to(x.dtype)


def test_ddpm_loss_equals_the_hand_formula():
    ab = alpha_bars(short_betas(40))
    x0 = torch.randn(16, 2, generator=gen(5), dtype=torch.float64)
    model = Linear()
    loss = ddpm_loss(model, x0, ab, gen(6))
    g = gen(6)
    t = torch.randint(40, (16,), generator=g)
    eps = torch.randn(16, 2, generator=g, dtype=torch.float64)
    xt = ab[t].sqrt()[:, None] * x0 + (1 - ab[t]).sqrt()[:, None] * eps
    by_hand = ((eps - (0.3 * xt + 1e-3 * t[:, None])) ** 2).sum() / (16 * 2)
    assert torch.isclose(loss, by_hand, rtol=1e-12)


def test_weighted_ddpm_loss_equals_the_hand_formula():
    ab = alpha_bars(short_betas(40))
    x0 = torch.randn(16, 2, generator=gen(5), dtype=torch.float64)
    w = torch.linspace(0.5, 3.0, 40, dtype=torch.float64)
    loss = ddpm_loss(Linear(), x0, ab, gen(6), weights=w)
    g = gen(6)
    t = torch.randint(40, (16,), generator=g)
    eps = torch.randn(16, 2, generator=g, dtype=torch.float64)
    xt = ab[t].sqrt()[:, None] * x0 + (1 - ab[t]).sqrt()[:, None] * eps
    by_hand = (w[t][:, None] * (eps - (0.3 * xt + 1e-3 * t[:, None])) ** 2).sum() / (16 * 2)
    assert torch.isclose(loss, by_hand, rtol=1e-12)
    assert torch.isclose(
        ddpm_loss(Linear(), x0, ab, gen(6), weights=torch.ones(40, dtype=torch.float64)),
        ddpm_loss(Linear(), x0, ab, gen(6)),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="weights"):
        ddpm_loss(Linear(), x0, ab, gen(6), weights=torch.ones(39, dtype=torch.float64))
    with pytest.raises(ValueError, match="weights"):
        ddpm_loss(Linear(), x0, ab, gen(6), weights=-w)


def test_v_weights_give_the_velocity_loss_of_the_v_read_unet():
    """wₜ = 1/ᾱₜ on the ε-loss of the v-read U-Net equals the mean ‖v − F‖² with F the same
    network's raw output and v = √ᾱₜ ε − √(1 − ᾱₜ) x₀ computed by hand (float32, the U-Net's
    dtype: the weights reach 1/ᾱ ≈ 2.5e4, so the check is to 1e-3)."""
    ab = alpha_bars(short_betas(60)).float()
    torch.manual_seed(3)
    vnet = UNet(width=8, alpha_bars=ab)
    for p in vnet.parameters():
        p.data.normal_(0, 0.1, generator=gen(int(p.numel())))
    raw = UNet(width=8)
    raw.load_state_dict({k: v for k, v in vnet.state_dict().items() if k != "alpha_bars"})
    x0 = torch.rand(6, 1, 28, 28, generator=gen(1)) * 2 - 1
    loss = ddpm_loss(vnet, x0, ab, gen(2), weights=v_weights(ab))
    g = gen(2)
    t = torch.randint(60, (6,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    a = ab[t].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    assert torch.isclose(loss, (v - raw(xt, t)).pow(2).mean(), rtol=1e-3)
    assert torch.allclose(v_weights(ab) * ab, torch.ones_like(ab))


def test_training_with_unit_weights_is_training_without_weights():
    data = torch.randn(64, 2, generator=gen(0))
    ab = alpha_bars(short_betas(30)).float()
    hists = []
    for w in (None, torch.ones(30)):
        torch.manual_seed(0)
        hists.append(
            train_diffusion(MLPDenoiser(2, 8, 1), data, ab, steps=5, batch_size=16, weights=w)["loss"]
        )
    assert hists[0] == hists[1]


def gaussian_1d(mu=0.8, s=0.4, T=200):
    b = short_betas(T)
    ab = alpha_bars(b)
    return b, ab, MixtureEps(torch.tensor([[mu]], dtype=torch.float64), s, ab)


def test_exact_eps_is_minus_sqrt_one_minus_alphabar_times_the_score():
    """Tweedie / denoising score matching: ε*(x, t) = −√(1 − ᾱ) ∇ log q_t(x), the score taken by
    autograd of torch.distributions' density of the noisy mixture."""
    ab = alpha_bars(short_betas(100))
    centers = torch.tensor([[-1.0, 0.5], [2.0, 1.0], [0.0, -2.0]], dtype=torch.float64)
    std = torch.tensor([[0.3, 0.2], [0.5, 0.4], [0.1, 0.6]], dtype=torch.float64)
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    model = MixtureEps(centers, std, ab, w)
    x = torch.randn(64, 2, generator=gen(7), dtype=torch.float64) * 2
    t = torch.randint(100, (64,), generator=gen(8))
    a = ab[t][:, None, None]
    comp = D.Independent(D.Normal(a.sqrt() * centers, (a * std**2 + 1 - a).sqrt()), 1)
    q = D.MixtureSameFamily(D.Categorical(probs=w.expand(64, 3)), comp)
    xr = x.clone().requires_grad_(True)
    (score,) = torch.autograd.grad(q.log_prob(xr).sum(), xr)
    assert torch.allclose(score_from_eps(model(x, t), t, ab), score, atol=1e-9)


def test_tweedie_gives_the_posterior_mean_of_a_gaussian():
    """x₀ ~ N(μ, s²): E[x₀ | xₜ] = μ + √ᾱ s² (xₜ − √ᾱ μ)/(ᾱ s² + 1 − ᾱ) (Gaussian conditioning)."""
    mu, s = 0.8, 0.4
    _, ab, model = gaussian_1d(mu, s, 100)
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None]
    t = torch.arange(0, 100, 8)[:13]
    a = ab[t][:, None]
    expected = mu + a.sqrt() * s**2 * (x - a.sqrt() * mu) / (a * s**2 + 1 - a)
    assert torch.allclose(predict_x0(x, t, model(x, t), ab), expected, atol=1e-10)


def test_elbo_terms_are_gaussian_kls_and_reweighted_eps_errors():
    b = short_betas(20)
    ab = alpha_bars(b)
    model = Linear()
    x0 = torch.randn(8, 3, generator=gen(9), dtype=torch.float64)
    terms = elbo_terms(model, x0, b, gen(10))
    assert terms.shape == (8, 21)
    lam = elbo_weights(b)
    g = gen(10)
    for t in range(20):
        eps = torch.randn(8, 3, generator=g, dtype=torch.float64)
        tt = torch.full((8,), t)
        xt = q_sample(x0, tt, eps, ab)
        err = ((eps - model(xt, tt)) ** 2).sum(1)
        assert torch.allclose(
            terms[:, t], lam[t] * err + (0.5 * 3 * math.log(2 * math.pi * b[0]) if t == 0 else 0)
        )
        if t >= 1:  # against torch.distributions' KL of the two Gaussians
            mean_q, var = q_posterior(x0, xt, tt, b)
            mean_p = (xt - b[t] / (1 - ab[t]).sqrt() * model(xt, tt)) / (1 - b[t]).sqrt()
            kl = D.kl_divergence(D.Normal(mean_q, var.sqrt()), D.Normal(mean_p, var.sqrt())).sum(1)
            assert torch.allclose(terms[:, t], kl)
    prior = D.kl_divergence(D.Normal(ab[-1].sqrt() * x0, (1 - ab[-1]).sqrt()), D.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(terms[:, 20], prior)
    assert math.isclose(lam[0].item(), 1 / (2 * (1 - b[0].item())))


def reverse_chain_marginal(b, ab, mu, s):
    """p_θ(x₀) of the reverse chain with the exact ε of N(μ, s²) data: every step is linear-Gaussian,
    μ_θ = c x + d, so the marginal stays Gaussian; returns its mean and variance."""
    m, V = 0.0, 1.0
    for t in range(len(b) - 1, -1, -1):
        beta, a = b[t].item(), ab[t].item()
        v = a * s**2 + 1 - a
        c = (1 - beta / v) / math.sqrt(1 - beta)
        d = beta * math.sqrt(a) * mu / v / math.sqrt(1 - beta)
        var = beta if t == 0 else (1 - ab[t - 1].item()) / (1 - a) * beta
        m, V = c * m + d, c**2 * V + var
    return m, V


def test_negative_elbo_bounds_the_exact_negative_log_likelihood():
    """E[−ELBO] ≥ E[−log p_θ(x₀)] ≥ H(p_data), for Gaussian data and the exact ε-model, with
    p_θ computed exactly (the reverse chain is linear-Gaussian)."""
    mu, s = 0.8, 0.4
    b, ab, model = gaussian_1d(mu, s, 100)
    x0 = mu + s * torch.randn(4000, 1, generator=gen(11), dtype=torch.float64)
    neg_elbo = elbo_terms(model, x0, b, gen(12)).sum(1)
    m, V = reverse_chain_marginal(b, ab, mu, s)
    nll = -D.Normal(m, math.sqrt(V)).log_prob(x0[:, 0])
    gap = neg_elbo - nll
    se = gap.std().item() / math.sqrt(len(gap))
    assert gap.mean().item() > 3 * se  # the bound holds, with a gap
    entropy = 0.5 * math.log(2 * math.pi * math.e * s**2)
    assert nll.mean().item() >= entropy - 3 * nll.std().item() / math.sqrt(len(nll))
    assert abs(m - mu) < 0.01 and s - 0.05 < math.sqrt(V) < s  # short chains under-disperse (β̃ variance)


# ----------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_with_the_exact_model_reproduce_gaussian_data(sampler):
    """Ho et al.'s schedule (T = 1000): the samples have the data's mean and standard deviation
    (within 2 %), and DDPM's match the exact marginal of its linear-Gaussian reverse chain."""
    mu, s = torch.tensor([[0.8, -1.2]], dtype=torch.float64), torch.tensor([0.4, 0.9], dtype=torch.float64)
    b = linear_betas(1000, dtype=torch.float64)
    ab = alpha_bars(b)
    model = MixtureEps(mu, s, ab)
    n = 20_000
    if sampler == "ddpm":
        x = sample_ddpm(model, (n, 2), b, gen(13))
    else:
        x = sample_ddim(model, (n, 2), ab, 1000, generator=gen(13))
    x = x.double()
    assert torch.allclose(x.mean(0), mu[0], atol=4 * (s / math.sqrt(n)).max().item())
    assert torch.allclose(x.std(0), s, rtol=0.02)
    if sampler == "ddpm":
        for j in range(2):
            m, V = reverse_chain_marginal(b, ab, mu[0, j].item(), s[j].item())
            assert abs(x[:, j].var().item() / V - 1) < 4 * math.sqrt(2 / n)


def test_ddim_with_eta_one_on_every_index_is_ddpm():
    b = short_betas(50)
    ab = alpha_bars(b)
    model = MixtureEps(torch.tensor([[1.0, -1.0]]), 0.3, ab.float())
    a = sample_ddpm(model, (500, 2), b.float(), gen(14))
    c = sample_ddim(model, (500, 2), ab.float(), 50, eta=1.0, generator=gen(14))
    assert torch.allclose(a, c, atol=1e-4)


def test_ddim_is_deterministic_and_visits_evenly_spaced_indices():
    assert ddim_indices(1000, 5).tolist() == [999, 749, 500, 250, 0]
    assert ddim_indices(10, 10).tolist() == list(range(9, -1, -1))
    assert ddim_indices(10, 1).tolist() == [9]
    seen = []

    def spy(x, t):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    ab = alpha_bars(short_betas(100))
    sample_ddim(spy, (3, 2), ab, 7, generator=gen(0))
    assert seen == ddim_indices(100, 7).tolist()
    model = MixtureEps(torch.tensor([[1.0, 0.0]]), 0.5, ab.float())
    x1 = sample_ddim(model, (10, 2), ab.float(), 20, generator=gen(1))
    x2 = sample_ddim(model, (10, 2), ab.float(), 20, generator=gen(1))
    assert torch.equal(x1, x2)


def test_samplers_honour_the_generator():
    ab = alpha_bars(short_betas(20))
    model = MixtureEps(torch.tensor([[1.0]]), 0.5, ab.float())
    a = sample_ddpm(model, (5, 1), short_betas(20).float(), gen(3))
    b = sample_ddpm(model, (5, 1), short_betas(20).float(), gen(3))
    c = sample_ddpm(model, (5, 1), short_betas(20).float(), gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------- networks and guidance


def test_networks_shapes_and_guidance():
    torch.manual_seed(0)
    net = UNet(width=16, n_classes=10)
    x, t, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 10, 500, 999]), torch.tensor([1, 2, 3, 4])
    assert net(x, t).shape == (4, 1, 28, 28) and net(x, t, y).shape == (4, 1, 28, 28)
    for p in net.out.parameters():  # the output layer starts at 0; make it non-trivial
        torch.nn.init.normal_(p, std=0.1)
    with torch.no_grad():
        cond, null = net(x, t, y), net(x, t, torch.full_like(y, 10))
        assert torch.allclose(net(x, t), null)
        assert torch.allclose(guided(net, y, 0.0)(x, t), cond)
        assert torch.allclose(guided(net, y, 2.0)(x, t), 3 * cond - 2 * null, atol=1e-5)
        assert torch.allclose(with_labels(net, y)(x, t), cond)
    ab = alpha_bars(short_betas(1000)).float()
    clipped = clip_x0(lambda x, t: -3 * x, ab)
    xt, tt = torch.randn(8, 1, 28, 28, generator=gen(0)), torch.randint(1000, (8,), generator=gen(1))
    assert torch.allclose(
        predict_x0(xt, tt, clipped(xt, tt), ab), predict_x0(xt, tt, -3 * xt, ab).clamp(-1, 1), atol=1e-4
    )
    vnet = UNet(width=8, n_classes=10, alpha_bars=ab)  # v-parametrisation: F = 0 at initialisation
    with torch.no_grad():
        assert torch.allclose(vnet(xt, tt), (1 - ab[tt]).sqrt().view(-1, 1, 1, 1) * xt)
    mlp = MLPDenoiser(2, 32, 2)
    assert mlp(torch.randn(5, 2), torch.arange(5)).shape == (5, 2)
    pe = MLPDenoiser(2, 32, 2, x_octaves=3)
    feats = pe.features(torch.tensor([[0.25, 0.5]]))
    assert torch.allclose(
        feats,
        torch.tensor(
            [
                [
                    0.25,
                    0.5,
                    *(math.sin(2**k * math.pi * v) for v in (0.25, 0.5) for k in range(3)),
                    *(math.cos(2**k * math.pi * v) for v in (0.25, 0.5) for k in range(3)),
                ]
            ]
        ),
        atol=1e-6,
    )
    ens = MLPDenoiser(2, 32, 2, members=3)  # members: independent networks on consecutive blocks
    xs, ts = torch.randn(12, 2, generator=gen(2)), torch.arange(12)
    single = MLPDenoiser(2, 32, 2)
    for name, p in single.named_parameters():
        p.data.copy_(dict(ens.named_parameters())[name][1])
    assert torch.allclose(ens(xs, ts)[4:8], single(xs[4:8], ts[4:8]), atol=1e-6)
    e = timestep_embedding(torch.tensor([0, 3]), 8)
    assert torch.allclose(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))


def test_training_lowers_the_loss():
    data = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])[torch.arange(512) % 2] + 0.05 * torch.randn(
        512, 2, generator=gen(0)
    )
    torch.manual_seed(0)
    net = MLPDenoiser(2, 32, 2)
    hist = train_diffusion(net, data, alpha_bars(short_betas(50)).float(), steps=300, batch_size=64, lr=3e-3)
    assert np.mean(hist["loss"][-50:]) < 0.8 * np.mean(hist["loss"][:50])
    torch.manual_seed(0)
    cnet = UNet(width=8, n_classes=2)
    imgs, labels = torch.rand(32, 1, 28, 28), torch.arange(32) % 2
    hist = train_diffusion(
        cnet, imgs, alpha_bars(short_betas(50)).float(), steps=3, batch_size=8, labels=labels
    )
    assert len(hist["loss"]) == 3


# ----------------------------------------------------------------------------- posterior sampling


def test_dps_pulls_samples_towards_the_measurements():
    b = short_betas(100)
    ab = alpha_bars(b).float()
    model = MixtureEps(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), 0.3, ab)
    A = torch.tensor([[1.0, 0.0]])  # observe the first coordinate
    y = torch.full((200, 1), 1.0)
    free = sample_ddim(model, (200, 2), ab, 100, generator=gen(0))
    post = dps_sample(model, A, y, (200, 2), ab, 100, zeta=0.5, generator=gen(0))
    res_free, res_post = (free[:, :1] - y).abs().mean(), (post[:, :1] - y).abs().mean()
    assert res_post < 0.3 * res_free
    assert (post[:, 1] > 0).float().mean() > 0.9  # and the unobserved coordinate follows the prior's mode


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises():
    b = short_betas(10)
    ab = alpha_bars(b)
    x = torch.zeros(2, 1, dtype=torch.float64)
    with pytest.raises(ValueError):
        linear_betas(0)
    with pytest.raises(ValueError):
        linear_betas(10, 0.1, 0.01)
    with pytest.raises(ValueError):
        cosine_betas(10, s=-1)
    with pytest.raises(ValueError):
        alpha_bars(torch.tensor([0.1, 1.5]))
    with pytest.raises(ValueError):
        alpha_bars(torch.zeros(2, 2))
    with pytest.raises(ValueError):
        q_sample(x, torch.tensor([0, 10]), x, ab)  # t out of range
    with pytest.raises(ValueError):
        q_sample(x, torch.tensor([0.0, 1.0]), x, ab)  # not a LongTensor
    with pytest.raises(ValueError):
        q_sample(x, torch.tensor([0]), x, ab)  # wrong batch
    with pytest.raises(ValueError):
        q_sample(x, torch.tensor([0, 1]), torch.zeros(2, 2), ab)  # noise shape
    with pytest.raises(ValueError):
        q_posterior(x, x, torch.tensor([0, 1]), b)  # t = 0 has no posterior
    with pytest.raises(ValueError):
        q_sample(x, torch.tensor([0, 1]), x, torch.tensor([0.5, 0.9]))  # increasing alpha_bars
    with pytest.raises(ValueError):
        sample_ddim(lambda x, t: x, (2, 1), ab, 11)
    with pytest.raises(ValueError):
        sample_ddim(lambda x, t: x, (2, 1), ab, 5, eta=-1)
    with pytest.raises(ValueError):
        sample_ddpm(lambda x, t: x, (2,), b)
    with pytest.raises(ValueError):
        guided(UNet(8, n_classes=2), torch.tensor([0]), -1.0)
    with pytest.raises(ValueError):
        guided(UNet(8), torch.tensor([0]), 1.0)
    with pytest.raises(ValueError):
        dps_sample(lambda x, t: x, torch.zeros(3, 4), torch.zeros(2, 3), (2, 5), ab, 5)


# ----------------------------------------------------------------------------- device


def test_strict_device_runs_as_on_the_cpu():
    from gencourse.strict_device import strict_device

    def run(device):
        torch.manual_seed(0)
        net = MLPDenoiser(2, 16, 2).to(device)
        b = short_betas(20).float().to(device)
        ab = alpha_bars(b)
        data = torch.randn(64, 2, generator=gen(1)).to(device)
        train_diffusion(net, data, ab, steps=5, batch_size=16)
        with torch.no_grad():
            loss = ddpm_loss(net, data, ab, gen(2))
        x1 = sample_ddpm(net, (8, 2), b, gen(3))
        x2 = sample_ddim(net, (8, 2), ab, 5, eta=0.5, generator=gen(3))
        x3 = dps_sample(net, torch.eye(2).to(device), data[:8], (8, 2), ab, 5, zeta=0.1, generator=gen(4))
        exact = MixtureEps(torch.zeros(1, 2).to(device), 0.5, ab)
        x4 = sample_ddim(exact, (8, 2), ab, 5, generator=gen(5), device=device)
        return [v.cpu() for v in (loss, x1, x2, x3, x4)]

    cpu = run("cpu")
    with strict_device("mps") as dev:
        strict = run(dev)
    for a, c in zip(cpu, strict, strict=True):  # Adam is fused on the CPU only: last bits differ
        assert torch.allclose(a, c, rtol=1e-4, atol=1e-5)


def test_ema_returns_the_moving_average_of_the_trajectory():
    data = torch.randn(64, 2, generator=gen(0))
    ab = alpha_bars(short_betas(20)).float()

    def weights_after(k: int, ema: float = 0.0) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = MLPDenoiser(2, 8, 1)
        if k == 0:
            return [p.detach().clone() for p in net.parameters()]
        train_diffusion(net, data, ab, steps=k, batch_size=16, lr=1e-2, ema=ema)
        return [p.detach().clone() for p in net.parameters()]

    d = 0.7
    expected = weights_after(0)
    for k in (1, 2, 3):
        expected = [d * e + (1 - d) * w for e, w in zip(expected, weights_after(k), strict=True)]
    for e, w in zip(expected, weights_after(3, ema=d), strict=True):
        assert torch.allclose(e, w, atol=1e-6)
    with pytest.raises(ValueError):
        train_diffusion(MLPDenoiser(2, 8, 1), data, ab, steps=1, ema=1.0)
