"""Divergences between probability distributions, as plain functions.

Conventions: natural logarithms (nats) throughout; discrete distributions are probability
vectors (non-negative entries summing to one); Gaussians are diagonal and given by their mean
and *log-variance*.

* KL(p‖q) = Σᵢ pᵢ log(pᵢ/qᵢ), with 0 log 0 = 0 and +∞ where qᵢ = 0 < pᵢ.
* KL(N(μ, diag σ²) ‖ N(μₚ, diag σₚ²)) = ½ Σⱼ [log σₚ²/σ² + (σ² + (μ − μₚ)²)/σₚ² − 1],
  which against N(0, I) is ½ Σⱼ (σ² + μ² − 1 − log σ²) = −½ Σⱼ (1 + log σ² − μ² − σ²).
* JS(p‖q) = ½ KL(p‖m) + ½ KL(q‖m) with m = ½(p + q); 0 ≤ JS ≤ log 2.
* d_TV(p, q) = ½ Σᵢ |pᵢ − qᵢ| = max_S |p(S) − q(S)|.
* W₁(u, v) = ∫ |F_u(t) − F_v(t)| dt for distributions on the real line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from numpy.typing import ArrayLike

_ATOL = 1e-6


def as_probability_vector(p: ArrayLike, name: str = "p") -> np.ndarray:
    """Return ``p`` as a float64 vector, or raise ``ValueError`` if it is not a probability
    vector (1-D, finite, non-negative, summing to one within 1e-6)."""
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().numpy()
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite entries")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries: {arr[arr < 0][:3]}")
    total = arr.sum()
    if abs(total - 1.0) > _ATOL:
        raise ValueError(f"{name} must sum to 1, sums to {total:.6g}")
    return arr


def _pair(p: ArrayLike, q: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p_arr, q_arr = as_probability_vector(p, "p"), as_probability_vector(q, "q")
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"p and q must have the same length, got {p_arr.size} and {q_arr.size}")
    return p_arr, q_arr


def kl_discrete(p: ArrayLike, q: ArrayLike) -> float:
    """KL(p‖q) = Σᵢ pᵢ log(pᵢ/qᵢ) in nats; ``inf`` if some qᵢ = 0 < pᵢ."""
    p_arr, q_arr = _pair(p, q)
    support = p_arr > 0
    if np.any(q_arr[support] == 0):
        return math.inf
    return float(max(0.0, np.sum(p_arr[support] * np.log(p_arr[support] / q_arr[support]))))


def js_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """JS(p‖q) = ½ KL(p‖m) + ½ KL(q‖m), m = ½(p + q), in nats; always in [0, log 2]."""
    p_arr, q_arr = _pair(p, q)
    m = 0.5 * (p_arr + q_arr)
    return 0.5 * kl_discrete(p_arr, m) + 0.5 * kl_discrete(q_arr, m)


def tv_distance(p: ArrayLike, q: ArrayLike) -> float:
    """d_TV(p, q) = ½ Σᵢ |pᵢ − qᵢ|, in [0, 1]."""
    p_arr, q_arr = _pair(p, q)
    return float(0.5 * np.abs(p_arr - q_arr).sum())


def _compositions(m: int, k: int) -> Iterator[tuple[int, ...]]:
    """All (n₁, …, n_k) of non-negative integers with n₁ + … + n_k = m."""
    if k == 1:
        yield (m,)
        return
    for first in range(m + 1):
        for rest in _compositions(m - first, k - 1):
            yield (first, *rest)


def tv_product(p: ArrayLike, q: ArrayLike, m: int) -> float:
    """d_TV(pᵐ, qᵐ) between the m-fold product distributions, computed exactly.

    pᵐ(x₁…x_m) depends only on the counts n = (n₁, …, n_k) of each symbol, so
    d_TV(pᵐ, qᵐ) = ½ Σₙ (m choose n₁,…,n_k) |Πᵢ pᵢ^{nᵢ} − Πᵢ qᵢ^{nᵢ}|,
    a sum over C(m + k − 1, k − 1) count vectors instead of kᵐ sequences.
    """
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ValueError(f"m must be a positive integer, got {m!r}")
    p_arr, q_arr = _pair(p, q)
    keep = (p_arr > 0) | (q_arr > 0)
    p_arr, q_arr = p_arr[keep], q_arr[keep]
    log_fact = [math.lgamma(i + 1) for i in range(m + 1)]
    total = 0.0
    for counts in _compositions(m, len(p_arr)):
        log_coef = log_fact[m] - sum(log_fact[c] for c in counts)
        prob_p = math.prod(pi**c for pi, c in zip(p_arr, counts, strict=True))
        prob_q = math.prod(qi**c for qi, c in zip(q_arr, counts, strict=True))
        total += math.exp(log_coef) * abs(prob_p - prob_q)
    return 0.5 * total


def kl_gaussian(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    mu_p: torch.Tensor | float = 0.0,
    logvar_p: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """KL(N(μ, diag e^{logvar}) ‖ N(μₚ, diag e^{logvar_p})), summed over the last dimension.

    Per coordinate, with d = logvar − logvar_p:
    ½ [e^{d} − 1 − d + (μ − μₚ)² e^{−logvar_p}] = ½ [σ²/σₚ² + (μ − μₚ)²/σₚ² − 1 − log σ²/σₚ²].
    Written with ``expm1(d) − d`` so that it is accurate near d = 0, and finite and
    differentiable for log-variances in [−40, 40]. Against N(0, I) this is
    −½ Σ (1 + log σ² − μ² − σ²).
    """
    mu = torch.as_tensor(mu)
    logvar = torch.as_tensor(logvar, dtype=mu.dtype, device=mu.device)
    mu_p = torch.as_tensor(mu_p, dtype=mu.dtype, device=mu.device)
    logvar_p = torch.as_tensor(logvar_p, dtype=mu.dtype, device=mu.device)
    d = logvar - logvar_p
    per_dim = 0.5 * (torch.expm1(d) - d + (mu - mu_p).pow(2) * torch.exp(-logvar_p))
    return per_dim.sum(dim=-1)


def wasserstein1_1d(u: ArrayLike, v: ArrayLike) -> float:
    """W₁ between the empirical distributions of samples ``u`` and ``v`` on the real line:
    ∫ |F_u(t) − F_v(t)| dt, computed exactly from the merged sorted samples."""
    u_arr = np.sort(np.asarray(u, dtype=np.float64).ravel())
    v_arr = np.sort(np.asarray(v, dtype=np.float64).ravel())
    if u_arr.size == 0 or v_arr.size == 0:
        raise ValueError("both samples must be non-empty")
    grid = np.sort(np.concatenate([u_arr, v_arr]))
    widths = np.diff(grid)
    cdf_u = np.searchsorted(u_arr, grid[:-1], side="right") / u_arr.size
    cdf_v = np.searchsorted(v_arr, grid[:-1], side="right") / v_arr.size
    return float(np.sum(np.abs(cdf_u - cdf_v) * widths))


def parallel_lines(theta: float) -> dict[str, float]:
    """WGAN's Example 1: P₀ = law of (0, Z), P_θ = law of (θ, Z), Z ~ U[0, 1].

    The two supports are parallel segments at horizontal distance |θ|, so
    W(P₀, P_θ) = |θ|; for θ ≠ 0 the supports are disjoint, so JS = log 2, KL = +∞, TV = 1;
    at θ = 0 all four are 0.
    """
    theta = float(theta)
    if not math.isfinite(theta):
        raise ValueError(f"theta must be finite, got {theta}")
    if theta == 0.0:
        return {"W": 0.0, "JS": 0.0, "KL": 0.0, "TV": 0.0}
    return {"W": abs(theta), "JS": math.log(2.0), "KL": math.inf, "TV": 1.0}
