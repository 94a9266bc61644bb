import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gencourse.divergences import (
    js_divergence,
    kl_discrete,
    kl_gaussian,
    parallel_lines,
    tv_distance,
    tv_product,
    wasserstein1_1d,
)


@st.composite
def prob_pair(draw, min_size=2, max_size=6):
    k = draw(st.integers(min_size, max_size))
    weights = st.floats(0.01, 10.0)
    p = np.array(draw(st.lists(weights, min_size=k, max_size=k)))
    q = np.array(draw(st.lists(weights, min_size=k, max_size=k)))
    return p / p.sum(), q / q.sum()


@settings(max_examples=200, deadline=None)
@given(prob_pair())
def test_kl_is_non_negative_and_matches_scipy(pq):
    p, q = pq
    kl = kl_discrete(p, q)
    assert kl >= 0
    assert math.isclose(kl, scipy.stats.entropy(p, q), rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=100, deadline=None)
@given(prob_pair())
def test_divergences_vanish_iff_equal(pq):
    p, q = pq
    assert kl_discrete(p, p) == 0 and js_divergence(p, p) == 0 and tv_distance(p, p) == 0
    if np.abs(p - q).max() > 1e-6:
        assert kl_discrete(p, q) > 0 and js_divergence(p, q) > 0 and tv_distance(p, q) > 0


@settings(max_examples=200, deadline=None)
@given(prob_pair())
def test_js_and_tv_agree_with_references_and_bounds(pq):
    p, q = pq
    js = js_divergence(p, q)
    # Independent reference: JS = ½ KL(p‖m) + ½ KL(q‖m) with m = (p + q)/2, via scipy's entropy.
    # (scipy's jensenshannon distance is not used: it returns nan when p == q, from sqrt of -1e-17.)
    m = (p + q) / 2
    reference = 0.5 * scipy.stats.entropy(p, m) + 0.5 * scipy.stats.entropy(q, m)
    assert math.isclose(js, reference, rel_tol=1e-7, abs_tol=1e-12)
    assert 0 <= js <= math.log(2) + 1e-12
    tv = tv_distance(p, q)
    assert 0 <= tv <= 1
    # Pinsker's inequality: TV ≤ sqrt(KL / 2)
    assert tv <= math.sqrt(kl_discrete(p, q) / 2) + 1e-12
    # TV as the largest difference of probabilities of an event (brute force over subsets)
    k = len(p)
    best = max(abs(sum(p[i] - q[i] for i in range(k) if mask >> i & 1)) for mask in range(2**k))
    assert math.isclose(tv, best, abs_tol=1e-12)


def test_binomial_vs_uniform_example():
    p, q = [0.36, 0.48, 0.16], [1 / 3] * 3
    assert round(kl_discrete(p, q), 4) == 0.0853
    assert round(kl_discrete(q, p), 4) == 0.0975


def test_kl_infinite_off_support_and_validation():
    assert kl_discrete([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_discrete([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="sum to 1"):
        kl_discrete([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="negative"):
        kl_discrete([1.5, -0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="same length"):
        kl_discrete([1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="1-D"):
        kl_discrete([[0.5, 0.5]], [[0.5, 0.5]])
    assert kl_discrete(torch.tensor([0.25, 0.75]), np.array([0.5, 0.5])) > 0


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_tv_product_against_brute_force(m):
    gen = np.random.default_rng(m)
    p, q = gen.dirichlet(np.ones(3)), gen.dirichlet(np.ones(3))
    pm, qm = p, q
    for _ in range(m - 1):
        pm, qm = np.outer(pm, p).ravel(), np.outer(qm, q).ravel()
    assert math.isclose(tv_product(p, q, m), tv_distance(pm, qm), rel_tol=1e-10)


def test_tv_product_pacgan_lecture_example_and_bounds():
    # P = U[0,1]; Q1 = U[0.2,1]; Q2 has densities 1.4 on [0, .5] and 0.6 on [.5, 1]
    expected_q1 = {1: 0.20, 2: 0.36, 3: 0.488, 4: 0.5904}
    expected_q2 = {1: 0.20, 2: 0.24, 3: 0.284, 4: 0.3392}
    for m in range(1, 5):
        t1 = tv_product([0.2, 0.8], [0.0, 1.0], m)
        t2 = tv_product([0.5, 0.5], [0.7, 0.3], m)
        assert math.isclose(t1, expected_q1[m], abs_tol=1e-12)
        assert math.isclose(t2, expected_q2[m], abs_tol=1e-12)
        for t in (t1, t2):
            assert 0.2 - 1e-12 <= t <= 1 - 0.8**m + 1e-12
    with pytest.raises(ValueError):
        tv_product([0.5, 0.5], [0.5, 0.5], 0)


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.float64, (3, 4), elements=st.floats(-3, 3)),
    arrays(np.float64, (3, 4), elements=st.floats(-8, 8)),
    arrays(np.float64, (3, 4), elements=st.floats(-3, 3)),
    arrays(np.float64, (3, 4), elements=st.floats(-8, 8)),
)
def test_kl_gaussian_matches_torch_distributions(mu, logvar, mu_p, logvar_p):
    mu, logvar, mu_p, logvar_p = map(torch.from_numpy, (mu, logvar, mu_p, logvar_p))
    ours = kl_gaussian(mu, logvar, mu_p, logvar_p)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(mu_p, (0.5 * logvar_p).exp())
    ref = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(ours, ref, rtol=1e-7, atol=1e-9)
    assert (ours >= 0).all()


def test_kl_gaussian_zero_iff_equal_and_standard_form():
    mu, logvar = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, -0.2]])
    assert kl_gaussian(mu, logvar, mu, logvar).item() == 0
    standard = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)
    assert torch.allclose(kl_gaussian(mu, logvar), standard)
    assert kl_gaussian(mu * 1.01, logvar) > kl_gaussian(mu, logvar)  # grows with |μ|


def test_kl_gaussian_against_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.tensor([0.5, -1.0]), torch.tensor([0.3, -0.7])
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    z = mu + (0.5 * logvar).exp() * torch.randn(400_000, 2, generator=gen)
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert abs(mc.item() - kl_gaussian(mu, logvar).item()) < 0.01


def test_kl_gaussian_is_stable_and_differentiable_at_extreme_log_variances():
    logvar = torch.tensor([-40.0, -10.0, 0.0, 10.0, 40.0], requires_grad=True)
    mu = torch.tensor([1.0, -2.0, 0.0, 3.0, -1.0], requires_grad=True)
    for dtype in (torch.float32, torch.float64):
        per_dim = torch.stack(
            [kl_gaussian(m[None].to(dtype), lv[None].to(dtype)) for m, lv in zip(mu, logvar, strict=True)]
        )
        assert torch.isfinite(per_dim).all()
        exact = 0.5 * (
            np.exp(logvar.detach().double().numpy())
            + mu.detach().double().numpy() ** 2
            - 1
            - logvar.detach().double().numpy()
        )
        assert np.allclose(per_dim.detach().double().numpy(), exact, rtol=1e-5)
    total = kl_gaussian(mu[None], logvar[None]).sum()
    total.backward()
    assert torch.isfinite(logvar.grad).all() and torch.isfinite(mu.grad).all()
    assert torch.allclose(mu.grad, mu.detach())  # d/dμ ½μ² = μ
    # against a prior with extreme log-variance too
    kl = kl_gaussian(torch.zeros(1), torch.tensor([40.0]), 0.0, torch.tensor([-40.0]))
    assert torch.isfinite(kl) and kl.item() > 0
    # accurate for nearly equal Gaussians (no cancellation to zero)
    tiny = kl_gaussian(torch.zeros(1, dtype=torch.float64), torch.tensor([1e-6], dtype=torch.float64))
    assert math.isclose(tiny.item(), 0.25e-12, rel_tol=1e-4)


def test_wasserstein_1d_against_scipy():
    gen = np.random.default_rng(0)
    u, v = gen.normal(size=300), gen.normal(1.0, 2.0, size=500)
    assert math.isclose(wasserstein1_1d(u, v), scipy.stats.wasserstein_distance(u, v), rel_tol=1e-10)
    assert wasserstein1_1d(u, u + 2.5) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        wasserstein1_1d([], [1.0])


@pytest.mark.parametrize("theta", [-2.0, -0.1, 0.5, 3.0])
def test_parallel_lines_off_zero(theta):
    d = parallel_lines(theta)
    assert d["W"] == abs(theta) and d["JS"] == pytest.approx(math.log(2))
    assert d["KL"] == math.inf and d["TV"] == 1.0
    # W agrees with the empirical W1 of the first coordinates (the second coordinates coincide)
    assert wasserstein1_1d(np.zeros(10), np.full(10, theta)) == pytest.approx(abs(theta))


def test_parallel_lines_at_zero_and_validation():
    assert parallel_lines(0.0) == {"W": 0.0, "JS": 0.0, "KL": 0.0, "TV": 0.0}
    with pytest.raises(ValueError):
        parallel_lines(float("nan"))
