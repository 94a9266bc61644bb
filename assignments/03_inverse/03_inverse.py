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
# name: 03_inverse
# init_cell: false
# export_cell: false
# check_all_cell: false
# tests:
#   files: false
# generate: true

# %% [markdown]
# # Assignment 3: compressed sensing with a generative model
#
# You implement CSGM's recovery (Bora, Jalal, Price and Dimakis, 2017) and the Lasso baseline,
# and compare them on MNIST digits measured by $m \ll n$ random projections (lecture 4).
#
# **How it is graded.** `grader.check("q1")` runs a question's public tests here. After the
# deadline the grader runs your notebook top to bottom in a separate process and calls your
# functions on inputs of its own, including hidden random ones; your recoveries are judged by
# the objective they reach, compared with the grader's reference on the same problem. Keep the
# inputs' dtype (the grader uses float64), do not modify inputs in place, and write your own
# code: `gencourse.inverse`, which holds the answers, cannot be imported while grading. The
# notebook must run in about a minute on a CPU at `GENCOURSE_BUDGET=ci`. Question 4 is a written
# answer, graded by hand.

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

    fetch_for_colab("03_inverse")

# %%
# Otter: grader.check("q1") runs the public tests of question q1.
import otter

grader = otter.Notebook("03_inverse.ipynb")

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import Lasso

from gencourse.data import load_mnist
from gencourse.runtime import budget, budget_level, seed_everything

# An assignment trains on the CPU, also on a Colab GPU runtime, so its budget does not follow the
# runtime: it is `cpu` unless GENCOURSE_BUDGET names another level.
os.environ.setdefault("GENCOURSE_BUDGET", "cpu")
from gencourse.vae import mnist_vae, train_vae

print(f"budget level: {budget_level()}")

# %% [markdown]
# ## The problem
#
# An image $x^* \in \mathbb R^n$ (flattened, $n = 784$) is observed through
# $y = A x^* + \eta \in \mathbb R^m$ with $A$ an $m \times n$ matrix of i.i.d.
# $\mathcal N(0, 1/m)$ entries. Batches are rows: $Y = X A^\top$. With a generator
# $G : \mathbb R^k \to \mathbb R^n$ trained on such images, CSGM estimates
#
# $$
# \hat z = \arg\min_z \; \lVert y - A G(z) \rVert_2^2 + \lambda \lVert z \rVert_2^2,
# \qquad \hat x = G(\hat z),
# $$
#
# by gradient descent (Adam) on $z$ alone, from several random starting points, keeping the one
# with the lowest final objective.

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 1

# %% [markdown]
# **Question 1.** Implement `csgm_loss(G, A, y, z, lam)`: `G` maps codes $(b, k)$ to images
# $(b, n)$, `A` is $(m, n)$, `y` is $(b, m)$ and `z` is $(b, k)$. Return the objective of each
# item, shape $(b,)$.

# %% [raw]
# # BEGIN SOLUTION


# %%
def csgm_loss(G, A, y, z, lam):
    """‖yᵢ − A G(zᵢ)‖² + λ‖zᵢ‖² for each row i."""
    # BEGIN SOLUTION
    return (y - G(z) @ A.T).pow(2).sum(1) + lam * z.pow(2).sum(1)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
A = torch.eye(3)[:2]  # observe the first two coordinates


def identity(z):
    return z


loss = csgm_loss(identity, A, torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0, 5.0]]), 0.5)
assert torch.allclose(loss, torch.tensor([4.0 + 0.5 * 26.0]))

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 3

# %% [markdown]
# **Question 2.** Implement `csgm_recover(G, A, y, z0, steps, lr, lam)`: `z0` has shape
# $(r, b, k)$, one starting point per restart and item. Run `steps` steps of
# `torch.optim.Adam` (learning rate `lr`) on the codes, minimising the sum over items and
# restarts of `csgm_loss` (the items do not interact), without changing the weights of `G`;
# then keep, for each item, the restart with the lowest final objective. Return `(x_hat, z_hat)`
# of shapes $(b, n)$ and $(b, k)$, with `x_hat = G(z_hat)`. The grader accepts any result whose
# objective is at most its reference's (within $10^{-3}$ relative).

# %% [raw]
# # BEGIN SOLUTION


# %%
def csgm_recover(G, A, y, z0, steps, lr, lam):
    """CSGM with restarts: Adam on all codes at once, then the best restart of each item."""
    # BEGIN SOLUTION
    r, b, k = z0.shape
    z = z0.detach().reshape(r * b, k).clone().requires_grad_(True)
    y_rep = y.repeat(r, 1)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        csgm_loss(G, A, y_rep, z, lam).sum().backward()
        opt.step()
    with torch.no_grad():
        final = csgm_loss(G, A, y_rep, z, lam).view(r, b)
        best = final.argmin(0)
        z_hat = z.view(r, b, k)[best, torch.arange(b)]
        return G(z_hat), z_hat
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS


# %%
def identity(z):
    return z


