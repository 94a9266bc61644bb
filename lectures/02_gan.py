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
# # Lecture 2: Generative adversarial networks
#
# A generative adversarial network (GAN) {cite}`goodfellow2014generative` learns to sample from a
# distribution without ever writing down a likelihood: a *generator* turns noise into samples and
# a *discriminator* is trained to tell them from real data, while the generator is trained to fool
# it. This lecture derives the game and checks each step with running code:
#
# 1. from classification to a game: a spam detector and a spammer, and the minimax objective;
# 2. the optimal discriminator $D^*(x) = p(x)/(p(x) + q(x))$, and the value of the game at $D^*$,
#    $-\log 4 + 2\,\mathrm{JS}(P\,\|\,Q)$;
# 3. alternating gradient descent, the generator's gradient through $D$, and why the original
#    generator loss saturates while the non-saturating one does not;
# 4. why we cannot simply regress noise onto images;
# 5. a GAN on a 2-D mixture and a DCGAN {cite}`radford2016unsupervised` on MNIST.
#
# Prerequisites: lecture 1 (KL divergence), logistic regression, and training a network by
# stochastic gradient descent in PyTorch.
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

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

from gencourse.data import load_mnist, ring_mixture
from gencourse.divergences import js_divergence
from gencourse.gan import (
    MLPDiscriminator,
    MLPGenerator,
    data_sampler,
    discriminator_loss,
    generator_loss,
    sample_latent,
    train_gan,
)
from gencourse.nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    accuracy,
    trained_mnist_classifier,
)
from gencourse.plotting import plot_history, show_images
from gencourse.runtime import budget, budget_level, fit, get_device, seed_everything
from gencourse.scoreboard import record, record_timing

LEVEL, DEVICE = budget_level(), get_device()
T0 = time.perf_counter()
print(f"budget level: {LEVEL}, device: {DEVICE}")

# %% [markdown]
# ## 1. From classification to a game
#
# **A spam detector.** Genuine e-mails $x$ are drawn from a distribution $P$ with density $p$; a
# spammer produces e-mails from a distribution $Q$ with density $q$. A detector outputs
# $D(x) \in (0, 1)$, its probability that $x$ is genuine. Logistic regression writes
# $D_\theta(x) = \sigma(f_\theta(x))$ with $\sigma(t) = 1/(1 + e^{-t})$ and a score (logit)
# $f_\theta$, and fits $\theta$ by maximum likelihood on labelled examples, genuine with label 1,
# spam with label 0. With as many of each, the average log-likelihood is
#
# $$
# V(D, Q) = \mathbb E_{x \sim P}\big[\log D(x)\big] + \mathbb E_{x \sim Q}\big[\log(1 - D(x))\big],
# $$
#
# which the detector maximises. The spammer wants the opposite: to choose $Q$ so that even the
# best detector does badly. If the spammer's e-mails are made by a *generator* $G_\phi$ from noise,
# $x = G_\phi(z)$ with $z \sim \mathcal N(0, I)$, so that $Q$ is the law of $G_\phi(z)$, the two
# play the **minimax game**
#
# $$
# \min_{\phi}\; \max_{\theta}\; V(D_\theta, G_\phi)
# = \mathbb E_{x \sim P}\big[\log D_\theta(x)\big]
# + \mathbb E_{z \sim \mathcal N(0, I)}\big[\log\big(1 - D_\theta(G_\phi(z))\big)\big].
# $$
#
# That is a GAN. In code, the detector's loss is the negated objective written with logits,
# $-\log\sigma(t) = \mathrm{softplus}(-t)$ and $-\log(1 - \sigma(t)) = \mathrm{softplus}(t)$, which
# stays finite for any logit (`gencourse.gan.discriminator_loss`).
#
# **What the detector learns.** Section 2 shows that the best detector is
# $D^*(x) = p(x)/(p(x) + q(x))$, so its logit is the log density ratio
# $f^*(x) = \log p(x) - \log q(x)$. For two Gaussians with the same variance,
# $P = \mathcal N(0, 1)$ and $Q = \mathcal N(1, 1)$, the ratio is linear:
#
# $$
# \log\frac{p(x)}{q(x)} = -\frac{x^2}{2} + \frac{(x - 1)^2}{2} = -x + \frac12 ,
# $$
#
# so logistic regression with $f_\theta(x) = wx + b$ can represent $D^*$ exactly and should find
# $w = -1$, $b = \tfrac12$. The cell below fits it on 20,000 samples of each class.

