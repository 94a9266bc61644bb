"""Controllable generation: conditional GANs, InfoGAN, InfoGAN-CR and disentanglement metrics.

* Conditional GAN (Mirza & Osindero, 2014): G(z, y) and D(x, y) both see the label y; the
  discriminator compares the pairs (x, y) of the data with the pairs (G(z, y), y).
* InfoGAN (Chen et al., 2016): the generator's input is split into codes c ~ U[−1, 1]ᵏ and noise
  z ~ N(0, I); a head Q on the discriminator's features predicts c from G(z, c), and G and Q
  maximise the variational lower bound on the mutual information

      I(c; G(z, c)) ≥ H(c) + E_{c, z} log Q(c | G(z, c)),

  here with a Gaussian Q(c | x) = N(μ(x), σ² I) of fixed σ, so that −log Q is ‖c − μ(x)‖²/(2σ²)
  plus a constant.
* InfoGAN-CR (Lin, Thekumparampil, Fanti & Oh, 2020): draw an index I uniformly in {1, …, k},
  generate a pair G(z, c), G(z, c') whose codes agree on coordinate I and are drawn
  independently elsewhere (the noise z is shared); a classifier H predicts I from the pair, and
  G and H both minimise the cross-entropy −log H_I(G(z, c), G(z, c')).
* Metrics of disentanglement against known factors: the FactorVAE metric (Kim & Mnih, 2018) and
  the mutual information gap (MIG, Chen et al., 2018).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gencourse.gan import discriminator_loss, generator_loss, sample_latent
from gencourse.nets import DCGANDiscriminator, DCGANGenerator
from gencourse.train import Player, Step, adversarial_fit

# ---------------------------------------------------------------------------------------------
# Conditional GANs


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The one-hot encoding (n, n_classes) of integer ``labels`` (n,), as floats."""
    if labels.dim() != 1:
        raise ValueError(f"labels must be a vector, got shape {tuple(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes}), got values in [{labels.min()}, {labels.max()}]"
        )
    return F.one_hot(labels.long(), n_classes).float()


