"""Diffusion models (Sohl-Dickstein et al. 2015; Ho, Jain & Abbeel 2020): the forward process in
closed form, its posterior, the ε-prediction loss, and the DDPM and DDIM samplers.

**Conventions** (0-based time). ``betas`` is a 1-D tensor (β₀, …, β_{T−1}); αₜ = 1 − βₜ and
ᾱₜ = Π_{s ≤ t} α_s. The data are ``x0``; the latent ``xt`` at index t is reached from the data by
t + 1 noising steps x_t = √αₜ x_{t−1} + √βₜ ε (with x_{−1} the data), so that

    q(xₜ | x₀) = N(√ᾱₜ x₀, (1 − ᾱₜ) I),     xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε,  ε ~ N(0, I).

A network is called ``model(xt, t)`` with ``t`` a LongTensor of shape (batch,) and predicts ε.

* :func:`q_posterior`: for t ≥ 1, q(x_{t−1} | xₜ, x₀) = N(μ̃ₜ, β̃ₜ I) with
  μ̃ₜ = √ᾱ_{t−1} βₜ / (1 − ᾱₜ) · x₀ + √αₜ (1 − ᾱ_{t−1}) / (1 − ᾱₜ) · xₜ and
  β̃ₜ = (1 − ᾱ_{t−1}) / (1 − ᾱₜ) · βₜ.
* :func:`ddpm_loss`: L_simple = E ‖ε − ε_θ(√ᾱₜ x₀ + √(1 − ᾱₜ) ε, t)‖² (mean over batch and
  dimensions), t uniform on {0, …, T − 1}; the ELBO is Σₜ λₜ E‖ε − ε_θ‖² + const with
  λₜ = βₜ² / (2 σₜ² αₜ (1 − ᾱₜ)) (:func:`elbo_weights`, :func:`elbo_terms`); with ``weights``
  wₜ another reweighting, e.g. :func:`v_weights` (wₜ = 1/ᾱₜ, the v-loss of a v-read network).
* Tweedie: x̂₀ = (xₜ − √(1 − ᾱₜ) ε_θ) / √ᾱₜ = E[x₀ | xₜ] and ∇ log qₜ(xₜ) = −ε*/√(1 − ᾱₜ)
  (:func:`predict_x0`, :func:`score_from_eps`).
* :func:`sample_ddpm`: ancestral sampling with p_θ(x_{t−1} | xₜ) = N(μ_θ, β̃ₜ I),
  μ_θ = (xₜ − βₜ / √(1 − ᾱₜ) ε_θ) / √αₜ, returning μ_θ at the last step (t = 0).
* :func:`sample_ddim`: DDIM (Song, Meng & Ermon 2021) on ``steps`` indices evenly spaced from
  T − 1 to 0; x_{prev} = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε_θ + σ z,
  σ = η √((1 − ᾱ_prev)/(1 − ᾱₜ)) √(1 − ᾱₜ/ᾱ_prev), with ᾱ_prev = 1 after index 0.
* :func:`guided`: classifier-free guidance (Ho & Salimans 2022), ε̃ = (1 + w) ε(x, c) − w ε(x, ∅).
* :func:`dps_sample`: diffusion posterior sampling (Chung et al. 2023) for y = A x + noise.

Random draws use a ``torch.Generator`` on the CPU (or the generator's device) and are then moved
to the device of the data, so that a seeded run draws the same numbers on every device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gencourse.cache import cached_training
from gencourse.runtime import seed_everything
from gencourse.train import fit
from gencourse.train.ensemble import EnsembleLinear

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- schedules


def _check_T(T: int) -> None:
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")


def linear_betas(
    T: int,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Ho et al.'s linear schedule βₜ = β_start + (β_end − β_start) · t / (T − 1), t = 0, …, T − 1
    (β₀ = β_start when T = 1), computed in float64 and returned as ``dtype`` on ``device``."""
    _check_T(T)
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return betas.to(dtype).to(device) if device is not None else betas.to(dtype)


