"""Generative adversarial networks (Goodfellow et al., 2014) and the zoo of adversarial losses.

A generator G maps noise z ~ N(0, I_k) to a sample G(z); a discriminator (or *critic*) D maps a
sample to a raw score d = D(x) ∈ ℝ. For ``"mm"`` and ``"ns"`` the score is a logit: the
probability of "real" is σ(d), and the losses are written with softplus, using
−log σ(d) = softplus(−d) and −log(1 − σ(d)) = softplus(d), so that they are finite for any logit.

| name | discriminator loss L_D | generator loss L_G |
| --- | --- | --- |
| ``mm`` (minimax) | −E log σ(D(x)) − E log(1 − σ(D(G(z)))) | E log(1 − σ(D(G(z)))) |
| ``ns`` (non-saturating) | same as ``mm`` | −E log σ(D(G(z))) |
| ``wgan`` | −E D(x) + E D(G(z)) | −E D(G(z)) |
| ``lsgan`` | E (D(x) − 1)² + E D(G(z))² | E (D(G(z)) − 1)² |
| ``hinge`` | E max(0, 1 − D(x)) + E max(0, 1 + D(G(z))) | −E D(G(z)) |

Penalties, added to L_D with a weight λ by :func:`train_gan`:

* WGAN-GP (Gulrajani et al., 2017): E (‖∇ₓD(x̂)‖₂ − 1)² at x̂ = αx + (1 − α)G(z), α ~ U[0, 1];
* DRAGAN (Kodali et al., 2017): the same at x̂ = x + α δ, δ = c·std(x)·U[0, 1]ᵈ, near the data.

WGAN's original Lipschitz constraint is weight clipping (every critic parameter clamped to
[−c, c] after each critic step), the ``clip`` argument of :func:`train_gan`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gencourse.cache import cached_training
from gencourse.nets import DCGANDiscriminator, DCGANGenerator, mlp
from gencourse.runtime import seed_everything
from gencourse.train import EnsembleLinear, Player, Step, adversarial_fit, require_int

LOSSES = ("mm", "ns", "wgan", "lsgan", "hinge")
PENALTIES = ("gp", "dragan")
OPTIMIZERS = ("adam", "rmsprop")

SampleReal = Callable[[int, torch.Generator], torch.Tensor]


def _check_loss(name: str) -> None:
    if name not in LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; known losses: " + ", ".join(repr(n) for n in LOSSES))


def discriminator_loss(name: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss L_D (to be minimised) for the loss ``name``, from the raw scores
    ``d_real`` = D(x) and ``d_fake`` = D(G(z)) (logits for ``"mm"``/``"ns"``); see the module's
    table. Expectations are means over all entries."""
    _check_loss(name)
    if name in ("mm", "ns"):
        # −log σ(d) = softplus(−d), −log(1 − σ(d)) = softplus(d)
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if name == "wgan":
        return -d_real.mean() + d_fake.mean()
    if name == "lsgan":
        return (d_real - 1).pow(2).mean() + d_fake.pow(2).mean()
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()  # hinge


def generator_loss(name: str, d_fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss L_G (to be minimised) for the loss ``name``, from the raw scores
    ``d_fake`` = D(G(z)); ``"mm"`` is E log(1 − σ(d)) = −E softplus(d), ``"ns"`` is
    −E log σ(d) = E softplus(−d); see the module's table."""
    _check_loss(name)
    if name == "mm":
        return -F.softplus(d_fake).mean()
    if name == "ns":
        return F.softplus(-d_fake).mean()
    if name == "lsgan":
        return (d_fake - 1).pow(2).mean()
    return -d_fake.mean()  # wgan, hinge


def _gradient_norm_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], x_hat: torch.Tensor
) -> torch.Tensor:
    """E (‖∇ₓ D(x̂)‖₂ − 1)², differentiable with respect to the critic's parameters."""
    x_hat = x_hat.detach().requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-12)
    return (norm - 1).pow(2).mean()