# %%
gen = seed_everything(0)
n_lr = 20_000
x_genuine = torch.randn(n_lr, 1, generator=gen, dtype=torch.float64)  # P = N(0, 1)
x_spam = 1.0 + torch.randn(n_lr, 1, generator=gen, dtype=torch.float64)  # Q = N(1, 1)
detector = torch.nn.Linear(1, 1).double()
opt = torch.optim.LBFGS(detector.parameters(), max_iter=200, line_search_fn="strong_wolfe")


def detector_closure() -> torch.Tensor:
    opt.zero_grad()
    loss = discriminator_loss("ns", detector(x_genuine), detector(x_spam))  # = −V(D, Q)
    loss.backward()
    return loss


opt.step(detector_closure)
w_hat, b_hat = detector.weight.item(), detector.bias.item()
print(f"logistic regression: w = {w_hat:.3f} (theory −1), b = {b_hat:.3f} (theory 0.5)")
assert abs(w_hat + 1) < 0.06 and abs(b_hat - 0.5) < 0.06

# %%
xs = torch.linspace(-4, 5, 200, dtype=torch.float64)
p_x, q_x = torch.exp(-0.5 * xs**2), torch.exp(-0.5 * (xs - 1) ** 2)  # common factor 1/√(2π) cancels
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(xs, p_x / math.sqrt(2 * math.pi), label="p (genuine)")
ax.plot(xs, q_x / math.sqrt(2 * math.pi), label="q (spam)")
ax.plot(xs, p_x / (p_x + q_x), "k", label="D* = p/(p+q)")
with torch.no_grad():
    ax.plot(xs, torch.sigmoid(detector(xs[:, None])).squeeze(), "r--", label="fitted σ(wx+b)")
ax.set_xlabel("x")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. The optimal discriminator and the Jensen–Shannon divergence
#
# Fix the generator, so $Q$ is fixed, and let $D$ be any function with values in $(0, 1)$. Write
# the objective as one integral,
#
# $$
# V(D, Q) = \int \Big[\, p(x) \log D(x) + q(x) \log\big(1 - D(x)\big) \Big]\, dx .
# $$
#
# The integrand depends on $D$ only through the value $y = D(x)$ at the same point, so we can
# maximise pointwise. For $a = p(x) \ge 0$ and $b = q(x) \ge 0$, not both zero, the function
# $h(y) = a \log y + b \log(1 - y)$ on $(0, 1)$ has
#
# $$
# h'(y) = \frac{a}{y} - \frac{b}{1 - y} = 0 \iff a(1 - y) = b y \iff y = \frac{a}{a + b},
# \qquad h''(y) = -\frac{a}{y^2} - \frac{b}{(1 - y)^2} < 0 ,
# $$
#
# so $h$ is concave with its maximum at $a/(a + b)$. Hence the **optimal discriminator** is
#
# $$
# D^*(x) = \frac{p(x)}{p(x) + q(x)} .
# $$
#
# **The value at $D^*$.** Let $m = \tfrac12(p + q)$, the mixture. Then
# $D^* = p/(2m)$ and $1 - D^* = q/(2m)$, and
#
# $$
# \begin{aligned}
# V(D^*, Q) &= \mathbb E_{P}\Big[\log \frac{p(x)}{2\, m(x)}\Big]
#            + \mathbb E_{Q}\Big[\log \frac{q(x)}{2\, m(x)}\Big] \\
#           &= -2 \log 2 + \mathbb E_{P}\Big[\log \frac{p(x)}{m(x)}\Big]
#            + \mathbb E_{Q}\Big[\log \frac{q(x)}{m(x)}\Big] \\
#           &= -\log 4 + \mathrm{KL}(P \,\|\, M) + \mathrm{KL}(Q \,\|\, M)
#            = -\log 4 + 2\, \mathrm{JS}(P \,\|\, Q),
# \end{aligned}
# $$
#
# with the **Jensen–Shannon divergence** $\mathrm{JS}(P\,\|\,Q) = \tfrac12 \mathrm{KL}(P\,\|\,M) +
# \tfrac12 \mathrm{KL}(Q\,\|\,M)$. JS is symmetric, lies in $[0, \log 2]$, and is zero only when
# $P = Q$. So when the discriminator is optimal, the generator minimises the Jensen–Shannon
# divergence between the data and its samples, and the game's value is $-\log 4$ exactly when
# $Q = P$ (then $D^* \equiv \tfrac12$).
#
# We check all of this on discrete distributions over five points: $P = \mathrm{Binomial}(4, 0.3)$
# and $Q$ uniform. The cell below maximises $V$ numerically over all discriminators (the five
# logits), compares the maximiser with $D^*$ and the maximum with $-\log 4 + 2\,\mathrm{JS}$
# (`gencourse.divergences.js_divergence`), and checks that random discriminators do worse.

