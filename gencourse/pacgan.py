"""PacGAN (Lin, Khetan, Fanti and Oh, 2018): packing against mode collapse, and its metrics.

**Packing.** A PacGAN discriminator sees m samples at a time, all real or all generated,
concatenated into one input: it tells the product distribution Pᵐ from Qᵐ, and
d_TV(Pᵐ, Qᵐ) grows much faster with m for a generator that misses mass (mode collapse) than
for one that spreads it evenly. :func:`pack` groups consecutive samples; :class:`Packed` wraps
any discriminator with it.

**Metrics** (the paper's Section 5, on 2-D Gaussian mixtures): a sample is *high quality* if it
lies within 3 standard deviations of its nearest mode; a mode is *captured* if it has at least
one high-quality sample; the *reverse KL* is KL(q̂ ‖ uniform) = Σₖ q̂ₖ log(K q̂ₖ) for the
histogram q̂ of the high-quality samples over the K modes (:func:`mode_stats`).

**Ensembles.** The 2-D experiments use small networks, for which the per-operation overhead of a
CPU dominates the arithmetic. :class:`EnsembleLinear`, :class:`EnsembleBatchNorm`,
:class:`PacGANGenerator` and :class:`MaxoutDiscriminator` therefore hold ``members``
independent copies of a network as stacked weights, and apply them with one batched matrix
product ``torch.baddbmm`` per layer. Member s sees only its own slice x[s] and owns its own
weights; the training loss is the *sum* of the members' losses, so each member receives
exactly the gradient of its own loss, and Adam (an element-wise optimiser) updates it exactly as
if it were trained alone. :func:`train_pacgan` trains such an ensemble (several seeds of one
setting) with the non-saturating loss, optionally unrolled (Metz et al., 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.func import functional_call

from gencourse.divergences import as_probability_vector
from gencourse.gan import discriminator_loss, generator_loss
from gencourse.runtime import seed_everything
from gencourse.train import Player, Step, adversarial_fit, linear_decay, require_int
from gencourse.train.ensemble import EnsembleBatchNorm, EnsembleLinear


def pack(x: torch.Tensor, m: int, dim: int = 0) -> torch.Tensor:
    """Group m consecutive samples along axis ``dim`` and concatenate each group along the next
    axis: (n·m, d) → (n, m·d), (n·m, C, H, W) → (n, m·C, H, W), and with ``dim=1``,
    (S, n·m, d) → (S, n, m·d). Group i holds samples i·m, …, i·m + m − 1, in that order.

    Raises ``ValueError`` if the axis length is not divisible by m.
    """
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ValueError(f"the packing degree m must be a positive integer, got {m!r}")
    if not 0 <= dim < x.dim() - 1:
        raise ValueError(
            f"cannot pack axis {dim} of a tensor of shape {tuple(x.shape)}: it needs a next axis"
        )
    if x.shape[dim] % m != 0:
        raise ValueError(f"cannot pack {x.shape[dim]} samples (shape {tuple(x.shape)}) into groups of {m}")
    shape = x.shape
    return x.reshape(*shape[:dim], shape[dim] // m, m * shape[dim + 1], *shape[dim + 2 :])


_pack = pack  # for functions whose argument ``pack`` (the degree m) shadows the function


class Packed(nn.Module):
    """A PacGAN discriminator: D(pack(x, m)), which scores each group of m consecutive samples.

    ``discriminator`` is a module that accepts packed inputs (m·d features, or m·C channels), or
    a factory ``m -> module`` that builds one. ``dim`` is the sample axis (1 for ensembles).
    """

    def __init__(self, discriminator: nn.Module | Callable[[int], nn.Module], m: int, dim: int = 0) -> None:
        super().__init__()
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise ValueError(f"the packing degree m must be a positive integer, got {m!r}")
        if not isinstance(discriminator, nn.Module):
            discriminator = discriminator(m)
            if not isinstance(discriminator, nn.Module):
                raise ValueError("the discriminator factory must return an nn.Module")
        self.discriminator = discriminator
        self.m = m
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(pack(x, self.m, self.dim))


def mode_stats(
    samples: torch.Tensor, centers: torch.Tensor, std: float, threshold: float = 3.0
) -> dict[str, float]:
    """The paper's mode-coverage metrics of ``samples`` (n, d) for a mixture of isotropic
    Gaussians with ``centers`` (K, d) and standard deviation ``std``:

    * ``modes``: the number of modes whose ball of radius ``threshold``·std holds at least one
      sample (each sample is assigned to its nearest center);
    * ``high_quality``: the fraction of samples within ``threshold``·std of their nearest center;
    * ``reverse_kl``: KL(q̂ ‖ U) = Σₖ q̂ₖ log(K q̂ₖ), q̂ the histogram of the high-quality samples
      over the K modes and U uniform (0 if all modes are equally filled, log K if one mode holds
      all); ``nan`` if no sample is of high quality.
    """
    if samples.dim() != 2 or centers.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(
            f"samples (n, d) and centers (K, d) must be matrices with the same d, got "
            f"{tuple(samples.shape)} and {tuple(centers.shape)}"
        )
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    dist = torch.cdist(samples.detach().double().cpu(), centers.double().cpu())
    nearest_dist, nearest = dist.min(1)
    good = nearest_dist < threshold * std
    counts = torch.bincount(nearest[good], minlength=len(centers)).double()
    n_good = float(counts.sum())
    if n_good == 0:
        rkl = math.nan
    else:
        q = counts[counts > 0] / n_good
        rkl = float((q * torch.log(q * len(centers))).sum())
    return {"modes": int((counts > 0).sum()), "high_quality": n_good / len(samples), "reverse_kl": rkl}


HIGH_QUALITY_MIN = 0.70  # modes and reverse KL are read only where ≥ 70 % of samples are high quality


def uniform_box_samples(data: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points uniform on the bounding box of ``data`` (N, d): xⱼ ~ U[min data[:, j], max data[:, j]]
    independently per coordinate; a generator with no structure at all."""
    if data.dim() != 2 or n < 1:
        raise ValueError(f"need data (N, d) and n ≥ 1, got shape {tuple(data.shape)} and n={n}")
    low, high = data.min(0).values, data.max(0).values
    return low + (high - low) * torch.rand(n, data.shape[1], generator=generator, dtype=data.dtype)


