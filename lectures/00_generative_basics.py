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

# %% [markdown]
# # Lecture 0: What is a generative model?
#
# A generative model is a distribution $p_\theta$ that we can sample from, fitted so that its
# samples look like the data. This opening lecture sets up the ideas the rest of the course
# builds on, and checks each one with running code:
#
# 1. the goal, and why "more than one valid answer" calls for a distribution, not a prediction;
# 2. maximum likelihood: a Gaussian in closed form, then a Gaussian mixture fitted by
#    expectation-maximisation (EM), whose log-likelihood never decreases;
# 3. autoregressive models: the chain rule of probability and a small PixelCNN with an exact
#    log-likelihood on binarised MNIST;
# 4. latent-variable models: easy to sample, intractable density, the bridge to VAEs and GANs.
#
# Prerequisites: probability (densities, Bayes' rule, expectations), multivariate calculus, and
# training a network by stochastic gradient descent in PyTorch.
#
# ```{note}
# Runs on Colab (GPU: *Runtime → Change runtime type*) and on a CPU. The amount of training is
# set by `gencourse.runtime.budget` from `GENCOURSE_BUDGET` (`ci`, `cpu`, `gpu`); numbers quoted
# below were measured at the budget printed by the set-up cell.
# ```

# %%
# Colab: install the course package at the release these notebooks were tested with
# (this cell does nothing elsewhere).
import subprocess
import sys

PACKAGE = "gencourse @ git+https://github.com/gencourse/gencourse@v0.1.0"
if "google.colab" in sys.modules:
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", PACKAGE], capture_output=True, text=True
    )
    if pip.returncode != 0:  # show pip's own message, not only its exit status
        raise RuntimeError(f"pip could not install {PACKAGE}:\n{pip.stdout[-2000:]}{pip.stderr[-3000:]}")
    from google.colab import output

    output.enable_custom_widget_manager()  # ipywidgets 8 (sliders, progress bars) on Colab

# %% tags=["hide-input"]
import itertools
import math
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnMixture

from gencourse.autoregressive import (
    PixelCNN,
    complete,
    dependency_matrix,
    log_likelihood,
    sample,
    train_pixelcnn,
)
from gencourse.data import binarize, load_mnist, ring_mixture
from gencourse.lecture import start
from gencourse.mixtures import GaussianMixture, fit_gaussian, fit_mixture, gaussian_log_density
from gencourse.plotting import plot_history, show_images
from gencourse.report import record
from gencourse.runtime import budget, seed_everything
from gencourse.vae import bernoulli_log_likelihood

# %%
# the budget level and the device every number below was computed with; starts the clock
LECTURE = start("00_generative_basics")
LEVEL, DEVICE = LECTURE.level, LECTURE.device

