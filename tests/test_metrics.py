"""Tests of gencourse.metrics against independent computations (scipy, closed forms, brute force)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gencourse import metrics
from gencourse.nets import MNISTClassifier


def exact_trace_sqrt(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr (Σ₁Σ₂)^{1/2} through the symmetric matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}, which has the same
    eigenvalues as Σ₁Σ₂ (AB and BA share their spectrum), with eigh: no complex arithmetic."""
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ s2 @ root
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def random_spd(rng: np.random.Generator, d: int, n: int | None = None) -> np.ndarray:
    a = rng.normal(size=(n or 2 * d, d))
    return a.T @ a / len(a)


# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_matches_eigh_and_scipy_sqrtm():
    rng = np.random.default_rng(0)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * exact_trace_sqrt(s1, s2)
    via_sqrtm = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(s1 + s2)
        - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real  # the reference implementation's route
    )
    got = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-8)
    assert got == pytest.approx(via_sqrtm, rel=1e-8)


def test_frechet_distance_closed_form_for_diagonal_covariances():
    # commuting covariances: Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^{1/2}) = Σⱼ (√aⱼ − √bⱼ)²
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.array([0.0, 0.0, 1.0]), np.array([3.0, 4.0, 1.0])
    expected = 25.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_distance_is_squared_w2_in_one_dimension():
    # 1-D Gaussians: W₂² = (m₁ − m₂)² + (s₁ − s₂)², compared with the quantile formula
    # W₂² = ∫₀¹ (F₁⁻¹(u) − F₂⁻¹(u))² du by quadrature.
    m1, s1, m2, s2 = 0.5, 2.0, -1.0, 0.5
    u = (np.arange(200_000) + 0.5) / 200_000
    q = scipy.stats.norm.ppf(u)
    w2 = np.mean(((m1 + s1 * q) - (m2 + s2 * q)) ** 2)
    assert metrics.frechet_distance([m1], [[s1**2]], [m2], [[s2**2]]) == pytest.approx(w2, rel=1e-3)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 8))
def test_frechet_distance_symmetric_non_negative_zero_on_self(seed, d):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    ab = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert ab == pytest.approx(metrics.frechet_distance(mu2, s2, mu1, s1), rel=1e-6, abs=1e-9)
    assert ab >= -1e-8
    assert abs(metrics.frechet_distance(mu1, s1, mu1, s1)) < 1e-6


def test_frechet_distance_near_singular_covariances():
    # fewer samples than dimensions: both covariances are singular, sqrtm returns a complex
    # matrix with a tiny imaginary part, which must be dropped
    rng = np.random.default_rng(1)
    d = 64
    f1 = rng.normal(size=(30, d)) @ rng.normal(size=(d, d))
    f2 = rng.normal(size=(40, d))
    mu1, s1 = metrics.mean_and_covariance(f1)
    mu2, s2 = metrics.mean_and_covariance(f2)
    assert np.linalg.matrix_rank(s1) < d and np.linalg.matrix_rank(s2) < d
    got = metrics.frechet_distance(mu1, s1, mu2, s2)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * exact_trace_sqrt(s1, s2)
    assert isinstance(got, float) and math.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_with_dead_features_is_accurate_and_silent():
    # features that are always zero (dead ReLUs) make both covariances exactly singular
    rng = np.random.default_rng(7)
    f1 = np.maximum(rng.normal(size=(500, 20)) @ rng.normal(size=(20, 20)), 0)
    f2 = np.maximum(rng.normal(size=(400, 20)) @ rng.normal(size=(20, 20)) + 0.3, 0)
    f1[:, :6] = 0.0
    f2[:, :6] = 0.0
    mu1, s1 = metrics.mean_and_covariance(f1)
    mu2, s2 = metrics.mean_and_covariance(f2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = metrics.frechet_distance(mu1, s1, mu2, s2)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * exact_trace_sqrt(s1, s2)
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_frechet_distance_adds_eps_when_sqrtm_is_not_finite(monkeypatch):
    real_sqrtm = scipy.linalg.sqrtm
    calls = []

    def flaky_sqrtm(m):
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(metrics.scipy.linalg, "sqrtm", flaky_sqrtm)
    s1, s2, eps = np.diag([1.0, 0.0]), np.diag([0.0, 4.0]), 1e-4
    got = metrics.frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=eps)
    assert np.allclose(calls[1], (s1 + eps * np.eye(2)) @ (s2 + eps * np.eye(2)))
    expected = 5.0 - 2 * (math.sqrt((1 + eps) * eps) + math.sqrt(eps * (4 + eps)))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="imaginary"):  # not positive semi-definite
        metrics.frechet_distance(np.zeros(2), np.diag([-1.0, 1.0]), np.zeros(2), np.eye(2))