# %%
k = np.arange(5)
p = np.array([math.comb(4, i) * 0.3**i * 0.7 ** (4 - i) for i in k])
q = np.full(5, 0.2)
d_star = p / (p + q)


def game_value(d: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """V(D, Q) = Σ p log D + Σ q log(1 − D) for a discrete discriminator D."""
    return float(np.sum(p * np.log(d)) + np.sum(q * np.log(1 - d)))


# maximise V over the five logits l (D = σ(l)), written with softplus as in the package
logits = torch.zeros(5, dtype=torch.float64, requires_grad=True)
pt, qt = torch.tensor(p), torch.tensor(q)
lbfgs = torch.optim.LBFGS([logits], max_iter=500, tolerance_grad=1e-12, line_search_fn="strong_wolfe")


def neg_value() -> torch.Tensor:
    lbfgs.zero_grad()
    loss = (pt * F.softplus(-logits)).sum() + (qt * F.softplus(logits)).sum()  # −V
    loss.backward()
    return loss


lbfgs.step(neg_value)
d_numeric = torch.sigmoid(logits).detach().numpy()
v_star, js = game_value(d_star, p, q), js_divergence(p, q)
print("D* = p/(p+q):    ", d_star.round(4))
print("numerical argmax:", d_numeric.round(4))
print(f"V(D*) = {v_star:.6f},  −log 4 + 2 JS = {-math.log(4) + 2 * js:.6f}  (JS = {js:.4f} nats)")
assert np.allclose(d_numeric, d_star, atol=1e-6)
assert abs(v_star - (-math.log(4) + 2 * js)) < 1e-12
rng = np.random.default_rng(0)
assert all(game_value(rng.uniform(0.01, 0.99, 5), p, q) < v_star for _ in range(1000))
# at Q = P the optimal discriminator is 1/2 everywhere and the value is −log 4, the minimum over Q
assert np.allclose(p / (p + p), 0.5) and abs(game_value(p / (p + p), p, p) + math.log(4)) < 1e-12
assert all(js_divergence(p, rng.dirichlet(np.ones(5))) > 0 for _ in range(100))

# %% [markdown]
# ## 3. Alternating gradient descent, and a saturating loss
#
# In practice neither player is optimal: $D_\theta$ and $G_\phi$ are networks, and the
# expectations are replaced by mini-batch averages. Goodfellow et al.'s algorithm alternates:
#
# > **for** each training iteration:
# > 1. **for** $k$ steps: draw $x_1, \dots, x_m \sim P$ and $z_1, \dots, z_m \sim \mathcal N(0, I)$,
# >    and take a gradient *ascent* step on
# >    $\frac1m \sum_i \big[\log D_\theta(x_i) + \log(1 - D_\theta(G_\phi(z_i)))\big]$ in $\theta$;
# > 2. draw $z_1, \dots, z_m$ and take a gradient *descent* step on
# >    $\frac1m \sum_i \log(1 - D_\theta(G_\phi(z_i)))$ in $\phi$.
#
# `gencourse.gan.train_gan` implements this loop (with $k$ = `n_critic`), for every loss of
# lecture 3.
#
# **The generator's gradient goes through $D$.** Write $D = \sigma(f_\theta)$ and $\hat x =
# G_\phi(z)$. Since $\frac{d}{dt} \log(1 - \sigma(t)) = -\sigma(t)$, the chain rule gives
#
# $$
# \nabla_\phi \log\big(1 - D_\theta(G_\phi(z))\big)
# = -\,D_\theta(\hat x)\; J_\phi G_\phi(z)^{\top}\, \nabla_x f_\theta(\hat x) ,
# $$
#
# where $J_\phi G_\phi(z)$ is the Jacobian of the sample with respect to the generator's weights.
# The generator learns only through $\nabla_x f_\theta$, the direction in which the
# discriminator's score increases, scaled by $D_\theta(\hat x)$. **Early in training** the
# samples are poor, the discriminator rejects them confidently, $D_\theta(\hat x) \approx 0$, and
# the gradient vanishes: the minimax loss *saturates* exactly when the generator most needs to
# learn. The fix proposed in the same paper is the **non-saturating** loss: the generator
# maximises $\log D(G(z))$ instead of minimising $\log(1 - D(G(z)))$. Since
# $\frac{d}{dt}\big[-\log \sigma(t)\big] = -(1 - \sigma(t))$,
#
# $$
# \nabla_\phi \big[-\log D_\theta(G_\phi(z))\big]
# = -\,\big(1 - D_\theta(\hat x)\big)\; J_\phi G_\phi(z)^{\top}\, \nabla_x f_\theta(\hat x) ,
# $$
#
# the same direction, scaled by $1 - D \approx 1$ where the minimax loss has $D \approx 0$. Both
# losses are decreasing functions of $D(\hat x)$, so they push the generator the same way, and
# the fixed point $Q = P$, $D \equiv \frac12$ is the same. The cell below checks the two scale
# factors with autograd through `gencourse.gan.generator_loss` (names `"mm"` and `"ns"`).

# %%
d_grid = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
logit_grid = torch.logit(d_grid).requires_grad_(True)
(g_mm,) = torch.autograd.grad(generator_loss("mm", logit_grid) * len(d_grid), logit_grid)
(g_ns,) = torch.autograd.grad(generator_loss("ns", logit_grid) * len(d_grid), logit_grid)
assert torch.allclose(g_mm, -d_grid) and torch.allclose(g_ns, -(1 - d_grid))
print(
    f"at D(G(z)) = 0.01: |∂/∂logit| = {abs(g_mm[9].item()):.3f} (minimax), {abs(g_ns[9].item()):.3f} (non-saturating)"
)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(d_grid, torch.log(1 - d_grid), label="minimax: log(1 − D)")
axes[0].plot(d_grid, -torch.log(d_grid), label="non-saturating: −log D")
axes[0].set_xlabel("D(G(z))")
axes[0].set_title("generator loss (both decrease with D)")
axes[0].legend()
axes[1].semilogy(d_grid, -g_mm, label="minimax: D")
axes[1].semilogy(d_grid, -g_ns, label="non-saturating: 1 − D")
axes[1].set_xlabel("D(G(z))")
axes[1].set_title("|∂ loss / ∂ logit|: the factor on ∇ₓf")
axes[1].legend()
plt.show()

# %% [markdown]
# **The same effect on a network.** We take a freshly initialised generator on a 2-D data set (8
# Gaussians on a circle of radius 2, standard deviation 0.02, as in {cite}`gulrajani2017improved`),
# train only the discriminator against it for a few hundred steps, the situation early in
# training, and then measure the norm of the generator's gradient under each loss. The cell prints
# the mean $D(G(z))$ and both norms, and asserts that the discriminator rejects the samples
# ($\mathbb E\, D(G(z)) < 0.1$) and that the non-saturating gradient is more than five times
# larger.

# %%
ring = ring_mixture(8, radius=2.0, std=0.02)
gen = seed_everything(0)
g_probe, d_probe = MLPGenerator(2, (128, 128), 2), MLPDiscriminator(2, (128, 128))
real_probe = ring.sample(4096, gen)
with torch.no_grad():
    fake_probe = g_probe(sample_latent(4096, 2, gen))


def probe_loss(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {"loss": discriminator_loss("ns", d_probe(real_probe[idx]), d_probe(fake_probe[idx]))}


fit(d_probe, 4096, probe_loss, steps=budget(ci=200, cpu=300, gpu=300), batch_size=256, lr=1e-3, seed=0)
d_probe.requires_grad_(False)
z_probe = sample_latent(1024, 2, gen)
norms = {}
for name in ("mm", "ns"):
    g_probe.zero_grad()
    generator_loss(name, d_probe(g_probe(z_probe))).backward()
    norms[name] = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in g_probe.parameters()))
