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
# name: 01_vae
# init_cell: false
# export_cell: false
# check_all_cell: false
# tests:
#   files: false
# generate: true

# %% [markdown]
# # Assignment 1: KL divergences and the VAE
#
# You implement the pieces of a variational autoencoder (lecture 1) and train one: the KL
# divergence between discrete distributions, the closed-form KL between a diagonal Gaussian and
# N(0, I), the reparameterisation trick, and the negative ELBO per example.
#
# **How it is graded.** Each question has points. `grader.check("q1")` runs the question's
# public tests in this notebook. After the deadline your notebook runs from top to bottom in a
# separate process, and the grader calls your functions on inputs of its own, including hidden
# random ones, and compares what they return with its references: write functions that work for
# any valid input, not just the examples. Rules:
#
# * return `torch` tensors where a question says tensor, keep the input's dtype (the grader uses
#   float64), and do not modify the inputs in place;
# * write your own code: the course modules that hold the answers (`gencourse.divergences`,
#   `gencourse.vae`) cannot be imported while grading;
# * the notebook must run top to bottom in about a minute on a CPU (`GENCOURSE_BUDGET=ci` is
#   set while grading), and must not read or write files outside its folder.
#
# Question 6 is a written answer, graded by hand.

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

    fetch_for_colab("01_vae")

# %%
# Otter: grader.check("q1") runs the public tests of question q1.
import otter

grader = otter.Notebook("01_vae.ipynb")

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

from gencourse.data import binarize, load_mnist
from gencourse.nets import mlp
from gencourse.runtime import budget, budget_level, seed_everything

# An assignment trains on the CPU, also on a Colab GPU runtime, so its budget does not follow the
# runtime: it is `cpu` unless GENCOURSE_BUDGET names another level.
os.environ.setdefault("GENCOURSE_BUDGET", "cpu")

print(f"budget level: {budget_level()}")

# %% [markdown]
# ## Part 1: the KL divergence
#
# For probability vectors $p, q$ on the same finite set,
#
# $$
# \mathrm{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i},
# $$
#
# in nats, with the conventions $0 \log(0/q_i) = 0$ (terms where $p_i = 0$ vanish) and
# $\mathrm{KL} = +\infty$ as soon as some $q_i = 0 < p_i$.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 2

# %% [markdown]
# **Question 1.** Implement `kl_discrete(p, q)` for two 1-D NumPy arrays holding probability
# vectors of the same length; return a Python `float` (`math.inf` where it is infinite).

# %% [raw]
# # BEGIN SOLUTION


# %%
def kl_discrete(p, q):
    """KL(p‖q) = Σᵢ pᵢ log(pᵢ/qᵢ) in nats, with 0 log 0 = 0 and +inf where qᵢ = 0 < pᵢ."""
    # BEGIN SOLUTION
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return float(np.sum(p[support] * np.log(p[support] / q[support])))
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert abs(kl_discrete(np.array([0.5, 0.5]), np.array([0.9, 0.1])) - 0.5 * math.log(0.25 / 0.09)) < 1e-9