# %% [markdown]
# ## 1. The goal
#
# We are given examples $x_1, \dots, x_N$ drawn independently from an unknown distribution
# $p_{\text{data}}$: photographs, digits, sentences, CT scans. A **generative model** is a family
# of distributions $p_\theta$ together with a way to choose $\theta$ so that $p_\theta$ is close to
# $p_{\text{data}}$. What we want from it varies:
#
# * **samples**: new $x \sim p_\theta$ that look like data (content creation, data augmentation,
#   simulation);
# * **a density** $p_\theta(x)$: to score how plausible an input is (anomaly detection), to
#   compress (a code length of $-\log_2 p_\theta(x)$ bits), or to serve as a prior in an
#   **inverse problem**, where we observe $y = A x + \text{noise}$ with fewer measurements than
#   unknowns and need to know which $x$ are plausible (lecture on compressed sensing);
# * **more than one valid answer**. Predicting the bottom half of a digit from its top half has
#   many correct answers. A network trained with a squared error learns the *average* of them,
#   $\mathbb E[x_{\text{bottom}} \mid x_{\text{top}}]$, which is a blur, not a digit. A
#   generative model of $p(x_{\text{bottom}} \mid x_{\text{top}})$ can draw one sharp answer at
#   a time. Section 3 shows both on MNIST.
#
# ## 2. Maximum likelihood
#
# The most common way to choose $\theta$ is to maximise the average log-likelihood of the data,
#
# $$
# \hat\theta = \arg\max_\theta \frac1N \sum_{i=1}^N \log p_\theta(x_i).
# $$
#
# As $N \to \infty$ the average tends to $\mathbb E_{p_{\text{data}}}[\log p_\theta(x)]$, and
#
# $$
# \mathbb E_{p_{\text{data}}}[\log p_\theta(x)]
# = \mathbb E_{p_{\text{data}}}[\log p_{\text{data}}(x)]
#   - \mathbb E_{p_{\text{data}}}\!\left[\log \frac{p_{\text{data}}(x)}{p_\theta(x)}\right]
# = -H(p_{\text{data}}) - \mathrm{KL}(p_{\text{data}} \,\|\, p_\theta),
# $$
#
# where the entropy $H(p_{\text{data}})$ does not depend on $\theta$. **Maximum likelihood
# minimises the KL divergence from the data to the model**, and the best possible expected
# log-likelihood is $-H(p_{\text{data}})$, reached when $p_\theta = p_{\text{data}}$. On held-out
# data, the difference between two models' mean log-likelihoods estimates the difference of their
# KL divergences to the data.
#
# ### 2.1 A Gaussian, in closed form
#
# For $p_\theta = \mathcal N(\mu, \Sigma)$ in $D$ dimensions,
#
# $$
# \ell(\mu, \Sigma) = \sum_i \log \mathcal N(x_i; \mu, \Sigma)
# = -\frac N2 \left( D \log 2\pi + \log\det\Sigma \right) - \frac12 \sum_i (x_i - \mu)^\top \Sigma^{-1} (x_i - \mu).
# $$
#
# Setting the gradient in $\mu$ to zero, $\nabla_\mu \ell = \Sigma^{-1} \sum_i (x_i - \mu) = 0$, gives
# $\hat\mu = \frac1N \sum_i x_i$. For $\Sigma$, write the quadratic terms as a trace,
# $\sum_i (x_i - \mu)^\top \Sigma^{-1} (x_i - \mu) = \operatorname{tr}(\Sigma^{-1} S)$ with
# $S = \sum_i (x_i - \hat\mu)(x_i - \hat\mu)^\top$, and differentiate with respect to the precision
# $\Lambda = \Sigma^{-1}$, using $\nabla_\Lambda \log\det\Lambda = \Lambda^{-1}$ and
# $\nabla_\Lambda \operatorname{tr}(\Lambda S) = S$:
#
# $$
# \nabla_\Lambda \ell = \frac N2 \Lambda^{-1} - \frac12 S = 0
# \quad\Longrightarrow\quad \hat\Sigma = \frac1N \sum_i (x_i - \hat\mu)(x_i - \hat\mu)^\top ,
# $$
#
# the sample covariance divided by $N$ (not $N - 1$). Plugging in,
# $\operatorname{tr}(\hat\Sigma^{-1} S) = N \operatorname{tr}(I) = ND$, so the maximum is
#
# $$
# \ell(\hat\mu, \hat\Sigma) = -\frac N2 \left( D \log 2\pi + \log\det\hat\Sigma + D \right).
# $$
#
# Our data: a ring of eight Gaussian blobs in the plane, a distribution whose density we know,
# so that we can also compute the best possible log-likelihood $-H(p_{\text{data}})$ (by Monte
# Carlo on held-out points).

# %%
ring = ring_mixture(n_modes=8, radius=2.0, std=0.25)
gen = seed_everything(0)
x_fit = ring.sample(2_000, gen).double()
x_held = ring.sample(20_000, gen).double()

mu_hat, sigma_hat = fit_gaussian(x_fit)
n, d = x_fit.shape
ll_gauss = gaussian_log_density(x_fit, mu_hat, sigma_hat).sum().item()
ll_closed = -n / 2 * (d * math.log(2 * math.pi) + torch.logdet(sigma_hat).item() + d)
print(f"mu_hat = {mu_hat.numpy().round(3)}, Sigma_hat = {sigma_hat.numpy().round(3).tolist()}")
print(f"log-likelihood at the MLE: {ll_gauss:.3f} (closed form {ll_closed:.3f})")

# checks: the closed forms, an independent library, and a zero gradient at the maximum
assert math.isclose(ll_gauss, ll_closed, rel_tol=1e-10)
assert np.allclose(sigma_hat.numpy(), np.cov(x_fit.numpy(), rowvar=False, bias=True))
reference = torch.distributions.MultivariateNormal(mu_hat, sigma_hat).log_prob(x_fit).sum().item()
assert math.isclose(ll_gauss, reference, rel_tol=1e-10)
m_var = mu_hat.clone().requires_grad_()
chol = torch.linalg.cholesky(sigma_hat).requires_grad_()
gaussian_log_density(x_fit, m_var, chol @ chol.T).sum().backward()
assert m_var.grad.abs().max() < 1e-8 and chol.grad.tril().abs().max() < 1e-8

# %% [markdown]
# The fitted Gaussian is the best Gaussian, but a poor model of a ring: it puts its highest
# density at the centre, where there is no data. We measure how poor on the held-out points, where
# $\frac1M \sum_j [\log p_{\text{data}}(x_j) - \log p_\theta(x_j)]$ estimates
# $\mathrm{KL}(p_{\text{data}} \,\|\, p_\theta) \ge 0$.

