"""Variational autoencoders (Kingma & Welling, 2014).

Model: z ~ p(z) = N(0, I), x | z ~ Bernoulli(sigmoid(decoder(z))), on binarised pixels.
Inference network: q(z|x) = N(μ(x), diag σ²(x)), the encoder returning (μ, log σ²).

* Reparameterisation: z = μ + σ ⊙ ε, ε ~ N(0, I), σ = exp(½ log σ²) (the standard deviation).
* ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) ≤ log p(x),
  with KL = ½ Σⱼ (σⱼ² + μⱼ² − 1 − log σⱼ²) in closed form.
* Importance sampling: log p(x) ≈ log (1/K) Σₖ p(x|zₖ) p(zₖ) / q(zₖ|x), zₖ ~ q(z|x),
  a lower bound whose expectation increases with K towards log p(x) (Burda et al., 2016).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gencourse.cache import cached_training
from gencourse.divergences import kl_gaussian
from gencourse.nets import mlp
from gencourse.runtime import seed_everything
from gencourse.train import fit

LOG_2PI = math.log(2 * math.pi)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I) and σ = exp(½ log σ²): a sample of N(μ, diag σ²) that is
    a differentiable function of (μ, log σ²)."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag e^{logvar}) = −½ Σⱼ [log 2π + logvarⱼ + (zⱼ − μⱼ)² e^{−logvarⱼ}]."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = Σᵢ xᵢ log x̂ᵢ + (1 − xᵢ) log(1 − x̂ᵢ), x̂ = sigmoid(logits), summed over all
    but the batch dimension (computed from the logits, stably)."""
    ll = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return ll.flatten(1).sum(1)


class MLPEncoder(nn.Module):
    """x (flattened) → hidden layers → (μ, log σ²), each of size ``latent_dim``."""

    def __init__(
        self,
        in_dim: int = 784,
        hidden: Sequence[int] = (500, 500),
        latent_dim: int = 20,
        activation: type[nn.Module] = nn.Softplus,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), mlp([in_dim, *hidden], activation), activation())
        self.mu = nn.Linear(hidden[-1], latent_dim)
        self.logvar = nn.Linear(hidden[-1], latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """z → hidden layers → logits of the Bernoulli means, reshaped to ``out_shape``."""

    def __init__(
        self,
        latent_dim: int = 20,
        hidden: Sequence[int] = (500, 500),
        out_shape: Sequence[int] = (1, 28, 28),
        activation: type[nn.Module] = nn.Softplus,
    ) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = mlp([latent_dim, *hidden, math.prod(self.out_shape)], activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.out_shape)


class ConvEncoder(nn.Module):
    """1×28×28 → conv 4×4 stride 2 (32) → conv 4×4 stride 2 (64) → linear → (μ, log σ²)."""

    def __init__(self, latent_dim: int = 20, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width * 7 * 7, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=-1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """z → linear → 64×7×7 → transposed conv (32) → transposed conv → logits 1×28×28."""

    def __init__(self, latent_dim: int = 20, width: int = 32) -> None:
        super().__init__()
        self.width = width
        self.fc = nn.Linear(latent_dim, 2 * width * 7 * 7)
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(-1, 2 * self.width, 7, 7))


class VAE(nn.Module):
    """An encoder q(z|x) returning (μ, log σ²) and a decoder returning Bernoulli logits."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Return (logits, μ, log σ², z) for one reparameterised sample z ~ q(z|x)."""
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, generator)
        return self.decoder(z), mu, logvar, z

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bernoulli means sigmoid(decoder(z)) for n draws z ~ N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means sigmoid(decoder(z))."""
        return torch.sigmoid(self.decoder(z))


def mnist_vae(latent_dim: int = 20, hidden: Sequence[int] = (500, 500)) -> VAE:
    """The MLP VAE of the CSGM code: 784-500-500-(μ, log σ²) and k-500-500-784, softplus."""
    return VAE(MLPEncoder(784, hidden, latent_dim), MLPDecoder(latent_dim, hidden), latent_dim)


def elbo_terms(
    model: VAE, x: torch.Tensor, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Per-example ``recon`` = log p(x|z) at one z ~ q(z|x), ``kl`` = KL(q(z|x) ‖ N(0, I)) in
    closed form, and ``elbo`` = recon − kl (all in nats, shape (N,))."""
    logits, mu, logvar, _ = model(x, generator)
    recon = bernoulli_log_likelihood(logits, x)
    kl = kl_gaussian(mu, logvar)
    return {"recon": recon, "kl": kl, "elbo": recon - kl}


