"""Hidden tests of assignment 4 (graders only: never copied to the student folder).

The student's functions run on small float64 networks (a linear one with known gradients, and
random tanh MLPs) and are compared with ``gencourse.adversarial``: ``input_gradient``, ``fgsm``,
and ``pgd`` with ``targeted=True`` for the targeted attack.
"""

import numpy as np

from gencourse.adversarial import fgsm, input_gradient, pgd, predict
from gencourse.grading.probes import literal, mlp, tensor
from gencourse.grading.spec import Check, Probe, close

FORBIDDEN_MODULES = ("gencourse.adversarial",)


def _linear():
    """The public tests' classifier: logits (x₀, x₁) of a 1×2×2 image (pixels 2 and 3 unused)."""
    return {
        "spec": "mlp",
        "layers": [
            {"weight": tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]), "bias": tensor([0.0, 0.0])}
        ],
        "activation": "tanh",
        "flatten": True,
        "squeeze": False,
        "grad": False,
    }


def _random_case(rng, n=6):
    model = mlp(rng, [16, 12, 5], "tanh", flatten=True, scale=3.0)
    x = rng.random((n, 1, 4, 4))
    x[rng.random(x.shape) < 0.15] = 0.0
    x[rng.random(x.shape) < 0.15] = 1.0
    y = rng.integers(0, 5, size=n)
    return model, tensor(x), tensor(y, dtype="int64")


def q1_probes(rng):
    yield Probe(
        "input_gradient",
        (_linear(), tensor(np.zeros((1, 1, 2, 2))), tensor([0], dtype="int64")),
        label="x = 0",
    )
    for n in (1, 7):
        yield Probe("input_gradient", _random_case(rng, n), hidden=True)


def q2_probes(rng):
    x = tensor(np.full((1, 1, 2, 2), 0.5))
    yield Probe(
        "fgsm", (_linear(), x, tensor([0], dtype="int64"), literal(0.1)), label="ε = 0.1, two pixels unused"
    )
    for eps in (0.05, 0.3):
        yield Probe("fgsm", (*_random_case(rng), literal(eps)), hidden=True)


def targeted_reference(model, x, target, eps, steps, step_size):
    return pgd(model, x, target, eps, steps=steps, step_size=step_size, targeted=True)


def q3_probes(rng):
    x = tensor(np.full((1, 1, 2, 2), 0.5))
    args = (_linear(), x, tensor([1], dtype="int64"), literal(0.1), literal(5), literal(0.05))
    yield Probe("targeted_attack", args, label="towards class 1, 5 steps of 0.05 in a box of 0.1")
    for eps, steps in ((0.1, 8), (0.3, 12)):
        model, x, _ = _random_case(rng)
        target = tensor(rng.integers(0, 5, size=x["shape"][0]), dtype="int64")
        args = (model, x, target, literal(eps), literal(steps), literal(2.5 * eps / steps))
        yield Probe("targeted_attack", args, hidden=True)


def accuracy_reference(model, x, y, eps):
    return float((predict(model, fgsm(model, x, y, eps)) == y).double().mean())


def q4_probes(rng):
    x = tensor(np.full((2, 1, 2, 2), 0.5))
    yield Probe(
        "accuracy_under_fgsm", (_linear(), x, tensor([0, 1], dtype="int64"), literal(0.0)), label="ε = 0"
    )
    args = (_linear(), x, tensor([0, 1], dtype="int64"), literal(0.1))
    yield Probe("accuracy_under_fgsm", args, label="ε = 0.1: every prediction flips")
    model, x, y = _random_case(rng, n=30)
    yield Probe("accuracy_under_fgsm", (model, x, y, literal(0.3)), hidden=True)


CHECKS = {
    "q1": Check(q1_probes, input_gradient, close(rtol=1e-9, atol=1e-12)),
    "q2": Check(q2_probes, fgsm, close(rtol=0.0, atol=1e-12)),
    "q3": Check(q3_probes, targeted_reference, close(rtol=0.0, atol=1e-9, mismatch=0.01)),
    "q4": Check(q4_probes, accuracy_reference, close(rtol=0.0, atol=1e-12)),
}
