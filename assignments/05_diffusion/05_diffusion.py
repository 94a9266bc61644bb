# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: 05_diffusion
# init_cell: false
# export_cell: false
# check_all_cell: false
# tests:
#   files: false
# generate: true

# %% [markdown]
# # Assignment 5: diffusion models
#
# You implement the four pieces of a denoising diffusion model (Ho, Jain and Abbeel, 2020; Song,
# Meng and Ermon, 2021): the closed form of the forward process, the posterior of one noising
# step, the ε-prediction loss, and one step of the DDIM sampler. Then you train a small diffusion
# model on eight Gaussians in the plane with your loss and sample from it with your DDIM step
# (lecture 13).
#
# **How it is graded.** `grader.check("q1")` runs a question's public tests here. After the
# deadline the grader runs your notebook top to bottom in a separate process and calls your
# functions on inputs of its own, including hidden random ones (shapes, noise schedules, indices
# and networks), and compares the results with references computed independently (Bayes' rule on
# a grid, Monte Carlo moments, the DDIM paper's equation in NumPy). Keep the inputs' dtype (the
# grader uses float64), do not modify inputs in place, and write your own code:
# `gencourse.diffusion`, which holds the answers, cannot be imported while grading. The notebook
# must run in about a minute on a CPU at `GENCOURSE_BUDGET=ci`. Question 5 is a written answer,
# graded by hand.

# %%
# Colab: install the course package and fetch this assignment's public tests (does nothing elsewhere).
import subprocess
import sys

if "google.colab" in sys.modules:
    PACKAGE = "gencourse[grading] @ git+https://github.com/gencourse/gencourse@v0.1.0"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", PACKAGE], capture_output=True, text=True
    )
    if pip.returncode != 0:  # show pip's own message, not only its exit status
        raise RuntimeError(f"pip could not install {PACKAGE}:\n{pip.stdout[-2000:]}{pip.stderr[-3000:]}")
    from google.colab import output

    output.enable_custom_widget_manager()  # ipywidgets 8 (sliders, progress bars) on Colab
    from gencourse.grading.assign import fetch_for_colab

    fetch_for_colab("05_diffusion")

# %%
# Otter: grader.check("q1") runs the public tests of question q1.
import otter

grader = otter.Notebook("05_diffusion.ipynb")

# %%
import math
import os

import matplotlib.pyplot as plt
import torch
from torch import nn

from gencourse.data import ring_mixture
from gencourse.nets import mlp
from gencourse.pacgan import mode_stats
from gencourse.runtime import budget, budget_level, fit

# An assignment trains on the CPU, also on a Colab GPU runtime, so its budget does not follow the
# runtime: it is `cpu` unless GENCOURSE_BUDGET names another level.
os.environ.setdefault("GENCOURSE_BUDGET", "cpu")

print(f"budget level: {budget_level()}")

# %% [markdown]
# ## Conventions
#
# The course's conventions (those of `gencourse.diffusion`), which the grader checks:
#
# * a **schedule** is a 1-D tensor `betas` of length $T$ with $0 < \beta_t < 1$; indices are
#   0-based, $t = 0, \dots, T - 1$; $\alpha_t = 1 - \beta_t$ and
#   $\bar\alpha_t = \prod_{s = 0}^{t} \alpha_s$ (a cumulative product that *includes* $t$);
# * the data are $x_0$ (the code's `x0`) and the noisy variable at index $t$ is $z_t$ (the
#   code's `xt`), made by $t + 1$ noising steps from the data. It is convenient to call the data
#   $z_{-1} = x_0$ and to set $\bar\alpha_{-1} = 1$ (an empty product);
# * `t` is a LongTensor of shape `(batch,)`: one index per item of the batch, so that one call
#   can hold items at different noise levels;
# * the network is called `model(xt, t)` and predicts the noise $\varepsilon$ (below).
#
# Everything else in a batch broadcasts: a number per item, such as $\bar\alpha_t$, is reshaped
# to `(batch, 1, …, 1)` before it multiplies `x0` (the helper `per_item` below does this).


