"""Hidden tests of assignment 3 (graders only: never copied to the student folder).

``csgm_loss`` is compared with ``gencourse.inverse.csgm_loss``. The two recoveries are judged
by the objective they reach, not by their iterates: CSGM must reach, for every item, an objective
at most that of ``gencourse.inverse.csgm`` run from the same starting points (within 10⁻³
relative), with ``x_hat = G(z_hat)``; Lasso must reach the optimum found by scikit-learn at a
tight tolerance (within 10⁻³ relative). The fixed CSGM probe has three restarts in three basins,
the best being the middle one, so keeping the first or the last restart fails it.
"""

import numpy as np
import torch

from gencourse.grading.plain import as_array, describe
from gencourse.grading.probes import build, literal, mlp, tensor
from gencourse.grading.spec import Check, Probe, close
from gencourse.inverse import csgm, csgm_loss, lasso

FORBIDDEN_MODULES = ("gencourse.inverse",)


def _linear_sin_generator():
    """G(z) = (sin 3z, ½ sin 3z) for a scalar code z (a ProbeMLP with a sin activation)."""
    return {
        "spec": "mlp",
        "layers": [
            {"weight": tensor([[3.0]]), "bias": tensor([0.0])},
            {"weight": tensor([[1.0], [0.5]]), "bias": tensor([0.0, 0.0])},
        ],
        "activation": "sin",
        "flatten": False,
        "squeeze": False,
        "grad": False,
    }


def _problem(rng, k, n, m, b, noise=0.01):
    G = mlp(rng, [k, 16, n], "tanh", scale=1.5)
    A = rng.normal(size=(m, n)) / np.sqrt(m)
    return G, A, rng.normal(size=(b, k)), noise


def q1_probes(rng):
    identity = {
        "spec": "mlp",
        "layers": [{"weight": tensor(np.eye(3)), "bias": tensor(np.zeros(3))}],
        "activation": "tanh",
        "flatten": False,
        "squeeze": False,
        "grad": False,
    }
    args = (identity, tensor(np.eye(3)[:2]), tensor([[1.0, 2.0]]), tensor([[1.0, 0.0, 5.0]]), literal(0.5))
    yield Probe("csgm_loss", args, label="G = identity, A observes two coordinates")
    for b in (1, 4):
        G, A, z, _ = _problem(rng, 3, 10, 5, b)
        y = rng.normal(size=(b, 5))
        yield Probe(
            "csgm_loss", (G, tensor(A), tensor(y), tensor(z), literal(float(rng.uniform(0, 1)))), hidden=True
        )


def csgm_reference(G, A, y, z0, steps, lr, lam):
    return csgm(G, A, y, z0.shape[2], steps=steps, restarts=z0.shape[0], lam=lam, lr=lr, z_init=z0)


def q2_probes(rng):
    z_star = 0.5
    y = np.array([[np.sin(3 * z_star), 0.5 * np.sin(3 * z_star)]])
    z0 = np.array([[[2.5]], [[0.3]], [[-1.6]]])
    args = (
        _linear_sin_generator(),
        tensor(np.eye(2)),
        tensor(y),
        tensor(z0),
        literal(200),
        literal(0.05),
        literal(0.01),
    )
    yield Probe("csgm_recover", args, label="three restarts in three basins of G(z) = (sin 3z, ½ sin 3z)")
    for restarts, b in ((1, 2), (3, 3)):
        G, A, z_star, noise = _problem(rng, 3, 12, 6, b)
        g = _evaluate_generator(G, z_star)
        y = g @ A.T + noise * rng.normal(size=(b, 6))
        z0 = rng.normal(size=(restarts, b, 3))
        args = (G, tensor(A), tensor(y), tensor(z0), literal(100), literal(0.05), literal(0.1))
        yield Probe("csgm_recover", args, hidden=True)


def _evaluate_generator(spec, z):
    with torch.no_grad():
        return build(spec)(torch.from_numpy(z)).numpy()