mean_d = torch.sigmoid(d_probe(g_probe(z_probe))).mean().item()
print(f"E D(G(z)) = {mean_d:.4f}; ‖∇φ L_G‖: minimax {norms['mm']:.2e}, non-saturating {norms['ns']:.2e}")
assert mean_d < 0.1 and norms["ns"] > 5 * norms["mm"]

# %% [markdown]
# ## 4. Why not just regress noise onto data?
#
# A GAN is a detour: two networks and a game, to train a map from noise to data. Why not fit the
# map directly, minimising the squared error between $G(z)$ and data? The data come without
# codes: nothing says which $z$ should produce which image, so $z$ and $x$ are drawn
# independently. For any fixed $z$,
#
# $$
# \begin{aligned}
# \mathbb E_{x}\big\|G(z) - x\big\|^2
# &= \mathbb E_x \big\|G(z) - \bar x + \bar x - x\big\|^2 \\
# &= \big\|G(z) - \bar x\big\|^2 + 2\,\big(G(z) - \bar x\big)^{\top} \mathbb E_x[\bar x - x]
#    + \mathbb E_x\big\|x - \bar x\big\|^2 \\
# &= \big\|G(z) - \bar x\big\|^2 + \mathbb E_x\big\|x - \bar x\big\|^2 ,
# \end{aligned}
# $$
#
# with $\bar x = \mathbb E[x]$ the mean image, because $\mathbb E_x[\bar x - x] = 0$. The loss is
# smallest when $G(z) = \bar x$ for **every** $z$: whatever the network, the best L2 map from
# independent noise to images ignores the noise and outputs the mean image, and its loss can go
# no lower than the total variance $\mathbb E\|x - \bar x\|^2$. (The same holds for any fixed
# random pairing of codes to images once the network generalises rather than memorises: the
# codes carry no information about the images.) Trained below with the generator network used
# for MNIST later in this lecture, with fresh $z$ at every step; the cell asserts that the
# trained map's outputs are within 5 % (in squared distance, relative to the total variance) of
# the mean image, that they hardly vary with $z$ (their spread over $z$ is below 5 % of the data's
# total variance), and that the loss does not go below the floor.