y = torch.tensor([[1.0, 2.0]])
x_hat, z_hat = csgm_recover(identity, torch.eye(3)[:2], y, torch.zeros(1, 1, 3), steps=300, lr=0.05, lam=0.0)
assert x_hat.shape == (1, 3) and z_hat.shape == (1, 3)
assert torch.allclose(x_hat[:, :2], y, atol=1e-3)  # the unobserved coordinate stays at 0

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## The Lasso baseline
#
# Without a generative model, the classical estimate assumes that $x^*$ is sparse:
#
# $$
# \hat x = \arg\min_x \; \tfrac12 \lVert y - A x \rVert_2^2 + \alpha \lVert x \rVert_1 .
# $$
#
# scikit-learn's `Lasso(alpha=a, fit_intercept=False)` minimises
# $\frac{1}{2m} \lVert y - A x \rVert_2^2 + a \lVert x \rVert_1$ (mind the $1/m$), and
# fits all the columns of a 2-D target at once.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 2

# %% [markdown]
# **Question 3.** Implement `lasso_recover(A, y, alpha)`: `A` is $(m, n)$, `y` is $(b, m)$;
# return $\hat x$ for each row of `y`, a tensor of shape $(b, n)$ with the dtype of `y`,
# minimising the objective above (to scikit-learn's default tolerance or better).

# %% [raw]
# # BEGIN SOLUTION


# %%
def lasso_recover(A, y, alpha):
    """argmin_x ½‖y − Ax‖² + α‖x‖₁ for each row of y (scikit-learn, α/m for its scaling)."""
    # BEGIN SOLUTION
    m = A.shape[0]
    solver = Lasso(alpha=alpha / m, fit_intercept=False, max_iter=10_000)
    solver.fit(A.detach().double().numpy(), y.detach().double().numpy().T)
    coef = np.atleast_2d(solver.coef_).reshape(len(y), A.shape[1])
    return torch.from_numpy(coef).to(y.dtype)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x_hat = lasso_recover(
    torch.eye(4, dtype=torch.float64), torch.tensor([[3.0, -0.5, 0.2, -2.0]], dtype=torch.float64), 1.0
)
assert torch.allclose(
    x_hat, torch.tensor([[2.0, 0.0, 0.0, -1.0]], dtype=torch.float64), atol=1e-4
)  # soft thresholding

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## CSGM against Lasso on MNIST
#
# The generator is the decoder of a small VAE trained here, $G(z) = \operatorname{sigmoid}(f(z))$
# with $k = 10$. Four test digits are measured at several $m$ with noise of norm about 0.1, and
# recovered by both methods; the cell prints the per-pixel mean squared error.

# %%
seed_everything(0)
K = 10
vae = mnist_vae(latent_dim=K, hidden=(256,))
images = load_mnist("train").images
train_vae(vae, images, steps=budget(ci=150, cpu=4_000, gpu=20_000), batch_size=100)
vae.requires_grad_(False)


def G(z):
    return torch.sigmoid(vae.decoder(z)).flatten(1)


x_true = load_mnist("test").images[:4].flatten(1)
CSGM_STEPS = budget(ci=100, cpu=1_000, gpu=1_000)
errors = {}
for m in (25, 100, 400):
    gen = torch.Generator().manual_seed(m)
    A = torch.randn(m, 784, generator=gen) / math.sqrt(m)
    y = x_true @ A.T + 0.1 / math.sqrt(m) * torch.randn(4, m, generator=gen)
    x_csgm, _ = csgm_recover(G, A, y, torch.randn(3, 4, K, generator=gen), CSGM_STEPS, 0.05, 0.1)
    x_lasso = lasso_recover(A, y, 0.1).clamp(0, 1)
    errors[m] = ((x_csgm - x_true).pow(2).mean().item(), (x_lasso - x_true).pow(2).mean().item())
    print(f"m = {m:3d}: per-pixel MSE  CSGM {errors[m][0]:.4f}   Lasso {errors[m][1]:.4f}")

# %%
fig, axes = plt.subplots(3, 4, figsize=(6, 4.5))
for row, (name, x) in enumerate((("truth", x_true), ("CSGM", x_csgm), ("Lasso", x_lasso))):
    for col in range(4):
        axes[row, col].imshow(x[col].detach().view(28, 28), cmap="gray", vmin=0, vmax=1)
        axes[row, col].axis("off")
    axes[row, 0].set_title(f"{name} (m = 400)", fontsize=8, loc="left")
plt.show()

# %% [raw]
# # BEGIN QUESTION
# name: q4
# manual: true
# points: 1

# %% [markdown]
# **Question 4 (written).** Run the comparison at the `cpu` budget. At which $m$ is CSGM better,
# and why does its error stop decreasing as $m$ grows while Lasso's keeps falling? Use the
# representation error $\min_z \lVert G(z) - x^* \rVert$ in your answer. (A few sentences.)

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# CSGM wins at small $m$: it searches only the $k$-dimensional range of $G$, so $O(k \log n)$
# measurements suffice, while Lasso needs $O(s \log n)$ for an $s$-sparse image with $s \gg k$.
# Its error cannot go below the representation error $\min_z \lVert G(z) - x^* \rVert$ (the
# digit is not exactly in the range of a small VAE's decoder), so it levels off; Lasso's
# estimate is not confined to a range and keeps improving as $m$ grows towards $n$.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION
