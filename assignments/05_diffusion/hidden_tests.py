"""Hidden tests of assignment 5 (graders only: never copied to the student folder).

Every reference is computed here, independently of ``gencourse.diffusion`` (which holds the
answers, and which this file does not import):

* ``q_sample``: the closed form √ᾱₜ x₀ + √(1 − ᾱₜ) ε, item by item (and its gradient);
* ``q_posterior``: Bayes' rule on a fine 1-D grid, entry by entry: the prior
  N(√ᾱₜ₋₁ x₀, 1 − ᾱₜ₋₁) (ᾱₜ₋₁ the product of the first t factors 1 − β) times the likelihood
  N(zₜ; √αₜ u, βₜ) of one step, normalised numerically; the mean and the variance by quadrature;
* ``ddpm_loss``: judged from what the model saw (the notebook's ``graded_ddpm_loss`` records the
  model's inputs): the indices must be uniform on {0, …, T − 1}, the noise that the inputs imply,
  ε = (zₜ − √ᾱₜ x₀)/√(1 − ᾱₜ), must have the moments of N(0, I) and be uncorrelated with x₀, the
  loss must be the mean of (ε − ε_θ)² for that noise, and it must lie within a few standard
  errors of the expected loss, computed here by Monte Carlo;
* ``ddim_step``: equation 12 of Song, Meng and Ermon (2021) written in NumPy float64 (σ from
  their equation 16); for η = 0 the step must match it, for η > 0 the residuals around its mean
  must be N(0, σ²) noise, independent of ε̂ and across items (moments over thousands of draws).

The networks are small float64 MLPs; ``_eps_model`` evaluates them as the notebook's
``EpsilonModel`` does: net([zₜ flattened, t / T]) reshaped like zₜ.
"""

import math

import numpy as np
import torch

from gencourse.grading.plain import as_array, describe
from gencourse.grading.probes import literal, mlp, tensor
from gencourse.grading.spec import Check, Probe, close

FORBIDDEN_MODULES = ("gencourse.diffusion",)
Z = 5.0  # the statistical checks allow Z standard errors


# --------------------------------------------------------------------------------------------
# inputs


def _schedule(rng, T, low=1e-3, high=0.5):
    """A random schedule β of length T: linear between random ends, or sorted uniform draws."""
    if rng.random() < 0.5:
        start, end = np.sort(rng.uniform(low, high, size=2))
        return np.linspace(start, end, T)
    return np.sort(rng.uniform(low, high, size=T))


def _alpha_bars(betas):
    """ᾱₜ = Π_{s ≤ t} (1 − β_s), written as the products themselves."""
    return np.array([np.prod(1.0 - betas[: t + 1]) for t in range(len(betas))])


def _shape(rng, n, image_probability=0.3):
    if rng.random() < image_probability:
        return (n, int(rng.integers(1, 3)), 2, int(rng.integers(1, 3)))
    return (n, int(rng.integers(1, 5)))