# %%
mnist = load_mnist("train")
images = mnist.images
print(f"{len(images):,} training images ({mnist.source} MNIST)")
x_bar = images.mean(0)
total_var = (images - x_bar).flatten(1).pow(2).sum(1).mean().item()  # E‖x − x̄‖²

seed_everything(0)
regressor = DCGANGenerator(latent_dim=64).to(DEVICE)
images_dev = images.to(DEVICE)


def l2_loss(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    z = sample_latent(len(idx), 64, gen, DEVICE)  # noise drawn independently of the images
    return {"loss": (regressor(z) - images_dev[idx]).flatten(1).pow(2).sum(1).mean()}


l2_history = fit(
    regressor, len(images), l2_loss, steps=budget(ci=150, cpu=600, gpu=2000), batch_size=64, lr=3e-3
)
with torch.no_grad():
    out = regressor(sample_latent(512, 64, torch.Generator().manual_seed(1), DEVICE)).cpu()
to_mean = (out - x_bar).flatten(1).pow(2).sum(1).mean().item()
spread = (out - out.mean(0)).flatten(1).pow(2).sum(1).mean().item()
final_loss = float(np.mean(l2_history["loss"][-20:]))
print(f"E‖x − x̄‖² = {total_var:.2f}; final L2 loss {final_loss:.2f}")
print(
    f"E‖G(z) − x̄‖² = {to_mean:.3f} ({to_mean / total_var:.2%} of the total variance); spread over z {spread:.4f}"
)
assert to_mean < 0.05 * total_var and spread < 0.05 * total_var
assert final_loss > 0.95 * total_var  # the floor cannot be beaten (up to mini-batch noise)

fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), gridspec_kw={"width_ratios": [1, 6]})
show_images(x_bar[None], nrow=1, ax=axes[0], title="mean image x̄")
show_images(out[:12], nrow=12, ax=axes[1], title="G(z) for 12 draws of z, after L2 regression")
plt.show()

