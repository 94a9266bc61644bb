"""Evaluating generative models: Inception Score, Fréchet distance, precision/recall, density/coverage.

All sample-based metrics compare a set of real and a set of generated images through a fixed
*feature network*. The papers use Inception-v3 trained on ImageNet; this course uses its own
:class:`gencourse.nets.MNISTClassifier`, trained in the course on MNIST (no downloaded weights),
so the numbers are "FID/IS in MNIST-classifier features" and are not comparable with published
values computed with Inception. The formulas here take the features φ(x) and probabilities
p(y|x) as arrays; :mod:`gencourse.features` computes them with the network (and holds the
classifier two-sample test, which trains one), so this module imports no model.

* Inception Score (Salimans et al., 2016): IS = exp(E_x KL(p(y|x) ‖ p(y))), p(y) = E_x p(y|x).
* Fréchet distance (Heusel et al., 2017) between N(μ₁, Σ₁) and N(μ₂, Σ₂):
  d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}); FID is d² between Gaussians fitted to features.
* FID at N samples is biased upwards, nearly linearly in 1/N (Chong & Forsyth, 2020):
  FID_N ≈ FID_∞ + b/N, and the intercept of a straight-line fit estimates FID_∞.
* k-NN precision and recall (Kynkäänniemi et al., 2019), density and coverage (Naeem et al., 2020).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import scipy.special
import torch

ArrayLike = np.ndarray | torch.Tensor

# The feature network's helpers moved to gencourse.features (they run or train a model); the
# old names still resolve here, imported on first use, so that the formulas import no model.
_MOVED = {
    "classifier_features": "gencourse.features",
    "classifier_probs": "gencourse.features",
    "detector_accuracy": "gencourse.features",
    "MNISTClassifier": "gencourse.nets",
    "train_classifier": "gencourse.nets",
}

__all__ = [
    "density_coverage",
    "extrapolate_fid",
    "fid_from_features",
    "fid_vs_sample_size",
    "frechet_distance",
    "inception_score",
    "knn_radii",
    "mean_and_covariance",
    "precision_recall",
    *_MOVED,  # deprecated aliases, resolved on first use (see __getattr__ at the end)
]


def _as_float64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------- Inception Score


def inception_score(probs: ArrayLike, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) with p(y) the mean of p(y|x) over the part, computed on
    ``splits`` equal parts of the N rows of ``probs`` (N, K); returns the mean and the standard
    deviation (ddof 0) over the parts, as in Salimans et al.'s code.

    1 ≤ IS ≤ K: IS = 1 when every p(y|x) is the same, IS = K when each p(y|x) is one-hot and the
    classes are balanced.
    """
    p = _as_float64(probs)
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (N, K), got {p.shape}")
    if not 1 <= splits <= len(p):
        raise ValueError(f"splits must be in [1, N={len(p)}], got {splits}")
    if (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("each row of probs must be a probability vector (non-negative, summing to 1)")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0, keepdims=True)
        # KL(p(y|x) ‖ p(y)) = Σ_y p(y|x) log(p(y|x) / p(y)), with 0 log 0 = 0
        kl = scipy.special.xlogy(part, part) - scipy.special.xlogy(part, marginal)
        scores.append(np.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------- Fréchet distance


def mean_and_covariance(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The sample mean μ = (1/N) Σ φᵢ and covariance Σ = 1/(N−1) Σ (φᵢ − μ)(φᵢ − μ)ᵀ of (N, d)
    features, in float64."""
    f = _as_float64(features)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must have shape (N, d) with N ≥ 2, got {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, eps: float = 1e-6
) -> float:
    """d² = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^{1/2}, the squared 2-Wasserstein (Fréchet)
    distance between N(μ₁, Σ₁) and N(μ₂, Σ₂).

    The matrix square root is scipy's ``sqrtm``. Covariances are often singular (fewer samples
    than dimensions, or features that are always zero after a ReLU); sqrtm's warning about it is
    silenced, and if its result is not finite, ``eps``·I is added to both covariances;
    a tiny imaginary part left by round-off is dropped, a large one (a covariance that is not
    positive semi-definite) raises ``ValueError``.
    """
    m1, m2 = _as_float64(mu1).ravel(), _as_float64(mu2).ravel()
    s1, s2 = np.atleast_2d(_as_float64(sigma1)), np.atleast_2d(_as_float64(sigma2))
    d = len(m1)
    if m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"shapes do not match: mu1 {m1.shape}, sigma1 {s1.shape}, mu2 {m2.shape}, sigma2 {s2.shape}"
        )
    with warnings.catch_warnings():
        # singular products are expected (dead ReLU features, fewer samples than dimensions);
        # sqrtm's root is still accurate there, and a non-finite one is handled below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = eps * np.eye(d)
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        scale = max(1.0, float(np.abs(covmean.real).max()))
        if np.abs(covmean.imag).max() > 1e-3 * scale:
            raise ValueError(
                "the square root of sigma1 @ sigma2 has a large imaginary part: "
                "are both covariances positive semi-definite?"
            )
        covmean = covmean.real
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid_from_features(f1: ArrayLike, f2: ArrayLike, eps: float = 1e-6) -> float:
    """FID between two sets of features (N₁, d) and (N₂, d): the Fréchet distance between the
    Gaussians N(μ₁, Σ₁) and N(μ₂, Σ₂) with their sample means and covariances."""
    mu1, s1 = mean_and_covariance(f1)
    mu2, s2 = mean_and_covariance(f2)
    return frechet_distance(mu1, s1, mu2, s2, eps)


def fid_vs_sample_size(
    real_features: ArrayLike,
    fake_features: ArrayLike,
    sizes: Sequence[int],
    repeats: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """FID_N for each N in ``sizes``, averaged over ``repeats`` draws: the reference statistics
    come from all ``real_features``, the generated ones from N rows of ``fake_features`` drawn
    without replacement (seeded)."""
    real, fake = _as_float64(real_features), _as_float64(fake_features)
    if any(not 2 <= n <= len(fake) for n in sizes):
        raise ValueError(f"every size must be in [2, {len(fake)}], got {list(sizes)}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    mu_r, s_r = mean_and_covariance(real)
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        draws = []
        for _ in range(repeats):
            mu_f, s_f = mean_and_covariance(fake[rng.choice(len(fake), size=n, replace=False)])
            draws.append(frechet_distance(mu_r, s_r, mu_f, s_f))
        out.append(np.mean(draws))
    return np.asarray(out)


def extrapolate_fid(sizes: Sequence[int], fids: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of FID_N = FID_∞ + b/N (Chong & Forsyth, 2020); returns (FID_∞, b)."""
    n, y = np.asarray(sizes, dtype=np.float64), np.asarray(fids, dtype=np.float64)
    if n.shape != y.shape or len(n) < 2 or len(np.unique(n)) < 2:
        raise ValueError("need at least two distinct sizes, with one FID per size")
    design = np.stack([np.ones_like(n), 1.0 / n], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(intercept), float(slope)


# --------------------------------------------------------------------------- k-NN metrics


def _distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Euclidean distances ‖aᵢ − bⱼ‖, shape (len(a), len(b)), computed in row chunks."""
    return torch.cat([torch.cdist(a[i : i + chunk], b) for i in range(0, len(a), chunk)])


def _as_points(x: ArrayLike, name: str) -> torch.Tensor:
    t = torch.as_tensor(_as_float64(x))
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape (N, d), got {tuple(t.shape)}")
    return t


def knn_radii(features: ArrayLike, k: int) -> torch.Tensor:
    """NND_k(φᵢ): the distance from each point to its k-th nearest *other* point of the set."""
    f = _as_points(features, "features")
    if not 1 <= k < len(f):
        raise ValueError(f"k must be in [1, N − 1 = {len(f) - 1}], got {k}")
    # the smallest distance in each row is the point itself (0): take the (k + 1)-th smallest
    return _distances(f, f).kthvalue(k + 1, dim=1).values


def precision_recall(real: ArrayLike, fake: ArrayLike, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019).

    The manifold of a set Φ is ∪_{φ ∈ Φ} B(φ, NND_k(φ)). Precision is the fraction of generated
    points inside the manifold of the real ones; recall the fraction of real points inside the
    manifold of the generated ones.
    """
    r, f = _as_points(real, "real"), _as_points(fake, "fake")
    d = _distances(r, f)  # d[i, j] = ‖rᵢ − fⱼ‖
    precision = (d <= knn_radii(r, k)[:, None]).any(0).double().mean()
    recall = (d <= knn_radii(f, k)[None, :]).any(1).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real: ArrayLike, fake: ArrayLike, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al., 2020), with balls B(rᵢ, NND_k(rᵢ)) around real points:

    density = 1/(kM) Σⱼ Σᵢ 1[fⱼ ∈ B(rᵢ, NND_k(rᵢ))] (1 on average when fake and real agree),
    coverage = 1/N Σᵢ 1[∃ j: fⱼ ∈ B(rᵢ, NND_k(rᵢ))].
    """
    r, f = _as_points(real, "real"), _as_points(fake, "fake")
    inside = _distances(r, f) <= knn_radii(r, k)[:, None]  # (N, M)
    density = inside.double().sum() / (k * len(f))
    coverage = inside.any(1).double().mean()
    return {"density": float(density), "coverage": float(coverage)}


def __getattr__(name: str) -> object:
    """Deprecated: ``metrics.classifier_features`` and the other names of ``_MOVED``, from their
    new modules."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