# %%
def linear_betas(T, beta_start=1e-4, beta_end=0.02):
    """βₜ evenly spaced from beta_start to beta_end, t = 0, …, T − 1 (float64; Ho et al.'s
    schedule at T = 1000)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def per_item(values, x):
    """A tensor of one value per item, shape (batch,), reshaped to (batch, 1, …, 1) so that it
    broadcasts against x."""
    return values.reshape(-1, *([1] * (x.dim() - 1)))


class EpsilonModel(nn.Module):
    """The noise predictor ε_θ(z_t, t) = net([z_t flattened, t / T]) reshaped like z_t: the
    network sees the noisy input and its index as a number in [0, 1)."""

    def __init__(self, net, T):
        super().__init__()
        self.net, self.T = net, T

    def forward(self, xt, t):
        if t.dtype != torch.long or t.shape != xt.shape[:1]:
            raise TypeError(
                f"call model(xt, t) with t a LongTensor of shape (batch,) = ({len(xt)},), "
                f"not {t.dtype} of shape {tuple(t.shape)}"
            )
        features = torch.cat([xt.flatten(1), t.to(xt.dtype).unsqueeze(1) / self.T], dim=1)
        return self.net(features).reshape(xt.shape)


# %% [markdown]
# The grader's networks are small MLPs that take one input; it wraps them in `EpsilonModel` with
# the two functions below, which call your `ddpm_loss` and `ddim_step` (they are given: keep
# them as they are). The first also reports the inputs that your loss gave the model, so that the
# grader can check the noise your loss used.


# %%
class RecordingModel(EpsilonModel):
    """An EpsilonModel that keeps the inputs (xt, t) of each call."""

    def __init__(self, net, T):
        super().__init__(net, T)
        self.calls = []

    def forward(self, xt, t):
        self.calls.append((xt.detach(), t))
        return super().forward(xt, t)

    def inputs(self):
        """The inputs of all calls, concatenated along the batch."""
        if not self.calls:
            raise RuntimeError("ddpm_loss did not call the model")
        return torch.cat([xt for xt, _ in self.calls]), torch.cat([t for _, t in self.calls])


def graded_ddpm_loss(net, x0, alpha_bars, seed):
    """Your ddpm_loss on EpsilonModel(net): (the loss, the xt and t the model saw, whether the
    loss can be differentiated)."""
    model = RecordingModel(net, len(alpha_bars))
    loss = ddpm_loss(model, x0, alpha_bars, generator=torch.Generator().manual_seed(seed))
    xt, t = model.inputs()
    return loss, xt, t, isinstance(loss, torch.Tensor) and loss.requires_grad


def graded_ddim_step(net, xt, t, t_prev, alpha_bars, eta, seed):
    """Your ddim_step on EpsilonModel(net), after seeding torch's global generator."""
    torch.manual_seed(seed)
    return ddim_step(EpsilonModel(net, len(alpha_bars)), xt, t, t_prev, alpha_bars, eta=eta)


# %% [markdown]
# ## Part 1: the forward process in closed form
#
# The forward process adds Gaussian noise in $T$ small steps:
#
# $$
# z_t = \sqrt{\alpha_t}\, z_{t-1} + \sqrt{\beta_t}\, \varepsilon_t, \qquad
# \varepsilon_t \sim \mathcal N(0, I) \text{ independent}, \qquad t = 0, \dots, T - 1,
# \quad z_{-1} = x_0 .
# $$
#
# **Claim.** $q(z_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big)$,
# that is $z_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon$ with
# $\varepsilon \sim \mathcal N(0, I)$.
#
# *Proof, by induction on $t$.* For $t = 0$: $z_0 = \sqrt{\alpha_0}\, x_0 + \sqrt{\beta_0}\,
# \varepsilon_0$, and $\bar\alpha_0 = \alpha_0$, $\beta_0 = 1 - \bar\alpha_0$. If the claim holds
# at $t - 1$, with noise $\bar\varepsilon$ independent of $\varepsilon_t$,
#
# $$
# z_t = \sqrt{\alpha_t}\big(\sqrt{\bar\alpha_{t-1}}\, x_0 + \sqrt{1 - \bar\alpha_{t-1}}\,
# \bar\varepsilon\big) + \sqrt{1 - \alpha_t}\, \varepsilon_t
# = \sqrt{\bar\alpha_t}\, x_0 + \Big[\sqrt{\alpha_t (1 - \bar\alpha_{t-1})}\, \bar\varepsilon
# + \sqrt{1 - \alpha_t}\, \varepsilon_t\Big],
# $$
#
# using $\alpha_t \bar\alpha_{t-1} = \bar\alpha_t$. The bracket is a sum of independent centred
# Gaussians, so it is a centred Gaussian with covariance
# $\big(\alpha_t - \alpha_t \bar\alpha_{t-1} + 1 - \alpha_t\big) I = (1 - \bar\alpha_t) I$. $\square$
#
# So index $t$ can be sampled in one line, without running the chain: this is what makes training
# cheap.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 1

# %% [markdown]
# **Question 1.** Implement `q_sample(x0, t, noise, alpha_bars)`: `x0` and `noise` have the same
# shape `(batch, …)`, `t` is a LongTensor of shape `(batch,)` and `alpha_bars` holds
# $\bar\alpha_0, \dots, \bar\alpha_{T-1}$; return $\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 -
# \bar\alpha_t}\, \varepsilon$ (each item with its own $t$), differentiable in `x0` and `noise`.

# %% [raw]
# # BEGIN SOLUTION