def cosine_alpha_bar(u: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's f(u)/f(0) with f(u) = cos²(((u + s)/(1 + s)) · π/2), u = t/T ∈ [0, 1]."""
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return f / math.cos(s / (1 + s) * math.pi / 2) ** 2


def cosine_betas(
    T: int,
    s: float = 0.008,
    max_beta: float = 0.999,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule: ᾱ(u) = f(u)/f(0), f(u) = cos²(((u + s)/(1 + s)) π/2),
    and index t (reached by t + 1 steps) gets ᾱₜ = ᾱ((t + 1)/T), i.e.
    βₜ = min(1 − ᾱ((t + 1)/T) / ᾱ(t/T), max_beta), as in their code (clipped at 0.999)."""
    _check_T(T)
    if s < 0:
        raise ValueError(f"s must be non-negative, got {s}")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta must be in (0, 1), got {max_beta}")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    ab = cosine_alpha_bar(u, s)
    betas = (1 - ab[1:] / ab[:-1]).clamp(max=max_beta)
    return betas.to(dtype).to(device) if device is not None else betas.to(dtype)


def _check_betas(betas: torch.Tensor) -> None:
    if not isinstance(betas, torch.Tensor) or betas.dim() != 1 or len(betas) < 1:
        raise ValueError("betas must be a non-empty 1-D tensor")
    b = betas.detach().cpu()
    if not bool(((b > 0) & (b < 1)).all()):
        raise ValueError("every beta must lie in (0, 1)")


def _check_alpha_bars(alpha_bars: torch.Tensor) -> None:
    if not isinstance(alpha_bars, torch.Tensor) or alpha_bars.dim() != 1 or len(alpha_bars) < 1:
        raise ValueError("alpha_bars must be a non-empty 1-D tensor")
    a = alpha_bars.detach().cpu()
    if not bool(((a > 0) & (a < 1)).all()):
        raise ValueError("every alpha_bar must lie in (0, 1)")
    if len(a) > 1 and not bool((a[1:] <= a[:-1]).all()):
        raise ValueError("alpha_bars must be non-increasing (a cumulative product of alphas)")


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """ᾱₜ = Π_{s ≤ t} (1 − β_s), t = 0, …, T − 1 (the cumulative product computed in float64 on
    the CPU, returned with the dtype and device of ``betas``)."""
    _check_betas(betas)
    ab = torch.cumprod(1 - betas.detach().cpu().double(), 0)
    return ab.to(betas.dtype).to(betas.device)


def betas_from_alpha_bars(alpha_bars: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`alpha_bars`: β₀ = 1 − ᾱ₀, βₜ = 1 − ᾱₜ/ᾱ_{t−1}."""
    _check_alpha_bars(alpha_bars)
    ab = alpha_bars.detach().cpu().double()
    betas = 1 - ab / torch.cat([ab.new_ones(1), ab[:-1]])
    return betas.to(alpha_bars.dtype).to(alpha_bars.device)


# --------------------------------------------------------------------------- forward process


def _check_t(t: torch.Tensor, batch: int, T: int, low: int = 0) -> None:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != (batch,):
        raise ValueError(f"t must be a LongTensor of shape ({batch},), got {getattr(t, 'shape', t)!r}")
    tc = t.detach().cpu()
    if len(tc) and (int(tc.min()) < low or int(tc.max()) > T - 1):
        raise ValueError(f"t must lie in [{low}, {T - 1}], got values in [{int(tc.min())}, {int(tc.max())}]")


def _per_item(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] shaped (batch, 1, …, 1) to broadcast against ``like``, on like's device and dtype."""
    v = values.detach().to(like.device)[t.to(like.device)].to(like.dtype)
    return v.view(-1, *([1] * (like.dim() - 1)))


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor
) -> torch.Tensor:
    """xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε, a draw of q(xₜ | x₀) = N(√ᾱₜ x₀, (1 − ᾱₜ) I), for each item
    of the batch at its own index t (a LongTensor of shape (batch,))."""
    _check_alpha_bars(alpha_bars)
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    _check_t(t, len(x0), len(alpha_bars))
    ab = _per_item(alpha_bars, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def q_posterior(
    x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, betas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t−1} | xₜ, x₀) = N(μ̃ₜ, β̃ₜ I), for t ≥ 1:

        μ̃ₜ = √ᾱ_{t−1} βₜ / (1 − ᾱₜ) · x₀ + √αₜ (1 − ᾱ_{t−1}) / (1 − ᾱₜ) · xₜ,
        β̃ₜ = (1 − ᾱ_{t−1}) / (1 − ᾱₜ) · βₜ.

    Returns (mean with the shape of x0, variance of shape (batch, 1, …, 1))."""
    _check_betas(betas)
    if xt.shape != x0.shape:
        raise ValueError(f"xt must have the shape of x0 {tuple(x0.shape)}, got {tuple(xt.shape)}")
    _check_t(t, len(x0), len(betas), low=1)
    ab_all = alpha_bars(betas)
    ab, ab_prev = _per_item(ab_all, t, x0), _per_item(ab_all, t - 1, x0)
    beta = _per_item(betas, t, x0)
    mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab) * xt
    return mean, (1 - ab_prev) / (1 - ab) * beta


def predict_x0(
    xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alpha_bars: torch.Tensor
) -> torch.Tensor:
    """Tweedie's estimate of the data, x̂₀ = (xₜ − √(1 − ᾱₜ) ε̂) / √ᾱₜ (the inverse of
    :func:`q_sample` in x₀); with ε̂ = E[ε | xₜ] it is E[x₀ | xₜ]."""
    _check_alpha_bars(alpha_bars)
    _check_t(t, len(xt), len(alpha_bars))
    ab = _per_item(alpha_bars, t, xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def score_from_eps(eps: torch.Tensor, t: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """The score of the noisy marginal from an ε-prediction: ∇ log qₜ(xₜ) = −ε̂ / √(1 − ᾱₜ)
    (Tweedie's formula, E[x₀ | xₜ] = (xₜ + (1 − ᾱₜ) ∇ log qₜ(xₜ)) / √ᾱₜ)."""
    _check_alpha_bars(alpha_bars)
    _check_t(t, len(eps), len(alpha_bars))
    return -eps / (1 - _per_item(alpha_bars, t, eps)).sqrt()


# --------------------------------------------------------------------------- loss and ELBO


def _randn(shape: Sequence[int], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """N(0, I) of ``shape`` in like's dtype, drawn with ``generator`` on the generator's device
    (the CPU without one), then moved to like's device."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=like.dtype).to(like.device)


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(high, (n,), generator=generator, device=gen_device).to(device)


def ddpm_loss(
    model: EpsModel,
    x0: torch.Tensor,
    alpha_bars: torch.Tensor,
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ho et al.'s L_simple: the mean over batch and dimensions of ‖ε − model(xₜ, t)‖², with
    xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε. Draws, in this order from ``generator``, t ~ U{0, …, T − 1}
    (``randint(T, (batch,))``) and then ε ~ N(0, I) (``randn(x0.shape, dtype=x0.dtype)``), on the
    generator's device (the CPU without one), moved to x0's device.

    With ``weights`` (T,), non-negative, an item's squared error at index t is multiplied by
    weights[t]: another reweighting of the ELBO's terms (e.g. :func:`v_weights`)."""
    _check_alpha_bars(alpha_bars)
    if x0.dim() < 2 or len(x0) < 1:
        raise ValueError(f"x0 must be a batch (batch, ...), got shape {tuple(x0.shape)}")
    if weights is not None and (weights.shape != alpha_bars.shape or bool((weights < 0).any())):
        raise ValueError(f"weights must be non-negative with alpha_bars' shape {tuple(alpha_bars.shape)}")
    t = _randint(len(alpha_bars), len(x0), generator, x0.device)
    noise = _randn(x0.shape, generator, x0)
    xt = q_sample(x0, t, noise, alpha_bars)
    sq = (noise - model(xt, t)).pow(2)
    if weights is None:
        return sq.mean()
    return (_per_item(weights.to(x0.device), t, sq) * sq).mean()


def v_weights(alpha_bars: torch.Tensor) -> torch.Tensor:
    """wₜ = 1/ᾱₜ, the weights that turn :func:`ddpm_loss` into Salimans & Ho's v-loss for a network
    whose raw output F is read as the velocity v = √ᾱₜ ε − √(1 − ᾱₜ) x₀ (:class:`UNet` with
    ``alpha_bars``): there ε̂ = √(1 − ᾱₜ) xₜ + √ᾱₜ F and ε = √(1 − ᾱₜ) xₜ + √ᾱₜ v, so
    ε − ε̂ = √ᾱₜ (v − F) and wₜ ‖ε − ε̂‖² = ‖v − F‖². In terms of x̂₀ the ε-loss weighs the
    squared error by SNRₜ = ᾱₜ/(1 − ᾱₜ), the v-loss by SNRₜ + 1 = 1/(1 − ᾱₜ): the noisiest
    indices, where the ε-loss hardly trains x̂₀ at all, get weight about 1."""
    _check_alpha_bars(alpha_bars)
    return 1 / alpha_bars


def elbo_weights(betas: torch.Tensor) -> torch.Tensor:
    """λₜ with which the negative ELBO is Σₜ λₜ E‖ε − ε_θ(xₜ, t)‖² + (terms free of θ), for the
    reverse model p_θ(x_{t−1} | xₜ) = N(μ_θ, σₜ² I), σₜ² = β̃ₜ for t ≥ 1 and the decoder
    p_θ(x₀ | x_{index 0}) with σ₀² = β₀:  λₜ = βₜ² / (2 σₜ² αₜ (1 − ᾱₜ)) (λ₀ = 1/(2α₀))."""
    _check_betas(betas)
    b = betas.detach().cpu().double()
    ab = torch.cumprod(1 - b, 0)
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    sigma2 = torch.where(torch.arange(len(b)) == 0, b, (1 - ab_prev) / (1 - ab) * b)
    return b**2 / (2 * sigma2 * (1 - b) * (1 - ab))


def elbo_terms(
    model: EpsModel, x0: torch.Tensor, betas: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The terms of the negative ELBO of the hierarchical model, per item, shape (batch, T + 1)
    (in nats, summed over dimensions), one draw of xₜ ~ q(xₜ | x₀) per index t:

    * column 0, reconstruction: −log N(x₀; μ_θ(x_{(0)}, 0), β₀ I);
    * column t = 1, …, T − 1: KL(q(x_{t−1} | xₜ, x₀) ‖ N(μ_θ(xₜ, t), β̃ₜ I)) (closed form);
    * column T, prior: KL(q(x_{T−1} | x₀) ‖ N(0, I)).

    The sum over columns is an upper bound on −log p_θ(x₀). Draws ε for t = 0, …, T − 1 in
    order, each ``randn(x0.shape)`` from ``generator``."""
    _check_betas(betas)
    T, n = len(betas), len(x0)
    d = x0[0].numel()
    ab = alpha_bars(betas)
    out = []
    for step in range(T):
        t = torch.full((n,), step, dtype=torch.long, device=x0.device)
        noise = _randn(x0.shape, generator, x0)
        xt = q_sample(x0, t, noise, ab)
        eps = model(xt, t)
        beta, abt = _per_item(betas, t, x0), _per_item(ab, t, x0)
        mean = (xt - beta / (1 - abt).sqrt() * eps) / (1 - beta).sqrt()
        if step == 0:
            sq = (x0 - mean).pow(2).flatten(1).sum(1)
            out.append(sq / (2 * beta.flatten()) + 0.5 * d * torch.log(2 * math.pi * beta.flatten()))
        else:
            post_mean, var = q_posterior(x0, xt, t, betas)
            out.append((post_mean - mean).pow(2).flatten(1).sum(1) / (2 * var.flatten()))
    a = ab[-1].to(x0.device, x0.dtype)
    mean_sq = (a * x0.pow(2)).flatten(1).sum(1)
    out.append(0.5 * (d * (1 - a) + mean_sq - d - d * torch.log(1 - a)))
    return torch.stack(out, 1)


# --------------------------------------------------------------------------- samplers


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be (batch, ...) with positive sizes, got {shape}")
    return shape


def _model_device(model: EpsModel, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(model, nn.Module):
        p = next(model.parameters(), None)
        if p is not None:
            return p.device
    return torch.device("cpu")


@torch.no_grad()
def sample_ddpm(
    model: EpsModel,
    shape: Sequence[int],
    betas: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Ancestral sampling (Ho et al., Algorithm 2): x_{T−1} ~ N(0, I); for t = T − 1, …, 1,
    x_{t−1} = μ_θ(xₜ, t) + √β̃ₜ z with μ_θ = (xₜ − βₜ / √(1 − ᾱₜ) ε_θ(xₜ, t)) / √αₜ; returns
    μ_θ(x₀, 0) (no noise at the last step). Draws x_{T−1} and then each z, ``randn(shape)``, from
    ``generator``. ``device``: where to sample (default: the model's parameters' device)."""
    _check_betas(betas)
    shape = _check_shape(shape)
    dev = _model_device(model, device)
    like = torch.empty(0, device=dev)
    ab = alpha_bars(betas)
    x = _randn(shape, generator, like)
    for step in range(len(betas) - 1, -1, -1):
        t = torch.full((shape[0],), step, dtype=torch.long, device=dev)
        beta, abt = _per_item(betas, t, x), _per_item(ab, t, x)
        mean = (x - beta / (1 - abt).sqrt() * model(x, t)) / (1 - beta).sqrt()
        if step == 0:
            return mean
        var = (1 - _per_item(ab, t - 1, x)) / (1 - abt) * beta
        x = mean + var.sqrt() * _randn(shape, generator, x)
    raise AssertionError("unreachable")


def ddim_indices(T: int, steps: int) -> torch.Tensor:
    """The ``steps`` indices τ₀ = T − 1 > τ₁ > … > τ_{steps−1} = 0 evenly spaced (rounded) that
    DDIM visits (a single step visits T − 1 only)."""
    _check_T(T)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in [1, {T}], got {steps!r}")
    if steps == 1:
        return torch.tensor([T - 1])
    return torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long()


def ddim_update(
    x: torch.Tensor,
    eps: torch.Tensor,
    ab_t: torch.Tensor | float,
    ab_prev: torch.Tensor | float,
    eta: float,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """One DDIM move from index t (ᾱₜ = ``ab_t``) to the previous visited index (ᾱ_prev, 1 for
    the data): x̂₀ = (x − √(1 − ᾱₜ) ε)/√ᾱₜ, σ = η √((1 − ᾱ_prev)/(1 − ᾱₜ)) √(1 − ᾱₜ/ᾱ_prev),
    x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε + σ z (z = ``noise``, needed when σ > 0)."""
    ab_t, ab_prev = torch.as_tensor(ab_t, dtype=x.dtype), torch.as_tensor(ab_prev, dtype=x.dtype)
    x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).clamp(min=0).sqrt()
    out = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
    if float(sigma) > 0:
        if noise is None:
            raise ValueError("eta > 0 needs noise")
        out = out + sigma * noise
    return out


@torch.no_grad()
def sample_ddim(
    model: EpsModel,
    shape: Sequence[int],
    alpha_bars: torch.Tensor,
    steps: int,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """DDIM sampling on the ``steps`` indices of :func:`ddim_indices` (T − 1 down to 0), then to
    the data (ᾱ = 1), by :func:`ddim_update`: deterministic for η = 0; for η = 1 on all T
    indices it is :func:`sample_ddpm` (same draws from the same ``generator``: x_{T−1}, then a z
    before each move with σ > 0). Returns x̂₀ of the last move."""
    _check_alpha_bars(alpha_bars)
    shape = _check_shape(shape)
    if eta < 0:
        raise ValueError(f"eta must be non-negative, got {eta}")
    dev = _model_device(model, device)
    taus = ddim_indices(len(alpha_bars), steps).tolist()
    ab = alpha_bars.detach().cpu()
    x = _randn(shape, generator, torch.empty(0, device=dev))
    for i, step in enumerate(taus):
        t = torch.full((shape[0],), step, dtype=torch.long, device=dev)
        eps = model(x, t)
        ab_prev = ab[taus[i + 1]] if i + 1 < len(taus) else torch.tensor(1.0)
        sigma_pos = eta > 0 and i + 1 < len(taus)
        noise = _randn(shape, generator, x) if sigma_pos else None
        x = ddim_update(x, eps, float(ab[step]), float(ab_prev), eta if sigma_pos else 0.0, noise)
    return x


# --------------------------------------------------------------------------- exact ε of a Gaussian mixture


class MixtureEps:
    """The exact ε-predictor of data from a mixture of Gaussians with diagonal covariances,
    x₀ ~ Σₖ wₖ N(μₖ, diag sₖ²): the noisy marginal is qₜ = Σₖ wₖ N(√ᾱₜ μₖ, diag(ᾱₜ sₖ² + 1 − ᾱₜ)),
    and ε*(xₜ, t) = E[ε | xₜ] = −√(1 − ᾱₜ) ∇ log qₜ(xₜ)
    = √(1 − ᾱₜ) Σₖ rₖ(xₜ) (xₜ − √ᾱₜ μₖ) / (ᾱₜ sₖ² + 1 − ᾱₜ), rₖ the responsibilities.

    ``centers`` (K, d); ``std`` a float, a (d,) tensor or a (K, d) tensor; ``weights`` (K,)
    (uniform by default). Called as ``eps(xt, t)`` on flat (batch, d) points."""

    def __init__(
        self,
        centers: torch.Tensor,
        std: float | torch.Tensor,
        alpha_bars: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> None:
        _check_alpha_bars(alpha_bars)
        if centers.dim() != 2:
            raise ValueError(f"centers must be (K, d), got {tuple(centers.shape)}")
        K, d = centers.shape
        var = torch.as_tensor(std, dtype=centers.dtype, device=centers.device) ** 2
        var = var.expand(K, d) if var.dim() < 2 else var
        if var.shape != (K, d) or bool((var <= 0).any()):
            raise ValueError("std must be positive, a float or of shape (d,) or (K, d)")
        w = torch.full((K,), 1.0 / K) if weights is None else weights.detach().cpu().double()
        if w.shape != (K,) or bool((w <= 0).any()):
            raise ValueError("weights must be a positive (K,) tensor")
        self.centers, self.var = centers, var
        self.log_w = torch.log(w / w.sum()).to(centers.dtype).to(centers.device)
        self.alpha_bars = alpha_bars.detach().to(centers.device)

    def __call__(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε*(xₜ, t) for points xₜ (batch, d) at indices t (batch,)."""
        ab = self.alpha_bars[t.to(xt.device)].to(xt.dtype)[:, None, None]  # (n, 1, 1)
        mu = ab.sqrt() * self.centers[None]  # (n, K, d)
        v = ab * self.var[None] + 1 - ab  # (n, K, d)
        diff = xt[:, None, :] - mu
        logp = self.log_w - 0.5 * (diff.pow(2) / v + v.log()).sum(2)  # (n, K)
        r = torch.softmax(logp, 1)[:, :, None]
        return (1 - ab[:, 0]).sqrt() * (r * diff / v).sum(1)


# --------------------------------------------------------------------------- networks


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer times (Vaswani et al.; Ho et al.): for i < dim/2,
    [cos(t ωᵢ), sin(t ωᵢ)] with ωᵢ = max_period^(−2i/dim); shape (batch, dim)."""
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be a positive even number, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], 1)


class MLPDenoiser(nn.Module):
    """ε_θ(x, t) for points in ℝᵈ: an MLP on x with ``depth`` hidden layers of ``hidden`` units and
    SiLU, the sinusoidal embedding of t (``emb_dim``) added to every hidden layer through a
    linear map: h₁ = SiLU(W₁φ(x) + E₁e(t)), h_{k+1} = SiLU(W_{k+1}h_k + E_{k+1}e(t)), ε = W_out h.

    φ(x) = x, or with ``x_octaves`` = L > 0 the positional encoding
    φ(x) = [x, sin(2ᵏπx), cos(2ᵏπx) for k < L] (coordinate-wise; Mildenhall et al.'s NeRF,
    Tancik et al. 2020), which lets a small MLP represent the sharp, oscillating functions that
    the denoiser of a mixture with narrow modes is at low noise.

    ``members`` > 1 holds that many independent networks with stacked weights
    (:class:`gencourse.train.EnsembleLinear`, one batched product per layer): an input of
    members·n rows is split into ``members`` consecutive blocks of n, block s going through
    network s. Trained on the mean loss over all rows, each member receives 1/members of its own
    loss's gradient, which Adam (invariant to a constant scale) follows as if it were alone."""

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        depth: int = 3,
        emb_dim: int = 32,
        members: int = 1,
        x_octaves: int = 0,
    ) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1 or members < 1 or x_octaves < 0:
            raise ValueError("dim, hidden, depth and members must be positive, x_octaves non-negative")
        self.emb_dim, self.members, self.x_octaves = emb_dim, members, x_octaves
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(x_octaves, dtype=torch.float32))

        def linear(a: int, b: int) -> nn.Module:
            return EnsembleLinear(a, b, members, init_std=None)

        self.inp = linear(dim * (1 + 2 * x_octaves), hidden)
        self.embs = nn.ModuleList(linear(emb_dim, hidden) for _ in range(depth))
        self.hidden = nn.ModuleList(linear(hidden, hidden) for _ in range(depth - 1))
        self.out = linear(hidden, dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): x itself, or x with its sines and cosines at ``x_octaves`` octaves."""
        if self.x_octaves == 0:
            return x
        a = (x[:, :, None] * self.freqs).flatten(1)
        return torch.cat([x, torch.sin(a), torch.cos(a)], 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or len(x) % self.members:
            raise ValueError(f"x must be (members·n, d) with {self.members} members, got {tuple(x.shape)}")
        n = len(x) // self.members
        e = timestep_embedding(t, self.emb_dim).view(self.members, n, -1)
        h = F.silu(self.inp(self.features(x).view(self.members, n, -1)) + self.embs[0](e))
        for layer, emb in zip(self.hidden, self.embs[1:], strict=True):
            h = F.silu(layer(h) + emb(e))
        return self.out(h).reshape(len(x), -1)


class _ResBlock(nn.Module):
    """GroupNorm → SiLU → conv 3×3 → (+ embedding) → GroupNorm → SiLU → conv 3×3, plus a skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(min(8, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(e)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """A small time-conditioned U-Net ε_θ(x, t[, y]) for 1×28×28 images (Ronneberger et al.;
    Ho et al.'s design shrunk): the image is folded into 4×14×14 (pixel unshuffle, lossless),
    then conv → residual block at 14×14 (``width`` channels) → strided conv → two residual
    blocks at 7×7 (``mid_width`` channels, default 2·``width``) → upsample, concatenate the 14×14 skip → residual block →
    conv → pixel shuffle back to 1×28×28. Every residual block adds a projection of the
    embedding of t (sinusoidal, then an MLP) and, with ``n_classes``, of the label y; the label
    ``n_classes`` is the "no label" ∅ of classifier-free guidance. Called as ``model(x, t)``
    (unconditional, y = ∅) or ``model(x, t, y)``; returns ε either way.

    With ``alpha_bars`` the network's raw output F is read as the velocity
    v = √ᾱₜ ε − √(1 − ᾱₜ) x₀ (Salimans & Ho 2022), and the returned prediction is
    ε = √(1 − ᾱₜ) xₜ + √ᾱₜ F (the identity xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε solved for ε). At high
    noise ε ≈ xₜ then holds by construction and the network's error is damped by √ᾱₜ, where a
    raw ε-output's error would be amplified by 1/√ᾱₜ in Tweedie's x̂₀."""

    def __init__(
        self,
        width: int = 32,
        n_classes: int | None = None,
        emb_dim: int = 64,
        channels: int = 1,
        alpha_bars: torch.Tensor | None = None,
        mid_width: int | None = None,
    ) -> None:
        super().__init__()
        mid = 2 * width if mid_width is None else mid_width
        if width < 8 or width % 8 or mid < 8 or mid % 8:
            raise ValueError(f"width and mid_width must be positive multiples of 8, got {width}, {mid}")
        self.n_classes, self.emb_dim = n_classes, emb_dim
        if alpha_bars is not None:
            _check_alpha_bars(alpha_bars)
            self.register_buffer("alpha_bars", alpha_bars.detach().clone().float())
        else:
            self.alpha_bars = None
        self.time = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label = nn.Embedding(n_classes + 1, emb_dim) if n_classes else None
        c = 4 * channels
        self.inp = nn.Conv2d(c, width, 3, padding=1)
        self.down1 = _ResBlock(width, width, emb_dim)
        self.pool = nn.Conv2d(width, mid, 3, stride=2, padding=1)
        self.mid1 = _ResBlock(mid, mid, emb_dim)
        self.mid2 = _ResBlock(mid, mid, emb_dim)
        self.up = nn.ConvTranspose2d(mid, mid, 2, stride=2)
        self.up1 = _ResBlock(mid + width, width, emb_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, c, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        e = self.time(timestep_embedding(t, self.emb_dim))
        if self.label is not None:
            if y is None:
                y = torch.full((len(x),), self.n_classes, dtype=torch.long, device=x.device)
            e = e + self.label(y)
        elif y is not None:
            raise ValueError("this U-Net has no labels (n_classes=None)")
        e = F.silu(e)
        h0 = self.down1(self.inp(F.pixel_unshuffle(x, 2)), e)
        h = self.mid2(self.mid1(self.pool(h0), e), e)
        h = self.up1(torch.cat([self.up(h), h0], 1), e)
        out = F.pixel_shuffle(self.out(h), 2)
        if self.alpha_bars is None:
            return out
        ab = self.alpha_bars[t].view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        return (1 - ab).sqrt() * x + ab.sqrt() * out


def clip_x0(model: EpsModel, alpha_bars: torch.Tensor, low: float = -1.0, high: float = 1.0) -> EpsModel:
    """The ε-model whose Tweedie estimate is clipped to the data's range (as in Ho et al.'s and
    Song et al.'s samplers): x̂₀ = clip((xₜ − √(1 − ᾱₜ) ε)/√ᾱₜ, low, high) and
    ε_c = (xₜ − √ᾱₜ x̂₀)/√(1 − ᾱₜ), so that a sampler that reads x̂₀ off ε_c reads the clipped one
    (the DDPM mean μ_θ(xₜ, ε_c) is the posterior mean μ̃ₜ(x̂₀, xₜ) of the clipped x̂₀)."""
    if not low < high:
        raise ValueError(f"need low < high, got {low}, {high}")

    def eps(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        e = model(xt, t)
        ab = _per_item(alpha_bars, t, xt)
        x0 = ((xt - (1 - ab).sqrt() * e) / ab.sqrt()).clamp(low, high)
        return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()

    return eps


def with_labels(model: nn.Module, labels: torch.Tensor) -> EpsModel:
    """The ε-model (xₜ, t) ↦ model(xₜ, t, labels) for a conditional network (batch of labels)."""
    return lambda xt, t: model(xt, t, labels)


def guided(model: nn.Module, labels: torch.Tensor, w: float) -> EpsModel:
    """Classifier-free guidance (Ho & Salimans 2022): ε̃(xₜ, t) = (1 + w) ε(xₜ, t, y) − w ε(xₜ, t, ∅)
    with ∅ the network's "no label" (``model.n_classes``); w = 0 is the conditional model.
    Both terms come from one forward pass on the doubled batch."""
    if w < 0:
        raise ValueError(f"the guidance weight must be non-negative, got {w}")
    null = getattr(model, "n_classes", None)
    if null is None:
        raise ValueError("guidance needs a conditional network with n_classes")

    def eps(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if w == 0:
            return model(xt, t, labels)
        ys = torch.cat([labels, torch.full_like(labels, null)])
        cond, uncond = model(torch.cat([xt, xt]), torch.cat([t, t]), ys).chunk(2)
        return (1 + w) * cond - w * uncond

    return eps


# --------------------------------------------------------------------------- training


def train_diffusion(
    model: nn.Module,
    data: torch.Tensor,
    alpha_bars: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    labels: torch.Tensor | None = None,
    p_uncond: float = 0.1,
    schedule: str = "constant",
    desc: str = "diffusion",
    ema: float = 0.0,
    weights: torch.Tensor | None = None,
) -> dict[str, list[float]]:
    """Minimise :func:`ddpm_loss` by Adam over random mini-batches of ``data`` (N, ...) with
    :func:`gencourse.train.fit`. With ``labels`` (N,), the network is called
    ``model(xₜ, t, y)`` and each label is replaced by ∅ (``model.n_classes``) with probability
    ``p_uncond``, so that one network learns ε(x, t, y) and ε(x, t, ∅) (classifier-free guidance).

    ``ema`` = d > 0 returns the model with the exponential moving average of its weights after
    each step, θ̄ ← d θ̄ + (1 − d) θ (Ho et al. use d = 0.9999 over 800k steps), instead of the
    last weights. ``weights`` (T,) reweights the loss per index t (:func:`ddpm_loss`,
    :func:`v_weights`). Returns the history {"step", "loss"}."""
    if labels is not None and len(labels) != len(data):
        raise ValueError(f"{len(data)} data but {len(labels)} labels")
    if not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must lie in [0, 1], got {p_uncond}")
    if not 0 <= ema < 1:
        raise ValueError(f"ema must lie in [0, 1), got {ema}")
    device = next(model.parameters()).device
    ab = alpha_bars.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    shadow = [p.detach().clone() for p in params] if ema > 0 else []
    calls = [0]

    def average() -> None:
        """θ̄ ← d θ̄ + (1 − d) θ, with the weights after the latest step (none before the first)."""
        if ema > 0 and calls[0] > 0:
            with torch.no_grad():
                for s_, p in zip(shadow, params, strict=True):
                    s_.mul_(ema).add_(p.detach(), alpha=1 - ema)

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        average()
        calls[0] += 1
        x0 = data[idx].to(device)
        if labels is None:
            return {"loss": ddpm_loss(model, x0, ab, gen, weights)}
        drop = torch.rand(len(idx), generator=gen) < p_uncond
        y = torch.where(drop, torch.full_like(labels[idx], model.n_classes), labels[idx]).to(device)
        return {"loss": ddpm_loss(with_labels(model, y), x0, ab, gen, weights)}

    history = fit(model, len(data), loss_fn, steps, batch_size, lr, seed, desc, schedule)
    average()
    if ema > 0:
        with torch.no_grad():
            for s_, p in zip(shadow, params, strict=True):
                p.copy_(s_)
    return history


def trained_diffusion(
    make_model: Callable[[], nn.Module],
    data: torch.Tensor,
    alpha_bars: torch.Tensor,
    steps: int,
    *,
    name: str = "diffusion",
    config: dict | None = None,
    device: torch.device | str = "cpu",
    **kwargs,
) -> tuple[nn.Module, dict[str, list[float]]]:
    """``make_model()`` initialised after ``seed_everything(seed)`` (``kwargs['seed']``, default 0),
    moved to ``device`` and trained by :func:`train_diffusion` (``kwargs`` passed on); loaded from
    the model cache (:func:`gencourse.cache.cached_training`) when an identical run exists.
    ``config`` names the architecture in the cache key. Returns (model in eval mode, history)."""
    seed_everything(kwargs.get("seed", 0))
    model = make_model().to(device)
    key = {"data": data, "alpha_bars": alpha_bars, "steps": steps, "config": config or {}, **kwargs}
    history = cached_training(
        name, key, {"model": model}, lambda: train_diffusion(model, data, alpha_bars, steps, **kwargs)
    )
    return model.eval(), history


# --------------------------------------------------------------------------- posterior sampling


def dps_sample(
    model: EpsModel,
    A: torch.Tensor,
    y: torch.Tensor,
    shape: Sequence[int],
    alpha_bars: torch.Tensor,
    steps: int,
    zeta: float = 1.0,
    eta: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Diffusion posterior sampling (Chung, Kim, McCann, Klasky & Ye 2023, Algorithm 1) for
    measurements y = A x + noise, A (m, n) acting on flattened images, y (batch, m).

    On the DDIM grid of ``steps`` indices: at index t, ε̂ = ε_θ(xₜ, t), Tweedie's
    x̂₀ = (xₜ − √(1 − ᾱₜ) ε̂)/√ᾱₜ, the unconditional move x' = :func:`ddim_update` (η = ``eta``;
    η = 1 on all T indices is the paper's ancestral step), then the likelihood step

        x_prev = x' − ζ ∇_{xₜ} ‖yᵢ − A x̂₀(xₜ)ᵢ‖   (each item's own residual norm).

    The paper writes ζₜ ∇‖y − A x̂₀‖² with ζₜ = ζ'/‖y − A x̂₀‖; since ∇‖r‖² = 2‖r‖ ∇‖r‖ this is
    2ζ' ∇‖r‖, the step of the authors' code (ζ = 2ζ'). The gradient goes through the network.
    Returns the last x̂₀, shape ``shape``."""
    _check_alpha_bars(alpha_bars)
    shape = _check_shape(shape)
    if A.dim() != 2 or y.dim() != 2 or y.shape != (shape[0], A.shape[0]):
        raise ValueError(f"need A (m, n) and y ({shape[0]}, m), got {tuple(A.shape)} and {tuple(y.shape)}")
    if math.prod(shape[1:]) != A.shape[1]:
        raise ValueError(
            f"A acts on {A.shape[1]} values but an image of {shape[1:]} has {math.prod(shape[1:])}"
        )
    if zeta < 0 or eta < 0:
        raise ValueError("zeta and eta must be non-negative")
    taus = ddim_indices(len(alpha_bars), steps).tolist()
    ab = alpha_bars.detach().cpu()
    x = _randn(shape, generator, y)
    x0 = x
    for i, step in enumerate(taus):
        t = torch.full((shape[0],), step, dtype=torch.long, device=y.device)
        x = x.detach().requires_grad_(True)
        eps = model(x, t)
        x0 = (x - math.sqrt(1 - float(ab[step])) * eps) / math.sqrt(float(ab[step]))
        residual = torch.linalg.vector_norm(y - x0.flatten(1) @ A.T, dim=1)  # (batch,)
        (grad,) = torch.autograd.grad(residual.sum(), x)
        last = i + 1 == len(taus)
        with torch.no_grad():
            ab_prev = 1.0 if last else float(ab[taus[i + 1]])
            noise = _randn(shape, generator, y) if eta > 0 and not last else None
            x = ddim_update(x, eps, float(ab[step]), ab_prev, 0.0 if last else eta, noise)
            if not last:
                x = x - zeta * grad
    return x0.detach()