# %%
held_true = ring.log_density(x_held.float()).double()
held_gauss = gaussian_log_density(x_held, mu_hat, sigma_hat)
kl_gauss = (held_true - held_gauss).mean().item()
kl_gauss_se = (held_true - held_gauss).std().item() / math.sqrt(len(x_held))
print(
    f"held-out mean log-likelihood: data density {held_true.mean():.3f}, Gaussian {held_gauss.mean():.3f} nats"
)
print(f"estimated KL(p_data ‖ Gaussian) = {kl_gauss:.3f} ± {kl_gauss_se:.3f} nats")
assert kl_gauss > 10 * kl_gauss_se

# %% [markdown]
# ### 2.2 A Gaussian mixture, fitted by EM
#
# A mixture of $K$ Gaussians, $p_\theta(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x; \mu_k, \Sigma_k)$ with
# $\pi_k \ge 0$, $\sum_k \pi_k = 1$, is a model with a **latent variable**: draw a component
# $k \sim \mathrm{Categorical}(\pi)$, then $x \sim \mathcal N(\mu_k, \Sigma_k)$. The log of a sum has
# no closed-form maximiser, but EM {cite}`dempster1977maximum` turns the problem into a sequence of
# weighted Gaussian fits.
#
# **A lower bound.** For any distribution $q_i(k)$ over the components of point $i$, Jensen's
# inequality for the concave $\log$ gives
#
# $$
# \log p_\theta(x_i) = \log \sum_k q_i(k) \frac{\pi_k \mathcal N(x_i; \mu_k, \Sigma_k)}{q_i(k)}
# \ge \sum_k q_i(k) \log \frac{\pi_k \mathcal N(x_i; \mu_k, \Sigma_k)}{q_i(k)} =: F_i(q_i, \theta),
# $$
#
# and the gap is a KL divergence: writing $\pi_k \mathcal N(x_i; \mu_k, \Sigma_k) = p_\theta(x_i)\, p_\theta(k \mid x_i)$,
#
# $$
# \log p_\theta(x_i) - F_i(q_i, \theta) = \sum_k q_i(k) \log \frac{q_i(k)}{p_\theta(k \mid x_i)}
# = \mathrm{KL}(q_i \,\|\, p_\theta(\cdot \mid x_i)) \ge 0 .
# $$
#
# (This is the same evidence lower bound as the VAE's in lecture 1, with a discrete latent.)
#
# **E-step.** For fixed $\theta_t$, the bound is tight when the KL is zero: take the
# *responsibilities* $r_{ik} = q_i(k) = p_{\theta_t}(k \mid x_i) = \pi_k \mathcal N(x_i; \mu_k, \Sigma_k) / \sum_j \pi_j \mathcal N(x_i; \mu_j, \Sigma_j)$.
#
# **M-step.** For fixed $r$, maximise $\sum_i F_i = \sum_i \sum_k r_{ik} [\log \pi_k + \log \mathcal N(x_i; \mu_k, \Sigma_k)] + \text{const}$.
# The components decouple. With $N_k = \sum_i r_{ik}$: the weights maximise
# $\sum_k N_k \log \pi_k$ subject to $\sum_k \pi_k = 1$; a Lagrange multiplier $\lambda$ gives
# $N_k / \pi_k = \lambda$, and summing over $k$, $\lambda = N$, so $\pi_k = N_k / N$. Each
# component is a Gaussian fit with weights $r_{ik}$, and the derivation of Section 2.1 with
# weighted sums gives
#
# $$
# \mu_k = \frac{1}{N_k}\sum_i r_{ik}\, x_i, \qquad
# \Sigma_k = \frac{1}{N_k} \sum_i r_{ik}\, (x_i - \mu_k)(x_i - \mu_k)^\top .
# $$
#
# **Monotonicity.** Write $\ell(\theta) = \sum_i \log p_\theta(x_i)$ and $F(q, \theta) = \sum_i F_i$.
# Then
#
# $$
# \ell(\theta_{t+1}) \;\ge\; F(q_t, \theta_{t+1}) \;\ge\; F(q_t, \theta_t) \;=\; \ell(\theta_t):
# $$
#
# the first inequality is the bound, the second holds because the M-step maximises $F(q_t, \cdot)$,
# and the equality because the E-step made the bound tight at $\theta_t$. **The log-likelihood
# never decreases.** The code below asserts it at every step.

# %%
K = 8
EM_STEPS = budget(ci=60, cpu=200, gpu=200)
gmm, em_history = fit_mixture(x_fit, K, EM_STEPS, seed=0)
ll_steps = np.array(em_history["log_likelihood"])
print(f"mean log-likelihood: {ll_steps[0]:.4f} at the start, {ll_steps[-1]:.4f} after {EM_STEPS} EM steps")
print(f"smallest change in one step: {np.diff(ll_steps).min():.2e}")
assert np.all(np.diff(ll_steps) >= -1e-12), "EM decreased the log-likelihood"

# with one component, a single EM step is the closed-form Gaussian fit of Section 2.1
gmm1, _ = fit_mixture(x_fit, 1, 1)
assert torch.allclose(gmm1.means[0], mu_hat) and torch.allclose(gmm1.covariances[0], sigma_hat)