def _constant_net(values, inputs):
    """A one-layer net that ignores its input and returns ``values``."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "spec": "mlp",
        "layers": [{"weight": tensor(np.zeros((len(values), inputs))), "bias": tensor(values)}],
        "activation": "tanh",
        "flatten": False,
        "squeeze": False,
        "grad": True,
    }


def _random_net(rng, dim):
    """A random tanh MLP [dim + 1 → 16 → dim] (the +1 is the index feature t / T)."""
    return mlp(rng, [dim + 1, 16, dim], "tanh", grad=True, scale=1.5)


def _eps_model(net, xt, t, T):
    """ε̂ = net([zₜ flattened, t / T]) reshaped like zₜ, as a float64 NumPy array."""
    xt = torch.as_tensor(xt, dtype=torch.float64)
    t = torch.as_tensor(t)
    with torch.no_grad():
        features = torch.cat([xt.flatten(1), t.to(torch.float64).unsqueeze(1) / T], dim=1)
        return net(features).reshape(xt.shape).numpy()


def _per_item(values, x):
    return np.asarray(values, dtype=np.float64).reshape(-1, *([1] * (np.ndim(x) - 1)))


# --------------------------------------------------------------------------------------------
# q1: q_sample


def q_sample_reference(x0, t, noise, alpha_bars):
    """√ᾱₜ x₀ + √(1 − ᾱₜ) ε, one item at a time (torch float64, so that gradients can be checked)."""
    rows = []
    for i in range(len(x0)):
        a = float(alpha_bars[int(t[i])])
        rows.append(math.sqrt(a) * x0[i] + math.sqrt(1.0 - a) * noise[i])
    return torch.stack(rows)


def q1_probes(rng):
    yield Probe(
        "q_sample",
        (tensor([[2.0]]), tensor([1], dtype="int64"), tensor([[1.0]]), tensor([0.9, 0.64])),
        label="ᾱ₁ = 0.64",
    )
    x0 = np.arange(12.0).reshape(3, 1, 2, 2) / 6 - 1
    noise = np.cos(np.arange(12.0)).reshape(3, 1, 2, 2)
    args = (tensor(x0), tensor([0, 1, 2], dtype="int64"), tensor(noise), tensor([0.9, 0.5, 0.1]))
    yield Probe("q_sample", args, label="images, t = 0, 1, 2 (is ᾱ taken per item?)")
    for shape in ((7,), _shape(rng, 6, 0.0), _shape(rng, 5, 1.0)):
        T = int(rng.integers(5, 60))
        ab = _alpha_bars(_schedule(rng, T))
        t = rng.integers(0, T, size=shape[0])
        t[0] = 0
        args = (
            tensor(rng.normal(size=shape)),
            tensor(t, dtype="int64"),
            tensor(rng.normal(size=shape)),
            tensor(ab),
        )
        yield Probe("q_sample", args, hidden=True)
    T = 8
    ab = _alpha_bars(_schedule(rng, T))
    shape = (4, 3)
    args = (
        tensor(rng.normal(size=shape), grad=True),
        tensor(rng.integers(0, T, size=4), dtype="int64"),
        tensor(rng.normal(size=shape), grad=True),
        tensor(ab),
    )
    yield Probe("q_sample", args, hidden=True, grad=True)


# --------------------------------------------------------------------------------------------
# q2: q_posterior, by Bayes' rule on a grid


def _grid_posterior(x0, z, prior_ab, alpha, beta, points_per_sd=10.0, width=12.0):
    """Mean and variance of p(u) ∝ N(u; √prior_ab x0, 1 − prior_ab) · N(z; √alpha u, beta) for
    scalars, by quadrature on a uniform grid (spacing a tenth of the smaller standard deviation,
    reaching `width` of them beyond both means: the posterior lies between the two means and is
    narrower than either factor, and a uniform grid integrates a Gaussian to machine precision)."""
    m_prior, v_prior = math.sqrt(prior_ab) * x0, 1.0 - prior_ab
    m_lik, s_lik = z / math.sqrt(alpha), math.sqrt(beta / alpha)  # the likelihood as a function of u
    s = min(math.sqrt(v_prior), s_lik)
    lo, hi = min(m_prior, m_lik) - width * s, max(m_prior, m_lik) + width * s
    n = int(min((hi - lo) / s * points_per_sd, 2_000_000)) + 1
    u = np.linspace(lo, hi, n)
    log_w = -((u - m_prior) ** 2) / (2 * v_prior) - (z - math.sqrt(alpha) * u) ** 2 / (2 * beta)
    w = np.exp(log_w - log_w.max())
    mean = float(np.sum(w * u) / np.sum(w))
    return mean, float(np.sum(w * (u - mean) ** 2) / np.sum(w))


def q_posterior_reference(x0, xt, t, betas):
    """(mean of the shape of xt, variance of shape (batch, 1, …, 1)) by ``_grid_posterior``."""
    x0, xt, t, betas = x0.numpy(), xt.numpy(), t.numpy(), betas.numpy()
    mean = np.empty_like(xt)
    variance = np.empty((len(xt),) + (1,) * (xt.ndim - 1))
    for i in range(len(xt)):
        ti = int(t[i])
        prior_ab = float(np.prod(1.0 - betas[:ti]))  # ᾱₜ₋₁: the first t factors (indices 0 … t − 1)
        flat_x0, flat_z, flat_mean = x0[i].reshape(-1), xt[i].reshape(-1), mean[i].reshape(-1)
        variances = []
        for j in range(flat_z.size):
            flat_mean[j], v = _grid_posterior(flat_x0[j], flat_z[j], prior_ab, 1.0 - betas[ti], betas[ti])
            variances.append(v)
        mean[i] = flat_mean.reshape(xt[i].shape)
        variance[i] = np.mean(variances)
    return torch.from_numpy(mean), torch.from_numpy(variance)


def posterior_judgement(rtol=1e-6, atol=1e-9):
    """The mean as ``close``; the variance of shape (batch, 1, …, 1) or of the shape of xt,
    equal to the reference's per-item variance everywhere."""
    values = close(rtol, atol)

    def compare(expected, got, inputs):
        x0, xt, t, betas = inputs
        if got["kind"] != "seq" or len(got["items"]) != 2:
            return f"expected a pair (mean, variance), got {describe(got)}"
        problem = values(expected["items"][0], got["items"][0], inputs)
        if problem:
            return f"the mean: {problem}"
        variance = as_array(got["items"][1])
        per_item_shape = (len(xt),) + (1,) * (xt.dim() - 1)
        if variance is None or variance.shape not in (per_item_shape, tuple(xt.shape)):
            shown = describe(got["items"][1]) if variance is None else f"shape {variance.shape}"
            return f"the variance: expected shape {per_item_shape} (or {tuple(xt.shape)}), got {shown}"
        want = np.broadcast_to(as_array(expected["items"][1]), xt.shape)
        err = np.abs(np.broadcast_to(variance, xt.shape) - want)
        if not (err <= atol + rtol * np.abs(want)).all():
            return f"the variance differs from the reference (largest error {np.nanmax(err):.3g})"
        return None

    return compare


