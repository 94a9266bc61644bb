"""Hidden tests of assignment 2 (graders only: never copied to the student folder).

The losses and the packing are compared with ``gencourse.gan`` and ``gencourse.pacgan``. The
gradient penalty takes α as an argument here, while the package draws it, so its reference is
written out below (and checked against ``gencourse.gan.gradient_penalty`` by the test suite).
"""

import numpy as np
import torch

from gencourse.gan import discriminator_loss, generator_loss
from gencourse.grading.probes import literal, mlp, tensor
from gencourse.grading.spec import Check, Probe, close
from gencourse.pacgan import pack

FORBIDDEN_MODULES = ("gencourse.gan", "gencourse.pacgan")
NAMES = ("mm", "ns", "wgan", "lsgan")


def q1_probes(rng):
    yield Probe(
        "discriminator_loss", (literal("ns"), tensor(np.zeros(4)), tensor(np.zeros(4))), label="ns at 0"
    )
    yield Probe("discriminator_loss", (literal("wgan"), tensor([1.0, 3.0]), tensor([0.5])), label="wgan")
    yield Probe("discriminator_loss", (literal("lsgan"), tensor([1.0]), tensor([2.0, 0.0])), label="lsgan")
    yield Probe(
        "discriminator_loss",
        (literal("nonsense"), tensor(np.zeros(2)), tensor(np.zeros(2))),
        label="unknown name",
    )
    for name in NAMES:
        n_real, n_fake = rng.integers(3, 9, size=2)
        real, fake = rng.normal(0, 4, size=n_real), rng.normal(0, 4, size=n_fake)
        yield Probe("discriminator_loss", (literal(name), tensor(real), tensor(fake)), hidden=True)
    real, fake = rng.choice([-60.0, 60.0], size=5), rng.choice([-60.0, 60.0], size=5)
    yield Probe("discriminator_loss", (literal("ns"), tensor(real), tensor(fake)), hidden=True)


def q2_probes(rng):
    yield Probe("generator_loss", (literal("mm"), tensor(np.zeros(3))), label="mm at 0")
    yield Probe("generator_loss", (literal("ns"), tensor(np.zeros(3))), label="ns at 0")
    yield Probe("generator_loss", (literal("lsgan"), tensor([1.0, 3.0])), label="lsgan")
    yield Probe("generator_loss", (literal("hinge?"), tensor(np.zeros(2))), label="unknown name")
    for name in NAMES:
        yield Probe(
            "generator_loss", (literal(name), tensor(rng.normal(0, 4, size=rng.integers(3, 9)))), hidden=True
        )
    yield Probe("generator_loss", (literal("mm"), tensor(rng.choice([-60.0, 60.0], size=6))), hidden=True)


def gradient_penalty_reference(critic, real, fake, alpha):
    """E (‖∇ₓD(x̂)‖₂ − 1)² at x̂ = αx + (1 − α)x̃, the norm over all axes but the first."""
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def q3_probes(rng):
    linear = {
        "spec": "mlp",
        "layers": [{"weight": tensor([[3.0, 4.0]]), "bias": tensor([0.5])}],
        "activation": "tanh",
        "flatten": False,
        "squeeze": True,
        "grad": True,
    }
    n = 5
    yield Probe(
        "gradient_penalty",
        (
            linear,
            tensor(rng.normal(size=(n, 2))),
            tensor(rng.normal(size=(n, 2))),
            tensor(rng.random((n, 1))),
        ),
        label="linear critic with weights (3, 4)",
        grad=True,
    )
    for _ in range(2):
        n = int(rng.integers(4, 9))
        critic = mlp(rng, [2, 16, 1], "tanh", squeeze=True, grad=True, scale=2.0)
        args = (
            critic,
            tensor(rng.normal(size=(n, 2))),
            tensor(rng.normal(size=(n, 2))),
            tensor(rng.random((n, 1))),
        )
        yield Probe("gradient_penalty", args, hidden=True, grad=True)
    n = 4
    critic = mlp(rng, [9, 8, 1], "softplus", flatten=True, squeeze=True, grad=True, scale=2.0)
    args = (
        critic,
        tensor(rng.random((n, 1, 3, 3))),
        tensor(rng.random((n, 1, 3, 3))),
        tensor(rng.random((n, 1, 1, 1))),
    )
    yield Probe("gradient_penalty", args, hidden=True, grad=True)


def q4_probes(rng):
    yield Probe("pack", (tensor(np.arange(12.0).reshape(6, 2)), literal(2)), label="(6, 2) in pairs")
    yield Probe("pack", (tensor(np.zeros((8, 1, 4, 4))), literal(4)), label="images in groups of 4")
    yield Probe("pack", (tensor(np.zeros((5, 2))), literal(2)), label="5 samples in pairs")
    for m in (1, 3):
        x = rng.normal(size=(int(rng.integers(1, 4)) * m, int(rng.integers(1, 5))))
        yield Probe("pack", (tensor(x), literal(m)), hidden=True)
    x = rng.normal(size=(6, 2, 3, 3))
    yield Probe("pack", (tensor(x), literal(3)), hidden=True)
    yield Probe("pack", (tensor(rng.normal(size=(7, 3))), literal(3)), hidden=True)


CHECKS = {
    "q1": Check(q1_probes, discriminator_loss, close(rtol=1e-9, atol=1e-12)),
    "q2": Check(q2_probes, generator_loss, close(rtol=1e-9, atol=1e-12)),
    "q3": Check(q3_probes, gradient_penalty_reference, close(rtol=1e-6, atol=1e-9)),
    "q4": Check(q4_probes, pack, close(rtol=0.0, atol=0.0)),
}