# %% [markdown]
# A GAN avoids this because its generator is never compared with a particular image: it is only
# asked to produce samples that the discriminator cannot tell from real ones *as a set*, and the
# mean image, which looks like no digit, is easy to tell apart.
#
# ## 5. Training GANs
#
# ### A GAN on a 2-D mixture
#
# Both networks are small MLPs (two hidden layers of 128 units; `gencourse.gan.MLPGenerator` and
# `MLPDiscriminator`), $z \in \mathbb R^2$, the non-saturating loss, Adam with learning rate
# $10^{-3}$ and $\beta = (0.5, 0.9)$, batches of 256, one discriminator step per generator step
# ($k = 1$). A sample is counted as *high quality* if it lies within three standard deviations of
# its nearest mode, and a mode as *captured* if it has at least one high-quality sample among
# 2,500 (the protocol of {cite}`lin2018pacgan`).


# %%
def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, std: float) -> tuple[int, float]:
    """(modes captured, fraction of high-quality samples): a sample is high quality if within
    3 std of its nearest centre; a mode is captured if it has one high-quality sample."""
    dist, nearest = torch.cdist(samples, centers).min(1)
    good = dist < 3 * std
    return len(set(nearest[good].tolist())), good.float().mean().item()


RING_STEPS = budget(ci=400, cpu=4000, gpu=10_000)
seed_everything(0)
g_ring, d_ring = MLPGenerator(2, (128, 128), 2).to(DEVICE), MLPDiscriminator(2, (128, 128)).to(DEVICE)
z_show = sample_latent(2500, 2, torch.Generator().manual_seed(1), DEVICE)
snapshots = {}


def snapshot(step: int, g: torch.nn.Module, d: torch.nn.Module) -> None:
    if (step + 1) in {1, RING_STEPS // 8, RING_STEPS // 2, RING_STEPS}:
        with torch.no_grad():
            snapshots[step + 1] = g(z_show).cpu()


with torch.no_grad():
    start_samples = g_ring(z_show).cpu()
t = time.perf_counter()
ring_history = train_gan(
    g_ring, d_ring, ring.sample, 2, RING_STEPS, loss="ns", lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.9),
    batch_size=256, seed=0, callback=snapshot,
)  # fmt: skip
ring_time = time.perf_counter() - t
modes, hq = mode_coverage(snapshots[RING_STEPS], ring.centers, ring.std)
start_dist = torch.cdist(start_samples, ring.centers).min(1).values.mean().item()
end_dist = torch.cdist(snapshots[RING_STEPS], ring.centers).min(1).values.mean().item()
print(f"{RING_STEPS} steps in {ring_time:.0f} s: {modes}/8 modes captured, {hq:.1%} high-quality samples")
print(f"mean distance to the nearest mode: {start_dist:.3f} at initialisation, {end_dist:.3f} after training")
assert end_dist < 0.5 * start_dist
if LEVEL != "ci":
    assert modes >= 7 and hq > 0.3

# %%
fig, axes = plt.subplots(
    1, len(snapshots) + 1, figsize=(3.2 * (len(snapshots) + 1), 3.2), sharex=True, sharey=True
)
real_show = ring.sample(2500, torch.Generator().manual_seed(2))
axes[0].scatter(real_show[:, 0], real_show[:, 1], s=2, c="k")
axes[0].set_title("data")
for ax, (step, s) in zip(axes[1:], sorted(snapshots.items()), strict=True):
    ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.5)
    ax.scatter(ring.centers[:, 0], ring.centers[:, 1], marker="x", c="r", s=20)
    ax.set_title(f"G(z) after {step} steps")
for ax in axes:
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
plt.show()
plot_history(ring_history, ["d_loss", "g_loss"], smooth=50)
plt.axhline(2 * math.log(2), color="k", ls=":", lw=1)
plt.title("2-D GAN: losses (dotted: 2 log 2 = L_D at D ≡ ½)")
plt.show()

