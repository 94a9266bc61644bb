"""Gaussian mixtures fitted by maximum likelihood with expectation-maximisation (Dempster et al., 1977).

Model: p(x) = Σₖ πₖ N(x; μₖ, Σₖ), with weights πₖ ≥ 0 summing to 1.

* E-step: responsibilities rᵢₖ = πₖ N(xᵢ; μₖ, Σₖ) / Σⱼ πⱼ N(xᵢ; μⱼ, Σⱼ) = p(k | xᵢ).
* M-step: Nₖ = Σᵢ rᵢₖ, πₖ = Nₖ / N, μₖ = Σᵢ rᵢₖ xᵢ / Nₖ,
  Σₖ = Σᵢ rᵢₖ (xᵢ − μₖ)(xᵢ − μₖ)ᵀ / Nₖ + (ε / Nₖ) I.
* Each step can only increase the objective Σᵢ log p(xᵢ) − (ε/2) Σₖ Tr Σₖ⁻¹; with ε = 0 (the
  default) that is the log-likelihood itself. The penalty ε > 0 keeps a component from collapsing
  onto one point, where the likelihood is unbounded.

Everything is computed in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gencourse.runtime import progress

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """log N(x; μ, Σ) = −½ [D log 2π + log det Σ + (x − μ)ᵀ Σ⁻¹ (x − μ)] for each row of x (N, D),
    through the Cholesky factor Σ = L Lᵀ: log det Σ = 2 Σ log Lⱼⱼ, and the quadratic form is
    ‖L⁻¹(x − μ)‖²."""
    chol = torch.linalg.cholesky(cov)
    sol = torch.linalg.solve_triangular(chol, (x - mean).T, upper=False)  # (D, N)
    logdet = 2 * torch.log(torch.diagonal(chol)).sum()
    return -0.5 * (x.shape[1] * LOG_2PI + logdet + sol.pow(2).sum(0))


def fit_gaussian(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood Gaussian: μ̂ = (1/N) Σ xᵢ and Σ̂ = (1/N) Σ (xᵢ − μ̂)(xᵢ − μ̂)ᵀ (divided
    by N, not N − 1)."""
    x = _check_points(x)
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / len(x)