# an independent implementation: scikit-learn's EM from the same starting point
em_start, _ = fit_mixture(x_fit, K, 0, seed=0)
sk = SklearnMixture(
    K,
    reg_covar=0.0,
    max_iter=EM_STEPS,
    tol=0.0,
    weights_init=em_start.weights.numpy(),
    means_init=em_start.means.numpy(),
    precisions_init=np.linalg.inv(em_start.covariances.numpy()),
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    sk.fit(x_fit.numpy())
assert math.isclose(sk.score(x_fit.numpy()), ll_steps[-1], rel_tol=1e-8)
assert np.allclose(sk.means_, gmm.means.numpy(), atol=1e-6)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
axes[0].plot(em_history["step"], ll_steps, marker=".")
axes[0].set(xlabel="EM step", ylabel="mean log-likelihood (nats)", title="EM never decreases the likelihood")
lim = 3.5
grid_axis = torch.linspace(-lim, lim, 200, dtype=torch.float64)
gx, gy = torch.meshgrid(grid_axis, grid_axis, indexing="xy")
grid_points = torch.stack([gx.flatten(), gy.flatten()], 1)
density = gmm.log_prob(grid_points).exp().view(200, 200)
axes[1].contourf(gx, gy, density, levels=20, cmap="Blues")
axes[1].scatter(x_fit[:500, 0], x_fit[:500, 1], s=2, c="k")
axes[1].set(title="fitted mixture density and data", aspect="equal")
x_gmm, k_gmm = gmm.sample(500, torch.Generator().manual_seed(1))
axes[2].scatter(x_gmm[:, 0], x_gmm[:, 1], s=3, c=k_gmm, cmap="tab10")
axes[2].set(
    title="samples from the fit (colour: component)", aspect="equal", xlim=(-lim, lim), ylim=(-lim, lim)
)
plt.show()

# %% [markdown]
# **More components, better held-out likelihood, up to a point.** The cell below fits
# $K = 1, 2, 4, 8, 16$ components and prints the estimated
# $\mathrm{KL}(p_{\text{data}}\,\|\,p_\theta)$ on held-out data. With $K = 8$, the number of blobs,
# the mixture can represent the data distribution exactly, and the cell asserts that its KL is
# below a tenth of the single Gaussian's and that it decreases from $K = 1$ to $K = 8$. With
# $K = 16$ it is higher again (also asserted): the extra components fit the noise of the 2,000
# training points, not the distribution.

# %%
kl_by_k = {}
for k in (1, 2, 4, 8, 16):
    fitted, _ = fit_mixture(x_fit, k, EM_STEPS, seed=0)
    kl_by_k[k] = (held_true - fitted.log_prob(x_held)).mean().item()
    print(f"K = {k:2d}: held-out KL(p_data ‖ p_θ) ≈ {kl_by_k[k]:.4f} nats")
assert math.isclose(kl_by_k[1], kl_gauss, rel_tol=1e-6)
assert kl_by_k[8] < 0.1 * kl_by_k[1] and kl_by_k[8] < kl_by_k[4] < kl_by_k[2] < kl_by_k[1]
assert kl_by_k[16] > kl_by_k[8]

# %% [markdown]
# **A warning: the likelihood of a mixture is unbounded.** Add to the fitted mixture a ninth
# component of weight $w = 0.01$ (scaling the others by $1 - w$), centred on a data point,
# $\mu_9 = x_1$, with covariance $s^2 I$. Every point keeps at least $(1 - w)$ times its old
# likelihood, and the density at $x_1$ gains $w\,(2\pi s^2)^{-D/2}$, which grows without limit as
# $s \to 0$. So $\sup_\theta \ell(\theta) = +\infty$: the maximum-likelihood estimate does not
# exist, and EM finds a *local* maximum. Components that collapse onto a few points are the
# practical symptom; `fit_mixture(..., reg=ε)` adds a penalty
# $-\tfrac{\varepsilon}{2}\sum_k \operatorname{tr}\Sigma_k^{-1}$ that rules this out (its M-step
# is $\Sigma_k + (\varepsilon / N_k) I$, and EM then never decreases the penalised objective).

# %%
w = 0.01
log_l = []
for s in (1e-2, 1e-4, 1e-6, 1e-8):
    spiked = GaussianMixture(
        torch.cat([(1 - w) * gmm.weights, torch.tensor([w], dtype=torch.float64)]),
        torch.cat([gmm.means, x_fit[:1]]),
        torch.cat([gmm.covariances, s**2 * torch.eye(2, dtype=torch.float64)[None]]),
    )
    log_l.append(spiked.log_prob(x_fit).sum().item())
    print(f"s = {s:.0e}: log-likelihood {log_l[-1]:.1f}")
# each factor 100 in 1/s adds about D log 100 = 9.2 nats, for ever
assert all(b - a > 9 for a, b in zip(log_l, log_l[1:], strict=False))

# %% [markdown]
# ## 3. Autoregressive models
#
# For images a mixture of Gaussians is far too weak. Autoregressive models get an exact
# likelihood from one identity. Order the $D$ coordinates of $x$ (for an image: the pixels in
# raster order, row by row); the **chain rule of probability**, applied $D - 1$ times to
# $p(x) = p(x_1)\,p(x_2, \dots, x_D \mid x_1)$, gives
#
# $$
# p(x) = \prod_{i=1}^D p(x_i \mid x_1, \dots, x_{i-1}) = \prod_{i=1}^D p(x_i \mid x_{<i}),
# \qquad \log p(x) = \sum_{i=1}^D \log p(x_i \mid x_{<i}),
# $$
#
# with no assumption on $p$. An autoregressive model parameterises each conditional. For binary
# pixels, $p_\theta(x_i = 1 \mid x_{<i}) = \sigma(f_i(x_{<i}))$ with $\sigma$ the logistic
# function, and the model is automatically normalised: each factor is a probability mass
# function in $x_i$, so summing over $x_D$, then $x_{D-1}$, and so on down to $x_1$ gives
# $\sum_x p_\theta(x) = 1$. No normalising constant is ever computed.
#
# **PixelCNN** {cite}`vandenoord2016pixel` computes all $D$ logits $f_i$ in one pass of a
# convolutional network whose output $i$ may look only at inputs $j < i$. This is enforced by
# **masks** on the kernels. For a $k \times k$ kernel centred at $(c, c)$, $c = \lfloor k/2 \rfloor$,
# the weights at offsets in rows above the centre, and left of the centre in its row, are kept.
# Mask **A** also zeroes the centre, mask **B** keeps it:
#
# * the first layer uses mask A: its output at pixel $i$ depends on inputs $j < i$ only;
# * every later layer uses mask B: its input at pixel $i$ already depends only on $j < i$, and
#   combining it with positions before $i$ keeps that true. By induction over layers, every
#   output $i$ depends on inputs $j < i$ only. (1×1 convolutions and residual additions act per
#   pixel and keep it too.)
#
# Training maximises $\sum_i \log p_\theta(x_i \mid x_{<i})$ for all pixels at once; sampling
# needs $D$ passes, one pixel at a time.
#
# We work on binarised MNIST: each grey level becomes a pixel that is 1 with probability equal to
# the grey level, drawn once with a fixed seed, so that log-likelihoods in nats are those of a
# proper probability mass function (lecture 1 explains why grey levels would not do).

# %%
train_set, test_set = load_mnist("train"), load_mnist("test")
x_train = binarize(train_set.images, seed=0)
x_test = binarize(test_set.images, seed=1)
print(f"{len(x_train):,} training and {len(x_test):,} test images ({train_set.source} MNIST)")

CHANNELS = budget(ci=16, cpu=24, gpu=64)
LAYERS = budget(ci=4, cpu=5, gpu=8)
seed_everything(0)
pixelcnn = PixelCNN(channels=CHANNELS, n_layers=LAYERS).to(DEVICE)
print(
    f"PixelCNN: {CHANNELS} channels, {LAYERS} residual masked layers, {sum(p.numel() for p in pixelcnn.parameters()):,} parameters"
)

# %% [markdown]
# **Checking the masks by autograd.** The Jacobian $J_{ij} = \partial f_i / \partial x_j$ of the
# output logits with respect to the input pixels must be strictly lower triangular in raster
# order: $J_{ij} = 0$ whenever $j \ge i$. The cell computes it with `torch.autograd` (at random
# inputs, with the untrained network) and asserts it. The right panel shows which inputs the
# output at one pixel (red) depends on: everything it sees lies before it, but not everything
# before it is seen. The triangle of pixels to the upper right that no path reaches is the
# "blind spot" of the original PixelCNN, fixed in later versions by separate vertical and
# horizontal stacks.

# %%
SIDE = budget(ci=14, cpu=28, gpu=28)
deps = dependency_matrix(pixelcnn, SIDE, SIDE, n_inputs=2)
print(
    f"{SIDE}×{SIDE} Jacobian: {int(deps.sum()):,} non-zero entries, {int(torch.triu(deps).sum())} on or above the diagonal"
)
assert not torch.triu(deps).any(), "an output depends on an input at or after its own position"
r0, c0 = SIDE // 2, SIDE // 2
i0 = r0 * SIDE + c0
field = deps[i0].view(SIDE, SIDE)
assert field[r0, c0 - 1] and field[r0 - 1, c0]  # it does see its left and upper neighbours
# the blind spot: one row up it sees 3 columns to the right (the first 7×7 layer's reach), no more,
# although two rows up it sees 4
assert field[r0 - 1, c0 + 3] and not field[r0 - 1, c0 + 4 :].any() and field[r0 - 2, c0 + 4]

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
axes[0].imshow(deps.numpy(), cmap="Greys", interpolation="nearest")
axes[0].set(title="J_ij ≠ 0 (rows: output i, columns: input j)", xlabel="input j", ylabel="output i")
view = field.float().numpy().copy()
axes[1].imshow(view, cmap="Blues", vmin=0, vmax=1.5)
axes[1].scatter([c0], [r0], c="red", s=40)
axes[1].set(title=f"inputs that pixel ({r0}, {c0}) depends on", xticks=[], yticks=[])
plt.show()

# %% [markdown]
# **Training** is plain maximum likelihood: minimise the mean of
# $-\log p_\theta(x) = -\sum_i [x_i \log \sigma(f_i) + (1 - x_i) \log(1 - \sigma(f_i))]$ over
# mini-batches. As a baseline we fit the best model that ignores the dependencies between pixels,
# independent Bernoullis $p(x) = \prod_i p_i^{x_i} (1 - p_i)^{1 - x_i}$, whose maximum-likelihood
# estimate is the pixel mean; we add one pseudo-count to each outcome
# ($p_i = (n_i + 1)/(N + 2)$), otherwise a test pixel that was never on in training would get
# probability zero.

# %%
PIXELCNN_STEPS = budget(ci=150, cpu=1_500, gpu=20_000)
t_train = time.perf_counter()
pcnn_history = train_pixelcnn(
    pixelcnn, x_train, steps=PIXELCNN_STEPS, batch_size=budget(ci=32, cpu=64, gpu=64), seed=0
)
PIXELCNN_TIME = time.perf_counter() - t_train
n_eval = budget(ci=500, cpu=1_000, gpu=10_000)
with torch.no_grad():
    nll_pcnn = -torch.cat(
        [log_likelihood(pixelcnn, xb.to(DEVICE)).cpu() for xb in x_test[:n_eval].split(250)]
    )
p_pix = (x_train.sum(0) + 1) / (len(x_train) + 2)
logits_indep = torch.log(p_pix) - torch.log1p(-p_pix)
nll_indep = -bernoulli_log_likelihood(logits_indep.expand(n_eval, -1, -1, -1), x_test[:n_eval])
se = nll_pcnn.std().item() / math.sqrt(n_eval)
print(f"test negative log-likelihood on {n_eval} images, in nats per image (bits per pixel):")
print(f"  independent pixels: {nll_indep.mean():.1f} ({nll_indep.mean() / 784 / math.log(2):.3f})")
print(f"  PixelCNN:           {nll_pcnn.mean():.1f} ± {se:.1f} ({nll_pcnn.mean() / 784 / math.log(2):.3f})")
assert nll_pcnn.mean() < nll_indep.mean() - 20
ax = plot_history(pcnn_history, ["loss"], smooth=10)
ax.set(ylabel="−log p(x) (nats per image)", yscale="log", title="PixelCNN training")
plt.show()

# %% [markdown]
# The cell printed the PixelCNN's exact test negative log-likelihood, far below that of
# independent pixels (by more than 20 nats, asserted). The paper's PixelCNN reaches 81.3 nats on
# binarised MNIST {cite}`vandenoord2016pixel`, with a larger network, the full MNIST training set
# and much longer training; our data differ (the first cell of Section 3 printed how many training
# images we use: offline, the 9,000 bundled ones; and we evaluate on the first test digits only), and ours
# is a small network trained for minutes on a CPU, so the paper's number is not reproduced at
# this budget. At the `cpu` budget the next cell also asserts that ours is below 110 nats. Both
# numbers, with the independent-pixel baseline, go to the scoreboard.
#
# **The likelihood is exact, not a bound.** The network is convolutional, so it also runs on
# $3 \times 3$ images, of which there are only $2^9 = 512$ binary ones. Summing $p_\theta(x)$ over
# all of them must give 1 up to rounding, with no normalising constant anywhere:

# %%
all_images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9))).view(-1, 1, 3, 3)
with torch.no_grad():
    total = torch.logsumexp(log_likelihood(pixelcnn, all_images.to(DEVICE)).cpu().double(), 0).exp().item()