# %% [markdown]
# The dotted line is the discriminator's loss at the equilibrium of Section 2,
# $-V = \log 4 = 2 \log 2$, reached when $D \equiv \tfrac12$. GAN losses do not decrease to a
# minimum as a likelihood does: they hover around the equilibrium while the two players adapt to
# each other, so the loss curves say little about sample quality, and one looks at the samples.
#
# ### A DCGAN on MNIST
#
# For images, both players are small convolutional networks in the style of DCGAN
# {cite}`radford2016unsupervised` (`gencourse.nets.DCGANGenerator` and `DCGANDiscriminator`):
# the generator maps $z \in \mathbb R^{64}$ by a linear layer to $64 \times 7 \times 7$ features,
# then two transposed convolutions with stride 2 (batch norm and ReLU between them) up to
# $1 \times 28 \times 28$, with a sigmoid so that pixels lie in $[0, 1]$ like the data; the
# discriminator mirrors it with two strided convolutions and leaky ReLUs, without batch norm.
# Training follows DCGAN's recipe (non-saturating loss, Adam with $\beta = (0.5, 0.999)$, batches
# of 64) except for the learning rate: $10^{-3}$ for both players instead of DCGAN's
# $2 \cdot 10^{-4}$. With these small networks and a few thousand steps, $2 \cdot 10^{-4}$ gave
# visibly worse digits after 3,000 steps in our trials (a departure from the paper, measured by
# eye on sample grids, not by a metric). The networks are much smaller than DCGAN's (the cell
# prints their sizes) so that the `cpu` budget trains in a few minutes.

# %%
MNIST_STEPS = budget(ci=40, cpu=3000, gpu=20_000)
seed_everything(0)
g_mnist, d_mnist = DCGANGenerator(latent_dim=64).to(DEVICE), DCGANDiscriminator().to(DEVICE)
n_params = sum(p.numel() for p in g_mnist.parameters()), sum(p.numel() for p in d_mnist.parameters())
print(f"parameters: generator {n_params[0]:,}, discriminator {n_params[1]:,}")
t = time.perf_counter()
mnist_history = train_gan(
    g_mnist, d_mnist, data_sampler(images_dev), 64, MNIST_STEPS, loss="ns", lr_g=1e-3, lr_d=1e-3, seed=0
)
mnist_time = time.perf_counter() - t
print(f"{MNIST_STEPS} steps in {mnist_time:.0f} s")
with torch.no_grad():
    gan_samples = g_mnist(sample_latent(1000, 64, torch.Generator().manual_seed(1), DEVICE)).cpu()
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
show_images(gan_samples[:64], nrow=8, ax=axes[0], title=f"DCGAN samples after {MNIST_STEPS} steps")
show_images(images[:64], nrow=8, ax=axes[1], title="training images")
plt.show()
plot_history(mnist_history, ["d_loss", "g_loss"], smooth=25)
plt.title("DCGAN on MNIST: losses")
plt.show()

# %% [markdown]
# **Are these digits?** A classifier trained on real digits (`gencourse.nets.MNISTClassifier`)
# gives a yardstick: for each sample we record its predicted class and the classifier's
# confidence (the largest softmax probability). Recognisable digits are classified confidently,
# and a generator that covers the data should produce every class in roughly equal numbers. The
# cell prints the fraction of confident samples (probability above 0.9) for real test digits,
# for the GAN's samples and for the L2 regressor's mean images, and the class histogram of the
# GAN's samples. At the `cpu` budget it asserts that most GAN samples are confidently classified
# and that all ten classes are generated (at `ci` the GAN is trained for seconds only).

# %%
test_set = load_mnist("test")
# the same classifier as lecture 3's: a book build trains it once (gencourse.cache)
classifier = trained_mnist_classifier(
    images_dev, mnist.labels.to(DEVICE), steps=budget(ci=100, cpu=800, gpu=2000), seed=0, device=DEVICE
)
acc = accuracy(classifier, test_set.images, test_set.labels)


