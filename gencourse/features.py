"""The course's feature network applied to images: features, class probabilities, a detector.

The papers compute sample-based metrics in the features of Inception-v3 trained on ImageNet;
this course uses its own :class:`gencourse.nets.MNISTClassifier`, trained in the course on MNIST
(no downloaded weights). The formulas of :mod:`gencourse.metrics` take the features and
probabilities made here; this module is where a model meets the images:

* φ(x) = ``model.features(x)``, the 128-dimensional penultimate layer (:func:`classifier_features`);
* p(y|x) = softmax(f(x)) (:func:`classifier_probs`);
* a classifier two-sample test: the held-out accuracy of a real-vs-generated detector
  (:func:`detector_accuracy`), which trains a classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from gencourse.nets import MNISTClassifier, train_classifier


@torch.no_grad()
def classifier_features(model: MNISTClassifier, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The feature map φ(x) of the course's feature network: ``model.features(x)``, the
    128-dimensional penultimate layer of :class:`~gencourse.nets.MNISTClassifier`, shape (N, d)."""
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    device = next(model.parameters()).device
    model.eval()
    out = [
        model.features(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


@torch.no_grad()
def classifier_probs(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities p(y|x) = softmax(f(x)) of a classifier returning logits, shape (N, K)."""
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    device = next(model.parameters()).device
    model.eval()
    out = [
        model(images[i : i + batch_size].to(device)).softmax(-1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def detector_accuracy(
    real: torch.Tensor,
    fake: torch.Tensor,
    steps: int,
    test_fraction: float = 0.5,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> float:
    """A classifier two-sample test: train an :class:`~gencourse.nets.MNISTClassifier` with two
    classes (real 1, generated 0) on part of the images and return its accuracy on the held-out
    ``test_fraction`` of each set. About ½ means the detector cannot tell them apart."""
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} images differ in shape")
    if real.shape[1:] != (1, 28, 28):
        raise ValueError(f"the detector takes 1×28×28 images, got {tuple(real.shape[1:])}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    gen = torch.Generator().manual_seed(seed)
    n = min(len(real), len(fake))
    n_test = max(1, round(test_fraction * n))
    if n - n_test < 1:
        raise ValueError("too few images to train the detector")
    r = real[torch.randperm(len(real), generator=gen)[:n]].cpu()
    f = fake[torch.randperm(len(fake), generator=gen)[:n]].cpu()
    x_train = torch.cat([r[n_test:], f[n_test:]])
    y_train = torch.cat([torch.ones(n - n_test), torch.zeros(n - n_test)]).long()
    torch.manual_seed(seed)
    model = MNISTClassifier(n_classes=2)
    train_classifier(model, x_train, y_train, steps, min(batch_size, len(x_train)), lr, seed)
    with torch.no_grad():
        correct = (model(r[:n_test]).argmax(1) == 1).sum() + (model(f[:n_test]).argmax(1) == 0).sum()
    return float(correct) / (2 * n_test)