def q2_probes(rng):
    args = (tensor([[1.0]]), tensor([[2.0]]), tensor([1], dtype="int64"), tensor([0.5, 0.5]))
    yield Probe("q_posterior", args, label="β = (0.5, 0.5), t = 1")
    betas = np.linspace(1e-4, 0.02, 1000)
    ab = _alpha_bars(betas)
    t = np.array([1, 500, 999])
    x0 = np.linspace(-1, 1, 12).reshape(3, 1, 2, 2)
    xt = _per_item(np.sqrt(ab[t]), x0) * x0 + _per_item(np.sqrt(1 - ab[t]), x0) * np.sin(
        np.arange(12.0)
    ).reshape(3, 1, 2, 2)
    args = (tensor(x0), tensor(xt), tensor(t, dtype="int64"), tensor(betas))
    yield Probe("q_posterior", args, label="Ho et al.'s schedule (T = 1000), t = 1, 500, 999, images")
    for arbitrary in (False, False, True):
        T = int(rng.integers(3, 40))
        betas = _schedule(rng, T, low=0.01 if arbitrary else 1e-3)
        ab = _alpha_bars(betas)
        shape = _shape(rng, int(rng.integers(2, 6)))
        t = rng.integers(1, T, size=shape[0])
        x0 = rng.normal(size=shape)
        if arbitrary:  # any z_t, not only a likely one
            xt = rng.normal(0.0, 2.0, size=shape)
        else:
            xt = _per_item(np.sqrt(ab[t]), x0) * x0 + _per_item(np.sqrt(1 - ab[t]), x0) * rng.normal(
                size=shape
            )
        yield Probe(
            "q_posterior", (tensor(x0), tensor(xt), tensor(t, dtype="int64"), tensor(betas)), hidden=True
        )


# --------------------------------------------------------------------------------------------
# q3: ddpm_loss, judged from the inputs the model saw


def ddpm_loss_reference(net, x0, alpha_bars, seed, draws=16):
    """The expected loss E_{t, ε} mean (ε − ε_θ(√ᾱₜ x₀ + √(1 − ᾱₜ) ε, t))², by Monte Carlo over
    every index t and ``draws`` noises per item (NumPy's generator, independent of the seed)."""
    x0, ab = x0.numpy(), alpha_bars.numpy()
    rng = np.random.default_rng(12345)
    total = 0.0
    for t in range(len(ab)):
        x = np.repeat(x0, draws, axis=0)
        eps = rng.normal(size=x.shape)
        xt = math.sqrt(ab[t]) * x + math.sqrt(1 - ab[t]) * eps
        total += np.mean((eps - _eps_model(net, xt, np.full(len(x), t), len(ab))) ** 2)
    return total / len(ab)