class ConditionalGenerator(nn.Module):
    """G(z, y): a :class:`~gencourse.nets.DCGANGenerator` whose input is the concatenation
    [z, onehot(y)] ∈ ℝ^{k + n_classes} (Mirza & Osindero's conditioning by concatenation)."""

    def __init__(self, latent_dim: int = 32, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.latent_dim, self.n_classes = latent_dim, n_classes
        self.net = DCGANGenerator(latent_dim + n_classes, width)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, one_hot(y, self.n_classes).to(z)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y): a :class:`~gencourse.nets.DCGANDiscriminator` that sees the image together with
    ``n_classes`` constant planes holding onehot(y), concatenated as channels."""

    def __init__(self, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.net = DCGANDiscriminator(1 + n_classes, width)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        planes = one_hot(y, self.n_classes).to(x)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.net(torch.cat([x, planes], dim=1))


def train_conditional_gan(
    generator: ConditionalGenerator,
    discriminator: ConditionalDiscriminator,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    loss: str = "ns",
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    seed: int = 0,
    desc: str = "conditional GAN",
) -> dict[str, list[float]]:
    """Alternating training of a label-conditional GAN: each step, D minimises
    ``discriminator_loss(loss, D(x, y), D(G(z, y'), y'))`` on a batch of labelled data (x, y) and
    generated pairs with labels y' drawn from the data's label frequencies, then G minimises
    ``generator_loss(loss, D(G(z, y'), y'))``. Returns ``{"step", "d_loss", "g_loss"}``."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")

    def d_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Real pairs (x, y) against generated pairs (G(z, y'), y'), y' from the data's labels."""
        idx = torch.randint(len(images), (batch_size,), generator=t.rng)
        x, y = images[idx].to(t.device), labels[idx].to(t.device)
        y_fake = labels[torch.randint(len(labels), (batch_size,), generator=t.rng)].to(t.device)
        fake = generator(sample_latent(batch_size, generator.latent_dim, t.rng, t.device), y_fake)
        t.shared.update(fake=fake, y_fake=y_fake)  # G's step scores the same pairs
        loss_d = discriminator_loss(loss, discriminator(x, y), discriminator(fake.detach(), y_fake))
        return loss_d, {"d_loss": loss_d}

    def g_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_g = generator_loss(loss, discriminator(t.shared["fake"], t.shared["y_fake"]))
        return loss_g, {"g_loss": loss_g}

    return adversarial_fit(
        Player([discriminator], d_step, torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)),
        Player([generator], g_step, torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)),
        steps, seed=seed, keys=("d_loss", "g_loss"), desc=desc,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# InfoGAN and InfoGAN-CR


def sample_codes(n: int, n_codes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n codes c ~ U[−1, 1]^``n_codes``, shape (n, n_codes)."""
    return 2 * torch.rand(n, n_codes, generator=generator) - 1


def gaussian_code_nll(q_mean: torch.Tensor, codes: torch.Tensor, std: float = 1.0) -> torch.Tensor:
    """−E log Q(c | x) for the Gaussian Q(c | x) = N(μ(x), std² I) with μ(x) = ``q_mean``:
    the mean over the batch of ‖c − μ‖² / (2 std²) + (k/2) log(2π std²)."""
    if q_mean.shape != codes.shape:
        raise ValueError(
            f"q_mean and codes must have the same shape, got {tuple(q_mean.shape)}, {tuple(codes.shape)}"
        )
    k = codes.shape[1]
    sq = (codes - q_mean).pow(2).sum(1) / (2 * std**2)
    return (sq + 0.5 * k * math.log(2 * math.pi * std**2)).mean()


def _split_head(discriminator: nn.Module) -> tuple[nn.Module, int]:
    """The body of a discriminator whose ``net`` is an ``nn.Sequential`` ending in a linear
    score layer (:class:`~gencourse.gan.MLPDiscriminator`, :class:`~gencourse.nets.DCGANDiscriminator`),
    and the width of its features."""
    net = getattr(discriminator, "net", None)
    if not isinstance(net, nn.Sequential) or not isinstance(net[-1], nn.Linear):
        raise ValueError("expected a discriminator whose .net is an nn.Sequential ending in nn.Linear")
    body = net[:-1]
    if isinstance(net[0], nn.Linear):  # an MLP discriminator flattens its input in forward
        body = nn.Sequential(nn.Flatten(), *body)
    return body, net[-1].in_features


class InfoGANDiscriminator(nn.Module):
    """A discriminator with InfoGAN's Q head: ``discriminator.net`` (all layers but the last)
    computes features h(x), its last linear layer the score D(x), and a new linear layer the
    mean μ(x) ∈ ℝᵏ of Q(c | x). ``forward`` returns (scores (n,), μ (n, k)); ``encode(x)`` = μ(x)."""

    def __init__(self, discriminator: nn.Module, n_codes: int) -> None:
        super().__init__()
        self.body, features = _split_head(discriminator)
        self.score = discriminator.net[-1]
        self.q = nn.Linear(features, n_codes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.score(h).squeeze(1), self.q(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(self.body(x))


class PairClassifier(nn.Module):
    """InfoGAN-CR's contrastive classifier H: from a pair of images (x, x'), each (n, C, H, W),
    stacked as 2C channels, logits (n, k) of the index of the code they share. Built from a
    discriminator for 2C-channel inputs, whose last layer is replaced by a k-way linear layer."""

    def __init__(self, discriminator: nn.Module, n_codes: int) -> None:
        super().__init__()
        self.body, features = _split_head(discriminator)
        self.head = nn.Linear(features, n_codes)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([x1, x2], dim=1)))


def contrastive_pairs(
    n: int,
    n_codes: int,
    noise_dim: int,
    generator: torch.Generator | None = None,
    gap: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """InfoGAN-CR's pairs of latent vectors [c, z] and [c', z]: an index I ~ U{0, …, k−1} per
    pair; c_I = c'_I; the other codes drawn independently from U[−1, 1], then pushed apart to
    differ by at least ``gap`` (as in the authors' code: both drawn from U[−1 + gap/2, 1 − gap/2]
    and moved gap/2 away from each other); the noise z ~ N(0, I) is shared. Returns (latent1,
    latent2, I) with latents of shape (n, k + noise_dim)."""
    if not 0 <= gap <= 2:
        raise ValueError(f"gap must lie in [0, 2], got {gap}")
    index = torch.randint(n_codes, (n,), generator=generator)
    half = gap / 2
    c1 = (1 - half) * sample_codes(n, n_codes, generator)
    c2 = (1 - half) * sample_codes(n, n_codes, generator)
    sign = torch.where(c1 > c2, 1.0, -1.0)
    c1, c2 = c1 + sign * half, c2 - sign * half
    shared = F.one_hot(index, n_codes).bool()
    c2 = torch.where(shared, c1, c2)
    z = sample_latent(n, noise_dim, generator)
    return torch.cat([c1, z], 1), torch.cat([c2, z], 1), index


def image_mlp_generator(
    latent_dim: int, size: int, hidden: Sequence[int] = (128, 256), batch_norm: bool = True
) -> nn.Sequential:
    """An MLP image generator ℝᵏ → hidden layers (batch norm, ReLU) → ℝ^{size²} → sigmoid →
    (1, size, size). Batch norm is what lets such a small generator avoid collapsing onto a
    single image on the planted discs (without it, :class:`~gencourse.gan.MLPGenerator`'s
    architecture does)."""
    layers: list[nn.Module] = []
    for a, b in zip([latent_dim, *hidden[:-1]], hidden, strict=True):
        layers += [nn.Linear(a, b)] + ([nn.BatchNorm1d(b)] if batch_norm else []) + [nn.ReLU()]
    layers += [nn.Linear(hidden[-1], size * size), nn.Sigmoid(), nn.Unflatten(1, (1, size, size))]
    return nn.Sequential(*layers)


def train_infogan(
    generator: nn.Module,
    discriminator: InfoGANDiscriminator,
    sample_real: Callable[[int, torch.Generator], torch.Tensor],
    n_codes: int,
    noise_dim: int,
    steps: int,
    info_weight: float = 1.0,
    pair_classifier: PairClassifier | None = None,
    cr_weight: float = 1.0,
    cr_start: int = 0,
    gap: float = 0.0,
    loss: str = "ns",
    q_std: float = 1.0,
    batch_size: int = 64,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    lr_h: float = 2e-4,
    instance_noise: float = 0.0,
    betas: tuple[float, float] = (0.5, 0.999),
    seed: int = 0,
    desc: str = "InfoGAN",
) -> dict[str, list[float]]:
    """InfoGAN's training loop, and InfoGAN-CR's if a ``pair_classifier`` H is given.

    The generator's input is [c, z] with c ~ U[−1, 1]^``n_codes`` and z ~ N(0, I_``noise_dim``).
    Each step:

    1. D and Q minimise ``discriminator_loss(loss, D(x), D(G(z, c)))`` + λ_info · L_Q, with
       L_Q = −E log Q(c | G(z, c)) (:func:`gaussian_code_nll`, std ``q_std``), λ_info =
       ``info_weight``;
    2. from step ``cr_start`` on, if H is given: H minimises the cross-entropy
       L_CR = −E log H_I(G(ℓ), G(ℓ')) on pairs from :func:`contrastive_pairs` (``gap``);
    3. G minimises ``generator_loss(loss, D(G(z, c)))`` + λ_info · L_Q + λ_CR · L_CR, λ_CR =
       ``cr_weight`` (0 before ``cr_start``): G cooperates with both Q and H.

    Returns ``{"step", "d_loss", "g_loss", "info_loss", "cr_loss", "cr_accuracy"}`` per step
    (``cr_loss`` and ``cr_accuracy`` are nan while H is not trained).
    """
    if steps < 0 or batch_size < 1 or n_codes < 1 or noise_dim < 0:
        raise ValueError(
            f"need steps ≥ 0, batch_size ≥ 1, n_codes ≥ 1, noise_dim ≥ 0, got {steps}, {batch_size}, "
            f"{n_codes}, {noise_dim}"
        )

    def noisy(x: torch.Tensor, t: Step) -> torch.Tensor:
        if instance_noise == 0:
            return x
        return x + instance_noise * torch.randn(x.shape, generator=t.rng).to(t.device)

    def d_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """1. D and Q: L_D + λ_info · L_Q on a real batch and G(z, c)."""
        real = sample_real(batch_size, t.rng).to(t.device)
        c = sample_codes(batch_size, n_codes, t.rng).to(t.device)
        fake = generator(torch.cat([c, sample_latent(batch_size, noise_dim, t.rng, t.device)], 1))
        t.shared.update(c=c, fake=fake)
        d_real, _ = discriminator(noisy(real, t))
        d_fake, q_mean = discriminator(noisy(fake.detach(), t))
        loss_d = discriminator_loss(loss, d_real, d_fake)
        return loss_d + info_weight * gaussian_code_nll(q_mean, c, q_std), {"d_loss": loss_d}

    def h_step(t: Step) -> tuple[torch.Tensor | None, dict[str, float]]:
        """2. H (from ``cr_start`` on): L_CR on pairs of images that share one code."""
        if t.index < cr_start:
            return None, {}
        l1, l2, index = contrastive_pairs(batch_size, n_codes, noise_dim, t.rng, gap)
        x1, x2, index = generator(l1.to(t.device)), generator(l2.to(t.device)), index.to(t.device)
        t.shared.update(pairs=(x1, x2, index))
        logits = pair_classifier(x1.detach(), x2.detach())
        cr_h = F.cross_entropy(logits, index)
        accuracy = float((logits.argmax(1) == index).float().mean())
        return cr_h, {"cr_loss": float(cr_h.detach()), "cr_accuracy": accuracy}

    def g_step(t: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """3. G: L_G + λ_info · L_Q + λ_CR · L_CR, cooperating with Q and H."""
        use_cr = "pairs" in t.shared
        cr_g = (
            F.cross_entropy(pair_classifier(*t.shared["pairs"][:2]), t.shared["pairs"][2]) if use_cr else None
        )
        d_fake, q_mean = discriminator(noisy(t.shared["fake"], t))
        info_g = gaussian_code_nll(q_mean, t.shared["c"], q_std)
        loss_g = generator_loss(loss, d_fake)
        objective = loss_g + info_weight * info_g + (cr_weight * cr_g if use_cr else 0.0)
        return objective, {"g_loss": loss_g, "info_loss": info_g}

    adam = lambda module, lr: torch.optim.Adam(module.parameters(), lr=lr, betas=betas)  # noqa: E731
    extra = (
        [] if pair_classifier is None else [Player([pair_classifier], h_step, adam(pair_classifier, lr_h))]
    )
    return adversarial_fit(
        Player([discriminator], d_step, adam(discriminator, lr_d)), Player([generator], g_step, adam(generator, lr_g)),
        steps, extra=extra, seed=seed, keys=("d_loss", "g_loss", "info_loss", "cr_loss", "cr_accuracy"), desc=desc,
    )  # fmt: skip


@torch.no_grad()
def latent_traversal(
    generator: nn.Module, base: torch.Tensor, index: int, values: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Generate from copies of the latent vectors ``base`` (n, d) whose coordinate ``index`` is
    set to each of ``values`` in turn: shape (n·len(values), ...), row-major (one row per base
    vector, one column per value)."""
    values = torch.as_tensor(values, dtype=base.dtype, device=base.device)
    if not 0 <= index < base.shape[1]:
        raise ValueError(f"index must lie in [0, {base.shape[1]}), got {index}")
    lat = base[:, None, :].repeat(1, len(values), 1)
    lat[:, :, index] = values[None, :]
    return generator(lat.reshape(-1, base.shape[1]))


# ---------------------------------------------------------------------------------------------
# Disentanglement metrics


def factorvae_metric(
    encode: Callable[[torch.Tensor], torch.Tensor],
    sample_factors: Callable[[int, torch.Generator], torch.Tensor],
    render: Callable[[torch.Tensor], torch.Tensor],
    n_votes: int = 800,
    batch_size: int = 64,
    n_std: int = 5000,
    seed: int = 0,
    min_std: float = 0.05,
) -> dict[str, float | np.ndarray]:
    """The FactorVAE disentanglement metric (Kim & Mnih, 2018).

    1. Scale: s_j = the standard deviation of representation coordinate j = ``encode``(x)_j over
       ``n_std`` data points; coordinates with s_j < ``min_std``·max s are *collapsed* and ignored.
    2. A vote: pick a factor k uniformly, draw ``batch_size`` factor vectors, set factor k to one
       common random value, ``render`` them, encode, divide by s; the vote is
       (d, k), d = argmin_j Var_j (the least varying coordinate).
    3. The classifier maps each coordinate d to its majority factor, learnt from the first half
       of the ``n_votes`` votes; the score is its accuracy on the second half.

    ``sample_factors(n, gen)`` draws (n, K) independent factors; ``render(factors)`` maps them to
    data. A perfectly disentangled representation (coordinate j a function of factor j only)
    scores 1; a representation that ignores the data scores about 1/K. Returns ``{"score",
    "votes"}`` with the vote matrix (n_coords, K) of the evaluation half.
    """
    if n_votes < 2 or batch_size < 2:
        raise ValueError(f"need n_votes ≥ 2 and batch_size ≥ 2, got {n_votes}, {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    reps = encode(render(sample_factors(n_std, gen)))
    scale = reps.std(0)
    active = scale >= min_std * scale.max()
    n_factors = sample_factors(1, gen).shape[1]
    votes = np.zeros((2, reps.shape[1], n_factors), dtype=np.int64)
    for v in range(n_votes):
        k = int(torch.randint(n_factors, (1,), generator=gen))
        factors = sample_factors(batch_size, gen)
        factors[:, k] = sample_factors(1, gen)[0, k]
        var = (encode(render(factors)) / scale).var(0)
        var[~active] = math.inf
        votes[int(v >= n_votes // 2), int(var.argmin()), k] += 1
    train, test = votes
    predict = train.argmax(1)  # majority factor of each coordinate
    correct = sum(test[d, predict[d]] for d in range(len(predict)))
    return {"score": correct / test.sum(), "votes": test}


def discretize(x: torch.Tensor | np.ndarray, bins: int = 20) -> np.ndarray:
    """Each column of ``x`` (n, d) mapped to integer bins 0 … ``bins``−1 of equal width between
    its minimum and maximum (as in disentanglement_lib's histogram discretisation)."""
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected an array (n, d), got shape {a.shape}")
    lo, hi = a.min(0), a.max(0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return np.minimum(((a - lo) / width * bins).astype(np.int64), bins - 1)


def discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """The plug-in mutual information I(A; B) = Σ p(a, b) log [p(a, b) / (p(a) p(b))] in nats of
    two integer label vectors of the same length."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two label vectors of the same length, got {a.shape} and {b.shape}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    joint /= len(a)
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def discrete_entropy(a: np.ndarray) -> float:
    """The plug-in entropy H(A) = −Σ p(a) log p(a) in nats of an integer label vector."""
    _, counts = np.unique(np.asarray(a), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mutual_information_gap(
    codes: torch.Tensor | np.ndarray, factors: torch.Tensor | np.ndarray, bins: int = 20
) -> dict[str, float | np.ndarray]:
    """The mutual information gap (Chen et al., 2018) of a representation (n, d) with respect
    to known factors (n, K), both discretised into ``bins`` equal-width bins:

        MIG = (1/K) Σ_k [I(z_{j₁(k)}; v_k) − I(z_{j₂(k)}; v_k)] / H(v_k),

    j₁(k), j₂(k) the coordinates with the largest and second largest mutual information with
    factor k. 1 when each factor is captured by one coordinate alone, 0 when a factor is
    captured equally by two coordinates or by none. Returns ``{"mig", "mi"}``, mi the matrix
    I(z_j; v_k) (d, K) in nats."""
    z, v = discretize(codes, bins), discretize(factors, bins)
    if len(z) != len(v):
        raise ValueError(f"{len(z)} codes but {len(v)} factor vectors")
    if z.shape[1] < 2:
        raise ValueError("the MIG needs a representation of at least 2 coordinates")
    mi = np.array(
        [
            [discrete_mutual_information(z[:, j], v[:, k]) for k in range(v.shape[1])]
            for j in range(z.shape[1])
        ]
    )
    top = np.sort(mi, axis=0)[::-1]
    entropy = np.array([discrete_entropy(v[:, k]) for k in range(v.shape[1])])
    return {"mig": float(np.mean((top[0] - top[1]) / entropy)), "mi": mi}
