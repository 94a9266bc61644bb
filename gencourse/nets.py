"""Building blocks shared across the course: MLPs and the small MNIST classifier.

The classifier is trained in the course (no downloaded weights) and reused by the lectures
on adversarial examples, evaluation (its penultimate layer is the FID feature space) and mode
counting.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gencourse.cache import cached_training
from gencourse.runtime import seed_everything
from gencourse.train import fit


def mlp(
    dims: Sequence[int],
    activation: type[nn.Module] = nn.ReLU,
    out_activation: nn.Module | None = None,
) -> nn.Sequential:
    """A multilayer perceptron dims[0] → dims[1] → … → dims[-1] with ``activation`` between
    layers (not after the last one), and ``out_activation`` after it if given."""
    if len(dims) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got {list(dims)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(activation())
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


class MNISTClassifier(nn.Module):
    """A small convolutional classifier for 1×28×28 digits, returning logits f(x) ∈ ℝ¹⁰.

    conv 5×5 (16) → ReLU → max-pool → conv 5×5 (32) → ReLU → max-pool → linear 128 → ReLU →
    linear 10. ``features(x)`` is the 128-dimensional penultimate layer.

    Each ReLU is applied after its max-pool: max(ReLU(a), ReLU(b)) = ReLU(max(a, b)) because
    the ReLU is non-decreasing, and the gradient reaches the same input (the window's maximum,
    if positive), so the function and its gradients are those of the order above, bit for bit,
    with the ReLU on a quarter of the values (a training step takes 30% less time on a CPU core).
    """

    def __init__(self, n_classes: int = 10, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 5, padding=2),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)
        # channels-last convolution weights: on the CPU a training step takes about a third less time
        # (oneDNN's preferred layout); the outputs are the same function of the input
        self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations, shape (N, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    schedule: str = "constant",
) -> dict[str, list[float]]:
    """Train ``model`` by Adam on the cross-entropy −log softmax(f(x))_y over random
    mini-batches, with the learning-rate ``schedule`` of :func:`gencourse.train.fit`
    (``"constant"`` or ``"cosine"``); returns the history ``{"step", "loss", "accuracy"}``."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    device = next(model.parameters()).device

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x, y = images[idx].to(device), labels[idx].to(device)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        return {"loss": loss, "accuracy": (logits.argmax(1) == y).float().mean()}

    return fit(model, len(images), loss_fn, steps, batch_size, lr, seed, "classifier", schedule)


def trained_mnist_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    schedule: str = "constant",
    device: torch.device | str = "cpu",
) -> MNISTClassifier:
    """A :class:`MNISTClassifier` initialised after ``seed_everything(seed)`` and trained by
    :func:`train_classifier` with these arguments; returned in eval mode.

    The same call in another notebook of a book build loads the trained weights from the cache
    (:func:`gencourse.cache.cached_training`, on only when ``GENCOURSE_CACHE`` is set): the
    judge classifier of several lectures is trained once.
    """
    seed_everything(seed)
    model = MNISTClassifier().to(device)
    key = dict(
        images=images, labels=labels, steps=steps, batch_size=batch_size, lr=lr, seed=seed, schedule=schedule
    )
    cached_training(
        "mnist-classifier",
        key,
        {"model": model},
        lambda: train_classifier(model, images, labels, steps, batch_size, lr, seed, schedule),
    )
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    """Fraction of ``images`` whose arg-max logit equals the label."""
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        pred = model(images[i : i + batch].to(device)).argmax(1).cpu()
        correct += (pred == labels[i : i + batch]).sum().item()
    return correct / len(images)


class DCGANGenerator(nn.Module):
    """A small DCGAN-style generator for C×28×28 images (Radford et al., 2016), outputs in [0, 1].

    z ∈ ℝᵏ → linear → (2w, 7, 7) → BN, ReLU → transposed conv 4×4, stride 2 → (w, 14, 14) →
    BN, ReLU → transposed conv 4×4, stride 2 → (C, 28, 28) → sigmoid.
    """

    def __init__(self, latent_dim: int = 64, width: int = 32, out_channels: int = 1) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class DCGANDiscriminator(nn.Module):
    """A small DCGAN-style discriminator (critic) for C×28×28 images, without batch norm (so
    that gradient penalties apply per sample), returning a raw score of shape (n,).

    (C, 28, 28) → conv 4×4, stride 2 → (w, 14, 14) → LeakyReLU(0.2) → conv 4×4, stride 2 →
    (2w, 7, 7) → LeakyReLU(0.2) → linear → score.
    """

    def __init__(self, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