print(f"sum over all 512 binary 3×3 images of p(x) = {total:.6f}")
assert abs(total - 1) < 1e-4
if LEVEL != "ci":
    assert nll_pcnn.mean() < 110
record(
    "pixelcnn/test_nll",
    nll_pcnn.mean().item(),
    lecture="00_generative_basics",
    description=f"PixelCNN ({CHANNELS} channels, {LAYERS} masked layers) exact test NLL, binarised MNIST",
    paper=81.3,
    unit="nats",
    seeds=[0],
    wall_time_s=PIXELCNN_TIME,
    baseline={"independent pixels": nll_indep.mean().item()},
    higher_is_better=False,
    note=(
        f"{len(x_train):,} training images, the first {n_eval:,} binarised test digits; the paper "
        "(van den Oord et al. 2016, PixelCNN) trains on the full MNIST training set"
    ),
)

# %% [markdown]
# **Samples** take one network pass per pixel: 784 passes for a digit. (Row $r$ depends on rows
# $\le r$ only, so each pass can stop at row $r$; the package does.)

# %%
n_samples = budget(ci=8, cpu=16, gpu=64)
t_sample = time.perf_counter()
samples = sample(pixelcnn, n_samples, generator=torch.Generator().manual_seed(0)).cpu()
t_sample = time.perf_counter() - t_sample
print(f"{n_samples} samples in {t_sample:.1f} s (784 network passes)")
show_images(samples, nrow=min(n_samples, 16), title="PixelCNN samples")
plt.show()
assert set(samples.unique().tolist()) <= {0.0, 1.0}