@torch.no_grad()
def confident_classes(x: torch.Tensor) -> tuple[float, np.ndarray]:
    """Fraction of images classified with probability > 0.9, and the histogram of classes."""
    prob = torch.softmax(classifier(x.to(DEVICE)), 1).cpu()
    conf, label = prob.max(1)
    return (conf > 0.9).float().mean().item(), np.bincount(label.numpy(), minlength=10)


conf_real, _ = confident_classes(test_set.images)
conf_gan, hist_gan = confident_classes(gan_samples)
conf_l2, _ = confident_classes(out)
print(f"classifier test accuracy {acc:.3f}")
print(
    f"confident (p > 0.9): real test digits {conf_real:.1%}, GAN samples {conf_gan:.1%}, L2 regressor {conf_l2:.1%}"
)
print("GAN class histogram (1000 samples):", hist_gan)
if LEVEL != "ci":
    assert acc > 0.95 and conf_gan > 0.6 and (hist_gan > 0).all()
record(
    "gan/dcgan_confident_fraction",
    conf_gan,
    lecture="02_gan",
    description="DCGAN (non-saturating) samples classified with p > 0.9 by the course's MNIST classifier",
    unit="fraction",
    seeds=[0],
    wall_time_s=mnist_time,
    note=f"{MNIST_STEPS} steps, {len(images):,} training images; real test digits: {conf_real:.3f}",
)

# %% [markdown]
# **Latent interpolation.** The generator is a continuous function of $z$, so walking along the
# straight line $z_t = (1 - t)\, z_0 + t\, z_1$ from one code to another morphs one sample into
# the other. Each row below is such a walk. The cell checks that it is gradual: each of the nine
# steps along a row changes the image by less than half the distance between its two ends.

# %%
gen = torch.Generator().manual_seed(3)
z0, z1 = sample_latent(6, 64, gen, DEVICE), sample_latent(6, 64, gen, DEVICE)
ts = torch.linspace(0, 1, 10, device=DEVICE)
with torch.no_grad():
    z_path = (1 - ts[None, :, None]) * z0[:, None] + ts[None, :, None] * z1[:, None]  # (6, 10, 64)
    walk = g_mnist(z_path.reshape(60, 64)).cpu().view(6, 10, 1, 28, 28)
steps_l2 = (walk[:, 1:] - walk[:, :-1]).flatten(2).norm(dim=2)
ends_l2 = (walk[:, -1] - walk[:, 0]).flatten(1).norm(dim=1)
print(f"largest step / end-to-end distance per row: {(steps_l2.max(1).values / ends_l2).numpy().round(2)}")
assert (steps_l2.max(1).values < 0.5 * ends_l2).all()
show_images(walk.reshape(60, 1, 28, 28), nrow=10, title="G((1 − t) z₀ + t z₁), t = 0, 1/9, …, 1")
plt.show()

# %% [markdown]
# ## Summary
#
# * A GAN is a two-player game: the discriminator maximises the log-likelihood of telling data
#   from samples, $V(D, G) = \mathbb E_P \log D(x) + \mathbb E_z \log(1 - D(G(z)))$, and the
#   generator minimises it.
# * The optimal discriminator is $D^* = p/(p + q)$ (logistic regression recovers it when its
#   family contains the log density ratio), and $V(D^*, G) = -\log 4 + 2\,\mathrm{JS}(P\,\|\,Q)$:
#   checked to machine precision on discrete distributions.
# * The minimax generator loss $\log(1 - D(G(z)))$ has gradient factor $D(G(z))$, which vanishes
#   when the discriminator wins; the non-saturating loss $-\log D(G(z))$ has factor
#   $1 - D(G(z))$. Measured on networks, the non-saturating gradient is larger by the factor the
#   cell printed.
# * Regressing independent noise onto images in L2 gives the mean image, provably and in practice.
# * Trained with alternating Adam steps, a small MLP GAN learns a 2-D mixture and a small DCGAN
#   learns MNIST digits that a classifier recognises.
#
# Next: lecture 3 asks what the game minimises when the discriminator is not optimal, or when
# the supports of $P$ and $Q$ do not overlap, and replaces JS by the Wasserstein distance.

# %%
ELAPSED = time.perf_counter() - T0
record_timing("02_gan", ELAPSED)
print(f"lecture run time at budget '{LEVEL}': {ELAPSED:.0f} s")