def _uniform_like(
    shape: Sequence[int], like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=generator, dtype=like.dtype).to(like.device)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty E (‖∇ₓD(x̂)‖₂ − 1)² at the random interpolates x̂ = αx + (1 − α)x̃,
    one α ~ U[0, 1] per pair (x, x̃) of ``real`` and ``fake`` samples, without the factor λ.

    ``generator`` (a ``torch.Generator``) draws α. The result is differentiable with respect
    to the critic's parameters (the gradient is taken with ``create_graph=True``).
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    alpha = _uniform_like((len(real),) + (1,) * (real.dim() - 1), real, generator)
    return _gradient_norm_penalty(critic, alpha * real.detach() + (1 - alpha) * fake.detach())


def dragan_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    generator: torch.Generator | None = None,
    scale: float = 0.5,
) -> torch.Tensor:
    """DRAGAN's penalty E (‖∇ₓD(x̂)‖₂ − 1)² at points near the data, without the factor λ:
    x̂ = x + α δ with δ = ``scale``·std(x)·U[0, 1]ᵈ (std over the whole batch) and one
    α ~ U[0, 1] per sample, as in the authors' code (Kodali et al., 2017)."""
    if scale < 0:
        raise ValueError(f"scale must be non-negative, got {scale}")
    real = real.detach()
    delta = scale * real.std() * _uniform_like(real.shape, real, generator)
    alpha = _uniform_like((len(real),) + (1,) * (real.dim() - 1), real, generator)
    return _gradient_norm_penalty(critic, real + alpha * delta)


def clip_weights(module: nn.Module, c: float) -> None:
    """WGAN's weight clipping: clamp every parameter of ``module`` to [−c, c], in place."""
    if c <= 0:
        raise ValueError(f"the clipping constant must be positive, got {c}")
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)