def test_fid_from_features_matches_its_definition_and_gaussian_truth():
    rng = np.random.default_rng(2)
    f1 = rng.normal(size=(500, 5))
    f2 = 2.0 * rng.normal(size=(400, 5)) + 1.0
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * exact_trace_sqrt(s1, s2)
    assert metrics.fid_from_features(f1, torch.tensor(f2)) == pytest.approx(expected, rel=1e-8)
    # and close to the population value ‖1‖² + Σ (1 − 2)² = 5 + 5
    assert metrics.fid_from_features(rng.normal(size=(20_000, 5)), 2 * rng.normal(size=(20_000, 5)) + 1) == (
        pytest.approx(10.0, rel=0.02)
    )


def test_fid_bias_is_linear_in_one_over_n_and_extrapolation_removes_it():
    # Gaussian features with a known population FID: FID_N over-estimates it, by about b/N,
    # and the intercept of the fit in 1/N is much closer to the truth than FID at the largest N
    rng = np.random.default_rng(3)
    d = 16
    real = rng.normal(size=(20_000, d))
    scale = np.linspace(0.8, 1.2, d)
    fake = rng.normal(size=(20_000, d)) * scale + 0.1
    truth = d * 0.01 + np.sum((1 - scale) ** 2)
    sizes = [50, 75, 100, 200, 400]
    fids = metrics.fid_vs_sample_size(real, fake, sizes, repeats=10, seed=0)
    assert np.all(fids > truth) and np.all(np.diff(fids) < 0)
    inf, slope = metrics.extrapolate_fid(sizes, fids)
    assert slope > 0
    assert abs(inf - truth) < 0.3 * (fids[-1] - truth)
    # the fit reproduces an exactly linear relation
    inf2, slope2 = metrics.extrapolate_fid([10, 20, 40], [3 + 5 / 10, 3 + 5 / 20, 3 + 5 / 40])
    assert (inf2, slope2) == (pytest.approx(3.0), pytest.approx(5.0))
    with pytest.raises(ValueError):
        metrics.extrapolate_fid([10, 10], [1.0, 2.0])
    with pytest.raises(ValueError):
        metrics.fid_vs_sample_size(real, fake, [1])


# --------------------------------------------------------------------------- Inception Score


def test_inception_score_extremes():
    k, n = 10, 1000
    uniform = np.full((n, k), 1.0 / k)
    assert metrics.inception_score(uniform) == (pytest.approx(1.0), pytest.approx(0.0))
    # confident (one-hot) and balanced within every split: IS = K
    confident = np.eye(k)[np.arange(n) % k]
    mean, std = metrics.inception_score(confident, splits=10)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-12)
    # confident but all one class: IS = 1
    assert metrics.inception_score(np.eye(k)[np.zeros(n, dtype=int)])[0] == pytest.approx(1.0)
    # confident and balanced over 4 of the 10 classes: IS = 4
    assert metrics.inception_score(np.eye(k)[np.arange(n) % 4 * 2], splits=5)[0] == pytest.approx(4.0)


def test_inception_score_matches_scipy_entropy():
    # IS = exp(H(p(y)) − E_x H(p(y|x))) on each split
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.full(7, 0.3), size=600)
    scores = []
    for part in np.array_split(p, 3):
        scores.append(
            np.exp(scipy.stats.entropy(part.mean(0)) - np.mean([scipy.stats.entropy(row) for row in part]))
        )
    mean, std = metrics.inception_score(torch.tensor(p), splits=3)
    assert mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert std == pytest.approx(np.std(scores), rel=1e-8)
    assert 1.0 <= mean <= 7.0


