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
# name: 02_gan
# init_cell: false
# export_cell: false
# check_all_cell: false
# tests:
#   files: false
# generate: true

# %% [markdown]
# # Assignment 2: GAN losses and packing
#
# You implement the adversarial losses of lecture 2, WGAN-GP's gradient penalty and PacGAN's
# packing, and use them in a short experiment on a ring of eight Gaussians.
#
# **How it is graded.** `grader.check("q1")` runs a question's public tests here. After the
# deadline the grader runs your notebook top to bottom in a separate process and calls your
# functions on inputs of its own, including hidden random ones, comparing the results with its
# references. Keep the inputs' dtype (the grader uses float64), do not modify inputs in place,
# and write your own code: `gencourse.gan` and `gencourse.pacgan`, which hold the answers,
# cannot be imported while grading. The notebook must run in about a minute on a CPU at
# `GENCOURSE_BUDGET=ci`. Question 5 is a written answer, graded by hand.

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

    fetch_for_colab("02_gan")

# %%
# Otter: grader.check("q1") runs the public tests of question q1.
import otter

grader = otter.Notebook("02_gan.ipynb")

# %%
import math
import os

import matplotlib.pyplot as plt
import torch
from torch.nn import functional as F

from gencourse.data import ring_mixture
from gencourse.nets import mlp
from gencourse.runtime import budget, budget_level, seed_everything

# An assignment trains on the CPU, also on a Colab GPU runtime, so its budget does not follow the
# runtime: it is `cpu` unless GENCOURSE_BUDGET names another level.
os.environ.setdefault("GENCOURSE_BUDGET", "cpu")

print(f"budget level: {budget_level()}")

# %% [markdown]
# ## Part 1: the losses
#
# The discriminator returns a raw score $d = D(x) \in \mathbb R$ per sample. For the minimax
# (`"mm"`) and non-saturating (`"ns"`) GANs the score is a logit, $D$'s probability of "real"
# being $\sigma(d)$; both train the discriminator on the same loss. Expectations are means over
# the batch (the real and the fake batches may have different sizes):
#
# | name | discriminator loss $L_D$ | generator loss $L_G$ |
# | --- | --- | --- |
# | `"mm"` | $-\mathbb E \log \sigma(D(x)) - \mathbb E \log(1 - \sigma(D(G(z))))$ | $\mathbb E \log(1 - \sigma(D(G(z))))$ |
# | `"ns"` | same as `"mm"` | $-\mathbb E \log \sigma(D(G(z)))$ |
# | `"wgan"` | $-\mathbb E D(x) + \mathbb E D(G(z))$ | $-\mathbb E D(G(z))$ |
# | `"lsgan"` | $\mathbb E (D(x) - 1)^2 + \mathbb E D(G(z))^2$ | $\mathbb E (D(G(z)) - 1)^2$ |
#
# Write the logarithms with softplus, $-\log \sigma(d) = \operatorname{softplus}(-d)$ and
# $-\log(1 - \sigma(d)) = \operatorname{softplus}(d)$, so that they are finite for any logit.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2

# %% [markdown]
# **Question 1.** Implement `discriminator_loss(name, d_real, d_fake)` for the four names of
# the table (a scalar tensor), raising `ValueError` for any other name.

# %% [raw]
# # BEGIN SOLUTION


# %%
def discriminator_loss(name, d_real, d_fake):
    """L_D of the table for the raw scores d_real = D(x) and d_fake = D(G(z))."""
    # BEGIN SOLUTION
    if name in ("mm", "ns"):
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if name == "wgan":
        return -d_real.mean() + d_fake.mean()
    if name == "lsgan":
        return (d_real - 1).pow(2).mean() + d_fake.pow(2).mean()
    raise ValueError(f"unknown loss {name!r}")
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
zeros = torch.zeros(4)
assert torch.isclose(discriminator_loss("ns", zeros, zeros), torch.tensor(2 * math.log(2.0)))

# %%
assert torch.isclose(
    discriminator_loss("wgan", torch.tensor([1.0, 3.0]), torch.tensor([0.5])), torch.tensor(-1.5)
)

# %%
assert torch.isclose(
    discriminator_loss("lsgan", torch.tensor([1.0]), torch.tensor([2.0, 0.0])), torch.tensor(2.0)
)

# %%
try:
    discriminator_loss("nonsense", torch.zeros(2), torch.zeros(2))
    raise AssertionError("an unknown name must raise ValueError")
except ValueError:
    pass

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 2

# %% [markdown]
# **Question 2.** Implement `generator_loss(name, d_fake)` for the four names (a scalar tensor),
# raising `ValueError` for any other name.

# %% [raw]
# # BEGIN SOLUTION


# %%
def generator_loss(name, d_fake):
    """L_G of the table for the raw scores d_fake = D(G(z))."""
    # BEGIN SOLUTION
    if name == "mm":
        return -F.softplus(d_fake).mean()
    if name == "ns":
        return F.softplus(-d_fake).mean()
    if name == "wgan":
        return -d_fake.mean()
    if name == "lsgan":
        return (d_fake - 1).pow(2).mean()
    raise ValueError(f"unknown loss {name!r}")
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert torch.isclose(generator_loss("mm", torch.zeros(3)), torch.tensor(-math.log(2.0)))

# %%
assert torch.isclose(generator_loss("ns", torch.zeros(3)), torch.tensor(math.log(2.0)))

# %%
assert torch.isclose(generator_loss("lsgan", torch.tensor([1.0, 3.0])), torch.tensor(2.0))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 2: the gradient penalty
#
# WGAN-GP keeps the critic close to 1-Lipschitz with the penalty
# $\mathbb E\,(\lVert \nabla_x D(\hat x) \rVert_2 - 1)^2$ at random interpolates
# $\hat x = \alpha x + (1 - \alpha) \tilde x$ between real samples $x$ and generated ones
# $\tilde x$, one $\alpha \sim U[0, 1]$ per pair. The penalty is minimised with respect to the
# critic's weights, so its gradient must itself be differentiable: compute $\nabla_x D$ with
# `torch.autograd.grad(..., create_graph=True)`.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 2

# %% [markdown]
# **Question 3.** Implement `gradient_penalty(critic, real, fake, alpha)`: `real` and `fake`
# have shape $(n, \ldots)$, `alpha` has shape $(n, 1, \ldots, 1)$ (one value per pair, ready to
# broadcast) and `critic` maps a batch to scores of shape $(n,)$. Return the penalty (a scalar
# tensor, without the factor $\lambda$), with the norm of each sample's gradient taken over all
# its axes, and differentiable with respect to the critic's parameters.

# %% [raw]
# # BEGIN SOLUTION


# %%
def gradient_penalty(critic, real, fake, alpha):
    """E (‖∇ₓD(x̂)‖₂ − 1)² at x̂ = αx + (1 − α)x̃."""
    # BEGIN SOLUTION
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
linear = torch.nn.Linear(2, 1)
with torch.no_grad():
    linear.weight[:] = torch.tensor([[3.0, 4.0]])


def critic(x):
    return linear(x).squeeze(1)


penalty = gradient_penalty(critic, torch.randn(5, 2), torch.randn(5, 2), torch.rand(5, 1))
assert torch.isclose(penalty, torch.tensor(16.0))  # ‖(3, 4)‖ = 5 everywhere: (5 − 1)² = 16
penalty.backward()  # the penalty must be differentiable with respect to the critic's weights
assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 3: packing
#
# A PacGAN discriminator sees $m$ samples at once, all real or all generated, concatenated
# into one input: it compares $P^m$ with $Q^m$, and $d_{TV}(P^m, Q^m)$ grows with $m$ much faster
# for a generator that drops modes than for one that spreads its mass evenly.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 1

# %% [markdown]
# **Question 4.** Implement `pack(x, m)`: group $m$ consecutive samples of a batch and
# concatenate each group along the first feature axis, $(n m, d) \to (n, m d)$ and
# $(n m, C, H, W) \to (n, m C, H, W)$, group $i$ holding samples $im, \ldots, im + m - 1$ in
# order. Raise `ValueError` if the batch size is not a multiple of $m$.

