"""Tests of gencourse.mixtures against scipy, scikit-learn and Monte Carlo."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gencourse import mixtures
from gencourse.mixtures import GaussianMixture


def three_blobs(n: int = 600, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    k = torch.randint(3, (n,), generator=gen)
    return centres[k] + torch.randn(n, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 0.5])


def random_mixture(seed: int, k: int = 3, d: int = 2) -> GaussianMixture:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d))
    covs = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
    return GaussianMixture(
        torch.tensor(rng.dirichlet(np.ones(k))), torch.tensor(rng.normal(size=(k, d)) * 3), torch.tensor(covs)
    )


def test_gaussian_log_density_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov, mean, x = a @ a.T + np.eye(4), rng.normal(size=4), rng.normal(size=(10, 4))
    got = mixtures.gaussian_log_density(torch.tensor(x), torch.tensor(mean), torch.tensor(cov))
    assert np.allclose(got.numpy(), scipy.stats.multivariate_normal(mean, cov).logpdf(x))


def test_fit_gaussian_is_the_maximum_likelihood_estimate():
    x = three_blobs()
    mean, cov = mixtures.fit_gaussian(x)
    assert np.allclose(mean.numpy(), x.numpy().mean(0))
    assert np.allclose(cov.numpy(), np.cov(x.numpy(), rowvar=False, bias=True))
    # the gradient of the log-likelihood vanishes there (w.r.t. μ and the Cholesky factor)
    m = mean.clone().requires_grad_()
    chol = torch.linalg.cholesky(cov).clone().requires_grad_()
    ll = mixtures.gaussian_log_density(x, m, chol @ chol.T).sum()
    ll.backward()
    assert m.grad.abs().max() < 1e-8 and chol.grad.tril().abs().max() < 1e-8
    # closed form of the maximum: −N/2 (D log 2π + log det Σ̂ + D)
    n, d = x.shape
    expected = -n / 2 * (d * np.log(2 * np.pi) + np.linalg.slogdet(cov.numpy())[1] + d)
    assert float(ll.detach()) == pytest.approx(expected)


def test_mixture_log_prob_and_responsibilities_match_scipy():
    gmm = random_mixture(1)
    x = torch.tensor(np.random.default_rng(2).normal(size=(50, 2)) * 3)
    dens = np.stack(
        [
            w * scipy.stats.multivariate_normal(m, c).pdf(x.numpy())
            for w, m, c in zip(gmm.weights.numpy(), gmm.means.numpy(), gmm.covariances.numpy(), strict=True)
        ],
        axis=1,
    )
    assert np.allclose(gmm.log_prob(x).numpy(), np.log(dens.sum(1)))
    assert np.allclose(gmm.responsibilities(x).numpy(), dens / dens.sum(1, keepdims=True))


def test_sampling_matches_the_mixture_moments():
    gmm = random_mixture(3)
    x, k = gmm.sample(200_000, torch.Generator().manual_seed(0))
    w, mu, cov = gmm.weights.numpy(), gmm.means.numpy(), gmm.covariances.numpy()
    mean = w @ mu
    second = np.einsum("k,kij->ij", w, cov + np.einsum("ki,kj->kij", mu, mu))
    assert np.allclose(x.numpy().mean(0), mean, atol=0.03)
    assert np.allclose(np.cov(x.numpy(), rowvar=False), second - np.outer(mean, mean), atol=0.1)
    assert np.allclose(np.bincount(k.numpy(), minlength=3) / len(k), w, atol=0.005)
    # and the points of component j are Gaussian N(μⱼ, Σⱼ)
    sel = x[k == 0].numpy()
    assert np.allclose(np.cov(sel, rowvar=False), cov[0], atol=0.1)


def test_em_matches_scikit_learn_step_by_step():
    x = three_blobs(400, seed=1)
    init = mixtures.init_mixture(x, 3, torch.Generator().manual_seed(0))
    for steps in (1, 5):
        ours, _ = mixtures.fit_mixture(x, 3, steps, init=init)
        sk = SkGaussianMixture(
            3,
            covariance_type="full",
            reg_covar=0.0,
            max_iter=steps,
            tol=0.0,
            weights_init=init.weights.numpy(),
            means_init=init.means.numpy(),
            precisions_init=np.linalg.inv(init.covariances.numpy()),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk.fit(x.numpy())
        assert np.allclose(ours.weights.numpy(), sk.weights_)
        assert np.allclose(ours.means.numpy(), sk.means_)
        assert np.allclose(ours.covariances.numpy(), sk.covariances_)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_em_never_decreases_the_log_likelihood(seed, k):
    x = three_blobs(200, seed=seed)
    _, hist = mixtures.fit_mixture(x, k, 25, seed=seed)
    ll = np.array(hist["log_likelihood"])
    assert hist["step"] == list(range(26))
    assert np.all(np.diff(ll) >= -1e-10)
    assert hist["objective"] == hist["log_likelihood"]


def test_em_with_penalty_never_decreases_the_penalised_objective():
    # a tiny data set where a component may shrink onto few points: the penalised objective
    # is the one EM increases
    x = three_blobs(30, seed=4)
    gmm, hist = mixtures.fit_mixture(x, 4, 60, seed=3, reg=0.05)
    assert np.all(np.diff(hist["objective"]) >= -1e-12)
    assert all(o < ll for o, ll in zip(hist["objective"], hist["log_likelihood"], strict=True))
    assert torch.linalg.eigvalsh(gmm.covariances).min() > 0
    # with six components, one of them starves: EM says so instead of returning NaNs
    with pytest.raises(ValueError, match="lost all their responsibility"):
        mixtures.fit_mixture(x, 6, 40, seed=1, reg=0.05)


def test_one_component_em_reaches_the_gaussian_mle_in_one_step():
    x = three_blobs()
    gmm, hist = mixtures.fit_mixture(x, 1, 1)
    mean, cov = mixtures.fit_gaussian(x)
    assert torch.allclose(gmm.means[0], mean) and torch.allclose(gmm.covariances[0], cov)
    assert gmm.weights.tolist() == [1.0]


def test_em_recovers_well_separated_components():
    x = three_blobs(3000, seed=5)
    gmm, _ = mixtures.fit_mixture(x, 3, 60, seed=0)
    order = torch.argsort(gmm.means[:, 0] * 10 + gmm.means[:, 1])
    expected_means = torch.tensor([[0.0, 0.0], [0.0, 3.0], [4.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(gmm.means[order], expected_means, atol=0.1)
    assert torch.allclose(gmm.weights, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.03)
    expected_cov = torch.diag(torch.tensor([1.0, 0.25], dtype=torch.float64))
    assert torch.allclose(gmm.covariances, expected_cov.expand(3, 2, 2), atol=0.1)


def test_bad_input_raises():
    x = three_blobs(20)
    with pytest.raises(ValueError, match="shape"):
        mixtures.fit_gaussian(x[:, 0])
    with pytest.raises(ValueError, match="k must"):
        mixtures.init_mixture(x, 0)
    with pytest.raises(ValueError, match="inconsistent"):
        GaussianMixture(torch.ones(2) / 2, torch.zeros(3, 2), torch.eye(2).expand(3, 2, 2))
    with pytest.raises(ValueError, match="components"):
        mixtures.fit_mixture(x, 2, 1, init=mixtures.init_mixture(x, 3))
    with pytest.raises(ValueError, match="reg"):
        mixtures.em_step(x, mixtures.init_mixture(x, 2), reg=-1.0)