# %% [markdown]
# **More than one valid answer.** Keep the top half (the first 392 pixels) of a few test digits
# and let the PixelCNN draw the bottom half several times: $x_{\text{bottom}} \sim p_\theta(\cdot \mid x_{\text{top}})$.
# Each completion is a plausible, sharp, binary image, and they differ. Their average estimates
# $\mathbb E[x_{\text{bottom}} \mid x_{\text{top}}]$, the prediction that minimises the expected
# squared error, and it is a blur. The squared error to the true bottom half decomposes as
#
# $$
# \mathbb E \|x - s\|^2 = \mathbb E \|x - m\|^2 + \mathbb E \|s - m\|^2 \;\ge\; \mathbb E\|x - m\|^2
# $$
#
# for a sample $s$ and the conditional mean $m$ (when $s$ and the true $x$ are independent draws
# from the same conditional distribution, the cross term vanishes). So the blurry mean wins on
# squared error, and every sharp answer loses: squared error is the wrong yardstick for
# generation. The cell asserts that the mean of the completions has a lower squared error than a
# single completion.

# %%
n_digits, n_draws = budget(ci=4, cpu=6, gpu=8), budget(ci=4, cpu=6, gpu=16)
tops = x_test[:n_digits]
given = tops.repeat_interleave(n_draws, 0)
completions = complete(
    pixelcnn, given.to(DEVICE), start=14 * 28, generator=torch.Generator().manual_seed(1)
).cpu()
completions = completions.view(n_digits, n_draws, 1, 28, 28)
mean_completion = completions.mean(1)
bottom = slice(14, 28)
err_mean = (mean_completion[..., bottom, :] - tops[..., bottom, :]).pow(2).sum((1, 2, 3))
err_sample = (completions[..., bottom, :] - tops[:, None, ..., bottom, :]).pow(2).sum((2, 3, 4)).mean(1)
print(
    f"squared error of the bottom half, mean over {n_digits} digits: average of completions {err_mean.mean():.1f}, one completion {err_sample.mean():.1f}"
)
assert err_mean.mean() < err_sample.mean()