# %%
def q_sample(x0, t, noise, alpha_bars):
    """z_t = √ᾱₜ x₀ + √(1 − ᾱₜ) ε, with ᾱₜ taken per item."""
    # BEGIN SOLUTION
    a = per_item(alpha_bars[t], x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
z = q_sample(torch.tensor([[2.0]]), torch.tensor([1]), torch.tensor([[1.0]]), torch.tensor([0.9, 0.64]))
assert torch.allclose(z, torch.tensor([[2.2]]))  # ᾱ₁ = 0.64: 0.8 · 2 + 0.6 · 1

# %%
x0, t3 = torch.ones(3, 1, 2, 2), torch.tensor([0, 1, 2])
z = q_sample(x0, t3, torch.zeros(3, 1, 2, 2), torch.tensor([0.81, 0.25, 0.04]))
assert z.shape == (3, 1, 2, 2) and torch.allclose(z[:, 0, 0, 0], torch.tensor([0.9, 0.5, 0.2]))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# A check of the claim: run the chain step by step, $t + 1$ steps from the same $x_0$, and
# compare its mean and variance with those of your closed form (100,000 draws; the tolerances are
# 5 standard errors).


# %%
def run_chain(x0, betas, t, generator):
    """z_t by t + 1 steps z_s = √α_s z_{s−1} + √β_s ε_s from z_{−1} = x0."""
    z = x0
    for s in range(t + 1):
        noise = torch.randn(z.shape, generator=generator, dtype=z.dtype)
        z = (1 - betas[s]).sqrt() * z + betas[s].sqrt() * noise
    return z


gen = torch.Generator().manual_seed(0)
betas_check = linear_betas(10, 0.05, 0.3)
alpha_bars_check = torch.cumprod(1 - betas_check, dim=0)
n_draws, t_check = 100_000, 6
x0_check = torch.full((n_draws, 1), 1.5, dtype=torch.float64)
chain = run_chain(x0_check, betas_check, t_check, gen)
closed = q_sample(
    x0_check,
    torch.full((n_draws,), t_check),
    torch.randn(n_draws, 1, generator=gen, dtype=torch.float64),
    alpha_bars_check,
)
a = alpha_bars_check[t_check].item()
for name, z in (("chain", chain), ("closed form", closed)):
    print(f"{name}: mean {z.mean():.4f}, variance {z.var():.4f}")
    assert abs(z.mean().item() - math.sqrt(a) * 1.5) < 5 * math.sqrt((1 - a) / n_draws)
    assert abs(z.var().item() - (1 - a)) < 5 * (1 - a) * math.sqrt(2 / n_draws)
print(f"closed form: mean √ᾱ x₀ = {math.sqrt(a) * 1.5:.4f}, variance 1 − ᾱ = {1 - a:.4f}")

# %% [markdown]
# ## Part 2: the posterior of one step
#
# Sampling runs the chain backwards, and the reverse step is learnt by matching the *posterior*
# $q(z_{t-1} \mid z_t, x_0)$, $t \ge 1$. By Bayes' rule, and because given $z_{t-1}$ the step to
# $z_t$ does not depend on $x_0$ (a Markov chain),
#
# $$
# q(z_{t-1} \mid z_t, x_0) \propto q(z_t \mid z_{t-1})\, q(z_{t-1} \mid x_0)
# = \mathcal N\big(z_t;\ \sqrt{\alpha_t}\, z_{t-1},\ \beta_t I\big)\,
#   \mathcal N\big(z_{t-1};\ \sqrt{\bar\alpha_{t-1}}\, x_0,\ (1 - \bar\alpha_{t-1}) I\big).
# $$
#
# Coordinate by coordinate, with $u$ one coordinate of $z_{t-1}$, the log of the right-hand side is
#
# $$
# -\frac{(z_t - \sqrt{\alpha_t}\, u)^2}{2 \beta_t} - \frac{(u - \sqrt{\bar\alpha_{t-1}}\, x_0)^2}{2 (1 - \bar\alpha_{t-1})}
# = -\frac{u^2}{2} \Big(\frac{\alpha_t}{\beta_t} + \frac{1}{1 - \bar\alpha_{t-1}}\Big)
#   + u \Big(\frac{\sqrt{\alpha_t}}{\beta_t} z_t + \frac{\sqrt{\bar\alpha_{t-1}}}{1 - \bar\alpha_{t-1}} x_0\Big) + \text{const},
# $$
#
# a Gaussian in $u$ whose precision is the coefficient of $-u^2/2$:
#
# $$
# \frac{\alpha_t}{\beta_t} + \frac{1}{1 - \bar\alpha_{t-1}}
# = \frac{\alpha_t (1 - \bar\alpha_{t-1}) + \beta_t}{\beta_t (1 - \bar\alpha_{t-1})}
# = \frac{1 - \bar\alpha_t}{\beta_t (1 - \bar\alpha_{t-1})}
# \qquad (\alpha_t - \bar\alpha_t + 1 - \alpha_t = 1 - \bar\alpha_t),
# $$
#
# and whose mean is the variance times the coefficient of $u$:
#
# $$
# \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\, \beta_t, \qquad
# \tilde\mu_t(x_0, z_t) = \frac{\sqrt{\bar\alpha_{t-1}}\, \beta_t}{1 - \bar\alpha_t}\, x_0
#   + \frac{\sqrt{\alpha_t}\, (1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\, z_t,
# \qquad q(z_{t-1} \mid z_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I).
# $$

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2

# %% [markdown]
# **Question 2.** Implement `q_posterior(x0, xt, t, betas)` for $t \ge 1$ (every entry of `t`):
# return `(mean, variance)`, the mean $\tilde\mu_t(x_0, z_t)$ of the shape of `xt` and the
# variance $\tilde\beta_t$ of shape `(batch, 1, …, 1)` (one number per item, so that
# `mean + variance.sqrt() * noise` broadcasts; the full shape of `xt` is accepted too). Note that
# it takes the schedule `betas`, not $\bar\alpha$.

# %% [raw]
# # BEGIN SOLUTION


# %%
def q_posterior(x0, xt, t, betas):
    """Mean μ̃ₜ = √ᾱₜ₋₁ βₜ/(1 − ᾱₜ) x₀ + √αₜ (1 − ᾱₜ₋₁)/(1 − ᾱₜ) zₜ and variance
    β̃ₜ = (1 − ᾱₜ₋₁)/(1 − ᾱₜ) βₜ of q(zₜ₋₁ | zₜ, x₀), for t ≥ 1."""
    # BEGIN SOLUTION
    alpha_bars = (1 - betas).cumprod(0)
    a_t, a_prev = per_item(alpha_bars[t], xt), per_item(alpha_bars[t - 1], xt)
    beta = per_item(betas[t], xt)
    mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + (1 - beta).sqrt() * (1 - a_prev) / (1 - a_t) * xt
    return mean, (1 - a_prev) / (1 - a_t) * beta
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
mean, variance = q_posterior(
    torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([1]), torch.tensor([0.5, 0.5])
)
# ᾱ = (0.5, 0.25): β̃₁ = (0.5 / 0.75) · 0.5 = 1/3 and μ̃₁ = (√0.5 · 0.5 / 0.75) · (1 + 2) = √2
assert torch.allclose(variance.reshape(()), torch.tensor(1 / 3))
assert torch.allclose(mean, torch.tensor([[math.sqrt(2)]]))

# %%
mean, variance = q_posterior(
    torch.zeros(2, 3), torch.ones(2, 3), torch.tensor([1, 2]), linear_betas(5, 0.1, 0.5)
)
assert mean.shape == (2, 3) and variance.shape in ((2, 1), (2, 3))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 3: the ε-prediction loss, a reweighted ELBO
#
# The model's reverse steps are $p_\theta(z_{t-1} \mid z_t) = \mathcal N(\mu_\theta(z_t, t),
# \tilde\beta_t I)$ for $t \ge 1$, from $p(z_{T-1}) = \mathcal N(0, I)$. As in lecture 1, with
# the forward process as the encoder $q(z_{0:T-1} \mid x_0)$, the negative ELBO splits into
#
# $$
# -\mathrm{ELBO} = \mathbb E_q\Big[\mathrm{KL}\big(q(z_{T-1} \mid x_0) \,\|\, p(z_{T-1})\big)
# + \sum_{t=1}^{T-1} \mathrm{KL}\big(q(z_{t-1} \mid z_t, x_0) \,\|\, p_\theta(z_{t-1} \mid z_t)\big)
# - \log p_\theta(x_0 \mid z_0)\Big].
# $$
#
# The first term has no parameters. The KL between two Gaussians with the same covariance
# $\tilde\beta_t I$ is $\lVert \tilde\mu_t - \mu_\theta \rVert^2 / (2 \tilde\beta_t)$. Write
# $\tilde\mu_t$ with the noise instead of $x_0$: by Part 1, $x_0 = (z_t - \sqrt{1 - \bar\alpha_t}\,
# \varepsilon) / \sqrt{\bar\alpha_t}$, and $\sqrt{\bar\alpha_{t-1}} / \sqrt{\bar\alpha_t} = 1 /
# \sqrt{\alpha_t}$, so
#
# $$
# \tilde\mu_t = \frac{\beta_t}{(1 - \bar\alpha_t) \sqrt{\alpha_t}} \big(z_t - \sqrt{1 - \bar\alpha_t}\, \varepsilon\big)
#   + \frac{\sqrt{\alpha_t} (1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} z_t
# = \frac{\beta_t + \alpha_t (1 - \bar\alpha_{t-1})}{(1 - \bar\alpha_t) \sqrt{\alpha_t}} z_t
#   - \frac{\beta_t}{\sqrt{\alpha_t} \sqrt{1 - \bar\alpha_t}} \varepsilon
# = \frac{1}{\sqrt{\alpha_t}} \Big(z_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}} \varepsilon\Big),
# $$
#
# with $\beta_t + \alpha_t (1 - \bar\alpha_{t-1}) = 1 - \bar\alpha_t$ as in Part 2. The network
# only has to predict the noise: with $\mu_\theta$ of the same form, with $\varepsilon_\theta(z_t,
# t)$ in place of $\varepsilon$ (which is $\tilde\mu_t$ evaluated at the predicted
# $\hat x_0 = (z_t - \sqrt{1 - \bar\alpha_t}\, \varepsilon_\theta) / \sqrt{\bar\alpha_t}$),
#
# $$
# \mathrm{KL}\big(q(z_{t-1} \mid z_t, x_0) \,\|\, p_\theta(z_{t-1} \mid z_t)\big)
# = \frac{1}{2 \tilde\beta_t} \frac{\beta_t^2}{\alpha_t (1 - \bar\alpha_t)} \lVert \varepsilon - \varepsilon_\theta \rVert^2
# = \lambda_t \lVert \varepsilon - \varepsilon_\theta \rVert^2, \qquad
# \lambda_t = \frac{\beta_t}{2 \alpha_t (1 - \bar\alpha_{t-1})},
# $$
#
# substituting $\tilde\beta_t$ from Part 2. Ho et al. drop the weights $\lambda_t$ (their "simple"
# loss, which trained better) and draw $t$ uniformly; the course also averages over the $D$
# dimensions:
#
# $$
# L(\theta) = \mathbb E_{x_0,\ t \sim \mathcal U\{0, \dots, T-1\},\ \varepsilon \sim \mathcal N(0, I)}
# \Big[\tfrac{1}{D} \big\lVert \varepsilon - \varepsilon_\theta\big(\sqrt{\bar\alpha_t}\, x_0
# + \sqrt{1 - \bar\alpha_t}\, \varepsilon,\ t\big) \big\rVert^2\Big].
# $$

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 2

# %% [markdown]
# **Question 3.** Implement `ddpm_loss(model, x0, alpha_bars, generator=None)`, the Monte Carlo
# estimate of $L$ on the batch `x0` of shape `(batch, …)`: draw one index per item uniformly in
# $\{0, \dots, T - 1\}$ and noise of the shape and dtype of `x0` (with `generator`), call the
# model **once** on the whole noisy batch, and return the mean over the batch and the dimensions
# of $(\varepsilon - \varepsilon_\theta)^2$, as a scalar tensor that can be differentiated with
# respect to the model's parameters. Use your `q_sample`.

# %% [raw]
# # BEGIN SOLUTION


# %%
def ddpm_loss(model, x0, alpha_bars, generator=None):
    """Mean over batch and dimensions of (ε − ε_θ(√ᾱₜ x₀ + √(1 − ᾱₜ) ε, t))², t ~ U{0, …, T − 1}."""
    # BEGIN SOLUTION
    t = torch.randint(len(alpha_bars), (len(x0),), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    return (noise - model(q_sample(x0, t, noise, alpha_bars), t)).pow(2).mean()
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x0_test = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
schedule = torch.cumprod(1 - linear_betas(10, 0.05, 0.3), dim=0)
loss = ddpm_loss(lambda xt, t: torch.zeros_like(xt), x0_test, schedule, torch.Generator().manual_seed(1))
assert loss.shape == () and abs(loss.item() - 1.0) < 0.05  # E ε² = 1
loss = ddpm_loss(lambda xt, t: torch.full_like(xt, 2.0), x0_test, schedule, torch.Generator().manual_seed(2))
assert abs(loss.item() - 5.0) < 0.15  # E (ε − 2)² = 1 + 4

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# A check of the weights: for random $x_0$, $\varepsilon$, $\varepsilon_\theta$ and $t$, the KL
# between the posterior $\mathcal N(\tilde\mu_t(x_0, z_t), \tilde\beta_t I)$ and the model's step
# $\mathcal N(\tilde\mu_t(\hat x_0, z_t), \tilde\beta_t I)$, computed by `torch.distributions`
# with your `q_posterior`, equals $\lambda_t \lVert \varepsilon - \varepsilon_\theta \rVert^2$.

# %%
gen = torch.Generator().manual_seed(3)
t_kl = torch.tensor([1, 4, 9])
x0_kl, eps, eps_theta = (torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(3))
z_kl = q_sample(x0_kl, t_kl, eps, alpha_bars_check)
a_kl = per_item(alpha_bars_check[t_kl], z_kl)
x0_hat = (z_kl - (1 - a_kl).sqrt() * eps_theta) / a_kl.sqrt()
mu_q, var_q = q_posterior(x0_kl, z_kl, t_kl, betas_check)
mu_p, _ = q_posterior(x0_hat, z_kl, t_kl, betas_check)
sd = var_q.sqrt().expand_as(mu_q)
kl = torch.distributions.kl_divergence(
    torch.distributions.Normal(mu_q, sd), torch.distributions.Normal(mu_p, sd)
).sum(1)
beta_kl, a_prev = betas_check[t_kl], alpha_bars_check[t_kl - 1]
lam = beta_kl / (2 * (1 - beta_kl) * (1 - a_prev))
print("KL:", kl.numpy().round(4), " λₜ‖ε − ε_θ‖²:", (lam * (eps - eps_theta).pow(2).sum(1)).numpy().round(4))
assert torch.allclose(kl, lam * (eps - eps_theta).pow(2).sum(1), rtol=1e-9)

# %% [markdown]
# ## Part 4: DDIM, a sampler that skips indices
#
# Given $z_t$, the network's noise $\hat\varepsilon = \varepsilon_\theta(z_t, t)$ gives a
# prediction of the data by inverting Part 1:
# $\hat x_0 = (z_t - \sqrt{1 - \bar\alpha_t}\, \hat\varepsilon) / \sqrt{\bar\alpha_t}$. Song,
# Meng and Ermon (2021, equation 12) step to any earlier index $s < t$ (written `t_prev`) with
#
# $$
# z_s = \sqrt{\bar\alpha_s}\, \hat x_0 + \sqrt{1 - \bar\alpha_s - \sigma^2}\, \hat\varepsilon + \sigma\, \varepsilon',
# \qquad \varepsilon' \sim \mathcal N(0, I),
# \qquad \sigma = \eta \sqrt{\frac{1 - \bar\alpha_s}{1 - \bar\alpha_t}} \sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_s}}
# \quad \text{(their equation 16)}.
# $$
#
# **Why it is right for any $\sigma$.** If the predictions were exact ($\hat x_0 = x_0$,
# $\hat\varepsilon = \varepsilon$), the step would give $z_s = \sqrt{\bar\alpha_s}\, x_0 +
# \sqrt{1 - \bar\alpha_s - \sigma^2}\, \varepsilon + \sigma \varepsilon'$, whose noise is a sum of
# independent centred Gaussians of variance $(1 - \bar\alpha_s - \sigma^2) + \sigma^2 = 1 -
# \bar\alpha_s$: exactly the marginal $q(z_s \mid x_0)$ of Part 1. The loss of Part 3 depends on
# the forward process only through these marginals, so the same network serves every $s$ and
# every $\eta$. With $\eta = 0$ the step is deterministic (DDIM proper); with $s = -1$,
# $\bar\alpha_{-1} = 1$ and $\sigma = 0$, so the step returns $\hat x_0$ itself.
#
# **With $\eta = 1$ and $s = t - 1$ it is DDPM's ancestral step.** Then $\sigma^2 = \frac{1 -
# \bar\alpha_{t-1}}{1 - \bar\alpha_t} (1 - \alpha_t) = \tilde\beta_t$, and
# $1 - \bar\alpha_{t-1} - \tilde\beta_t = (1 - \bar\alpha_{t-1}) \frac{1 - \bar\alpha_t - \beta_t}{1 - \bar\alpha_t}
# = \frac{\alpha_t (1 - \bar\alpha_{t-1})^2}{1 - \bar\alpha_t}$ (as $1 - \beta_t - \bar\alpha_t =
# \alpha_t (1 - \bar\alpha_{t-1})$). With $\hat\varepsilon = (z_t - \sqrt{\bar\alpha_t}\,
# \hat x_0) / \sqrt{1 - \bar\alpha_t}$ the mean of the step is
#
# $$
# \sqrt{\bar\alpha_{t-1}}\, \hat x_0 + \frac{\sqrt{\alpha_t} (1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}
#   \big(z_t - \sqrt{\bar\alpha_t}\, \hat x_0\big)
# = \sqrt{\bar\alpha_{t-1}} \Big(1 - \frac{\alpha_t (1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\Big) \hat x_0
#   + \frac{\sqrt{\alpha_t} (1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} z_t
# = \tilde\mu_t(\hat x_0, z_t),
# $$
#
# using $\sqrt{\alpha_t \bar\alpha_t} = \alpha_t \sqrt{\bar\alpha_{t-1}}$ and
# $1 - \bar\alpha_t - \alpha_t + \alpha_t \bar\alpha_{t-1} = \beta_t$: the posterior of Part 2
# with the predicted $\hat x_0$, and its variance $\tilde\beta_t$.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 2

# %% [markdown]
# **Question 4.** Implement `ddim_step(model, xt, t, t_prev, alpha_bars, eta=0.0)`: `t` and
# `t_prev` are LongTensors of shape `(batch,)` with $-1 \le$ `t_prev` $<$ `t`, where `t_prev`
# $= -1$ means the data ($\bar\alpha_{-1} = 1$; beware that `alpha_bars[-1]` is the *last*
# entry in Python); return $z_s$ by equation 12 above, drawing $\varepsilon'$ with
# `torch.randn_like(xt)` (the grader checks the moments of what you return for $\eta > 0$).
# Call the model once, with `t`.

# %% [raw]
# # BEGIN SOLUTION


# %%
def ddim_step(model, xt, t, t_prev, alpha_bars, eta=0.0):
    """z_s = √ᾱ_s x̂₀ + √(1 − ᾱ_s − σ²) ε̂ + σ ε', x̂₀ = (zₜ − √(1 − ᾱₜ) ε̂)/√ᾱₜ,
    σ = η √((1 − ᾱ_s)/(1 − ᾱₜ)) √(1 − ᾱₜ/ᾱ_s), s = t_prev (ᾱ₋₁ = 1)."""
    # BEGIN SOLUTION
    eps = model(xt, t)
    a_t = per_item(alpha_bars[t], xt)
    a_s = per_item(torch.where(t_prev >= 0, alpha_bars[t_prev.clamp(min=0)], 1.0), xt)
    x0_hat = (xt - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    sigma = eta * ((1 - a_s) / (1 - a_t)).sqrt() * (1 - a_t / a_s).sqrt()
    direction = (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
    return a_s.sqrt() * x0_hat + direction + sigma * torch.randn_like(xt)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
# a model that predicts ε̂ = 0, so that x̂₀ = zₜ / √ᾱₜ
z = ddim_step(
    lambda xt, t: torch.zeros_like(xt),
    torch.tensor([[3.0]]),
    torch.tensor([1]),
    torch.tensor([0]),
    torch.tensor([0.64, 0.36]),
)
assert torch.allclose(z, torch.tensor([[4.0]]))  # √0.64 · 3 / √0.36

# %%
z = ddim_step(
    lambda xt, t: torch.zeros_like(xt),
    torch.tensor([[3.0]]),
    torch.tensor([1]),
    torch.tensor([-1]),
    torch.tensor([0.64, 0.36]),
    eta=1.0,
)
assert torch.allclose(z, torch.tensor([[5.0]]))  # to the data: x̂₀ = 3 / 0.6, and σ = 0

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# A check of the last derivation: with $\eta = 1$ and `t_prev = t - 1`, the mean and variance of
# your DDIM step over 200,000 draws (a small random network as $\varepsilon_\theta$) are the
# posterior's, $\tilde\mu_t(\hat x_0, z_t)$ and $\tilde\beta_t$, by your `q_posterior` (5
# standard errors).

# %%
torch.manual_seed(4)
net_check = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)).double()
model_check = EpsilonModel(net_check, len(alpha_bars_check))
n_draws, t_step = 200_000, 5
z_t = torch.full((n_draws, 1), 0.7, dtype=torch.float64)
t_all = torch.full((n_draws,), t_step)
with torch.no_grad():
    draws = ddim_step(model_check, z_t, t_all, t_all - 1, alpha_bars_check, eta=1.0)
    eps_hat = model_check(z_t[:1], t_all[:1])
a_t = alpha_bars_check[t_step]
x0_hat = (z_t[:1] - (1 - a_t).sqrt() * eps_hat) / a_t.sqrt()
mu, var = q_posterior(x0_hat, z_t[:1], t_all[:1], betas_check)
print(f"DDIM (η = 1): mean {draws.mean():.4f}, variance {draws.var():.5f}")
print(f"posterior:    mean {mu.item():.4f}, variance {var.item():.5f}")
assert abs(draws.mean().item() - mu.item()) < 5 * math.sqrt(var.item() / n_draws)
assert abs(draws.var().item() - var.item()) < 5 * var.item() * math.sqrt(2 / n_draws)

# %% [markdown]
# ## Part 5: a diffusion model on eight Gaussians
#
# The data are PacGAN's ring (lecture 4): eight Gaussians of standard deviation 0.01 on the unit
# circle. The noise schedule has $T = 100$ indices, linear from $\beta_0 = 10^{-3}$ to
# $\beta_{99} = 0.2$ (Ho et al.'s schedule for $T = 1000$ with both ends multiplied by $1000 / T$),
# so that $\bar\alpha_{99}$ is tiny and $z_{99}$ is pure noise $\mathcal N(0, I)$ to a good
# approximation (the cell asserts $\bar\alpha_{99} < 10^{-4}$). The network is an `EpsilonModel`
# whose MLP ($11 \to 128 \to 128 \to 128 \to 2$) sees $z_t$, $\tau = t / T$ and the sinusoidal
# features $\sin(k \pi \tau), \cos(k \pi \tau)$, $k = 1, \dots, 4$ (a small version of the time
# embedding of Ho et al., which lets an MLP tell the noise levels apart). It is trained with your
# `ddpm_loss`, then sampled with your `ddim_step` from $z_{99} \sim \mathcal N(0, I)$ through 10
# and 100 evenly spaced indices, with $\eta = 0$ and $\eta = 1$. The metrics are lecture 4's: a
# sample is of high quality within 3 standard deviations (0.03) of its nearest mode; the modes
# captured are those with a high-quality sample; the reverse KL compares the histogram of the
# high-quality samples over the modes with the uniform one. The trivial baseline is the sampler's
# own starting point, $\mathcal N(0, I)$ noise.

# %%
RING = ring_mixture()
T = 100
betas = linear_betas(T, 1e-3, 0.2)
alpha_bars = torch.cumprod(1 - betas, dim=0).float()  # the model trains in float32
print(f"ᾱ₉₉ = {alpha_bars[-1].item():.2e}")
assert alpha_bars[-1] < 1e-4


class TimeFeatures(nn.Module):
    """[z, τ] ↦ [z, τ, sin(kπτ), cos(kπτ) for k = 1, …, K]: sinusoidal features of τ = t / T."""

    def __init__(self, K):
        super().__init__()
        self.K = K

    def forward(self, h):
        tau = h[:, -1:]
        angles = math.pi * tau * torch.arange(1, self.K + 1, dtype=h.dtype, device=h.device)
        return torch.cat([h, angles.sin(), angles.cos()], dim=1)


STEPS = budget(ci=300, cpu=12_000, gpu=12_000)
data = RING.sample(20_000, generator=torch.Generator().manual_seed(0))
model = EpsilonModel(nn.Sequential(TimeFeatures(4), mlp([11, 128, 128, 128, 2], activation=nn.SiLU)), T)
history = fit(
    model,
    len(data),
    lambda idx, gen: {"loss": ddpm_loss(model, data[idx], alpha_bars, generator=gen)},
    steps=STEPS,
    batch_size=256,
    lr=2e-3,
    schedule="cosine",
)
last = history["loss"][-len(history["loss"]) // 10 :]
print(
    f"{STEPS} steps: loss {sum(last) / len(last):.3f} over the last tenth (a network that predicts 0 scores 1)"
)


# %%
@torch.no_grad()
def sample_ddim(model, n, alpha_bars, steps, eta=0.0, seed=0):
    """DDIM from z_{T−1} ~ N(0, I) through `steps` indices evenly spaced from T − 1 down to 0,
    then to the data (t_prev = −1)."""
    torch.manual_seed(seed)
    ts = torch.linspace(len(alpha_bars) - 1, 0, steps).round().long().tolist() + [-1]
    z = torch.randn(n, 2)
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        t_batch, s_batch = torch.full((n,), t, dtype=torch.long), torch.full((n,), s, dtype=torch.long)
        z = ddim_step(model, z, t_batch, s_batch, alpha_bars, eta=eta)
    return z


noise = torch.randn(2_500, 2, generator=torch.Generator().manual_seed(1))
rows = {"N(0, I) noise (baseline)": (noise, mode_stats(noise, RING.centers, RING.std))}
for steps in (10, 100):
    for eta in (0.0, 1.0):
        samples = sample_ddim(model, 2_500, alpha_bars, steps, eta=eta)
        rows[f"DDIM, {steps} steps, η = {eta:g}"] = (samples, mode_stats(samples, RING.centers, RING.std))
for name, (_, stats) in rows.items():
    print(
        f"{name:26s} high quality {100 * stats['high_quality']:5.1f}%, modes {stats['modes']} of 8, "
        f"reverse KL {stats['reverse_kl']:.3f}"
    )
before_last = torch.linspace(T - 1, 0, 10).round().long()[-2].item()
sd_jump = (1 - alpha_bars[[before_last, 0]]).sqrt()
print(
    f"10 steps: the last step but one goes from index {before_last} (noise standard deviation "
    f"√(1 − ᾱ) = {sd_jump[0]:.2f}) to index 0 ({sd_jump[1]:.3f}); neighbouring modes are "
    f"{torch.dist(RING.centers[0], RING.centers[1]):.2f} apart"
)
if budget_level() != "ci":  # what question 5's answer relies on
    quality = {name: stats["high_quality"] for name, (_, stats) in rows.items()}
    for eta in ("0", "1"):
        many, few = quality[f"DDIM, 100 steps, η = {eta}"], quality[f"DDIM, 10 steps, η = {eta}"]
        assert many > 0.5 and rows[f"DDIM, 100 steps, η = {eta}"][1]["modes"] == 8
        assert 5 * quality["N(0, I) noise (baseline)"] < few < many

fig, axes = plt.subplots(1, len(rows), figsize=(3 * len(rows), 3))
for ax, (name, (samples, _)) in zip(axes, rows.items(), strict=True):
    ax.scatter(*samples.T, s=1, alpha=0.3)
    ax.scatter(*RING.centers.T, c="red", marker="x", s=20)
    ax.set_title(name, fontsize=8)
    ax.set_xlim(-2, 2)
    ax.set_ylim(-2, 2)
    ax.set_aspect("equal")
plt.show()

# %% [raw]
# # BEGIN QUESTION
# name: q5
# manual: true
# points: 1

# %% [markdown]
# **Question 5 (written).** Run the notebook at the `cpu` budget. (a) The network was trained
# only on single indices $t$, each with noise drawn from $q(z_t \mid x_0)$, never on pairs of
# indices. Explain why the same network can be used by DDIM with 10 indices instead of 100, and
# with any $\eta$. (b) Compare the shares of high-quality samples at 100 and at 10 steps, with
# each other and with the baseline, and explain the drop at 10 steps with the noise levels of the
# last steps (printed above) and what $\hat x_0$ is at such a level. (A few sentences.)

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# (a) The loss depends on the forward process only through its marginals $q(z_t \mid x_0) =
# \mathcal N(\sqrt{\bar\alpha_t} x_0, (1 - \bar\alpha_t) I)$, and its minimiser is the posterior
# mean of the noise, $\varepsilon_\theta(z_t, t) = \mathbb E[\varepsilon \mid z_t]$, which is the
# same whatever joint process produced these marginals. DDIM's steps, for any subsequence of
# indices and any $\eta$, define processes with exactly these marginals (Part 4: the noise of the
# step has variance $1 - \bar\alpha_s$), so the trained network is the right one for each of
# them; only the error of the discretisation changes with the number of steps.
#
# (b) With 100 steps most samples lie within 0.03 of a mode and all eight modes are found; with
# 10 steps far fewer samples do, though still many times more than from the noise baseline (the
# notebook asserts these orderings at `cpu`). Since $\hat\varepsilon$ estimates
# $\mathbb E[\varepsilon \mid z_t]$, $\hat x_0$ estimates the posterior mean $\mathbb E[x_0 \mid
# z_t]$: when the noise's standard deviation is about half the distance between neighbouring
# modes, as at the 10-step sampler's last index but one, this mean is a blend of the two
# nearest modes, a point on the chord between them (the octagon of the figure). The sampler
# then jumps to index 0, whose noise is about ten times smaller, in one step along that blurred
# prediction, and the network at index 0, trained on small noise, cannot undo an error of that
# size. With 100 steps the noise shrinks a little at each step and
# the prediction is refined as the posterior narrows onto one mode.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