@torch.no_grad()
def importance_log_likelihood(
    model: VAE, x: torch.Tensor, k: int = 100, generator: torch.Generator | None = None
) -> torch.Tensor:
    """log p̂(x) = logsumexp_k [log p(x|z_k) + log p(z_k) − log q(z_k|x)] − log K, z_k ~ q(z|x),
    per example (shape (N,)); with K = 1 its expectation is the ELBO."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    mu, logvar = model.encoder(x)
    zeros = torch.zeros_like(mu)
    terms = []
    for _ in range(k):
        z = reparameterize(mu, logvar, generator)
        log_px_z = bernoulli_log_likelihood(model.decoder(z), x)
        terms.append(log_px_z + gaussian_log_density(z, zeros, zeros) - gaussian_log_density(z, mu, logvar))
    return torch.logsumexp(torch.stack(terms), dim=0) - math.log(k)


class Autoencoder(nn.Module):
    """A plain (deterministic) autoencoder: z = μ(x) from the encoder, logits = decoder(z).

    It is trained on reconstruction alone, with no prior on z: the lecture uses it to show why
    its latent space is not a generative model.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = μ(x) (the encoder's log-variance output is ignored)."""
        return self.encoder(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means sigmoid(decoder(z))."""
        return torch.sigmoid(self.decoder(z))


def train_autoencoder(
    model: Autoencoder,
    images: torch.Tensor,
    steps: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Minimise the reconstruction loss −log p(x|z = μ(x)) (binary cross-entropy summed over
    pixels) by Adam; returns the history ``{"step", "loss"}``."""

    device = next(model.parameters()).device

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x = images[idx].to(device)
        return {"loss": -bernoulli_log_likelihood(model(x), x).mean()}

    return fit(model, len(images), loss_fn, steps, batch_size, lr, seed, "autoencoder")


def train_vae(
    model: VAE,
    images: torch.Tensor,
    steps: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    beta: float = 1.0,
) -> dict[str, list[float]]:
    """Maximise the ELBO by Adam on random mini-batches of ``images`` (values in [0, 1]).

    The loss per step is −mean(recon − β·kl) (β = 1 is the VAE). Returns the history
    ``{"step", "loss", "recon", "kl"}`` with per-step batch means in nats.
    """

    device = next(model.parameters()).device

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        terms = elbo_terms(model, images[idx].to(device), gen)
        loss = -(terms["recon"] - beta * terms["kl"]).mean()
        return {"loss": loss, "recon": terms["recon"].mean(), "kl": terms["kl"].mean()}

    return fit(model, len(images), loss_fn, steps, batch_size, lr, seed, "VAE")


def trained_mnist_vae(
    images: torch.Tensor,
    steps: int,
    latent_dim: int = 20,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[VAE, dict[str, list[float]]]:
    """:func:`mnist_vae` (``latent_dim``), initialised after ``seed_everything(seed)`` and trained
    by :func:`train_vae` on ``images`` (N, 1, 28, 28), values in [0, 1], with its defaults (Adam
    10⁻³, batches of 100). Returns (VAE in eval mode, history).

    The same call in another notebook of a book build loads the result from the cache
    (:func:`gencourse.cache.cached_training`, on only when ``GENCOURSE_CACHE`` is set).
    """
    seed_everything(seed)
    vae = mnist_vae(latent_dim).to(device)
    key = dict(images=images, steps=steps, latent_dim=latent_dim, seed=seed)
    history = cached_training(
        "mnist-vae", key, {"vae": vae}, lambda: train_vae(vae, images, steps, seed=seed)
    )
    return vae.eval(), history