shown = torch.cat([tops[:, None], completions, mean_completion[:, None]], 1).view(-1, 1, 28, 28)
show_images(
    shown, nrow=n_draws + 2, title="true digit | PixelCNN completions of the bottom half | their average"
)
plt.show()

# %% [markdown]
# ## 4. Latent-variable models
#
# The other route to a flexible model, and the one most of this course takes, is a **latent
# variable** pushed through a network: draw $z \sim \mathcal N(0, I_k)$ and output
# $x = G_\theta(z)$, possibly plus noise, $x \mid z \sim \mathcal N(G_\theta(z), \sigma^2 I)$. The
# Gaussian mixture of Section 2.2 is the simplest case (a discrete $z$); VAEs (lecture 1) and GANs
# (lecture 2) use a continuous $z$ and a deep $G_\theta$.
#
# * **Sampling is easy**: one network pass per sample, against the PixelCNN's one pass per pixel.
# * **The density is an integral**, $p_\theta(x) = \int \mathcal N(x; G_\theta(z), \sigma^2 I)\, \mathcal N(z; 0, I)\, dz$,
#   with no closed form once $G_\theta$ is non-linear. Without noise ($\sigma = 0$) and with
#   $k < D$, the model's samples lie on a $k$-dimensional surface and there is no density at all.
#
# A one-dimensional latent mapped to the plane by a small random network shows both. With $k = 1$
# we can still compute $p_\theta(x)$ accurately by quadrature on a fine grid of $z$. The naive Monte
# Carlo estimate $\frac1S \sum_s \mathcal N(x; G_\theta(z_s), \sigma^2 I)$ with $z_s \sim \mathcal N(0, 1)$
# is unbiased, but most $z_s$ land far from the few $z$ that explain a given $x$ (the cell measures
# its error against the quadrature); with a $k$-dimensional latent the grid needs $m^k$ points,
# and lecture 1 measures the prior-sampled estimate with a 20-dimensional latent. VAEs answer with a learned proposal $q(z \mid x)$ and a lower bound; GANs give up the
# density altogether and train through a discriminator.