# %% [raw]
# # BEGIN SOLUTION


# %%
def pack(x, m):
    """(n·m, d, ...) → (n, m·d, ...): consecutive groups of m samples side by side."""
    # BEGIN SOLUTION
    if len(x) % m != 0:
        raise ValueError(f"cannot pack {len(x)} samples into groups of {m}")
    return x.reshape(len(x) // m, m * x.shape[1], *x.shape[2:])
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = torch.arange(12.0).reshape(6, 2)
assert torch.equal(pack(x, 2), torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]))

# %%
assert pack(torch.zeros(8, 1, 4, 4), 4).shape == (2, 4, 4, 4)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 4: packing against mode collapse, on a ring
#
# Eight Gaussians on the unit circle (standard deviation 0.01, PacGAN's ring). The cell trains the
# same small GAN with the non-saturating loss, without packing ($m = 1$) and with $m = 2$ (the
# discriminator's input is then $2 \cdot 2$-dimensional), and counts the modes captured: a
# sample is *high quality* if it lies within 3 standard deviations of its nearest mode, and a
# mode is captured if it has at least one high-quality sample among 2,500.

# %%
RING = ring_mixture()
STEPS = budget(ci=100, cpu=4_000, gpu=20_000)


def mode_stats(samples, centers, std):
    """(modes captured, fraction of high-quality samples)."""
    dist = torch.cdist(samples, centers)
    nearest, hq = dist.argmin(1), dist.min(1).values < 3 * std
    return int(torch.unique(nearest[hq]).numel()), float(hq.float().mean())


def train_ring_gan(m, steps, seed=0, batch=64):
    """Train G: 2-128-128-2 and D: 2m-128-128-1 (non-saturating loss, Adam), return G."""
    gen = seed_everything(seed)
    G, D = mlp([2, 128, 128, 2]), mlp([2 * m, 128, 128, 1])
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(steps):
        real = pack(RING.sample(batch * m, generator=gen), m)
        fake = pack(G(torch.randn(batch * m, 2, generator=gen)), m)
        loss_d = discriminator_loss("ns", D(real).squeeze(1), D(fake.detach()).squeeze(1))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss("ns", D(fake).squeeze(1))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return G


fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, m in zip(axes, (1, 2), strict=True):
    G = train_ring_gan(m, STEPS)
    with torch.no_grad():
        samples = G(torch.randn(2_500, 2, generator=torch.Generator().manual_seed(1)))
    modes, hq = mode_stats(samples, RING.centers, RING.std)
    print(f"m = {m}: {modes} of 8 modes captured, {100 * hq:.1f}% high-quality samples")
    ax.scatter(*samples.T, s=2, alpha=0.3)
    ax.scatter(*RING.centers.T, c="red", marker="x")
    ax.set_title(f"packing m = {m}: {modes}/8 modes")
    ax.set_aspect("equal")
plt.show()

# %% [raw]
# # BEGIN QUESTION
# name: q5
# manual: true
# points: 1

# %% [markdown]
# **Question 5 (written).** Run the experiment at the `cpu` budget with three seeds. Report the
# modes captured with and without packing, and explain the difference with the behaviour of
# $d_{TV}(P^m, Q^m)$ for a generator that misses a mode. (A few sentences.)

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# A generator that misses a mode of mass $\delta$ puts no mass on a set $S$ with $P(S) = \delta$:
# that is an $(\varepsilon, \delta)$-mode collapse with $\varepsilon = 0$. For such pairs the
# total variation of the $m$-fold products grows like $1 - (1 - \tau)^m$, the upper end of
# $\tau \le d_{TV}(P^m, Q^m) \le 1 - (1 - \tau)^m$, while for a generator that spreads its mass
# evenly it stays near the lower end. The packed discriminator therefore sees a much larger
# difference, and a stronger gradient, when modes are missing, and the packed GAN captures more
# modes, as the printed counts show.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
