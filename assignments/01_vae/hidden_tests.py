"""Hidden tests of assignment 1 (graders only: never copied to the student folder).

Each check draws fixed probes (the cases of the public tests, and a few more) and hidden random
ones from the grader's generator, and compares the student's results with the course package's
reference implementations on the same inputs.
"""

import numpy as np

from gencourse.divergences import kl_discrete, kl_gaussian
from gencourse.grading.probes import ndarray, tensor
from gencourse.grading.spec import Check, Probe, close
from gencourse.vae import bernoulli_log_likelihood

FORBIDDEN_MODULES = ("gencourse.divergences", "gencourse.vae")

P = np.array([0.36, 0.48, 0.16])
Q = np.ones(3) / 3


def _simplex(rng: np.random.Generator, k: int, zeros: int = 0) -> np.ndarray:
    """A random probability vector of length k with ``zeros`` entries exactly 0."""
    w = rng.gamma(1.0, size=k)
    w[rng.choice(k, size=zeros, replace=False)] = 0.0
    return w / w.sum()


def q1_probes(rng):
    yield Probe(
        "kl_discrete", (ndarray([0.5, 0.5]), ndarray([0.9, 0.1])), label="p = (0.5, 0.5), q = (0.9, 0.1)"
    )
    yield Probe("kl_discrete", (ndarray([0.0, 1.0]), ndarray([0.5, 0.5])), label="p with a zero entry")
    yield Probe("kl_discrete", (ndarray([0.5, 0.5]), ndarray([1.0, 0.0])), label="q = 0 where p > 0")
    for k in (4, 7):
        yield Probe("kl_discrete", (ndarray(_simplex(rng, k)), ndarray(_simplex(rng, k))), hidden=True)
    yield Probe("kl_discrete", (ndarray(_simplex(rng, 6, zeros=2)), ndarray(_simplex(rng, 6))), hidden=True)
    p = _simplex(rng, 5)
    yield Probe("kl_discrete", (ndarray(p), ndarray(p)), hidden=True)


def q2_probes(rng):
    yield Probe("kl_pq", call=False, label="KL(P||Q)")
    yield Probe("kl_qp", call=False, label="KL(Q||P)")


def q2_reference(name):
    return {"kl_pq": kl_discrete(P, Q), "kl_qp": kl_discrete(Q, P)}[name]


def q3_probes(rng):
    yield Probe("kl_gaussian", (tensor(np.zeros((2, 3))), tensor(np.zeros((2, 3)))), label="N(0, I) itself")
    yield Probe("kl_gaussian", (tensor([[1.0, 0.0], [0.0, 0.0]]), tensor([[0.0, 0.0], [np.log(2.0), 0.0]])))
    for shape in ((4, 5), (3, 2, 6), (7,)):
        mu, logvar = rng.normal(size=shape), rng.uniform(-4.0, 4.0, size=shape)
        yield Probe("kl_gaussian", (tensor(mu), tensor(logvar)), hidden=True)
    mu, logvar = rng.normal(size=(3, 4)), rng.uniform(-2.0, 2.0, size=(3, 4))
    yield Probe("kl_gaussian", (tensor(mu, grad=True), tensor(logvar, grad=True)), hidden=True, grad=True)


def q4_probes(rng):
    yield Probe("reparameterize", (tensor([1.0]), tensor([np.log(4.0)]), tensor([0.5])), label="σ = 2")
    for shape in ((5, 3), (2, 8)):
        args = (rng.normal(size=shape), rng.uniform(-3, 3, size=shape), rng.normal(size=shape))
        yield Probe("reparameterize", tuple(tensor(a) for a in args), hidden=True)
    mu, logvar, eps = rng.normal(size=(4, 3)), rng.uniform(-2, 2, size=(4, 3)), rng.normal(size=(4, 3))
    yield Probe(
        "reparameterize",
        (tensor(mu, grad=True), tensor(logvar, grad=True), tensor(eps)),
        hidden=True,
        grad=True,
    )


def reparameterize_reference(mu, logvar, eps):
    """z = μ + exp(½ logvar) ε (the package draws ε itself; here it is given)."""
    return mu + (0.5 * logvar).exp() * eps


def negative_elbo_reference(x, logits, mu, logvar):
    return -(bernoulli_log_likelihood(logits, x) - kl_gaussian(mu, logvar))


def q5_probes(rng):
    x = tensor([[1.0, 0.0]])
    yield Probe(
        "negative_elbo", (x, tensor(np.zeros((1, 2))), tensor(np.zeros((1, 3))), tensor(np.zeros((1, 3))))
    )
    yield Probe(
        "negative_elbo", (x, tensor([[50.0, -50.0]]), tensor(np.zeros((1, 3))), tensor(np.zeros((1, 3))))
    )
    yield Probe(
        "negative_elbo",
        (tensor([[0.0]]), tensor([[45.0]]), tensor(np.zeros((1, 2))), tensor(np.zeros((1, 2)))),
        label="x = 0 where the logit is 45",
    )
    for shape in ((6, 10), (3, 1, 4, 4)):
        x = (rng.random(shape) < 0.4).astype(float)
        logits = rng.normal(0.0, 3.0, size=shape)
        k = int(rng.integers(2, 6))
        mu, logvar = rng.normal(size=(shape[0], k)), rng.uniform(-3, 3, size=(shape[0], k))
        yield Probe("negative_elbo", (tensor(x), tensor(logits), tensor(mu), tensor(logvar)), hidden=True)
    x = (rng.random((4, 12)) < 0.5).astype(float)
    logits = rng.choice([-45.0, 45.0], size=(4, 12))
    mu, logvar = rng.normal(size=(4, 3)), rng.uniform(-1, 1, size=(4, 3))
    yield Probe("negative_elbo", (tensor(x), tensor(logits), tensor(mu), tensor(logvar)), hidden=True)


CHECKS = {
    "q1": Check(q1_probes, kl_discrete, close(rtol=1e-9, atol=1e-12)),
    "q2": Check(q2_probes, q2_reference, close(rtol=1e-9, atol=1e-12)),
    "q3": Check(q3_probes, kl_gaussian, close(rtol=1e-9, atol=1e-12)),
    "q4": Check(q4_probes, reparameterize_reference, close(rtol=1e-9, atol=1e-12)),
    "q5": Check(q5_probes, negative_elbo_reference, close(rtol=1e-9, atol=1e-9)),
}