# %%
torch.manual_seed(0)
G = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2)).double()
for p in G.parameters():
    torch.nn.init.normal_(p, std=1.5)
sigma = 0.05


def log_density_quadrature(x: torch.Tensor, n_grid: int = 20_001) -> torch.Tensor:
    """log ∫ N(x; G(z), σ² I) N(z; 0, 1) dz by the trapezoidal rule on z ∈ [−8, 8]."""
    z = torch.linspace(-8, 8, n_grid, dtype=torch.float64)[:, None]
    with torch.no_grad():
        centres = G(z)
    log_terms = gaussian_log_density_iso(x, centres) + torch.distributions.Normal(0.0, 1.0).log_prob(z.T)
    weights = torch.full((n_grid,), 16 / (n_grid - 1), dtype=torch.float64)
    weights[[0, -1]] /= 2
    return torch.logsumexp(log_terms + weights.log(), dim=1)


def gaussian_log_density_iso(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """log N(xᵢ; cⱼ, σ² I) for all pairs, shape (len(x), len(centres))."""
    return -torch.cdist(x, centres).pow(2) / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)


def log_density_monte_carlo(x: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
    """log (1/S) Σₛ N(x; G(zₛ), σ² I), zₛ ~ N(0, 1): the naive, prior-sampling estimate."""
    z = torch.randn(n_samples, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        return torch.logsumexp(gaussian_log_density_iso(x, G(z)), dim=1) - math.log(n_samples)


gen = torch.Generator().manual_seed(0)
with torch.no_grad():
    z_draw = torch.randn(2_000, 1, generator=gen, dtype=torch.float64)
    x_draw = G(z_draw) + sigma * torch.randn(2_000, 2, generator=gen, dtype=torch.float64)
x_query = x_draw[:20]
exact = log_density_quadrature(x_query)
assert torch.allclose(exact, log_density_quadrature(x_query, 40_001), atol=1e-6)  # the grid is fine enough
rel_err = {}
for s in (10, 100, 10_000, 1_000_000):
    est = log_density_monte_carlo(x_query, s, seed=1)
    rel_err[s] = (est - exact).exp().sub(1).abs()  # |p̂ / p − 1|
    print(f"S = {s:>9,}: median |p̂/p − 1| = {rel_err[s].median():.3f}, worst {rel_err[s].max():.3f}")
assert rel_err[1_000_000].max() < 0.05 and rel_err[10].median() > 5 * rel_err[1_000_000].median()

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
axes[0].scatter(x_draw[:, 0], x_draw[:, 1], s=2, c=z_draw[:, 0], cmap="viridis")
axes[0].set(title="x = G(z) + σε, coloured by z (a 1-D curve in 2-D)", aspect="equal")
lo, hi = x_draw.min(0).values - 0.3, x_draw.max(0).values + 0.3
gxx, gyy = torch.meshgrid(
    torch.linspace(lo[0], hi[0], 120, dtype=torch.float64),
    torch.linspace(lo[1], hi[1], 120, dtype=torch.float64),
    indexing="xy",
)
logp = log_density_quadrature(torch.stack([gxx.flatten(), gyy.flatten()], 1), n_grid=4_001).view(120, 120)
axes[1].imshow(logp.clamp(min=-10).numpy(), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="magma")
axes[1].set(title="log p(x) by quadrature over z (clipped at −10)")
plt.show()

# %% [markdown]
# ## Summary
#
# * Maximum likelihood minimises $\mathrm{KL}(p_{\text{data}} \,\|\, p_\theta)$; the held-out
#   log-likelihood estimates it up to the data's entropy, and measured the gap between a Gaussian,
#   mixtures of increasing size, and the true density.
# * EM maximises a lower bound that is tight after each E-step, so the log-likelihood never
#   decreases (asserted at every step, and matched against scikit-learn); the mixture likelihood
#   is nevertheless unbounded, and EM finds a local maximum.
# * Autoregressive models factorise $p(x)$ by the chain rule; masked convolutions make a PixelCNN
#   causal (checked on the Jacobian), its log-likelihood is exact (it sums to one over all binary
#   $3 \times 3$ images), and it beats independent pixels by a wide margin, at the cost of one
#   network pass per pixel when sampling.
# * Generating is not predicting: the average of the PixelCNN's completions has the lower squared
#   error and is not a digit.
# * Latent-variable models sample in one pass, but their density is an integral that naive Monte
#   Carlo estimates poorly: lecture 1 (VAEs) bounds it, lecture 2 (GANs) does without it.

# %%
LECTURE.finish()  # prints and records the lecture's wall time