def _uniform_problem(t, T):
    """None if the counts of t over {0, …, T − 1} are within Z standard errors of uniform."""
    n = len(t)
    counts = np.bincount(t, minlength=T)
    sd = math.sqrt(n * (1 / T) * (1 - 1 / T))
    if np.any(np.abs(counts - n / T) > Z * sd + 1):
        return (
            f"the indices t are not uniform on {{0, …, {T - 1}}}: counts {counts.tolist()} "
            f"for {n} items (about {n / T:.0f} each expected)"
        )
    return None


def _noise_problem(eps, x0):
    """None if ε has the mean, the variance of N(0, I) and no correlation with x₀."""
    n = eps.size
    mean, var = float(eps.mean()), float(eps.var())
    centred = (x0 - x0.mean()) / (x0.std() + 1e-300)
    corr = float(np.mean(eps * centred))
    if abs(mean) > Z / math.sqrt(n) or abs(var - 1) > Z * math.sqrt(2 / n) or abs(corr) > Z / math.sqrt(n):
        return (
            "the model's input xt is not √ᾱₜ x₀ + √(1 − ᾱₜ) ε with ε ~ N(0, I): the noise it implies, "
            f"(xt − √ᾱₜ x₀)/√(1 − ᾱₜ), has mean {mean:.3f}, variance {var:.3f} and correlation "
            f"{corr:.3f} with x₀ (expected 0, 1 and 0)"
        )
    return None


def loss_judgement():
    """Judge (loss, xt, t, differentiable) as the module's docstring says."""

    def compare(expected, got, inputs):
        net, x0, alpha_bars, seed = inputs
        T, n = len(alpha_bars), len(x0)
        if got["kind"] in ("raised", "none", "error", "unsupported"):
            return f"expected a loss, got {describe(got)}"
        if got["kind"] != "seq" or len(got["items"]) != 4:
            return f"graded_ddpm_loss (given code) returned {describe(got)}: keep it as it was given"
        loss, xt, t, differentiable = got["items"]
        loss_value = as_array(loss)
        if loss_value is None or loss_value.shape != ():
            return f"expected the loss as a scalar tensor (the mean), got {describe(loss)}"
        if not np.isfinite(loss_value):
            return "the loss is not finite"
        if differentiable != {"kind": "bool", "value": True}:
            return "the loss cannot be differentiated: return a tensor computed from the model's output"
        xt, t = as_array(xt), as_array(t)
        if xt is None or t is None or xt.shape != tuple(x0.shape) or t.shape != (n,):
            return (
                f"the model should be called once on the whole batch: it saw xt of shape "
                f"{None if xt is None else xt.shape} and t of shape {None if t is None else t.shape}, "
                f"for x0 of shape {tuple(x0.shape)}"
            )
        t = t.astype(np.int64)
        if t.min() < 0 or t.max() >= T:
            return f"the indices t must lie in {{0, …, {T - 1}}}, got values from {t.min()} to {t.max()}"
        problem = _uniform_problem(t, T)
        if problem:
            return problem
        x0, ab = x0.numpy(), alpha_bars.numpy()
        a = _per_item(ab[t], x0)
        eps = (xt - np.sqrt(a) * x0) / np.sqrt(1 - a)
        problem = _noise_problem(eps, x0)
        if problem:
            return problem
        errors = ((eps - _eps_model(net, xt, t, T)) ** 2).reshape(n, -1).mean(1)
        mine, exact = float(loss_value), float(errors.mean())
        if abs(mine - exact) > 1e-8 * max(1.0, abs(exact)):
            return (
                f"the loss is not the mean over the batch and the dimensions of (ε − model(xt, t))² "
                f"for the noise ε of the model's input (yours {mine:.6g}, that mean {exact:.6g})"
            )
        expectation = as_array(expected)
        se = float(errors.std()) / math.sqrt(n)
        if abs(mine - float(expectation)) > Z * se + 1e-6:
            return f"the loss {mine:.5g} is far from its expected value {float(expectation):.5g} (± {se:.2g})"
        return None

    return compare


def q3_probes(rng):
    fixed = np.random.default_rng(0)
    x0 = fixed.normal(0.5, 1.0, size=(2000, 3))
    ab = _alpha_bars(np.array([0.1, 0.2, 0.3, 0.4]))
    yield Probe(
        "graded_ddpm_loss",
        (_constant_net([0.0, 0.0, 0.0], 4), tensor(x0), tensor(ab), literal(1)),
        label="a network that predicts 0, T = 4",
    )
    for shape in (_shape(rng, 2500, 0.0), _shape(rng, 2500, 0.0), _shape(rng, 2000, 1.0)):
        T = int(rng.integers(3, 9))
        ab = _alpha_bars(_schedule(rng, T, low=0.02))
        x0 = rng.normal(rng.normal(size=shape[1:]), 1.0, size=shape)
        dim = int(np.prod(shape[1:]))
        args = (_random_net(rng, dim), tensor(x0), tensor(ab), literal(int(rng.integers(0, 2**31))))
        yield Probe("graded_ddpm_loss", args, hidden=True)


# --------------------------------------------------------------------------------------------
# q4: ddim_step, equation 12 of Song et al. in NumPy float64


def ddim_reference(net, xt, t, t_prev, alpha_bars, eta, seed):
    """(mean of the step, σ per item, ε̂, the step at η = 0): z_s = √ᾱ_s x̂₀ + √(1 − ᾱ_s − σ²) ε̂
    + σ ε' with x̂₀ = (zₜ − √(1 − ᾱₜ) ε̂)/√ᾱₜ and σ = η √((1 − ᾱ_s)/(1 − ᾱₜ)) √(1 − ᾱₜ/ᾱ_s),
    ᾱ₋₁ = 1."""
    z, t, s, ab = xt.numpy(), t.numpy(), t_prev.numpy(), alpha_bars.numpy()
    eps_hat = _eps_model(net, z, t, len(ab))
    a_t = ab[t]
    a_s = np.array([ab[i] if i >= 0 else 1.0 for i in s])
    sigma = eta * np.sqrt((1 - a_s) / (1 - a_t)) * np.sqrt(1 - a_t / a_s)
    x0_hat = (z - _per_item(np.sqrt(1 - a_t), z) * eps_hat) / _per_item(np.sqrt(a_t), z)
    direction = _per_item(np.sqrt(np.maximum(1 - a_s - sigma**2, 0.0)), z) * eps_hat
    mean = _per_item(np.sqrt(a_s), z) * x0_hat + direction
    deterministic = _per_item(np.sqrt(a_s), z) * x0_hat + _per_item(np.sqrt(1 - a_s), z) * eps_hat
    return mean, sigma, eps_hat, deterministic


def ddim_judgement(rtol=1e-9, atol=1e-10):
    """η = 0 (or σ = 0 for every item): equal to the reference's mean. Otherwise not the step at
    η = 0, and the standardised residuals r = (z_s − mean)/σ must have variance 1 and mean 0, be
    uncorrelated with ε̂ and between consecutive items, and put the Gaussian's 68.3 % within ±1;
    items with σ = 0 must match the mean."""
    values = close(rtol, atol)

    def compare(expected, got, inputs):
        mean, sigma, eps_hat, deterministic = (as_array(item) for item in expected["items"])
        if not np.any(sigma > 0):
            return values(expected["items"][0], got, inputs)
        got_arr = as_array(got)
        if got["kind"] != "array" or got_arr is None or got_arr.shape != mean.shape:
            return f"expected an array of shape {mean.shape}, got {describe(got)}"
        if not np.isfinite(got_arr).all():
            return "the result contains NaN or infinity"
        if np.allclose(got_arr, deterministic, rtol=1e-6, atol=1e-9):
            return "for η > 0 the step is the one of η = 0, with no noise (is η ignored?)"
        positive = sigma > 0
        exact = got_arr[~positive] - mean[~positive]
        if exact.size and np.abs(exact).max() > atol + rtol * np.abs(mean[~positive]).max():
            return "the items with σ = 0 (t_prev = −1) differ from the reference"
        r = (got_arr[positive] - mean[positive]) / _per_item(sigma[positive], mean[positive])
        e = eps_hat[positive]
        n = r.size
        m, v = float(r.mean()), float(r.var())
        if abs(v - 1) > Z * math.sqrt(2 / n):
            return (
                f"around equation 12's mean, the step spreads {math.sqrt(v):.3f} times the standard deviation "
                "σ = η √((1 − ᾱ_s)/(1 − ᾱₜ)) √(1 − ᾱₜ/ᾱ_s) (expected 1: check σ, and draw ε' with the shape of xt)"
            )
        if abs(m) > Z / math.sqrt(n):
            return f"the step is biased: its mean differs from equation 12's by {m:.3f} σ on average"
        along = float(np.mean(r * e)) / math.sqrt(float(np.mean(e**2)))
        if abs(along) > Z / math.sqrt(n):
            return "the step's mean is off along ε̂ (is the coefficient of ε̂ √(1 − ᾱ_s − σ²)?)"
        rows = r.reshape(len(r), -1)
        if len(rows) > 1 and abs(float(np.mean(rows[1:] * rows[:-1]))) > Z / math.sqrt(rows[1:].size):
            return "the noise is correlated between items (draw it with the shape of xt)"
        inside = float(np.mean(np.abs(r) < 1))
        p = math.erf(1 / math.sqrt(2))
        if abs(inside - p) > Z * math.sqrt(p * (1 - p) / n):
            return f"the noise is not Gaussian: {100 * inside:.1f}% of it within ±σ (68.3% expected)"
        return None

    return compare