def gaussian_fit_samples(
    data: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n points from the single Gaussian fitted to ``data`` (N, d) by maximum likelihood:
    N(μ̂, Σ̂) with μ̂ = mean of the rows and Σ̂ = (1/N) Σᵢ (xᵢ − μ̂)(xᵢ − μ̂)ᵀ, sampled as
    μ̂ + L ε with Σ̂ = L Lᵀ (Cholesky) and ε ~ N(0, I)."""
    if data.dim() != 2 or n < 1:
        raise ValueError(f"need data (N, d) and n ≥ 1, got shape {tuple(data.shape)} and n={n}")
    x = data.double()
    mu = x.mean(0)
    cov = (x - mu).T @ (x - mu) / len(x)
    eps = torch.randn(n, data.shape[1], generator=generator, dtype=torch.float64)
    return (mu + eps @ torch.linalg.cholesky(cov).T).to(data.dtype)


def quality_invalid_reason(high_quality: ArrayLike, threshold: float = HIGH_QUALITY_MIN) -> str:
    """Why a setting's modes and reverse KL cannot be read: "" when the mean over runs of the
    high-quality fraction (in [0, 1]) is at least ``threshold``, else e.g.
    "high quality 2.0 % < 70 %" (the mode count of diffuse noise says nothing)."""
    mean = float(np.nanmean(np.asarray(high_quality, dtype=float)))
    if mean >= threshold:
        return ""
    return f"high quality {100 * mean:.1f} % < {100 * threshold:.0f} %"


def runs_invalid_reason(runs: Mapping[str, ArrayLike]) -> str:
    """:func:`quality_invalid_reason` of runs whose ``runs["high_quality"]`` is in percent (as
    :func:`final_run_stats` and :func:`mode_stats_over_draws` give it): the rule applied to
    the fractions high_quality / 100."""
    return quality_invalid_reason(np.asarray(runs["high_quality"], dtype=float) / 100)


def final_run_stats(history: Mapping[str, list]) -> dict[str, np.ndarray]:
    """Every run's metrics at the last evaluation of a :func:`train_pacgan` history: modes,
    high-quality share in percent (100 · fraction) and reverse KL, one entry per run."""
    out = {key: np.array(history[key][-1], dtype=float) for key in ("modes", "high_quality", "reverse_kl")}
    out["high_quality"] *= 100
    return out


def mode_stats_over_draws(
    sample: Callable[[torch.Generator], torch.Tensor],
    centers: torch.Tensor,
    std: float,
    draws: int = 5,
    seed: int = 50,
) -> dict[str, np.ndarray]:
    """:func:`mode_stats` of ``draws`` independent samples of a fixed generator (a baseline that
    learns nothing): draw i is ``sample(torch.Generator().manual_seed(seed + i))``. Returns, for
    each metric ("modes", "high_quality", "reverse_kl"), the array (draws,) of its values, the
    high-quality fraction in per cent, 100 · high_quality (the unit of the lectures' tables)."""
    require_int("draws", draws, 1)
    runs = [mode_stats(sample(torch.Generator().manual_seed(seed + i)), centers, std) for i in range(draws)]
    out = {
        key: np.array([r[key] for r in runs], dtype=float) for key in ("modes", "high_quality", "reverse_kl")
    }
    out["high_quality"] *= 100
    return out


def mean_std(values: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation over runs, NaN runs (no high-quality sample) dropped:
    x̄ = Σᵢ xᵢ / n and s = √(Σᵢ (xᵢ − x̄)² / (n − 1)) over the n runs left; s is NaN for a single
    run, and both are NaN when no run is left."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


def beyond_spread(a: ArrayLike, b: ArrayLike, higher_is_better: bool = True, z: float = 2.0) -> bool:
    """Whether runs ``a`` beat runs ``b`` beyond the spread over seeds: the difference of the
    means, in the metric's direction, exceeds ``z`` standard errors of that difference,
    mean(a) − mean(b) > z √(s_a²/n_a + s_b²/n_b) (s the sample standard deviation, ddof 1; NaN
    runs dropped). Needs at least two runs on each side."""
    x, y = (np.asarray(v, dtype=float) for v in (a, b))
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least two runs on each side, got {len(x)} and {len(y)}")
    diff = (x.mean() - y.mean()) * (1 if higher_is_better else -1)
    se = math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    return bool(diff > z * se)


def blur_images(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel of images x (n, C, H, W) convolved with a normalised Gaussian kernel of
    standard deviation ``sigma`` pixels, k(i) ∝ exp(−i²/(2σ²)) for |i| ≤ ⌈3σ⌉, separably along
    rows and columns, with the image reflected at its borders (scipy's ``mode="mirror"``)."""
    if x.dim() != 4 or sigma <= 0:
        raise ValueError(f"need images (n, C, H, W) and sigma > 0, got {tuple(x.shape)} and {sigma}")
    r = math.ceil(3 * sigma)
    i = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(i**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    y = nn.functional.pad(x, (r, r, r, r), mode="reflect")
    y = nn.functional.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return nn.functional.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


# --------------------------------------------------------------------------------------------
# Ensembles of small networks: `members` independent copies with stacked weights.
# --------------------------------------------------------------------------------------------


def _as_members(x: torch.Tensor, members: int) -> tuple[torch.Tensor, bool]:
    """View x as (members, n, features); accept (n, features) when there is one member."""
    if x.dim() == 2 and members == 1:
        return x.unsqueeze(0), True
    if x.dim() != 3 or x.shape[0] != members:
        raise ValueError(
            f"expected a tensor of shape ({members}, n, features)"
            + (" or (n, features)" if members == 1 else "")
            + f", got {tuple(x.shape)}"
        )
    return x, False


class PacGANGenerator(nn.Module):
    """The paper's generator for 2-D data, as an ensemble of ``members`` copies:
    z ∈ ℝᵏ → [linear (no bias) → batch norm → ReLU] × ``depth`` → linear → x ∈ ℝᵈ,
    every hidden layer of width ``hidden`` (paper: k = 2, 4 layers of 400, d = 2).

    ``forward(z, groups)`` takes z of shape (members, n, k), or (n, k) for one member, and
    normalises each of ``groups`` consecutive blocks of samples with its own batch statistics.
    With ``batch_norm=False`` the hidden layers are [linear (with bias) → ReLU] and every sample
    is mapped independently of the others.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: int = 400,
        depth: int = 4,
        out_dim: int = 2,
        members: int = 1,
        init_std: float | None = 0.02,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1 or hidden < 1 or members < 1:
            raise ValueError(f"depth, hidden and members must be positive, got {depth}, {hidden}, {members}")
        self.latent_dim, self.members, self.batch_norm = latent_dim, members, batch_norm
        dims = [latent_dim] + [hidden] * depth
        self.linears = nn.ModuleList(
            EnsembleLinear(a, b, members, bias=not batch_norm, init_std=init_std)
            for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.norms = nn.ModuleList(
            EnsembleBatchNorm(hidden, members) for _ in range(depth if batch_norm else 0)
        )
        self.out = EnsembleLinear(hidden, out_dim, members, init_std=init_std)

    def forward(self, z: torch.Tensor, groups: int = 1) -> torch.Tensor:
        h, single = _as_members(z, self.members)
        for i, linear in enumerate(self.linears):
            h = linear(h)
            h = torch.relu(self.norms[i](h, groups) if self.batch_norm else h)
        x = self.out(h)
        return x.squeeze(0) if single else x


class MaxoutDiscriminator(nn.Module):
    """The paper's discriminator for 2-D data, as an ensemble of ``members`` copies:
    ``depth`` maxout layers h ↦ maxⱼ (h Wⱼ + bⱼ) over ``pieces`` affine pieces, each with
    ``hidden`` units, then a linear output (a logit). Paper: 3 layers of 200 units, 5 pieces;
    ``in_dim`` = 2m when it sees packs of m points in the plane.

    Takes x of shape (members, n, in_dim), or (n, in_dim) for one member; returns raw scores of
    shape (members, n), or (n,).
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden: int = 200,
        pieces: int = 5,
        depth: int = 3,
        members: int = 1,
        init_std: float | None = 0.02,
    ) -> None:
        super().__init__()
        if depth < 1 or hidden < 1 or pieces < 1 or members < 1:
            raise ValueError("depth, hidden, pieces and members must be positive")
        self.in_dim, self.hidden, self.pieces, self.members = in_dim, hidden, pieces, members
        dims = [in_dim] + [hidden] * depth
        self.layers = nn.ModuleList(
            EnsembleLinear(a, b * pieces, members, init_std=init_std)
            for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.out = EnsembleLinear(hidden, 1, members, init_std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, single = _as_members(x, self.members)
        for layer in self.layers:
            a = layer(h)
            # max with indices: its backward scatters the gradient to the maximising piece,
            # 15 % faster than amax's mask-and-count (the two differ only at exact ties)
            h = a.view(*a.shape[:-1], self.hidden, self.pieces).max(-1).values
        scores = self.out(h).squeeze(-1)
        return scores.squeeze(0) if single else scores


def parameter_count(module: nn.Module, per_member: bool = True) -> int:
    """The number of trainable parameters of ``module``, per member of an ensemble by default."""
    total = sum(p.numel() for p in module.parameters() if p.requires_grad)
    members = getattr(module, "members", 1)
    return total // members if per_member else total


def matched_maxout_hidden(target: int, in_dim: int = 2, pieces: int = 5, depth: int = 3) -> int:
    """The width h of a :class:`MaxoutDiscriminator` whose parameter count is closest to
    ``target``: the count is (in_dim + 1)·h·p + (depth − 1)(h + 1)·h·p + h + 1."""

    def count(h: int) -> int:
        return (in_dim + 1) * h * pieces + (depth - 1) * (h + 1) * h * pieces + h + 1

    return min(range(1, 10 * int(math.sqrt(target)) + 10), key=lambda h: abs(count(h) - target))


# --------------------------------------------------------------------------------------------
# Training an ensemble: PacGAN, GAN (pack = 1) and the unrolled GAN.
# --------------------------------------------------------------------------------------------


MIXTURE_CPU_PROTOCOL: dict[str, object] = {
    "g_hidden": 64, "g_depth": 3, "g_batch_norm": False, "d_hidden": 48, "init_std": None,
    "lr": 1e-3, "lr_d": 1e-2, "lr_end": 1e-4, "betas": (0.5, 0.9), "steps": 4_000,
}  # fmt: skip
"""The course's protocol for GANs on the 2-D mixtures at the ``cpu`` budget (lecture 4; reused by
lectures 12 and 13): generator width × depth, batch norm or not, maxout discriminator width,
initialisation std (None: PyTorch's default), learning rates of G and D, final learning rate of
the linear decay, Adam's betas and the number of updates. See :func:`train_mixture_setting`."""


def train_mixture_setting(
    data: torch.Tensor,
    protocol: dict,
    m: int = 1,
    *,
    members: int,
    seed: int,
    evaluate: Callable[[torch.Tensor], dict[str, float]] | None = None,
    n_eval: int = 2_500,
    eval_every: int = 0,
    pieces: int = 5,
    batch_size: int = 100,
    d_hidden: int | None = None,
    bn_groups: int | None = None,
    unroll: int = 0,
    device: torch.device | str = "cpu",
    desc: str = "PacGAN",
) -> tuple[dict[str, list], PacGANGenerator, MaxoutDiscriminator]:
    """One setting of the 2-D mixture experiments: ``members`` GANs (m = 1) or PacGANm trained at
    once. After ``torch.manual_seed(seed)``, builds G = :class:`PacGANGenerator` (2-D codes →
    g_hidden units, g_depth layers → d, d = data.shape[1]) then D = :class:`MaxoutDiscriminator` (m·d inputs,
    ``d_hidden`` or the protocol's width, ``pieces`` pieces, 3 layers), both with the protocol's
    ``init_std`` (and G with its ``g_batch_norm``), and trains them with :func:`train_pacgan`
    for the protocol's ``steps`` with its ``lr``, ``lr_d``, ``betas`` and ``lr_end``, packing
    degree m, the given ``seed``. Returns (history, G, D)."""
    require_int("m", m, 1)
    dim = data.shape[1]
    torch.manual_seed(seed)
    init_std = protocol.get("init_std")
    g = PacGANGenerator(
        2, protocol["g_hidden"], protocol["g_depth"], dim, members=members,
        batch_norm=protocol.get("g_batch_norm", False), init_std=init_std,
    ).to(device)  # fmt: skip
    d = MaxoutDiscriminator(
        m * dim, d_hidden or protocol["d_hidden"], pieces, 3, members=members, init_std=init_std
    ).to(device)
    history = train_pacgan(
        g, d, data, protocol["steps"], pack=m, batch_size=batch_size, lr=protocol["lr"], lr_d=protocol["lr_d"],
        betas=protocol["betas"], lr_end=protocol["lr_end"], bn_groups=bn_groups, unroll=unroll, seed=seed,
        eval_every=eval_every, evaluate=evaluate, n_eval=n_eval, desc=desc,
    )  # fmt: skip
    return history, g, d


def _adam_lookahead(
    params: dict[str, torch.Tensor],
    grads: tuple[torch.Tensor, ...],
    state: dict[str, dict[str, torch.Tensor | int]],
    lr: float,
    betas: tuple[float, float],
    eps: float = 1e-8,
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor | int]]]:
    """One differentiable Adam step θ' = θ − lr · m̂ / (√v̂ + eps), with
    m = β₁ m + (1 − β₁) g, v = β₂ v + (1 − β₂) g², m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ),
    starting from the moments in ``state`` (per parameter name; zeros if empty)."""
    new_params, new_state = {}, {}
    for (name, p), g in zip(params.items(), grads, strict=True):
        s = state.get(name, {})
        t = int(s.get("step", 0)) + 1
        m = betas[0] * s.get("exp_avg", torch.zeros_like(p)) + (1 - betas[0]) * g
        v = betas[1] * s.get("exp_avg_sq", torch.zeros_like(p)) + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        # √(v̂ + 1e-16) rather than √v̂: finite derivative where a gradient is exactly zero
        new_params[name] = p - lr * m_hat / (torch.sqrt(v_hat + 1e-16) + eps)
        new_state[name] = {"step": t, "exp_avg": m, "exp_avg_sq": v}
    return new_params, new_state


def _interleave(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(S, g·B, d) in g consecutive blocks → (S, B·g, d) with sample i·g + j taken from block j, so
    that the i-th pack of g consecutive samples holds one sample of every block."""
    s, n, d = x.shape
    return x.reshape(s, groups, n // groups, d).transpose(1, 2).reshape(s, n, d)


def train_pacgan(
    generator: PacGANGenerator,
    discriminator: nn.Module,
    data: torch.Tensor,
    steps: int,
    pack: int = 1,
    batch_size: int = 100,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.8, 0.999),
    *,
    bn_groups: int | None = None,
    lr_end: float | None = None,
    lr_d: float | None = None,
    unroll: int = 0,
    seed: int = 0,
    eval_every: int = 0,
    evaluate: Callable[[torch.Tensor], dict[str, float]] | None = None,
    n_eval: int = 2_500,
    desc: str = "PacGAN",
) -> dict[str, list]:
    """Train an ensemble of S = ``generator.members`` GANs (or PacGANs) at once, one per member,
    with the non-saturating loss of :mod:`gencourse.gan`, as in the paper's code:

    * discriminator step: L_D = −E log σ(D(xᵐ)) − E log(1 − σ(D(G(z)ᵐ))), on ``batch_size``
      packs xᵐ of ``pack`` = m real points (rows of ``data``, drawn with replacement) and as many
      packs of generated points;
    * generator step: L_G = −E log σ(D(G(z)ᵐ)) on fresh codes z ~ N(0, I).

    ``discriminator`` maps (S, batch_size, m·d) to scores (S, batch_size), e.g. a
    :class:`MaxoutDiscriminator` with ``in_dim`` = m·d and ``members`` = S. The generator
    makes m·``batch_size`` points per step in ``bn_groups`` (default m) blocks with their own
    batch statistics (the paper's code applies the generator once per slot of a pack); the
    i-th pack takes one point from each block.

    ``lr`` is the generator's learning rate and ``lr_d`` the discriminator's (default ``lr``).
    With ``lr_end``, both decay linearly over the run by the same factor, from 1 to
    ``lr_end``/``lr`` (the generator's from ``lr`` to ``lr_end``).

    ``unroll`` = k > 0 gives the unrolled GAN (Metz et al., 2017): the generator minimises
    L_G against D_θk, where θ₀ = θ and θᵢ₊₁ is one Adam step of the discriminator (from the
    optimiser's current moments) on the same batch, differentiated through, so that the
    generator sees how the discriminator would react; the discriminator itself takes its
    ordinary step.

    Every ``eval_every`` steps (and after the last one), if ``evaluate`` is given, each member
    generates ``n_eval`` points from the same fixed codes with the batch-norm running averages
    (eval mode) and ``evaluate(points)`` returns a dict of numbers.

    Returns the history: ``"step"``, ``"d_loss"``, ``"g_loss"`` (per step, means over members),
    and ``"eval_step"`` with, for every key k of ``evaluate``, ``k`` = one list of S numbers
    per evaluation.
    """
    s_members = generator.members
    if getattr(discriminator, "members", s_members) != s_members:
        raise ValueError(
            f"the generator has {s_members} members but the discriminator {discriminator.members}"
        )
    require_int("steps", steps, 0)
    require_int("pack", pack)
    require_int("batch_size", batch_size)
    require_int("unroll", unroll, 0)
    if data.dim() != 2:
        raise ValueError(f"data must be a matrix (N, d), got shape {tuple(data.shape)}")
    groups = pack if bn_groups is None else bn_groups
    n = pack * batch_size
    if n % groups != 0:
        raise ValueError(f"{n} generated points per step cannot form {groups} equal batch-norm groups")
    gen = seed_everything(seed)
    device = next(generator.parameters()).device
    data = data.to(device)
    k = generator.latent_dim
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    lr_d = lr if lr_d is None else lr_d
    if lr <= 0 or lr_d <= 0:
        raise ValueError(f"learning rates must be positive, got lr={lr}, lr_d={lr_d}")
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas)
    z_eval = torch.randn(s_members, n_eval, k, generator=gen).to(device)

    def fake_packs(t: Step) -> torch.Tensor:
        z = torch.randn(s_members, n, k, generator=t.rng).to(device)
        return _pack(_interleave(generator(z, groups), groups), pack, dim=1)

    def real_packs(t: Step) -> torch.Tensor:
        idx = torch.randint(len(data), (s_members, n), generator=t.rng).to(device)
        return _pack(data[idx], pack, dim=1)

    def d_step(t: Step) -> tuple[torch.Tensor, dict[str, float]]:
        """L_D summed over the members: each member gets the gradient of its own loss."""
        real = real_packs(t)
        with torch.no_grad():
            fake = fake_packs(t)
        loss_d = s_members * discriminator_loss("ns", discriminator(real), discriminator(fake))
        return loss_d, {"d_loss": float(loss_d.detach()) / s_members}

    def g_step(t: Step) -> tuple[torch.Tensor, dict[str, float]]:
        """L_G against D, or against D after ``unroll`` look-ahead steps (Metz et al.)."""
        fake = fake_packs(t)
        if unroll == 0:
            loss_g = s_members * generator_loss("ns", discriminator(fake))
        else:
            scores = _unrolled(discriminator, opt_d, real_packs(t), fake, unroll, s_members)
            loss_g = s_members * generator_loss("ns", scores)
        return loss_g, {"g_loss": float(loss_g.detach()) / s_members}

    def evaluate_members() -> dict[str, list]:
        points = generator(z_eval).cpu()
        results = [evaluate(points[i]) for i in range(s_members)]
        return {key: [r[key] for r in results] for key in results[0]}

    history = adversarial_fit(
        Player([discriminator], d_step, opt_d), Player([generator], g_step, opt_g), steps,
        rng=gen, schedule=None if lr_end is None else linear_decay(lr_end / lr),
        evaluate=None if evaluate is None else evaluate_members, eval_every=eval_every,
        keys=("d_loss", "g_loss"), desc=desc,
    )  # fmt: skip
    history.setdefault("eval_step", [])
    return history


def _unrolled(
    discriminator: nn.Module,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    k: int,
    members: int = 1,
) -> torch.Tensor:
    """The scores D_θk(fake) of the unrolled GAN: θ₀ = θ, θᵢ₊₁ = one Adam step of the
    discriminator's loss on (``real``, ``fake``) from θᵢ, starting from the optimiser's moments,
    differentiable with respect to ``fake`` (and through the k steps). The loss is summed over
    the ``members`` of an ensemble, as in training."""
    betas = opt_d.param_groups[0]["betas"]
    lr = opt_d.param_groups[0]["lr"]
    state = {name: opt_d.state.get(p, {}) for name, p in discriminator.named_parameters()}
    params = {name: p.detach().requires_grad_() for name, p in discriminator.named_parameters()}
    for _ in range(k):
        look = members * discriminator_loss(
            "ns",
            functional_call(discriminator, params, (real,)),
            functional_call(discriminator, params, (fake,)),
        )
        grads = torch.autograd.grad(look, list(params.values()), create_graph=True)
        params, state = _adam_lookahead(params, grads, state, lr, betas)
    return functional_call(discriminator, params, (fake,))


# --------------------------------------------------------------------------------------------
# Theory: mode collapse and the total variation of packed distributions.
# --------------------------------------------------------------------------------------------
#
# A pair (P, Q) of discrete distributions is read as piecewise-constant densities on [0, 1]
# (atom i is an interval of P-length pᵢ), so that a set S may take any fraction of an atom. The
# points (P(S), Q(S)) then fill a convex region, symmetric about (½, ½), whose lower boundary
# g(x) = min {Q(S) : P(S) = x} is the polygon through the atoms sorted by increasing q/p.


def lower_boundary(p: ArrayLike, q: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The vertices (x, y) of g(x) = min {Q(S) : P(S) = x}: start at (0, 0) and add the atoms
    in increasing order of qᵢ/pᵢ (atoms with pᵢ = 0 last, a vertical segment up to (1, 1))."""
    p_arr, q_arr = as_probability_vector(p, "p"), as_probability_vector(q, "q")
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"p and q must have the same length, got {p_arr.size} and {q_arr.size}")
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.where(p_arr > 0, q_arr / np.where(p_arr > 0, p_arr, 1.0), np.inf)
    order = np.argsort(ratio, kind="stable")
    xs = np.concatenate([[0.0], np.cumsum(p_arr[order])])
    ys = np.concatenate([[0.0], np.cumsum(q_arr[order])])
    return xs, ys


def has_mode_collapse(p: ArrayLike, q: ArrayLike, eps: float, delta: float) -> bool:
    """Whether (P, Q) has (ε, δ)-mode collapse: some S with P(S) ≥ δ and Q(S) ≤ ε, i.e.
    g(δ) ≤ ε (g is increasing), with sets allowed to split atoms."""
    if not 0 <= eps < delta <= 1:
        raise ValueError(f"need 0 ≤ eps < delta ≤ 1, got eps={eps}, delta={delta}")
    xs, ys = lower_boundary(p, q)
    j = int(np.searchsorted(xs, delta, side="left"))  # first vertex with x ≥ δ
    if xs[j] == delta:
        g = ys[j]
    else:  # δ inside the segment from vertex j − 1 to vertex j
        g = ys[j - 1] + (ys[j] - ys[j - 1]) * (delta - xs[j - 1]) / (xs[j] - xs[j - 1])
    return bool(g <= eps + 1e-12)


def pair_from_boundary(xs: ArrayLike, ys: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The pair (p, q) whose lower boundary is the convex polygon (0, 0) = (x₀, y₀), …,
    (x_k, y_k) with x_k = 1: one atom per segment, pᵢ = Δx, qᵢ = Δy, plus an atom with p = 0
    and q = 1 − y_k if y_k < 1."""
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if x[0] != 0 or y[0] != 0 or abs(x[-1] - 1) > 1e-12 or y[-1] > 1 + 1e-12:
        raise ValueError("the polygon must run from (0, 0) to (1, y) with y ≤ 1")
    p, q = np.diff(x), np.diff(y)
    if y[-1] < 1 - 1e-12:
        p, q = np.append(p, 0.0), np.append(q, 1 - y[-1])
    if np.any(p < -1e-12) or np.any(q < -1e-12):
        raise ValueError("the polygon must be non-decreasing in x and y")
    keep = (p > 1e-12) | (q > 1e-12)
    p, q = np.clip(p[keep], 0, None), np.clip(q[keep], 0, None)
    return p / p.sum(), q / q.sum()


def _lower_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Lower convex hull of points sorted by x (Andrew's monotone chain)."""
    hull: list[tuple[float, float]] = []
    for pt in sorted(set(points)):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (pt[1] - y1) - (y2 - y1) * (pt[0] - x1) <= 1e-15:
                hull.pop()
            else:
                break
        hull.append(pt)
    return hull


def collapsed_extremal_pair(eps: float, delta: float, tau: float, a: float) -> tuple[np.ndarray, np.ndarray]:
    """The least informative pair with (ε, δ)-mode collapse and d_TV = τ that separates at
    P(S) = a: its region is the convex hull of (0, 0), (δ, ε), (a, a − τ), (1, 1) (and their
    mirror images). Every collapsed pair with d_TV = τ contains such a hull (with a = P(S*),
    S* = {p > q}), so by Blackwell's ordering its d_TV(Pᵐ, Qᵐ) is at least this pair's."""
    if not (tau >= delta - eps - 1e-12 and tau <= a <= 1):
        raise ValueError(f"need tau ≥ delta − eps and tau ≤ a ≤ 1, got tau={tau}, a={a}")
    hull = _lower_hull([(0.0, 0.0), (delta, eps), (a, a - tau), (1.0, 1.0)])
    xs, ys = zip(*hull, strict=True)
    return pair_from_boundary(xs, ys)


def uncollapsed_extremal_pair(
    eps: float, delta: float, tau: float, beta: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The most informative pair whose region stays above the line y = ε + β(x − δ) through
    (δ, ε) and has d_TV ≤ τ: lower boundary h(x) = max(0, x − τ, ε + β(x − δ)). A pair without
    (ε, δ)-mode collapse has a region that misses (δ, ε), hence lies above such a line (β a
    slope of g at δ, ε/δ ≤ β ≤ (1 − ε)/(1 − δ)) and inside this pair's region. Returns ``None``
    when h's pair has d_TV < τ (no pair with d_TV = τ lies above that line)."""
    lines = [(0.0, 0.0), (1.0, -tau), (beta, eps - beta * delta)]
    xs = {0.0, 1.0}
    for i, (s1, c1) in enumerate(lines):
        for s2, c2 in lines[i + 1 :]:
            if s1 != s2 and 0 < (c2 - c1) / (s1 - s2) < 1:
                xs.add((c2 - c1) / (s1 - s2))
    x = np.array(sorted(xs))
    y = np.max([s * x + c for s, c in lines], axis=0)
    if np.max(x - y) < tau - 1e-9 or y[-1] > 1 + 1e-12:
        return None
    return pair_from_boundary(x, y)


def packing_bounds(eps: float, delta: float, tau: float, m: int, n_grid: int = 101) -> dict[str, float]:
    """For pairs (P, Q) with d_TV(P, Q) = τ, the range of d_TV(Pᵐ, Qᵐ) that separates
    mode collapse from its absence (the PacGAN paper's Theorem, computed numerically):

    * ``collapsed_min``: min of d_TV(Pᵐ, Qᵐ) over pairs with (ε, δ)-mode collapse, the minimum
      over a ∈ [τ, 1] (a grid of ``n_grid`` points) of :func:`collapsed_extremal_pair`;
    * ``uncollapsed_max``: sup over pairs without it, the maximum over β ∈ [ε/δ, (1−ε)/(1−δ)]
      of :func:`uncollapsed_extremal_pair`.

    Either is ``nan`` when its class is empty at this τ. A grid makes ``collapsed_min`` an
    upper estimate and ``uncollapsed_max`` a lower estimate of the exact values.
    """
    from gencourse.divergences import tv_product

    lo, hi = math.nan, math.nan
    if tau >= delta - eps:
        lo = min(
            tv_product(*collapsed_extremal_pair(eps, delta, tau, a), m) for a in np.linspace(tau, 1, n_grid)
        )
    values = []
    for beta in np.linspace(eps / delta, (1 - eps) / (1 - delta) if delta < 1 else 1e6, n_grid):
        pair = uncollapsed_extremal_pair(eps, delta, tau, beta)
        if pair is not None:
            values.append(tv_product(*pair, m))
    if values:
        hi = max(values)
    return {"collapsed_min": lo, "uncollapsed_max": hi}