def pack_samples(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN's packing: group m consecutive samples and concatenate them along the first
    feature axis, (n·m, d) → (n, m·d) and (n·m, C, H, W) → (n, m·C, H, W). The same function as
    :func:`gencourse.pacgan.pack` along the first axis (the one implementation lives there)."""
    from gencourse.pacgan import pack  # pacgan imports this module: imported on use

    return pack(x, m)


def sample_latent(
    n: int, latent_dim: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """n latent codes z ~ N(0, I_k), k = ``latent_dim``, shape (n, k) (drawn on the CPU so that a
    seed gives the same codes on every device)."""
    return torch.randn(n, latent_dim, generator=generator).to(device)


def data_sampler(data: torch.Tensor) -> SampleReal:
    """A ``sample_real(n, generator)`` for :func:`train_gan` that draws n rows of ``data``
    uniformly at random, with replacement."""
    if len(data) == 0:
        raise ValueError("data is empty")

    def sample_real(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return data[torch.randint(len(data), (n,), generator=generator)]

    return sample_real


def trivial_generators(
    data: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """n samples from each of two generators with no structure, fitted to ``data`` (N, d), the
    trivial baselines for mode counting (compare with ``gencourse.pacgan.mode_stats``):

    * ``"uniform on the data's box"``: x ~ U(∏ⱼ [minᵢ data_ij, maxᵢ data_ij]);
    * ``"one Gaussian fitted"``: x ~ N(x̄, Σ̂), x̄ and Σ̂ the data's mean and covariance.
    """
    if data.dim() != 2 or len(data) < 2:
        raise ValueError(f"data must be (N, d) with N ≥ 2, got {tuple(data.shape)}")
    data = data.detach().double().cpu()
    lo, hi = data.min(0).values, data.max(0).values
    uniform = lo + (hi - lo) * torch.rand(n, data.shape[1], generator=generator, dtype=torch.float64)
    chol = torch.linalg.cholesky(torch.cov(data.T).reshape(data.shape[1], data.shape[1]))
    gaussian = data.mean(0) + torch.randn(n, data.shape[1], generator=generator, dtype=torch.float64) @ chol.T
    return {"uniform on the data's box": uniform.float(), "one Gaussian fitted": gaussian.float()}


class MLPGenerator(nn.Module):
    """z ∈ ℝᵏ → hidden layers (ReLU) → x ∈ ℝᵈ, for 2-D toy data."""

    def __init__(self, latent_dim: int = 2, hidden: Sequence[int] = (128, 128), out_dim: int = 2) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp([latent_dim, *hidden, out_dim], nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """x ∈ ℝᵈ → hidden layers (LeakyReLU, slope 0.2) → a raw score of shape (n,)."""

    def __init__(self, in_dim: int = 2, hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip([in_dim, *hidden[:-1]], hidden, strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1] if hidden else in_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


class StackedMLP(nn.Module):
    """S independent copies of an :class:`MLPGenerator` or :class:`MLPDiscriminator` (same
    shapes, their own weights), evaluated at once by batched matrix products: rows s·n, …,
    (s + 1)·n − 1 of the input (S·n, d) go through copy s, and the same rows of the output come
    from it. For small networks, whose cost on a CPU is mostly per-operation overhead, S copies
    cost much less than S separate runs. Each linear layer is a
    :class:`gencourse.train.EnsembleLinear` (the stacked layers of every ensemble of the course).

    Train it with :func:`train_gan` and ``batch_size`` = S·b: every loss there is a mean over
    the batch, that is 1/S × the sum of the copies' own losses on their b rows, so each copy gets
    1/S × its own gradient, and Adam, which divides by the gradient's running scale, moves each
    copy as it would move alone on its rows (up to its ε). Penalties are per row (a row's input
    gradient depends on its copy only); weight clipping is per weight.
    """

    def __init__(self, copies: Sequence[nn.Module]) -> None:
        super().__init__()
        if not copies or any(type(c) is not type(copies[0]) for c in copies):
            raise ValueError("need one or more copies of the same network class")
        if not isinstance(copies[0], (MLPGenerator, MLPDiscriminator)):
            raise TypeError(f"can stack MLPGenerator or MLPDiscriminator, not {type(copies[0]).__name__}")
        self.members = len(copies)
        self.scores = isinstance(copies[0], MLPDiscriminator)  # (n,) raw scores, not (n, d)
        self.latent_dim = getattr(copies[0], "latent_dim", None)
        layers = [list(c.net) for c in copies]
        self.layers = nn.ModuleList()
        for i, layer in enumerate(layers[0]):
            if isinstance(layer, nn.Linear):
                if any(ls[i].weight.shape != layer.weight.shape for ls in layers):
                    raise ValueError("the copies have different layer shapes")
                self.layers.append(EnsembleLinear.stack([ls[i] for ls in layers]))
            else:  # an element-wise activation
                self.layers.append(layer)

    @property
    def weights(self) -> list[nn.Parameter]:
        """The stacked weights (S, d_in, d_out) of the linear layers, in order (Wᵀ of each copy)."""
        return [layer.weight for layer in self.layers if isinstance(layer, EnsembleLinear)]

    @property
    def biases(self) -> list[nn.Parameter]:
        """The stacked biases (S, 1, d_out) of the linear layers, in order."""
        return [layer.bias for layer in self.layers if isinstance(layer, EnsembleLinear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (S·n, d) → (S·n, d_out), or (S·n,) scores for discriminators."""
        h = x.flatten(1)
        if h.shape[0] % self.members:
            raise ValueError(f"{h.shape[0]} rows cannot be split among {self.members} copies")
        h = h.reshape(self.members, -1, h.shape[1])
        for layer in self.layers:
            h = layer(h)  # linear: h[s] W[s] + b[s], one batched matrix product
        h = h.reshape(-1, h.shape[-1])
        return h.squeeze(1) if self.scores else h


def _optimizer(name: str, params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise ValueError(
        f"unknown optimizer {name!r}; known optimizers: " + ", ".join(repr(n) for n in OPTIMIZERS)
    )


HISTORY_KEYS = ("d_loss", "g_loss", "d_real", "d_fake", "penalty")


def gan_players(
    generator: nn.Module,
    discriminator: nn.Module,
    sample_real: SampleReal,
    latent_dim: int,
    loss: str = "ns",
    n_critic: int = 1,
    clip: float | None = None,
    penalty: str | None = None,
    penalty_weight: float = 10.0,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    batch_size: int = 64,
    *,
    optimizer: str = "adam",
    pack: int = 1,
    prepare_d_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[Player, Player]:
    """The discriminator and the generator of Goodfellow et al.'s Algorithm 1 as two
    :class:`~gencourse.train.Player` s for :func:`gencourse.train.adversarial_fit` (the
    arguments are :func:`train_gan`'s):

    * D's step (``n_critic`` times): m real samples x and m codes z ~ N(0, I),
      L_D = ``discriminator_loss(loss, D(x), D(G(z)))`` + λ · penalty, then clipping;
    * G's step: m fresh codes z, L_G = ``generator_loss(loss, D(G(z)))``.
    """
    _check_loss(loss)
    if penalty is not None and penalty not in PENALTIES:
        raise ValueError(
            f"unknown penalty {penalty!r}; known penalties: None, " + ", ".join(map(repr, PENALTIES))
        )
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; known optimizers: " + ", ".join(map(repr, OPTIMIZERS))
        )
    for name, value in (("n_critic", n_critic), ("batch_size", batch_size), ("pack", pack)):
        require_int(name, value)
    if clip is not None and clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")
    d_params = [p for p in discriminator.parameters() if p.requires_grad]
    g_params = [p for p in generator.parameters() if p.requires_grad]
    if not d_params:
        raise ValueError("the discriminator has no trainable parameters")
    n = batch_size * pack

    def d_input(x: torch.Tensor) -> torch.Tensor:
        if prepare_d_input is not None:
            x = prepare_d_input(x)
        return pack_samples(x, pack) if pack > 1 else x

    def fake_batch(t: Step) -> torch.Tensor:
        return d_input(generator(sample_latent(n, latent_dim, t.rng, t.device)))

    def d_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = d_input(sample_real(n, t.rng).to(t.device))
        with torch.no_grad():
            fake = fake_batch(t)
        d_real, d_fake = discriminator(real), discriminator(fake)
        loss_d = discriminator_loss(loss, d_real, d_fake)
        pen = torch.zeros((), device=t.device)
        if penalty == "gp":
            pen = gradient_penalty(discriminator, real, fake, t.rng)
        elif penalty == "dragan":
            pen = dragan_penalty(discriminator, real, t.rng)
        logs = {"d_loss": loss_d, "d_real": d_real.mean(), "d_fake": d_fake.mean(), "penalty": pen}
        return loss_d + penalty_weight * pen, logs

    def g_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_g = generator_loss(loss, discriminator(fake_batch(t)))
        return loss_g, {"g_loss": loss_g}

    after = None if clip is None else (lambda: clip_weights(discriminator, clip))
    opt_d = _optimizer(optimizer, d_params, lr_d, betas)
    opt_g = _optimizer(optimizer, g_params, lr_g, betas) if g_params else None
    return (
        Player([discriminator], d_step, opt_d, repeat=n_critic, after_update=after),
        Player([generator], g_step, opt_g),
    )


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    sample_real: SampleReal,
    latent_dim: int,
    steps: int,
    loss: str = "ns",
    n_critic: int = 1,
    clip: float | None = None,
    penalty: str | None = None,
    penalty_weight: float = 10.0,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    batch_size: int = 64,
    seed: int = 0,
    *,
    optimizer: str = "adam",
    pack: int = 1,
    prepare_d_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    callback: Callable[[int, nn.Module, nn.Module], None] | None = None,
    desc: str = "GAN",
) -> dict[str, list[float]]:
    """Alternating training of a GAN (Goodfellow et al.'s algorithm, with k = ``n_critic``):
    the players of :func:`gan_players` trained by :func:`gencourse.train.adversarial_fit`.

    Each of the ``steps`` generator steps is preceded by ``n_critic`` discriminator steps; each
    step draws a fresh batch of ``batch_size`` real samples ``sample_real(n, gen)`` and of codes
    z ~ N(0, I). The discriminator minimises ``discriminator_loss(loss, D(x), D(G(z)))`` plus
    ``penalty_weight`` × the penalty (``"gp"``: :func:`gradient_penalty`, ``"dragan"``:
    :func:`dragan_penalty`), then its weights are clipped to [−``clip``, ``clip``] if ``clip``
    is given; the generator minimises ``generator_loss(loss, D(G(z)))``.

    The discriminator sees ``prepare_d_input(x)`` rather than x if given, and with ``pack = m``
    sees m samples at a time (PacGAN): ``batch_size`` packed examples are built from
    m·``batch_size`` samples with :func:`pack_samples`. Penalties are computed on the
    discriminator's inputs. ``optimizer`` is ``"adam"`` (with ``betas``) or ``"rmsprop"``
    (WGAN's choice), with learning rates ``lr_g`` and ``lr_d``. ``callback(step, G, D)`` is
    called after each generator step. A generator without trainable parameters (e.g. frozen
    with ``requires_grad_(False)``) is not updated: the loop then trains the discriminator alone
    against a fixed distribution. Seeded: the same ``seed`` and initial weights give the same run
    on the CPU.

    Returns the history ``{"step", "d_loss", "g_loss", "d_real", "d_fake", "penalty"}``, one
    entry per generator step: the losses (``d_loss`` without the penalty) and the mean raw
    scores of the last discriminator step (for ``"wgan"``, ``d_real − d_fake`` estimates W₁).
    """
    d, g = gan_players(
        generator, discriminator, sample_real, latent_dim, loss, n_critic, clip, penalty, penalty_weight,
        lr_g, lr_d, betas, batch_size, optimizer=optimizer, pack=pack, prepare_d_input=prepare_d_input,
    )  # fmt: skip
    require_int("steps", steps, 0)
    on_step = None if callback is None else (lambda step, logs: callback(step, generator, discriminator))
    return adversarial_fit(d, g, steps, seed=seed, callback=on_step, keys=HISTORY_KEYS, desc=desc)


def snapshot_steps(steps: int) -> list[int]:
    """The steps after which :func:`trained_dcgan` keeps its generator: 10, 30, 100, 300, 1,000,
    3,000, … (1 and 3 times the powers of ten from 10) below ``steps``, and ``steps`` itself
    (none for ``steps`` = 0)."""
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if steps == 0:
        return []
    kept, power = [], 10
    while power < steps:
        kept += [s for s in (power, 3 * power) if s < steps]
        power *= 10
    return [*kept, steps]


def trained_dcgan(
    images: torch.Tensor,
    latent_dim: int,
    steps: int,
    loss: str = "ns",
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[DCGANGenerator, DCGANDiscriminator, dict[str, Any]]:
    """A :class:`~gencourse.nets.DCGANGenerator` (``latent_dim``) and
    :class:`~gencourse.nets.DCGANDiscriminator`, initialised after ``seed_everything(seed)`` and
    trained by :func:`train_gan` on ``images`` (N, 1, 28, 28) with the ``loss`` and its other
    defaults (Adam 2·10⁻⁴, β = (0.5, 0.999), batches of 64). Returns (G, D, history), both
    networks in eval mode; besides :func:`train_gan`'s entries, ``history["generators"]`` maps
    each step of :func:`snapshot_steps` to the generator's ``state_dict`` after that step (to
    watch the samples improve: load one into a fresh generator in eval mode).

    The same call in another notebook of a book build loads the result from the cache
    (:func:`gencourse.cache.cached_training`, on only when ``GENCOURSE_CACHE`` is set).
    """
    seed_everything(seed)
    g = DCGANGenerator(latent_dim=latent_dim).to(device)
    d = DCGANDiscriminator().to(device)

    def train() -> dict[str, Any]:
        players = gan_players(g, d, data_sampler(images.to(device)), latent_dim, loss)
        history = adversarial_fit(
            *players,
            steps,
            seed=seed,
            keys=HISTORY_KEYS,
            snapshots=snapshot_steps(steps),
            snapshot_modules={"G": g},
        )
        snaps = history.pop("snapshots", {})
        return {**history, "generators": {step: snap["G"] for step, snap in snaps.items()}}

    key = dict(images=images, latent_dim=latent_dim, steps=steps, loss=loss, seed=seed)
    history = cached_training("dcgan", key, {"G": g, "D": d}, train)
    return g, d, history