def test_inception_score_rejects_bad_input():
    with pytest.raises(ValueError, match="splits"):
        metrics.inception_score(np.full((5, 2), 0.5), splits=10)
    with pytest.raises(ValueError, match="probability"):
        metrics.inception_score(np.ones((10, 2)), splits=1)
    with pytest.raises(ValueError, match="shape"):
        metrics.inception_score(np.ones(10), splits=1)


# --------------------------------------------------------------------------- feature network


def test_classifier_features_and_probs_match_the_model():
    torch.manual_seed(0)
    model = MNISTClassifier()
    x = torch.rand(7, 1, 28, 28)
    feats = metrics.classifier_features(model, x, batch_size=3)
    probs = metrics.classifier_probs(model, x, batch_size=3)
    with torch.no_grad():
        assert torch.allclose(feats, model.features(x), atol=1e-6)
        assert torch.allclose(probs, torch.softmax(model.head(feats), -1), atol=1e-6)
    assert feats.shape == (7, 128) and torch.allclose(probs.sum(1), torch.ones(7))
    with pytest.raises(ValueError, match="shape"):
        metrics.classifier_features(model, x[:, 0])


# --------------------------------------------------------------------------- k-NN metrics


def brute_force_manifold(points: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """For each query: is it within NND_k(p) of some p in points (loops, no vectorisation)."""
    radii = []
    for i, p in enumerate(points):
        d = sorted(np.linalg.norm(p - q) for j, q in enumerate(points) if j != i)
        radii.append(d[k - 1])
    return np.array(
        [any(np.linalg.norm(q - p) <= r for p, r in zip(points, radii, strict=True)) for q in queries]
    )


def test_knn_radii_by_hand():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert metrics.knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert metrics.knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k must"):
        metrics.knn_radii(x, 4)


def test_precision_recall_and_density_coverage_against_brute_force():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(60, 3))
    fake = rng.normal(size=(50, 3)) * 0.5 + 0.7
    k = 3
    pr = metrics.precision_recall(real, fake, k=k)
    assert pr["precision"] == pytest.approx(brute_force_manifold(real, fake, k).mean())
    assert pr["recall"] == pytest.approx(brute_force_manifold(fake, real, k).mean())
    dc = metrics.density_coverage(real, fake, k=k)
    radii = metrics.knn_radii(real, k).numpy()
    inside = np.array(
        [[np.linalg.norm(f - r) <= rad for f in fake] for r, rad in zip(real, radii, strict=True)]
    )
    assert dc["density"] == pytest.approx(inside.sum() / (k * len(fake)))
    assert dc["coverage"] == pytest.approx(inside.any(1).mean())


def test_knn_metrics_separate_quality_from_diversity():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(1000, 2))
    same = rng.normal(size=(1000, 2))
    collapsed = rng.normal(size=(1000, 2)) * 0.2  # good samples, little diversity
    far = rng.normal(size=(1000, 2)) + 20.0  # nothing like the data
    pr_same, pr_col, pr_far = (metrics.precision_recall(real, f) for f in (same, collapsed, far))
    assert pr_same["precision"] > 0.9 and pr_same["recall"] > 0.9
    assert pr_col["precision"] > 0.95 and pr_col["recall"] < 0.5
    assert pr_far == {"precision": 0.0, "recall": 0.0}
    # E[density] = 1 when fake and real come from the same distribution (Naeem et al.)
    assert metrics.density_coverage(real, same)["density"] == pytest.approx(1.0, abs=0.1)
    assert metrics.density_coverage(real, same)["coverage"] > 0.9
    assert metrics.density_coverage(real, collapsed)["coverage"] < 0.5
    assert metrics.precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}


# --------------------------------------------------------------------------- two-sample test


def test_detector_accuracy_separates_different_and_not_identical_sets():
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(120, 1, 28, 28, generator=gen) * 0.5
    easy = real.clone()
    easy[:, :, :4] = 1.0  # a white bar on top: trivially detectable
    assert metrics.detector_accuracy(real, easy, steps=15, seed=0) > 0.95
    same = torch.rand(120, 1, 28, 28, generator=gen) * 0.5
    acc = metrics.detector_accuracy(real, same, steps=15, seed=0)
    assert 0.3 < acc < 0.7
    assert metrics.detector_accuracy(real, same, steps=15, seed=0) == acc  # seeded
    with pytest.raises(ValueError, match="differ"):
        metrics.detector_accuracy(real, real[:, :, :20], steps=1)