def _check_points(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 2 or len(x) < 1:
        raise ValueError(f"x must have shape (N, D) with N ≥ 1, got {tuple(x.shape)}")
    return x.to(torch.float64)


@dataclass(frozen=True)
class GaussianMixture:
    """Weights π (K,), means μ (K, D) and covariances Σ (K, D, D) of p(x) = Σₖ πₖ N(x; μₖ, Σₖ)."""

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor

    def __post_init__(self) -> None:
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covariances.shape != (k, d, d):
            raise ValueError(
                f"inconsistent shapes: weights {tuple(self.weights.shape)}, means {(k, d)}, "
                f"covariances {tuple(self.covariances.shape)}"
            )

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def joint_log_densities(self, x: torch.Tensor) -> torch.Tensor:
        """log πₖ + log N(xᵢ; μₖ, Σₖ) = log p(xᵢ, k), shape (N, K)."""
        x = _check_points(x)
        cols = [gaussian_log_density(x, m, c) for m, c in zip(self.means, self.covariances, strict=True)]
        return torch.stack(cols, dim=1) + torch.log(self.weights)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(xᵢ) = log Σₖ πₖ N(xᵢ; μₖ, Σₖ) (a log-sum-exp), shape (N,)."""
        return torch.logsumexp(self.joint_log_densities(x), dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """rᵢₖ = p(k | xᵢ) = πₖ N(xᵢ; μₖ, Σₖ) / p(xᵢ), shape (N, K); rows sum to 1."""
        return torch.softmax(self.joint_log_densities(x), dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: k ~ Categorical(π), then x = μₖ + Lₖ ε with Σₖ = Lₖ Lₖᵀ and
        ε ~ N(0, I). Returns the points (n, D) and their components (n,)."""
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        chol = torch.linalg.cholesky(self.covariances)
        return self.means[k] + (chol[k] @ eps.unsqueeze(-1)).squeeze(-1), k


def init_mixture(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> GaussianMixture:
    """A starting point for EM: K distinct data points drawn at random as means, the data's
    covariance for every component, equal weights."""
    x = _check_points(x)
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be in [1, N = {len(x)}], got {k}")
    means = x[torch.randperm(len(x), generator=generator)[:k]]
    _, cov = fit_gaussian(x)
    covs = cov.expand(k, -1, -1).clone()
    return GaussianMixture(torch.full((k,), 1.0 / k, dtype=torch.float64), means, covs)


def em_step(x: torch.Tensor, gmm: GaussianMixture, reg: float = 0.0) -> GaussianMixture:
    """One EM step: responsibilities r = p(k | x) under ``gmm`` (E), then the weighted maximum
    likelihood estimates Nₖ = Σᵢ rᵢₖ, πₖ = Nₖ/N, μₖ = Σᵢ rᵢₖ xᵢ / Nₖ,
    Σₖ = Σᵢ rᵢₖ (xᵢ − μₖ)(xᵢ − μₖ)ᵀ / Nₖ + (reg / Nₖ) I (M)."""
    if reg < 0:
        raise ValueError(f"reg must be non-negative, got {reg}")
    x = _check_points(x)
    r = gmm.responsibilities(x)  # (N, K)
    nk = r.sum(0)  # (K,)
    if (nk < 1e-10 * len(x)).any():
        empty = torch.nonzero(nk < 1e-10 * len(x)).flatten().tolist()
        raise ValueError(
            f"EM: component(s) {empty} lost all their responsibility (Nₖ ≈ 0); "
            "fit fewer components or start from another initialisation"
        )
    means = (r.T @ x) / nk[:, None]
    centred = x[None] - means[:, None]  # (K, N, D)
    covs = torch.einsum("nk,kni,knj->kij", r, centred, centred) / nk[:, None, None]
    covs = covs + (reg / nk)[:, None, None] * torch.eye(x.shape[1], dtype=x.dtype)
    return GaussianMixture(nk / len(x), means, covs)


def em_objective(x: torch.Tensor, gmm: GaussianMixture, reg: float = 0.0) -> float:
    """(1/N) [Σᵢ log p(xᵢ) − (reg/2) Σₖ Tr Σₖ⁻¹]: the mean log-likelihood (reg = 0) or its
    penalised version, the quantity that every EM step cannot decrease."""
    x = _check_points(x)
    penalty = 0.5 * reg * torch.linalg.inv(gmm.covariances).diagonal(dim1=1, dim2=2).sum()
    return float((gmm.log_prob(x).sum() - penalty) / len(x))


def fit_mixture(
    x: torch.Tensor,
    k: int,
    steps: int,
    seed: int = 0,
    reg: float = 0.0,
    init: GaussianMixture | None = None,
) -> tuple[GaussianMixture, dict[str, list[float]]]:
    """Fit a K-component mixture to x (N, D) by ``steps`` EM steps from ``init`` (else
    :func:`init_mixture` with ``seed``).

    Returns the fitted mixture and the history ``{"step": 0..steps, "log_likelihood": …,
    "objective": …}``, the mean log-likelihood per point and the EM objective of
    :func:`em_objective` before the first step and after each step.
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    x = _check_points(x)
    gmm = init if init is not None else init_mixture(x, k, torch.Generator().manual_seed(seed))
    if gmm.n_components != k:
        raise ValueError(f"init has {gmm.n_components} components, expected k = {k}")
    history: dict[str, list[float]] = {"step": [], "log_likelihood": [], "objective": []}

    def log(step: int) -> None:
        history["step"].append(step)
        history["log_likelihood"].append(float(gmm.log_prob(x).mean()))
        history["objective"].append(em_objective(x, gmm, reg))

    log(0)
    for step in progress(range(1, steps + 1), desc="EM"):
        gmm = em_step(x, gmm, reg)
        log(step)
    return gmm, history