def _ddim_case(rng, shape, T, eta, to_data=0.2):
    """A random step: schedule, indices t > t_prev (a fifth of them to the data, t_prev = −1),
    noisy inputs of ``shape`` and a random network."""
    n = shape[0]
    ab = _alpha_bars(_schedule(rng, T, low=0.02))
    t = rng.integers(1, T, size=n)
    t_prev = np.array([int(rng.integers(0, ti)) for ti in t])
    t_prev[rng.random(n) < to_data] = -1
    xt = rng.normal(size=shape)
    return (
        _random_net(rng, int(np.prod(shape[1:]))),
        tensor(xt),
        tensor(t, dtype="int64"),
        tensor(t_prev, dtype="int64"),
        tensor(ab),
        literal(eta),
        literal(int(rng.integers(0, 2**31))),
    )


def q4_probes(rng):
    ab = [0.64, 0.36, 0.16]
    args = (
        _constant_net([0.5, -1.0], 3),
        tensor([[3.0, 1.0], [1.0, 2.0]]),
        tensor([2, 1], dtype="int64"),
        tensor([0, -1], dtype="int64"),
        tensor(ab),
        literal(0.0),
        literal(0),
    )
    yield Probe(
        "graded_ddim_step", args, label="ε̂ = (0.5, −1) everywhere, η = 0, t_prev = −1 in the second row"
    )
    fixed = np.random.default_rng(1)
    n, T = 4000, 6
    ab = _alpha_bars(np.linspace(0.05, 0.4, T))
    t = fixed.integers(1, T, size=n)
    args = (
        _random_net(fixed, 3),
        tensor(fixed.normal(size=(n, 3))),
        tensor(t, dtype="int64"),
        tensor(t - 1, dtype="int64"),
        tensor(ab),
        literal(1.0),
        literal(2),
    )
    yield Probe("graded_ddim_step", args, label="η = 1 from t to t − 1 (DDPM's step), 4000 items")
    for shape in (_shape(rng, 7, 0.0), _shape(rng, 5, 1.0)):
        yield Probe("graded_ddim_step", _ddim_case(rng, shape, int(rng.integers(3, 30)), 0.0), hidden=True)
    for eta in (0.5, 1.0):
        yield Probe(
            "graded_ddim_step", _ddim_case(rng, (3000, 4), int(rng.integers(3, 12)), eta), hidden=True
        )


CHECKS = {
    "q1": Check(q1_probes, q_sample_reference, close(rtol=1e-9, atol=1e-12)),
    "q2": Check(q2_probes, q_posterior_reference, posterior_judgement()),
    "q3": Check(q3_probes, ddpm_loss_reference, loss_judgement()),
    "q4": Check(q4_probes, ddim_reference, ddim_judgement()),
}