# %%
assert kl_discrete(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0

# %%
assert kl_discrete(np.array([0.0, 1.0]), np.array([0.5, 0.5])) == math.log(2)

# %%
assert kl_discrete(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == math.inf

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 1

# %% [markdown]
# **Question 2.** Let $P = \mathrm{Binomial}(2, 0.4)$ and $Q$ be uniform on $\{0, 1, 2\}$.
# Compute $\mathrm{KL}(P\|Q)$ and $\mathrm{KL}(Q\|P)$ with your function and store them, as
# Python floats, in `kl_pq` and `kl_qp`.

# %% [raw]
# # BEGIN SOLUTION

# %%
P = np.array([0.36, 0.48, 0.16])
Q = np.ones(3) / 3
kl_pq = kl_discrete(P, Q)  # SOLUTION
kl_qp = kl_discrete(Q, P)  # SOLUTION
print(f"KL(P||Q) = {kl_pq:.4f} nats, KL(Q||P) = {kl_qp:.4f} nats")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert type(kl_pq) is float and type(kl_qp) is float

# %%
assert kl_pq > 0 and kl_qp > 0 and kl_pq != kl_qp

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 2: the Gaussian KL and the reparameterisation trick
#
# The encoder of a VAE returns, for each image, the mean $\mu$ and the log-variance
# $\log \sigma^2$ of $q(z|x) = \mathcal N(\mu, \operatorname{diag} \sigma^2)$. Against the prior
# $\mathcal N(0, I)$, coordinate by coordinate,
#
# $$
# \mathrm{KL}\big(\mathcal N(\mu, \sigma^2) \,\|\, \mathcal N(0, 1)\big)
# = \tfrac12 \left(\sigma^2 + \mu^2 - 1 - \log \sigma^2\right),
# $$
#
# and the KL of the diagonal Gaussian is the sum over coordinates.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 2

# %% [markdown]
# **Question 3.** Implement `kl_gaussian(mu, logvar)`: tensors of the same shape $(\ldots, k)$;
# return the KL summed over the last axis, a tensor of shape $(\ldots)$, differentiable with
# respect to both arguments.

# %% [raw]
# # BEGIN SOLUTION


# %%
def kl_gaussian(mu, logvar):
    """KL(N(μ, diag e^{logvar}) ‖ N(0, I)) = ½ Σⱼ (σⱼ² + μⱼ² − 1 − log σⱼ²), over the last axis."""
    # BEGIN SOLUTION
    return 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar).sum(dim=-1)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert torch.allclose(kl_gaussian(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))

# %%
mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
logvar = torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]])
assert torch.allclose(kl_gaussian(mu, logvar), torch.tensor([0.5, 0.5 * (1 - math.log(2.0))]))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# A sample $z \sim \mathcal N(\mu, \operatorname{diag}\sigma^2)$ written as
# $z = \mu + \sigma \odot \varepsilon$ with $\varepsilon \sim \mathcal N(0, I)$ is a differentiable
# function of $(\mu, \log\sigma^2)$: gradients flow through the sample to the encoder.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 1

# %% [markdown]
# **Question 4.** Implement `reparameterize(mu, logvar, eps)`, returning
# $z = \mu + \sigma \odot \varepsilon$ with $\sigma = \exp(\tfrac12 \log\sigma^2)$ (the noise
# `eps` is given, so the function is deterministic).

# %% [raw]
# # BEGIN SOLUTION


# %%
def reparameterize(mu, logvar, eps):
    """z = μ + exp(½ logvar) ⊙ ε."""
    # BEGIN SOLUTION
    return mu + torch.exp(0.5 * logvar) * eps
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
z = reparameterize(torch.tensor([1.0]), torch.tensor([math.log(4.0)]), torch.tensor([0.5]))
assert torch.allclose(z, torch.tensor([2.0]))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 3: the negative ELBO
#
# With a Bernoulli decoder whose logits are $\ell = f_\theta(z)$ (so
# $\hat x = \operatorname{sigmoid}(\ell)$), the ELBO of one binary image $x$ at one sample
# $z \sim q(z|x)$ is
#
# $$
# \mathrm{ELBO}(x) = \sum_i \big[x_i \log \hat x_i + (1 - x_i) \log (1 - \hat x_i)\big]
# - \mathrm{KL}\big(q(z|x) \,\|\, \mathcal N(0, I)\big).
# $$
#
# Computed from $\hat x$, the logarithms overflow to $-\infty$ when the sigmoid saturates (large
# $|\ell|$); computed from the logits, they do not: $\log \operatorname{sigmoid}(\ell) =
# -\operatorname{softplus}(-\ell)$ and $\log(1 - \operatorname{sigmoid}(\ell)) =
# -\operatorname{softplus}(\ell)$.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 2