def csgm_objective(rtol=1e-3):
    """Accept (x_hat, z_hat) if x_hat = G(z_hat) and each item's objective is at most the
    reference's, within ``rtol`` relative."""

    def compare(expected, got, inputs):
        G, A, y, z0, steps, lr, lam = inputs
        b, k = y.shape[0], z0.shape[2]
        if got["kind"] == "none":
            return "returned None (not answered yet?)"
        if got["kind"] != "seq" or len(got["items"]) != 2:
            return f"expected a pair (x_hat, z_hat), got {describe(got)}"
        x_hat, z_hat = (as_array(item) for item in got["items"])
        if x_hat is None or z_hat is None or x_hat.shape != (b, A.shape[1]) or z_hat.shape != (b, k):
            return f"expected x_hat of shape {(b, A.shape[1])} and z_hat of shape {(b, k)}"
        if not (np.isfinite(x_hat).all() and np.isfinite(z_hat).all()):
            return "the result contains NaN or infinity"
        z_hat = torch.from_numpy(z_hat)
        with torch.no_grad():
            if not np.allclose(G(z_hat).numpy(), x_hat, rtol=1e-6, atol=1e-8):
                return "x_hat is not G(z_hat)"
            mine = csgm_loss(G, A, y, z_hat, lam).numpy()
            ref = csgm_loss(G, A, y, torch.from_numpy(as_array(expected["items"][1])), lam).numpy()
        worse = mine > ref + rtol * np.maximum(1.0, np.abs(ref))
        if worse.any():
            i = int(np.argmax(mine - ref))
            return f"item {i}: objective {mine[i]:.6g}, the reference reaches {ref[i]:.6g}"
        return None

    return compare


def lasso_reference(A, y, alpha):
    return lasso(A, y, alpha, tol=1e-10, max_iter=200_000).to(torch.float64)


def lasso_objective(rtol=1e-3):
    """Accept x_hat if each row's Lasso objective is at most the tight reference's (within
    ``rtol`` relative)."""

    def compare(expected, got, inputs):
        A, y, alpha = inputs
        A, y = A.numpy(), y.numpy()
        x_hat = as_array(got)
        if got["kind"] == "none":
            return "returned None (not answered yet?)"
        if x_hat is None or x_hat.shape != (y.shape[0], A.shape[1]):
            return f"expected shape {(y.shape[0], A.shape[1])}, got {describe(got)}"
        if not np.isfinite(x_hat).all():
            return "the result contains NaN or infinity"

        def objective(x):
            return 0.5 * ((y - x @ A.T) ** 2).sum(1) + alpha * np.abs(x).sum(1)

        mine, ref = objective(x_hat), objective(as_array(expected))
        worse = mine > ref + rtol * np.maximum(1e-3, np.abs(ref))
        if worse.any():
            i = int(np.argmax(mine - ref))
            return f"row {i}: objective {mine[i]:.6g}, the optimum is {ref[i]:.6g}"
        return None

    return compare


def q3_probes(rng):
    yield Probe(
        "lasso_recover", (tensor(np.eye(4)), tensor([[3.0, -0.5, 0.2, -2.0]]), literal(1.0)), label="A = I"
    )
    for alpha in (0.05, 0.2):
        m, n, b = 15, 30, 2
        A = rng.normal(size=(m, n)) / np.sqrt(m)
        x = np.zeros((b, n))
        for row in x:
            row[rng.choice(n, 4, replace=False)] = rng.normal(0, 1, 4)
        y = x @ A.T + 0.01 * rng.normal(size=(b, m))
        yield Probe("lasso_recover", (tensor(A), tensor(y), literal(alpha)), hidden=True)


CHECKS = {
    "q1": Check(q1_probes, csgm_loss, close(rtol=1e-9, atol=1e-12)),
    "q2": Check(q2_probes, csgm_reference, csgm_objective()),
    "q3": Check(q3_probes, lasso_reference, lasso_objective()),
}