# %% [markdown]
# **Question 5.** Implement `negative_elbo(x, logits, mu, logvar)`: `x` and `logits` have the
# same shape $(n, \ldots)$ (images or flat vectors), `mu` and `logvar` have shape $(n, k)$.
# Return $-\mathrm{ELBO}$ of each example, shape $(n,)$, summing the reconstruction term over
# all axes but the first. It must stay finite for logits as large as $\pm 50$.

# %% [raw]
# # BEGIN SOLUTION


# %%
def negative_elbo(x, logits, mu, logvar):
    """−ELBO per example: the Bernoulli negative log-likelihood from the logits plus the KL."""
    # BEGIN SOLUTION
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return nll + kl_gaussian(mu, logvar)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = torch.tensor([[1.0, 0.0]])
out = negative_elbo(x, torch.zeros(1, 2), torch.zeros(1, 3), torch.zeros(1, 3))
assert out.shape == (1,) and torch.allclose(out, torch.tensor([2 * math.log(2.0)]))

# %%
x = torch.tensor([[1.0, 0.0]])
out = negative_elbo(x, torch.tensor([[50.0, -50.0]]), torch.zeros(1, 3), torch.zeros(1, 3))
assert torch.isfinite(out).all() and out.item() < 1e-10

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Part 4: train a small VAE with your functions
#
# An encoder 784-256-(μ, log σ²) and a decoder 32-256-784 on binarised MNIST, trained by Adam on
# the mean of your `negative_elbo`. The cell prints the final loss and the mean KL of each latent
# coordinate.

# %%
LATENT = 32
STEPS = budget(ci=60, cpu=3_000, gpu=20_000)
gen = seed_everything(0)
train = binarize(load_mnist("train").images.flatten(1)[:5_000], seed=0)
encoder = mlp([784, 256, 2 * LATENT])
decoder = mlp([LATENT, 256, 784])
opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
losses = []
for _ in range(STEPS):
    x = train[torch.randint(len(train), (128,), generator=gen)]
    mu, logvar = encoder(x).chunk(2, dim=1)
    z = reparameterize(mu, logvar, torch.randn(mu.shape, generator=gen))
    loss = negative_elbo(x, decoder(z), mu, logvar).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
with torch.no_grad():
    mu, logvar = encoder(train[:1_000]).chunk(2, dim=1)
    kl_per_dim = (0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar)).mean(0)
print(f"negative ELBO after {STEPS} steps: {np.mean(losses[-10:]):.1f} nats")
print("mean KL per latent coordinate:", np.round(kl_per_dim.numpy(), 2))

# %%
with torch.no_grad():
    samples = torch.sigmoid(decoder(torch.randn(16, LATENT, generator=gen))).view(16, 28, 28)
fig, axes = plt.subplots(2, 8, figsize=(8, 2))
for ax, image in zip(axes.flat, samples, strict=True):
    ax.imshow(image, cmap="gray")
    ax.axis("off")
plt.show()

# %% [raw]
# # BEGIN QUESTION
# name: q6
# manual: true
# points: 1

# %% [markdown]
# **Question 6 (written).** Run the training at the `cpu` budget (`GENCOURSE_BUDGET=cpu`) and look
# at the mean KL per latent coordinate. Some coordinates may have a KL close to zero. What does a
# KL of zero say about $q(z_j|x)$, and what does the decoder do with such a coordinate? Why does
# maximising the ELBO allow it? (A few sentences.)

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# A coordinate with KL ≈ 0 has $q(z_j|x) \approx \mathcal N(0, 1)$ for every $x$: it carries no
# information about the image, so the decoder learns to ignore it. The ELBO charges every nat of
# information in $z$ through the KL term, so a coordinate is only used when the gain in
# reconstruction exceeds its KL cost; with 32 coordinates and a small decoder, some are not worth
# it (posterior collapse of those coordinates: at the `cpu` budget the cell printed three
# coordinates at 0.02 nats).

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
