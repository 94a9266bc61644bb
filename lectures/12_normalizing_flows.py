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
# # Lecture 12: Normalizing flows
#
# Lecture 0's PixelCNN has an exact likelihood but samples one pixel at a time; lecture 1's VAE
# samples in one pass but only bounds its likelihood; lecture 2's GAN samples in one pass and has
# no likelihood at all. A **normalizing flow** {cite}`rezende2015variational` has both an exact
# likelihood and one-pass sampling. It pushes a simple density through an invertible map and
# keeps track of how the map stretches volume. This lecture derives that bookkeeping and checks
# it against independent computations:
#
# 1. the change-of-variables formula, in one dimension and then with the Jacobian determinant;
#    why exact likelihood needs invertibility and a cheap determinant; triangular Jacobians;
# 2. affine coupling layers (RealNVP {cite}`dinh2017density`): the inverse and the
#    log-determinant derived and checked against `torch.autograd`; permutations, the invertible
#    1×1 convolutions of Glow {cite}`kingma2018glow`, and the multi-scale architecture;
# 3. a flow on the ring and the grid of lecture 4, its density drawn, scored with lecture 4's
#    mode metrics next to a GAN and a PacGAN trained here, and by its exact likelihood;
# 4. MNIST in two forms: binarised digits (the flow's bound in the same nats as the PixelCNN's
#    exact likelihood and the VAE's bound), and 8-bit digits in bits per dimension next to the
#    published numbers; the dequantisation bound {cite}`theis2016note` derived.
#
# Prerequisites: lecture 0 (maximum likelihood, the PixelCNN), lecture 1 (the ELBO, importance
# sampling) and lecture 4 (the ring, the grid and their metrics).
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
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats
from torch.autograd.functional import jacobian

from gencourse.autoregressive import PixelCNN, log_likelihood, train_pixelcnn
from gencourse.data import binarize, grid_mixture, load_mnist, ring_mixture
from gencourse.flows import AffineCoupling, RealNVP, bits_per_dim, dequantize
from gencourse.lecture import start
from gencourse.mixtures import fit_gaussian, gaussian_log_density
from gencourse.pacgan import (
    MIXTURE_CPU_PROTOCOL,
    beyond_spread,
    final_run_stats,
    gaussian_fit_samples,
    mean_std,
    mode_stats,
    mode_stats_over_draws,
    runs_invalid_reason,
    train_mixture_setting,
    uniform_box_samples,
)
from gencourse.plotting import plot_history, show_images
from gencourse.report import record
from gencourse.runtime import budget, fit, seed_everything
from gencourse.vae import elbo_terms, importance_log_likelihood, trained_mnist_vae

# %%
# the budget level and the device every number below was computed with; starts the clock
LECTURE = start("12_normalizing_flows")
LEVEL, DEVICE = LECTURE.level, LECTURE.device

# %% [markdown]
# ## 1. Change of variables
#
# ### 1.1 In one dimension
#
# Let $Z$ have density $p_Z$ on $\mathbb R$, and let $x = g(z)$ with $g$ differentiable and
# strictly increasing, so that it has an inverse $f = g^{-1}$, also increasing. Then
# $X = g(Z) \le x$ exactly when $Z \le f(x)$, so the cumulative distribution functions agree:
#
# $$
# F_X(x) = \Pr(g(Z) \le x) = \Pr(Z \le f(x)) = F_Z(f(x)).
# $$
#
# Differentiating both sides in $x$ (chain rule) gives the density
#
# $$
# p_X(x) = p_Z(f(x))\, f'(x).
# $$
#
# If $g$ is strictly decreasing instead, $\Pr(g(Z) \le x) = \Pr(Z \ge f(x)) = 1 - F_Z(f(x))$, whose
# derivative is $-p_Z(f(x)) f'(x)$ with $f'(x) < 0$. Both cases are
#
# $$
# p_X(x) = p_Z(f(x))\, \lvert f'(x) \rvert, \qquad
# \log p_X(x) = \log p_Z(f(x)) + \log \lvert f'(x) \rvert .
# $$
#
# The factor $\lvert f'(x)\rvert$ is what keeps the total mass at one: where $f$ stretches an
# interval of $x$ into a longer interval of $z$, the probability of that $z$-interval is spread
# over a shorter $x$-interval, so the density of $x$ is higher by the stretch factor.
#
# **Example.** $Z \sim \mathcal N(0, 1)$ and $X = e^Z$. Then $f(x) = \log x$, $f'(x) = 1/x$ and
#
# $$
# p_X(x) = \frac{1}{x \sqrt{2\pi}}\, e^{-(\log x)^2 / 2}, \qquad x > 0,
# $$
#
# the log-normal density. The cell checks it against `scipy.stats.lognorm`, against a histogram of
# $e^Z$ for $2 \times 10^5$ draws of $Z$, and shows what forgetting the factor does: by
# quadrature, $\int_0^\infty p_Z(\log x)\, dx = \int e^{w} p_Z(w)\, dw = \mathbb E[e^Z] = e^{1/2}
# \approx 1.65$ (substituting $x = e^w$), not $1$.

# %%
xs = np.geomspace(1e-4, 2_000, 400_001)  # the mass outside [1e-4, 2000] is below 1e-9
p_formula = stats.norm.pdf(np.log(xs)) / xs  # p_Z(f(x)) |f'(x)|
assert np.allclose(p_formula, stats.lognorm(s=1.0).pdf(xs), rtol=1e-10, atol=1e-300)

z_draws = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
edges = np.linspace(0, 5, 51)
counts, _ = np.histogram(z_draws.exp().numpy(), bins=edges)
mass = np.diff(stats.lognorm(s=1.0).cdf(edges))  # exact probability of each bin
se = np.sqrt(mass * (1 - mass) / len(z_draws))
assert np.all(np.abs(counts / len(z_draws) - mass) < 5 * se)  # the histogram agrees bin by bin

with_jacobian = np.trapezoid(p_formula, xs)
without_jacobian = np.trapezoid(stats.norm.pdf(np.log(xs)), xs)
print(
    f"∫ p_Z(log x)·(1/x) dx = {with_jacobian:.4f};  ∫ p_Z(log x) dx = {without_jacobian:.4f} (e^½ = {math.exp(0.5):.4f})"
)
assert abs(with_jacobian - 1) < 1e-6 and abs(without_jacobian - math.exp(0.5)) < 1e-6

fig, ax = plt.subplots(figsize=(6.5, 3.5))
ax.bar(
    edges[:-1],
    counts / len(z_draws) / np.diff(edges),
    width=np.diff(edges),
    align="edge",
    alpha=0.4,
    label="histogram of exp(Z)",
)
grid_x = np.linspace(0.01, 5, 400)
ax.plot(grid_x, stats.norm.pdf(np.log(grid_x)) / grid_x, "C3", label="p_Z(log x) / x")
ax.plot(grid_x, stats.norm.pdf(np.log(grid_x)), "k--", lw=1, label="p_Z(log x): Jacobian forgotten")
ax.set(xlabel="x", ylabel="density", title="change of variables in 1-D: X = exp(Z)")
ax.legend()
plt.show()  # fmt: skip

# %% [markdown]
# ### 1.2 In $D$ dimensions: the Jacobian determinant
#
# Now $f: \mathbb R^D \to \mathbb R^D$ is a differentiable bijection with a differentiable
# inverse, and $z = f(x)$ with $z \sim p_Z$. Take a small box $B$ around $x$ with volume
# $\mathrm{vol}(B)$. Near $x$, $f$ is its linearisation, $f(x + \delta) \approx f(x) + J_f(x)\,\delta$
# with the Jacobian matrix $J_f(x)_{ij} = \partial f_i / \partial x_j$, so $f$ maps $B$ to
# (approximately) a parallelepiped around $z$ spanned by the columns of $J_f(x)$ times the box's
# sides, of volume $\lvert \det J_f(x) \rvert\, \mathrm{vol}(B)$ (a linear map $A$ scales every
# volume by $\lvert\det A\rvert$). The event "$X \in B$" is the event "$Z \in f(B)$", so their
# probabilities are equal:
#
# $$
# p_X(x)\, \mathrm{vol}(B) \approx p_Z(f(x))\, \lvert \det J_f(x) \rvert\, \mathrm{vol}(B).
# $$
#
# Dividing by $\mathrm{vol}(B)$ and shrinking $B$ to the point $x$ gives the change-of-variables
# formula
#
# $$
# \boxed{\;\log p_X(x) = \log p_Z(f(x)) + \log \lvert \det J_f(x) \rvert\;}
# $$
#
# which is the one-dimensional formula with $\lvert f'(x)\rvert$ replaced by
# $\lvert\det J_f(x)\rvert$. A **flow** composes $K$ such maps, $f = f_K \circ \dots \circ f_1$.
# By the chain rule the Jacobian of the composition is the product
# $J_f(x) = J_{f_K}(h_{K-1}) \cdots J_{f_1}(h_0)$ of the layers' Jacobians at the intermediate
# points $h_0 = x$, $h_k = f_k(h_{k-1})$, and since $\det(AB) = \det A \det B$ the
# log-determinants add:
#
# $$
# \log p_X(x) = \log p_Z(z) + \sum_{k=1}^K \log \lvert \det J_{f_k}(h_{k-1}) \rvert, \qquad z = h_K .
# $$
#
# The base density here is $p_Z = \mathcal N(0, I)$, $\log p_Z(z) = -\tfrac12 \lVert z\rVert^2 -
# \tfrac D2 \log 2\pi$. **Sampling** runs the other way: draw $z \sim p_Z$ and return
# $x = f^{-1}(z)$. ("Normalizing": $f$ turns the data into a standard normal.)
#
# **Check on a linear flow.** For $z = A x + b$ with $A$ invertible and $z \sim \mathcal N(0, I)$,
# $x = A^{-1}(z - b)$ is Gaussian with mean $-A^{-1} b$ and covariance $A^{-1} A^{-\top} =
# (A^\top A)^{-1}$; the formula must give exactly its log-density (scipy's
# `multivariate_normal`), and for the composition of two linear layers the sum of the two
# log-determinants must equal the log-determinant of the product.

# %%
rng = np.random.default_rng(0)
A, b = rng.normal(size=(2, 2)) + 2 * np.eye(2), rng.normal(size=2)
x_pts = rng.normal(size=(6, 2)) * 2
z_pts = x_pts @ A.T + b
log_p_flow = stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(z_pts) + np.log(abs(np.linalg.det(A)))
exact = stats.multivariate_normal(-np.linalg.solve(A, b), np.linalg.inv(A.T @ A)).logpdf(x_pts)
assert np.allclose(log_p_flow, exact, atol=1e-12)
A2 = rng.normal(size=(2, 2)) + np.eye(2)
assert math.isclose(
    np.log(abs(np.linalg.det(A2 @ A))),
    np.log(abs(np.linalg.det(A2))) + np.log(abs(np.linalg.det(A))),
    abs_tol=1e-12,
)
print("linear flow: change of variables = the Gaussian's exact log-density; log-determinants add")

# %% [markdown]
# ### 1.3 What exact likelihood needs: invertibility and a cheap determinant
#
# Training by maximum likelihood evaluates $\log p_X(x_i)$ and its gradient for every training
# point, and sampling evaluates $f^{-1}$. So each layer must be
#
# * **invertible**, with an inverse we can compute (for sampling; for the likelihood it is enough
#   that the inverse exists), and
# * of **cheap log-determinant**: for a general $D \times D$ Jacobian, $\log\lvert\det J\rvert$
#   costs $O(D^3)$ operations (an LU decomposition), per data point, per layer, plus its
#   gradient. On MNIST, $D = 784$.
#
# **Triangular Jacobians** solve the second problem. If $f_i$ depends only on $x_1, \dots, x_i$,
# then $J_{ij} = 0$ for $j > i$: $J$ is lower triangular, and the determinant of a triangular
# matrix is the product of its diagonal (expand along the first row, repeatedly), so
#
# $$
# \log \lvert\det J_f(x)\rvert = \sum_{i=1}^D \log \left\lvert \frac{\partial f_i}{\partial x_i}\right\rvert ,
# $$
#
# $O(D)$ once the diagonal is known. Lecture 0's PixelCNN had exactly this structure (its
# Jacobian was strictly lower triangular); *autoregressive flows* (MAF, IAF) build on it. The
# cell checks the identity on a random lower-triangular $784 \times 784$ matrix against a general
# determinant routine, and times both.

# %%
D = 784
L_tri = torch.tril(torch.randn(D, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
L_tri.diagonal().copy_(torch.rand(D, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5)
t = time.perf_counter()
_, general = torch.linalg.slogdet(L_tri)
t_general = time.perf_counter() - t
t = time.perf_counter()
diagonal = torch.log(L_tri.diagonal().abs()).sum()
t_diag = time.perf_counter() - t
print(f"log|det| of a 784×784 triangular matrix: LU {general.item():.6f} ({1e3 * t_general:.2f} ms), "
      f"sum over the diagonal {diagonal.item():.6f} ({1e3 * t_diag:.3f} ms)")  # fmt: skip
assert math.isclose(general.item(), diagonal.item(), rel_tol=1e-10)

# %% [markdown]
# ## 2. Affine coupling layers (RealNVP)
#
# ### 2.1 The layer, its inverse and its log-determinant
#
# Split the coordinates of $x \in \mathbb R^D$ with a binary mask $m \in \{0, 1\}^D$ into the part
# that is **kept**, $x_1 = (x_i)_{m_i = 1}$, and the part that is **transformed**,
# $x_2 = (x_i)_{m_i = 0}$. The affine coupling layer of Dinh, Sohl-Dickstein and Bengio
# {cite}`dinh2017density` is
#
# $$
# y_1 = x_1, \qquad y_2 = x_2 \odot \exp\big(s(x_1)\big) + t(x_1),
# $$
#
# where $s$ and $t$ map the kept part to one log-scale and one shift per transformed coordinate,
# and $\odot$ is the elementwise product. In the mask's notation (with $s$ and $t$ set to $0$ on
# the kept coordinates), $y = m \odot x + (1 - m) \odot \big(x \odot e^{s(m \odot x)} + t(m \odot x)\big)$.
#
# *Inverse.* The kept part passes unchanged, so from $y$ we read $x_1 = y_1$, hence we can compute
# $s(x_1) = s(y_1)$ and $t(x_1) = t(y_1)$, and solve the second equation for $x_2$:
#
# $$
# x_1 = y_1, \qquad x_2 = \big(y_2 - t(y_1)\big) \odot \exp\big(-s(y_1)\big).
# $$
#
# Neither $s$ nor $t$ is ever inverted: they can be any networks.
#
# *Log-determinant.* Order the coordinates kept-first. Then
#
# $$
# J = \frac{\partial (y_1, y_2)}{\partial (x_1, x_2)} =
# \begin{pmatrix} I & 0 \\[2pt] \dfrac{\partial y_2}{\partial x_1} & \operatorname{diag}\big(e^{s(x_1)}\big) \end{pmatrix}:
# $$
#
# the top rows are those of the identity ($y_1 = x_1$), the top right block is zero ($y_1$ does
# not depend on $x_2$), and $y_{2,j} = x_{2,j}\, e^{s_j(x_1)} + t_j(x_1)$ depends on $x_2$ only
# through $x_{2,j}$, with derivative $e^{s_j(x_1)}$. The matrix is block lower triangular, so its
# determinant is the product of the determinants of the diagonal blocks:
#
# $$
# \log \lvert \det J \rvert = \log\det I + \log \prod_j e^{s_j(x_1)} = \sum_j s_j(x_1).
# $$
#
# The block $\partial y_2 / \partial x_1$, the only complicated part of $J$, never enters. A
# reordering of coordinates is a permutation of rows and columns, which does not change
# $\lvert\det\rvert$, so the formula holds for any mask.
#
# `gencourse.flows.AffineCoupling(dim, hidden, mask)` implements the layer with one MLP
# $D \to$ `hidden` $\to$ `hidden` $\to 2D$ for $(s, t)$, and bounds the log-scale as
# $s = \text{scale} \odot \tanh(\cdot)$ with a learnable scale per coordinate (a common choice in
# RealNVP implementations, which keeps early training stable); its last layer starts at zero,
# so a fresh layer is the identity. The cell takes a layer with **random** weights in float64,
# computes its full Jacobian with `torch.autograd.functional.jacobian`, and checks the block
# structure, the log-determinant (against `torch.linalg.slogdet` of the whole matrix) and the
# inverse.


# %%
def randomise_(module: torch.nn.Module, seed: int, std: float = 0.5) -> torch.nn.Module:
    """Redraw every parameter N(0, std²) in float64 (a fresh coupling is the identity, which
    would make every check below trivial)."""
    gen = torch.Generator().manual_seed(seed)
    module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return module


mask = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])  # keep x₀ and x₂; transform x₁, x₃, x₄
layer = randomise_(AffineCoupling(5, 16, mask), seed=0)
x5 = torch.randn(4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
y5, log_det5 = layer(x5)
kept, free = mask.bool(), ~mask.bool()
for i in range(len(x5)):
    J = jacobian(lambda v: layer(v[None])[0][0], x5[i])  # J[a, b] = ∂y_a / ∂x_b
    assert torch.equal(J[kept], torch.eye(5, dtype=torch.float64)[kept])  # rows of kept outputs: identity
    block = J[free][:, free]  # ∂y₂/∂x₂ must be diagonal, with entries exp(s)
    assert torch.equal(block, torch.diag(torch.diagonal(block)))
    assert math.isclose(torch.linalg.slogdet(J)[1].item(), log_det5[i].item(), abs_tol=1e-12)
    assert math.isclose(torch.log(torch.diagonal(block)).sum().item(), log_det5[i].item(), abs_tol=1e-12)
assert torch.allclose(layer.inverse(y5), x5, atol=1e-14)
print(f"Jacobian at the first point (rows: outputs; kept outputs 0 and 2):\n{J.numpy().round(3)}")
print(f"log|det J| from the layer {log_det5[-1].item():.6f}, from slogdet of the autograd Jacobian "
      f"{torch.linalg.slogdet(J)[1].item():.6f}")  # fmt: skip

# %% [markdown]
# ### 2.2 Stacking layers: alternating masks, permutations and 1×1 convolutions
#
# One coupling layer leaves $x_1$ unchanged, so a flow alternates the roles: the next layer keeps
# what this one transformed. `gencourse.flows.RealNVP(dim, hidden, n_layers)` stacks `n_layers`
# couplings with the masks $m^{(k)}_i = (i + k) \bmod 2$ (even coordinates kept in the first
# layer, odd ones in the second, and so on), and the log-determinants add as in Section 1.2. The
# cell checks a stack of six layers the same way as the single layer.

# %%
flow6 = randomise_(RealNVP(6, 12, 6), seed=2, std=0.4)
x6 = torch.randn(3, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
z6, log_det6 = flow6(x6)
for i in range(len(x6)):
    J = jacobian(lambda v: flow6(v[None])[0][0], x6[i])
    assert math.isclose(torch.linalg.slogdet(J)[1].item(), log_det6[i].item(), abs_tol=1e-10)
assert torch.allclose(flow6.inverse(z6), x6, atol=1e-12)
log_p6 = flow6.log_prob(x6)
assert torch.allclose(log_p6, torch.distributions.Normal(0.0, 1.0).log_prob(z6).sum(1) + log_det6, atol=1e-12)
print("six coupling layers: log-determinant = slogdet of the autograd Jacobian; inverse exact")

# %% [markdown]
# Alternating two fixed masks is one way to let every coordinate influence every other one.
# Others:
#
# * **Permutations.** Between couplings, permute the coordinates (reverse them, or shuffle them
#   at random once and for all). A permutation matrix $P$ has $\det P = \pm 1$, so it adds
#   $\log\lvert\det P\rvert = 0$ to the log-likelihood and costs nothing.
# * **Invertible 1×1 convolutions** (Glow {cite}`kingma2018glow`). On an image with $c$ channels,
#   a permutation of the channels is a special $c \times c$ matrix applied at every pixel; Glow
#   *learns* the matrix, $y_{:, h, w} = W x_{:, h, w}$ for every pixel $(h, w)$, a 1×1
#   convolution. Its Jacobian is block diagonal with $H \cdot W$ copies of $W$ (one block per
#   pixel, after ordering coordinates pixel by pixel), so
#   $\log\lvert\det J\rvert = H\, W \log\lvert\det W\rvert$: a $c \times c$ determinant instead of a
#   $cHW \times cHW$ one. (Glow also writes $W = P L (U + \operatorname{diag} s)$ with $P$ a fixed
#   permutation, $L$ unit lower and $U$ strictly upper triangular, which makes the log-determinant
#   $\sum_i \log\lvert s_i\rvert$.) The cell checks this formula against the full Jacobian of a
#   1×1 convolution on a $3 \times 4 \times 5$ image, and that a permutation adds nothing.
# * **Multi-scale architecture** (RealNVP on images). The couplings use *convolutional* $s, t$
#   networks, with a checkerboard mask (pixels with $h + w$ even kept) or a channel mask (half of
#   the channels kept). A *squeeze* operation reshapes each $2 \times 2 \times c$ block into
#   $1 \times 1 \times 4c$, trading resolution for channels. After a few couplings at one scale,
#   half of the variables are *factored out*: they are declared final latent variables (modelled
#   by the base density directly) and only the other half goes on to the next, coarser scale. The
#   log-determinant of every step is cheap as above, the later scales are cheaper because they
#   see fewer variables, and the latent variables come at several scales, from fine detail to
#   global structure.
#
# The flows trained below are the simplest member of the family: MLP couplings on the flattened
# vector with alternating masks, no convolutions, no squeeze and no multi-scale structure. This
# is a departure from the paper's image architecture, and the reason why we do not expect its
# numbers.

# %%
C, H, W = 3, 4, 5
weight = torch.randn(C, C, generator=torch.Generator().manual_seed(4), dtype=torch.float64)


def conv1x1(flat: torch.Tensor, w: torch.Tensor = weight) -> torch.Tensor:
    """y[:, h, w] = W x[:, h, w] at every pixel, on a flattened C·H·W vector."""
    return torch.einsum("ij,jhw->ihw", w, flat.view(C, H, W)).reshape(-1)


x_img = torch.randn(C * H * W, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
J_conv = jacobian(conv1x1, x_img)  # (60, 60)
full = torch.linalg.slogdet(J_conv)[1].item()
cheap = H * W * torch.linalg.slogdet(weight)[1].item()
print(
    f"1×1 convolution on a {C}×{H}×{W} image: log|det J| = {full:.6f} (60×60 Jacobian), H·W·log|det W| = {cheap:.6f}"
)
assert math.isclose(full, cheap, rel_tol=1e-10)
perm = torch.randperm(C, generator=torch.Generator().manual_seed(6))
J_perm = jacobian(lambda v: conv1x1(v, torch.eye(C, dtype=torch.float64)[perm]), x_img)
assert math.isclose(torch.linalg.slogdet(J_perm)[1].item(), 0.0, abs_tol=1e-12)  # a permutation adds nothing


# %% [markdown]
# ## 3. A flow on the ring and the grid of lecture 4
#
# Lecture 4's two benchmarks are mixtures of Gaussians in the plane: a **ring** of 8 modes on the
# unit circle with standard deviation 0.01, and a **grid** of 25 modes at $\{-4, -2, 0, 2, 4\}^2$
# with standard deviation 0.05 (`gencourse.data.ring_mixture`, `grid_mixture`), each learned from
# a fixed training set of 100,000 points (the same points as lecture 4). What should we expect of
# a flow here?
#
# * **Maximum likelihood covers modes.** Training maximises the average $\log q(x_i)$ over the
#   data, which (lecture 0) minimises $\mathrm{KL}(p_{\text{data}} \,\|\, q)$. A model that puts
#   almost no mass on a mode pays a large $-\log q(x)$ on every training point of that mode:
#   unlike a GAN's generator, a flow cannot drop a mode cheaply.
# * **A flow cannot separate the modes completely.** $x = f^{-1}(z)$ is a continuous bijection of
#   the plane, and the density it produces, $q(x) = p_Z(f(x))\, \lvert\det J_f(x)\rvert$, is
#   positive everywhere. The 25 islands of the grid are the image of one connected Gaussian
#   blob: between them the flow keeps bridges of low density, and to make the islands as narrow
#   as the data's ($0.05$ against a spacing of $2$) it must stretch space by large factors,
#   which takes many layers and many updates. So we expect all modes captured, and fewer
#   high-quality samples than the true mixture gives.
#
# Both are measured with lecture 4's code (`gencourse.pacgan.mode_stats`, 2,500 samples): modes
# captured, the share of high-quality samples (within 3 standard deviations of their nearest
# mode), and the reverse KL of the high-quality samples' histogram over the modes; modes and
# reverse KL are read only when at least 70 % of the samples are of high quality (lecture 4's
# rule). A flow also has what a GAN lacks, an exact density, so we measure one more number,
# $\mathrm{KL}(p_{\text{data}} \,\|\, q) = \mathbb E_{p_{\text{data}}}[\log p_{\text{data}}(x) - \log q(x)]$,
# estimated on 20,000 fresh points, since the true mixture's density is known
# (`Mixture2D.log_density`): it is the number maximum likelihood minimises, and $0$ for the true
# mixture.
#
# **Pre-processing, and a trap.** The flow is trained on standardised points,
# $(x - \bar x)/\hat\sigma$ (one mean per coordinate and one overall scale, from the training set),
# rotated by 45°. Both steps are fixed layers of the model: the scaling multiplies areas by
# $\hat\sigma^{-2}$ and the rotation preserves them, so
# $\log q(x) = \log q_{\text{flow}}\big(R\,(x - \bar x)/\hat\sigma\big) - 2 \log\hat\sigma$. Why
# rotate? A fresh `RealNVP` is the identity (its couplings' last layers start at zero), and on the
# grid the two coordinates are **independent** with mean $0$ and variance $1$ after
# standardisation. The first coupling changes $x_0$ by $x_0 e^{s(x_1)} + t(x_1)$; at the identity,
# the derivative of the loss $\tfrac12 \lVert z \rVert^2 - \log\lvert\det J\rvert$ with respect to
# $t$ is $z_0 = x_0$ and with respect to $s$ is $x_0^2 - 1$, so the expected gradient of the
# network that produces $t(x_1)$ and $s(x_1)$ is a multiple of $\mathbb E[x_0\, h(x_1)] =
# \mathbb E[x_0]\, \mathbb E[h(x_1)] = 0$ and $\mathbb E[(x_0^2 - 1)\, h(x_1)] = 0$ for any feature
# $h$ of $x_1$: the identity is a **stationary point**, and training moves away from it only by
# the noise of mini-batches. Rotated by 45°, the grid's coordinates are no longer independent.
# The cell measures the full-batch gradient at initialisation both ways.

# %%
MIXTURES = {"ring": ring_mixture(), "grid": grid_mixture()}
TRAIN_SETS = {name: mix.sample(100_000, torch.Generator().manual_seed(1)) for name, mix in MIXTURES.items()}
TEST_SETS = {name: mix.sample(20_000, torch.Generator().manual_seed(3)) for name, mix in MIXTURES.items()}
N_EVAL = 2_500  # samples scored by mode_stats, as in lecture 4
ROTATION = torch.tensor([[1.0, -1.0], [1.0, 1.0]]) / math.sqrt(2)  # 45°, det = 1
FLOW_2D = budget(
    ci=dict(hidden=16, n_layers=4, steps=150, batch=256, lr=2e-3),
    cpu=dict(hidden=64, n_layers=8, steps=2_000, batch=256, lr=2e-3),
    gpu=dict(hidden=64, n_layers=8, steps=5_000, batch=512, lr=1e-3),
)
FLOW_SEEDS = list(range(budget(ci=2, cpu=3, gpu=5)))
print(f"flow at budget '{LEVEL}': {FLOW_2D}; seeds {FLOW_SEEDS}")


def standardise(name: str, x: torch.Tensor, rotate: bool = True) -> torch.Tensor:
    """R (x − x̄)/σ̂ with the training set's mean and overall standard deviation."""
    data = TRAIN_SETS[name]
    z = (x - data.mean(0)) / data.std()
    return z @ ROTATION.T if rotate else z


def initial_gradient_norm(name: str, rotate: bool) -> float:
    """‖∇θ mean(−log q)‖ over all 100,000 training points, for a fresh RealNVP (the identity)."""
    seed_everything(0)
    flow = RealNVP(2, FLOW_2D["hidden"], FLOW_2D["n_layers"])
    loss = -flow.log_prob(standardise(name, TRAIN_SETS[name], rotate)).mean()
    return float(torch.sqrt(sum(g.pow(2).sum() for g in torch.autograd.grad(loss, list(flow.parameters())))))


grad_plain, grad_rotated = initial_gradient_norm("grid", False), initial_gradient_norm("grid", True)
print(
    f"grid, fresh flow: full-batch gradient norm {grad_plain:.4f} (standardised), {grad_rotated:.4f} (rotated by 45°)"
)
assert (
    grad_rotated > 10 * grad_plain
)  # the identity is (up to sampling noise) stationary without the rotation

# %% [markdown]
# Training is maximum likelihood by Adam with a cosine learning-rate decay
# (`gencourse.runtime.fit`), one run per seed.


# %%
def train_flow_2d(name: str, seed: int) -> dict:
    """A RealNVP fitted by maximum likelihood to the standardised, rotated training set of ``name``."""
    x = standardise(name, TRAIN_SETS[name]).to(DEVICE)
    seed_everything(seed)
    flow = RealNVP(2, FLOW_2D["hidden"], FLOW_2D["n_layers"]).to(DEVICE)

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"loss": -flow.log_prob(x[idx]).mean()}

    t = time.perf_counter()
    history = fit(
        flow, len(x), loss_fn, FLOW_2D["steps"], FLOW_2D["batch"], lr=FLOW_2D["lr"], seed=seed,
        desc=f"flow {name} seed {seed}", schedule="cosine",
    )  # fmt: skip
    return {"flow": flow, "name": name, "seconds": time.perf_counter() - t, "history": history}


@torch.no_grad()
def flow_log_density(run: dict, x: torch.Tensor) -> torch.Tensor:
    """log q(x) = log q_flow(R (x − x̄)/σ̂) − 2 log σ̂ for points x (n, 2) on the CPU."""
    z = standardise(run["name"], x).to(DEVICE)
    return run["flow"].log_prob(z).cpu() - 2 * math.log(float(TRAIN_SETS[run["name"]].std()))


def flow_samples(run: dict, n: int, seed: int) -> torch.Tensor:
    """n samples x = σ̂ Rᵀ f⁻¹(z) + x̄, z ~ N(0, I), on the CPU."""
    data = TRAIN_SETS[run["name"]]
    z = run["flow"].sample(n, torch.Generator().manual_seed(seed)).cpu()
    return (z @ ROTATION) * data.std() + data.mean(0)


FLOWS = {(name, seed): train_flow_2d(name, seed) for name in MIXTURES for seed in FLOW_SEEDS}
FLOW_STATS = {}
for (name, seed), run in FLOWS.items():
    mix, test = MIXTURES[name], TEST_SETS[name]
    found = mode_stats(flow_samples(run, N_EVAL, 100 + seed), mix.centers, mix.std)
    kl = float((mix.log_density(test).double() - flow_log_density(run, test).double()).mean())
    FLOW_STATS[name, seed] = {**found, "high_quality": 100 * found["high_quality"], "kl": kl}
    print(f"{name}, seed {seed}: {run['seconds']:.0f} s; {found['modes']} modes, "
          f"{100 * found['high_quality']:.1f} % high quality, KL(p‖q) = {kl:.2f} nats")  # fmt: skip

# %% [markdown]
# **A GAN and a PacGAN on the same data, trained here.** To put the flow in the same table as
# lecture 4's models, the next cell trains a GAN and PacGAN2 (packing $m = 2$) on the same
# training sets with lecture 4's networks and code (`gencourse.pacgan.train_mixture_setting`, which
# trains them with `train_pacgan`: a generator with three hidden layers of 64 units, a maxout
# discriminator with three layers of 48 units and 5 pieces, Adam with $\beta = (0.5, 0.9)$ and learning rates $10^{-3}$ for the generator and
# $10^{-2}$ for the discriminator, decayed linearly to a tenth over the run), the runs of each
# setting trained at once as an ensemble, as there. To fit this lecture's budget the `cpu` level
# runs them for half of lecture 4's 4,000 updates and 3 runs per setting instead of 5 (the cell
# prints the protocol); lecture 4 has the full comparison (PacGAN3 and 4, the unrolled GAN, the
# controls, the curves over training).
#
# **Trivial baselines on the same metrics**, as in lecture 4: uniform noise on the data's
# bounding box, the single Gaussian fitted to the training set by maximum likelihood (which also
# has a density, so it gets a KL too), and the true mixture itself (the ceiling).

# %%
GAN_PROTOCOL = dict(MIXTURE_CPU_PROTOCOL)  # lecture 4's: no batch norm, PyTorch's initialisation
GAN_RUN = budget(
    ci={**GAN_PROTOCOL, "g_hidden": 16, "d_hidden": 8, "steps": 40},
    cpu={**GAN_PROTOCOL, "steps": 2_000},  # lecture 4's cpu protocol, half as many updates
    gpu={**GAN_PROTOCOL, "steps": 20_000},  # lecture 4's gpu protocol
)
GAN_MEMBERS = budget(ci=2, cpu=3, gpu=5)  # runs per setting
print(f"GAN protocol at budget '{LEVEL}': {GAN_RUN}, {GAN_MEMBERS} runs per setting")


def train_gan_2d(name: str, m: int) -> dict:
    """GAN (m = 1) or PacGANm: GAN_MEMBERS runs trained at once; mode_stats of every run's
    N_EVAL samples after the last update, and run 0's samples."""
    mix, finals = MIXTURES[name], []

    def evaluate(points: torch.Tensor) -> dict:
        finals.append(points)
        return mode_stats(points, mix.centers, mix.std)

    seed = 1000 * m + 10  # lecture 4's seed for this setting
    t = time.perf_counter()
    history, _, _ = train_mixture_setting(
        TRAIN_SETS[name], GAN_RUN, m, members=GAN_MEMBERS, seed=seed, evaluate=evaluate, n_eval=N_EVAL,
        device=DEVICE, desc=f"{name} m={m}",
    )  # fmt: skip
    out = final_run_stats(history)
    return {**out, "seconds": time.perf_counter() - t, "final": finals[0]}


GANS = {
    (name, setting): train_gan_2d(name, m) for name in MIXTURES for setting, m in (("GAN", 1), ("PacGAN2", 2))
}


def baseline_stats(name: str, draws: int = 5) -> dict[str, dict[str, np.ndarray]]:
    """mode_stats of the three trivial generators (``draws`` draws of N_EVAL points each), and
    KL(p_data ‖ q) for the ones with a density."""
    mix, data, test = MIXTURES[name], TRAIN_SETS[name], TEST_SETS[name]
    samplers = {
        "uniform on the data's box": lambda gen: uniform_box_samples(data, N_EVAL, gen),
        "one Gaussian fitted": lambda gen: gaussian_fit_samples(data, N_EVAL, gen),
        "the true mixture": lambda gen: mix.sample(N_EVAL, gen),
    }
    out = {
        label: mode_stats_over_draws(sample, mix.centers, mix.std, draws=draws, seed=50)
        for label, sample in samplers.items()
    }
    log_p = mix.log_density(test).double()
    mean, cov = fit_gaussian(data.double())
    out["one Gaussian fitted"]["kl"] = np.array(
        [float((log_p - gaussian_log_density(test.double(), mean, cov)).mean())]
    )
    out["the true mixture"]["kl"] = np.array([0.0])
    return out


BASELINES = {name: baseline_stats(name) for name in MIXTURES}


FLOW_RESULTS = {
    name: {k: np.array([FLOW_STATS[name, s][k] for s in FLOW_SEEDS], dtype=float) for k in ("modes", "high_quality", "reverse_kl", "kl")}
    for name in MIXTURES
}  # fmt: skip
for name in MIXTURES:
    rows = {
        f"RealNVP ({len(FLOW_SEEDS)} seeds)": FLOW_RESULTS[name],
        **{f"{s} ({GAN_MEMBERS} runs)": GANS[name, s] for s in ("GAN", "PacGAN2")},
        **BASELINES[name],
    }
    print(f"\n{name} ({len(MIXTURES[name].centers)} modes), {N_EVAL:,} samples per run; mean ± std over runs")
    print(
        f"{'':28s} {'modes':>14s} {'high quality %':>16s} {'reverse KL':>14s} {'KL(p‖q) nats':>14s}  validity"
    )
    for label, res in rows.items():
        cols = ["{:6.2f} ± {:4.2f}".format(*mean_std(res[key])) if key in res else "–" for key in ("modes", "high_quality", "reverse_kl", "kl")]  # fmt: skip
        print(
            f"{label:28s} {cols[0]:>14s} {cols[1]:>16s} {cols[2]:>14s} {cols[3]:>14s}  {runs_invalid_reason(res) or 'valid'}"
        )

# %%
fig, axes = plt.subplots(2, 5, figsize=(16, 6.6))
for row, name in zip(axes, MIXTURES, strict=True):
    mix, run = MIXTURES[name], FLOWS[name, FLOW_SEEDS[0]]
    lim = 1.5 if name == "ring" else 5.5
    axis = torch.linspace(-lim, lim, 300)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    log_q = flow_log_density(run, torch.stack([gx.flatten(), gy.flatten()], 1)).view(300, 300)
    real = mix.sample(N_EVAL, torch.Generator().manual_seed(2))
    row[0].scatter(real[:, 0], real[:, 1], s=1, c="k")
    row[0].set_title(f"{name}: data")
    row[1].imshow(log_q.clamp(min=float(log_q.max()) - 12).numpy(), origin="lower", extent=(-lim, lim, -lim, lim), cmap="magma")  # fmt: skip
    row[1].set_title("flow: log q(x) (top 12 nats)", fontsize=9)
    panels = [
        ("flow", flow_samples(run, N_EVAL, 100 + FLOW_SEEDS[0])),
        ("GAN", GANS[name, "GAN"]["final"]),
        ("PacGAN2", GANS[name, "PacGAN2"]["final"]),
    ]
    for ax, (title, pts) in zip(row[2:], panels, strict=True):
        found = mode_stats(pts, mix.centers, mix.std)
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4)
        ax.scatter(mix.centers[:, 0], mix.centers[:, 1], marker="x", c="r", s=12, lw=0.8)
        ax.set_title(f"{title}: {found['modes']} modes, {100 * found['high_quality']:.0f}% HQ", fontsize=9)
    for ax in row:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
plt.tight_layout()
plt.show()
# %% [markdown]
# **Reading the table.** The printed table and the figure show, at the `cpu` budget:
#
# * **The flow covers the modes.** Every run captures all or nearly all modes of both data sets
#   (at least 90 % of them on average, asserted below), as maximum likelihood predicts; the GAN
#   captures fewer on the grid.
# * **But its samples are diffuse.** Far fewer than 70 % of them are of high quality on either
#   data set, so by lecture 4's rule the flow's mode count and reverse KL **cannot be read**: a
#   flow that spreads its mass over and between the modes "captures" them the way noise does.
#   The density panel shows why: each island is there, but wider than the data's, joined to its
#   neighbours by bridges of low density. (Its high-quality share still beats both trivial
#   baselines many times over.)
# * **Its density is far better than the trivial one.** The exact $\mathrm{KL}(p_{\text{data}} \,\|\, q)$
#   of every flow run is below that of the fitted Gaussian, on both data sets (asserted); the true
#   mixture's is 0, so the flow is still far from the data, in the direction its training
#   measures.
# * **The GAN is the opposite.** On the grid its samples are sharp (at least 70 % of high
#   quality) but it keeps only a few modes: mode collapse, lecture 4's subject. Maximum likelihood
#   ($\mathrm{KL}(p_{\text{data}} \,\|\, q)$, which punishes missing mass) and the GAN's game
#   (which, at the optimal discriminator, is a Jensen–Shannon divergence, lecture 2) fail in
#   opposite directions at this budget: one blurs, the other drops modes.
#
# These are statements about this budget (2,000 updates of an 8-layer flow with 64 hidden
# units). In our trials (not run here), 10,000 updates roughly doubled the flow's high-quality
# share on the grid, still well below 70 %; the `gpu` budget trains ten times longer than `cpu`.
# Lecture 4 shows how the GANs evolve with more updates.

# %%
for name in MIXTURES:
    print(f"{name}: GAN {GANS[name, 'GAN']['seconds']:.0f} s, PacGAN2 {GANS[name, 'PacGAN2']['seconds']:.0f} s of training "
          f"({GAN_MEMBERS} runs each); flows {sum(FLOWS[name, s]['seconds'] for s in FLOW_SEEDS):.0f} s ({len(FLOW_SEEDS)} runs)")  # fmt: skip
if LEVEL != "ci":
    for name, mix in MIXTURES.items():
        res = FLOW_RESULTS[name]
        assert res["modes"].mean() >= 0.9 * len(mix.centers), (name, res["modes"])
        assert res["kl"].max() < BASELINES[name]["one Gaussian fitted"]["kl"][0], (name, res["kl"])
        baseline_hq = max(BASELINES[name][b]["high_quality"].mean() for b in ("uniform on the data's box", "one Gaussian fitted"))  # fmt: skip
        assert res["high_quality"].mean() > 3 * baseline_hq, name
if LEVEL == "cpu":  # the statements of the text above, at this budget
    assert all(runs_invalid_reason(FLOW_RESULTS[name]) for name in MIXTURES)
    assert not runs_invalid_reason(GANS["grid", "GAN"])
    assert beyond_spread(FLOW_RESULTS["grid"]["modes"], GANS["grid", "GAN"]["modes"], higher_is_better=True)

# %%
# headline numbers for the reproduction scoreboard (written only when GENCOURSE_RESULTS is set)
for name, mix in MIXTURES.items():
    res = FLOW_RESULTS[name]
    flow_note = (
        f"RealNVP({FLOW_2D['hidden']} hidden, {FLOW_2D['n_layers']} couplings), {FLOW_2D['steps']:,} updates, "
        f"batch {FLOW_2D['batch']}; beside it here: GAN {mean_std(GANS[name, 'GAN']['modes'])[0]:.1f} modes at "
        f"{mean_std(GANS[name, 'GAN']['high_quality'])[0]:.0f} % high quality, PacGAN2 "
        f"{mean_std(GANS[name, 'PacGAN2']['modes'])[0]:.1f} modes at {mean_std(GANS[name, 'PacGAN2']['high_quality'])[0]:.0f} % "
        f"({GAN_RUN['steps']:,} updates, {GAN_MEMBERS} runs)"
    )
    record(
        f"flows/{name}_modes",
        {
            "modes": mean_std(res["modes"])[0],
            "high_quality_pct": mean_std(res["high_quality"])[0],
            "reverse_kl": mean_std(res["reverse_kl"])[0],
        },  # fmt: skip
        lecture="12_normalizing_flows",
        description=f"RealNVP on the 2-D {name} of lecture 4: modes, high-quality % and reverse KL (means over seeds, 2,500 samples each)",
        unit=f"modes of {len(mix.centers)}; high-quality %; reverse KL (not compared with the baselines)",
        seeds=FLOW_SEEDS,
        wall_time_s=sum(FLOWS[name, s]["seconds"] for s in FLOW_SEEDS),
        baseline={
            label: {
                "modes": 0.0 if runs_invalid_reason(b) else mean_std(b["modes"])[0],
                "high_quality_pct": mean_std(b["high_quality"])[0],
            }
            for label, b in BASELINES[name].items()
            if label != "the true mixture"
        },  # fmt: skip
        higher_is_better=True,
        spread=mean_std(res["modes"])[1],
        invalid_reason=runs_invalid_reason(res),
        note=f"baselines' modes counted under lecture 4's 70 % rule (0 where their samples fail it); {flow_note}",
    )
    record(
        f"flows/{name}_kl",
        mean_std(res["kl"])[0],
        lecture="12_normalizing_flows",
        description=f"RealNVP on the 2-D {name}: KL(p_data ‖ q) from the exact densities, 20,000 test points (mean over seeds)",
        unit="nats",
        seeds=FLOW_SEEDS,
        wall_time_s=sum(FLOWS[name, s]["seconds"] for s in FLOW_SEEDS),
        baseline={"one Gaussian fitted": float(BASELINES[name]["one Gaussian fitted"]["kl"][0])},
        higher_is_better=False,
        spread=mean_std(res["kl"])[1],
        note=f"the true mixture scores 0; {flow_note}",
    )

# %% [markdown]
# ## 4. Flows on MNIST
#
# ### 4.1 Discrete data and the dequantisation bound
#
# A flow has a density on $\mathbb R^D$; a digit has integer levels, $x \in \{0, \dots, L - 1\}^D$
# ($L = 2$ for binarised digits, $L = 256$ for 8-bit ones). A density on the integers is
# meaningless (a continuous model can put infinite density on them and "win"), so we fit the flow
# to **dequantised** data $x + u$, $u \sim U[0, 1)^D$: each integer level is smeared over the unit
# cell above it {cite}`theis2016note`. Any density $p$ on $\mathbb R^D$ then defines a discrete
# model,
#
# $$
# P(x) = \int_{[0, 1)^D} p(x + u)\, du = \mathbb E_{u \sim U[0,1)^D}\big[p(x + u)\big],
# $$
#
# the mass that $p$ puts on the cell of $x$ (the uniform density is $1$ on the cell, which gives
# the second form). Since $\log$ is concave, Jensen's inequality gives
#
# $$
# \mathbb E_{u}\big[\log p(x + u)\big] \;\le\; \log \mathbb E_{u}\big[p(x + u)\big] = \log P(x) .
# $$
#
# So the dequantised log-likelihood, which is what we train and evaluate, is a **lower bound on
# the log-likelihood of a discrete model**, in the same units as an exact discrete likelihood: a
# negative dequantised log-likelihood in nats is an upper bound on $-\log P(x)$ in nats, and can
# be read next to the PixelCNN's exact $-\log p(x)$ and the VAE's bound. Three further facts:
#
# * *The gap is a KL divergence.* With $p(u \mid x) = p(x + u)/P(x)$, a density on the cell,
#   $\log P(x) - \mathbb E_u[\log p(x + u)] = \mathbb E_u\big[-\log p(u \mid x)\big] =
#   \mathrm{KL}\big(U[0,1)^D \,\|\, p(\cdot \mid x)\big) \ge 0$ (the uniform density is $1$, its
#   log $0$): the bound is tight exactly when $p$ is flat on every cell, the same structure as
#   lecture 1's ELBO with the uniform noise in the role of $q(z \mid x)$.
# * *More samples tighten it*, as for lecture 1's importance-weighted bound {cite}`burda2016importance`:
#   $\mathcal L_K = \mathbb E\big[\log \tfrac1K \sum_{k=1}^K p(x + u_k)\big]$ satisfies
#   $\mathcal L_1 \le \mathcal L_K \le \log P(x)$ and tends to $\log P(x)$ as $K \to \infty$.
# * *Sampling the discrete model is rounding down*: if $y \sim p$, then
#   $\Pr(\lfloor y \rfloor = x) = \Pr(y \in x + [0, 1)^D) = P(x)$. And
#   $\sum_x P(x) = \int_{[0, L)^D} p \le 1$: mass that $p$ puts outside the cube of valid levels is
#   lost, which can only make $P$'s likelihood smaller, never larger, so the bound stays a bound
#   on a proper distribution (renormalised, $P / \sum_x P$, whose likelihood is higher still).
#
# The cell checks the first two on a case where $P(x)$ is known exactly: $p = \mathcal N(1.7,
# 0.4^2)$ on the line and the levels $0, \dots, 3$, where $P(x) = \Phi\big((x + 1 - 1.7)/0.4\big) -
# \Phi\big((x - 1.7)/0.4\big)$, with $u$ drawn by `gencourse.flows.dequantize` (Monte Carlo
# estimates are compared with a margin of three standard errors).

# %%
dist = stats.norm(1.7, 0.4)
u_mid = (np.arange(20_000) + 0.5) / 20_000  # midpoint rule on [0, 1)
K_DEQ, N_DEQ = 16, 20_000
print(" x   log P(x) exact   E_u log p(x+u) (quadrature)   L_1 (Monte Carlo)   L_16 (Monte Carlo)")
for level in range(4):
    log_P = math.log(dist.cdf(level + 1) - dist.cdf(level))
    quad = float(dist.logpdf(level + u_mid).mean())
    x_rep = torch.full((N_DEQ, K_DEQ), float(level), dtype=torch.float64)
    log_p = torch.from_numpy(dist.logpdf(dequantize(x_rep, torch.Generator().manual_seed(level)).numpy()))
    l1, l16 = log_p[:, 0], torch.logsumexp(log_p, 1) - math.log(K_DEQ)
    print(f" {level}   {log_P:14.4f}   {quad:27.4f}   {l1.mean():17.4f}   {l16.mean():18.4f}")
    assert quad < log_P  # Jensen
    assert abs(l1.mean() - quad) < 4 * l1.std() / math.sqrt(N_DEQ)  # dequantize draws u ~ U[0, 1)
    se16 = l16.std() / math.sqrt(N_DEQ)
    assert quad + 3 * se16 < l16.mean() < log_P - 3 * se16  # L_1 < L_16 < log P(x)
total_P = dist.cdf(4) - dist.cdf(0)
print(f"Σₓ P(x) over the levels 0…3 = 1 − {1 - total_P:.2e}: the mass of p outside [0, 4) is lost")
assert total_P < 1

# %% [markdown]
# ### 4.2 From pixels to the flow's coordinates: one Gaussianising map per pixel
#
# The flow does not see $x + u$ directly: RealNVP first maps each dequantised pixel through a
# fixed invertible function (a logit), and so do we, with a different function. Any fixed
# elementwise bijection $t_i = x_i + u_i \mapsto v_i$ is one more flow layer, whose Jacobian is
# diagonal:
#
# $$
# \log p(x + u) = \log q_{\text{flow}}(v) + \sum_{i=1}^D \log \left\lvert \frac{\mathrm d v_i}{\mathrm d t_i} \right\rvert .
# $$
#
# **The map.** Take the trivial baseline, independent pixels: pixel $i$ takes level $k$ with
# probability $\pi_{ik}$, the training digits' frequency with one pseudo-count per level
# ($\pi_{ik} = (n_{ik} + 1)/(N + L)$, all positive). Dequantised, it is the density
# $f_i(t) = \pi_{i \lfloor t \rfloor}$ on $[0, L)$, flat on every cell, so its dequantisation bound is
# exact (Section 4.1) and equals the independent-pixel log-likelihood. Its cumulative distribution
# function
#
# $$
# F_i(t) = \sum_{k < \lfloor t \rfloor} \pi_{ik} + \pi_{i \lfloor t \rfloor}\,\big(t - \lfloor t \rfloor\big)
# $$
#
# increases strictly from $0$ to $1$ on $[0, L)$, and we set
#
# $$
# v_i = \Phi^{-1}\big(F_i(t_i)\big), \qquad
# \log \frac{\mathrm d v_i}{\mathrm d t_i} = \log f_i(t_i) - \log \varphi(v_i) = \log \pi_{i x_i} - \log \varphi(v_i),
# $$
#
# with $\Phi$ and $\varphi$ the standard normal distribution function and density (differentiate
# $\Phi(v_i) = F_i(t_i)$: $\varphi(v_i)\, \mathrm dv_i = f_i(t_i)\, \mathrm dt_i$). If $t_i$ is drawn
# from $f_i$, then $F_i(t_i)$ is uniform on $(0, 1)$ and $v_i$ is standard normal: the map
# *Gaussianises* each pixel's marginal.
#
# **Why this map.** At initialisation our `RealNVP` is the identity, $q_{\text{flow}}(v) =
# \prod_i \varphi(v_i)$, and then
#
# $$
# \log p(x + u) = \sum_i \log\varphi(v_i) + \sum_i \big(\log \pi_{i x_i} - \log\varphi(v_i)\big) = \sum_i \log \pi_{i x_i}
# $$
#
# for every $u$: **a fresh flow is exactly the independent-pixel model**, and what training adds
# is what that model lacks, the dependencies between pixels. It also maps $[0, L)^D$ onto all
# of $\mathbb R^D$, so no mass is lost outside the valid levels ($\sum_x P(x) = 1$). RealNVP's logit
# map would leave the flow to learn every pixel's very non-Gaussian marginal as well (about 80 %
# of the training digits' 8-bit pixels are 0, printed below); in our trials (not run here) flows of this size trained this
# long after a logit map ended *worse* than independent pixels, on both forms of MNIST. This is a
# departure from the paper, stated as such. (In floating point, $F_i$ is kept within
# $[10^{-12}, 1 - 10^{-12}]$ so that $\Phi^{-1}$ stays finite; the map is computed in float64 on the
# CPU.)
#
# The cell checks the log-determinant against autograd and the identity "fresh flow =
# independent pixels", image by image.


# %%
class PixelGaussianiser:
    """v = Φ⁻¹(F(x + u)) pixel by pixel, F the CDF of the dequantised independent-pixel model
    fitted to ``x_train`` (N, D) of integer levels 0 … L − 1 with one pseudo-count per level."""

    def __init__(self, x_train: torch.Tensor, levels: int) -> None:
        x = x_train.flatten(1).long().cpu()
        counts = torch.zeros(x.shape[1], levels, dtype=torch.float64)
        counts.scatter_add_(1, x.T, torch.ones(x.T.shape, dtype=torch.float64))
        self.probs = (counts + 1) / (len(x) + levels)  # π_ik, (D, L)
        self.below = torch.cumsum(self.probs, 1) - self.probs  # Σ_{j<k} π_ij
        self.normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))  # fmt: skip

    def map(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(v, Σᵢ log dvᵢ/dtᵢ) for t = x + u (float64, CPU), differentiable in t."""
        k = x.long()
        pi, below = self.probs.gather(1, k.T).T, self.below.gather(1, k.T).T
        v = self.normal.icdf((below + pi * (t - x)).clamp(1e-12, 1 - 1e-12))
        return v, (torch.log(pi) - self.normal.log_prob(v)).sum(1)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(v, log-det) in float32 for images x (n, D) of levels on the CPU, one draw of u each."""
        x = x.double()
        v, log_det = self.map(dequantize(x, gen), x)
        return v.float(), log_det.float()

    def levels_of(self, v: torch.Tensor) -> torch.Tensor:
        """The discrete sample ⌊F⁻¹(Φ(v))⌋: for each pixel the level k with Σ_{j<k} π ≤ Φ(v) < Σ_{j≤k} π."""
        u = self.normal.cdf(v.cpu().double())
        return (torch.searchsorted(self.below.contiguous(), u.T.contiguous(), right=True) - 1).T.clamp(min=0)

    def independent_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Σᵢ log π_{i xᵢ}: the independent-pixel model's exact log-likelihood, shape (n,)."""
        return torch.log(self.probs.gather(1, x.flatten(1).long().T.cpu())).sum(0)


def dequantised_log_density(
    flow: RealNVP, gauss: PixelGaussianiser, x: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """log p(x + u) = log q_flow(v) + log-det of the pixel map, one draw of u per image (n,)."""
    v, log_det = gauss(x, gen)
    return flow.log_prob(v.to(DEVICE)) + log_det.to(DEVICE)


train_set, test_set = load_mnist("train"), load_mnist("test")
x_train_bin = binarize(train_set.images, seed=0).flatten(1)  # as lectures 0 and 1
x_test_bin = binarize(test_set.images, seed=1).flatten(1)
gauss_bin = PixelGaussianiser(x_train_bin, 2)
zero_share = float((torch.round(train_set.images * 255) == 0).float().mean())
print(f"share of 8-bit training pixels at level 0: {zero_share:.1%}")
assert abs(zero_share - 0.8) < 0.02

# the log-determinant against autograd, on three test digits
x_chk = x_test_bin[:3].double()
t_chk = dequantize(x_chk, torch.Generator().manual_seed(0)).requires_grad_(True)
v_chk, log_det_chk = gauss_bin.map(t_chk, x_chk)
(dv_dt,) = torch.autograd.grad(v_chk.sum(), t_chk)  # vᵢ depends on tᵢ only: the diagonal
assert torch.allclose(torch.log(dv_dt).sum(1), log_det_chk, rtol=1e-9)
# a fresh flow is the independent-pixel model, image by image, whatever u is
fresh = RealNVP(784, 32, 2).to(DEVICE)
with torch.no_grad():
    fresh_ll = dequantised_log_density(
        fresh, gauss_bin, x_test_bin[:200], torch.Generator().manual_seed(1)
    ).cpu()
indep_ll = gauss_bin.independent_log_likelihood(x_test_bin[:200])
print(f"fresh flow: {fresh_ll.mean():.3f} nats per image; independent pixels, exact: {indep_ll.mean():.3f}")
assert torch.allclose(fresh_ll.double(), indep_ll, atol=1e-2)  # float32 rounding only

# %% [markdown]
# ### 4.3 Binarised digits: nats next to the PixelCNN and the VAE
#
# The data are those of lectures 0 and 1: MNIST binarised once with fixed seeds
# (`gencourse.data.binarize`, seed 0 for the training images and 1 for the test images), and the
# numbers are computed on the first test digits (as many as the cell prints, as in lectures 0
# and 1). With $L = 2$ levels, $-\mathcal L_K$ is an upper bound on the discrete model's
# $-\log P(x)$ in nats per image (Section 4.1), directly comparable with
#
# * **the PixelCNN's exact** $-\log p(x)$ (lecture 0),
# * **the VAE's** negative ELBO, an upper bound, and its importance-sampled estimate of
#   $-\log p(x)$ (lecture 1),
# * **independent pixels**, the trivial baseline (exact, lecture 0's formula, which is the fresh
#   flow's number),
# * and, for reference, **the best linear flow** on $v$: a Gaussian with the mean and full
#   covariance of the training images' $v$ (maximum likelihood in closed form; with the pixel map
#   this is a *Gaussian copula*). What the coupling layers add beyond it is what a nonlinear
#   flow learns.
#
# Lectures 0 and 1 train their PixelCNN and VAE for many minutes; this lecture cannot retrain them
# within its budget, so it trains **the smallest comparable models** here, for a similar time as
# the flow (the cell prints networks, steps and seconds): lecture 1's VAE architecture for fewer
# steps (`gencourse.vae.trained_mnist_vae`) and a narrower PixelCNN for fewer steps. Their numbers
# are therefore worse than those lectures 0 and 1 report on the scoreboard; the comparison here is
# at a **matched, small training budget**.
#
# The flow is `RealNVP(784, hidden, n_layers)` with MLP couplings on the flattened image, after the
# pixel map of Section 4.2, trained by maximum likelihood with Adam and a cosine decay. Its bound
# is reported with one draw of $u$ per image ($\mathcal L_1$) and with $K$ draws ($\mathcal L_K$).

# %%
n_eval = budget(ci=500, cpu=1_000, gpu=1_000)  # the first test digits, as lectures 0 and 1
x_eval_bin = x_test_bin[:n_eval]
print(f"{len(x_train_bin):,} training and {len(x_eval_bin):,} test images ({train_set.source} MNIST)")
FLOW_MNIST = budget(
    ci=dict(hidden=32, n_layers=2, steps=60, batch=100, lr=1e-3),
    cpu=dict(hidden=128, n_layers=4, steps=1_000, batch=100, lr=1e-3),
    gpu=dict(hidden=256, n_layers=6, steps=5_000, batch=100, lr=1e-3),
)
K_BOUND = budget(ci=4, cpu=16, gpu=32)


def train_mnist_flow(
    x_levels: torch.Tensor, gauss: PixelGaussianiser, desc: str
) -> tuple[RealNVP, dict, float]:
    """RealNVP(784, ...) trained by maximum likelihood on dequantised, Gaussianised images."""
    seed_everything(0)
    flow = RealNVP(x_levels.shape[1], FLOW_MNIST["hidden"], FLOW_MNIST["n_layers"]).to(DEVICE)

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"loss": -dequantised_log_density(flow, gauss, x_levels[idx], gen).mean()}

    t = time.perf_counter()
    history = fit(flow, len(x_levels), loss_fn, FLOW_MNIST["steps"], FLOW_MNIST["batch"], lr=FLOW_MNIST["lr"], seed=0, desc=desc, schedule="cosine")  # fmt: skip
    return flow, history, time.perf_counter() - t


@torch.no_grad()
def dequantised_bounds(log_density, x_levels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, from k draws of u: L₁ = mean of log p(x + u), and L_k = log (1/k) Σⱼ p(x + u_j)
    (nats). ``log_density(x, gen)`` returns log p(x + u) for one draw per image."""
    gen = torch.Generator().manual_seed(123)
    draws = torch.stack([log_density(x_levels, gen).cpu().double() for _ in range(k)])
    return draws.mean(0), torch.logsumexp(draws, 0) - math.log(k)


def linear_flow(gauss: PixelGaussianiser, x_train: torch.Tensor):
    """The best linear flow on v: N(mean, covariance) of the training images' v (one draw of u;
    1e-6 added to the diagonal), as a log_density(x, gen) for dequantised_bounds (CPU, float64)."""
    v = gauss(x_train, torch.Generator().manual_seed(7))[0].double()
    cov = torch.cov(v.T) + 1e-6 * torch.eye(v.shape[1], dtype=torch.float64)
    gaussian = torch.distributions.MultivariateNormal(v.mean(0), covariance_matrix=cov)

    def log_density(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        v_x, log_det = gauss(x, gen)
        return gaussian.log_prob(v_x.double()) + log_det.double()

    return log_density


flow_bin, hist_bin, FLOW_BIN_TIME = train_mnist_flow(x_train_bin, gauss_bin, "flow, binarised MNIST")
l1_bin, lk_bin = dequantised_bounds(
    lambda x, g: dequantised_log_density(flow_bin, gauss_bin, x, g), x_eval_bin, K_BOUND
)
l1_lin_bin, lk_lin_bin = dequantised_bounds(linear_flow(gauss_bin, x_train_bin), x_eval_bin, K_BOUND)
assert torch.all(lk_bin >= l1_bin - 1e-9)  # L_1 ≤ L_K for every image (Jensen over the K draws)
print(f"flow: {FLOW_MNIST}, {FLOW_BIN_TIME:.0f} s of training")

# %%
VAE_STEPS = budget(ci=300, cpu=1_000, gpu=10_000)
PCNN = budget(
    ci=dict(channels=8, n_layers=2, steps=40, batch=32),
    cpu=dict(channels=16, n_layers=3, steps=400, batch=32),
    gpu=dict(channels=32, n_layers=5, steps=5_000, batch=64),
)
K_IS = budget(ci=32, cpu=100, gpu=500)
images_eval = x_eval_bin.view(-1, 1, 28, 28).to(DEVICE)
t = time.perf_counter()
vae, _ = trained_mnist_vae(x_train_bin.view(-1, 1, 28, 28), VAE_STEPS, latent_dim=20, seed=0, device=DEVICE)
VAE_TIME = time.perf_counter() - t
gen = torch.Generator().manual_seed(0)
with torch.no_grad():
    vae_neg_elbo = -torch.stack([elbo_terms(vae, images_eval, gen)["elbo"] for _ in range(10)]).mean(0).cpu()
    vae_nll = -importance_log_likelihood(vae, images_eval, k=K_IS, generator=gen).cpu()

t = time.perf_counter()
seed_everything(0)
pixelcnn = PixelCNN(channels=PCNN["channels"], n_layers=PCNN["n_layers"]).to(DEVICE)
train_pixelcnn(
    pixelcnn, x_train_bin.view(-1, 1, 28, 28), steps=PCNN["steps"], batch_size=PCNN["batch"], seed=0
)
PCNN_TIME = time.perf_counter() - t
with torch.no_grad():
    pcnn_nll = -torch.cat([log_likelihood(pixelcnn, xb).cpu() for xb in images_eval.split(250)])
indep_nll_bin = -gauss_bin.independent_log_likelihood(x_eval_bin)

BIN_ROWS = {
    "RealNVP: −L_1 (bound, one u per image)": (-l1_bin, FLOW_BIN_TIME),
    f"RealNVP: −L_{K_BOUND} (bound, {K_BOUND} draws of u)": (-lk_bin, FLOW_BIN_TIME),
    f"best linear flow: −L_{K_BOUND} (bound)": (-lk_lin_bin, 0.0),
    f"VAE ({VAE_STEPS:,} steps): negative ELBO (bound)": (vae_neg_elbo, VAE_TIME),
    f"VAE: importance sampling, K = {K_IS}": (vae_nll, VAE_TIME),
    f"PixelCNN ({PCNN['channels']} channels, {PCNN['steps']:,} steps): exact": (pcnn_nll, PCNN_TIME),
    "independent pixels: exact": (indep_nll_bin, 0.0),
}
print(
    f"binarised MNIST, first {len(x_eval_bin):,} test digits: −log p(x) in nats per image (mean ± standard error)"
)
for label, (values, secs) in BIN_ROWS.items():
    v = values.double()
    print(f"  {label:52s} {v.mean():7.2f} ± {v.std() / math.sqrt(len(v)):4.2f}   ({secs:4.0f} s of training)")
flow_bin_bound = float(-lk_bin.mean())

# %% [markdown]
# **Reading the table** (at the `cpu` budget; each statement is asserted below):
#
# * The flow's bound is far below independent pixels (by more than 20 nats): training learned
#   dependencies between pixels that the fresh flow, which *was* the independent-pixel model, did
#   not have. It is also below the best linear flow: the couplings learned more than linear
#   correlations.
# * Drawing $K$ values of $u$ instead of one tightens the bound by several nats ($\mathcal L_1$ to
#   $\mathcal L_K$): the flow's density is far from flat within the unit cells, the gap
#   $\mathrm{KL}(U \,\|\, p(\cdot \mid x))$ of Section 4.1 is large. A flow pays twice on binary
#   data: it must model the digit, and it must put its mass on the cells as uniformly as possible,
#   a shape that smooth maps of a Gaussian reach slowly.
# * At this matched budget the flow is behind both the VAE and the PixelCNN, and the PixelCNN,
#   whose likelihood is exact and which models binary pixels directly, is best. Uniform
#   dequantisation is a poor fit to two-level data; *variational* dequantisation (Flow++
#   {cite}`ho2019flow`) learns the distribution of the noise $u$ given $x$, as lecture 1 learns
#   $q(z \mid x)$, to narrow that gap.

# %%
if LEVEL != "ci":
    assert flow_bin_bound < float(indep_nll_bin.mean()) - 20
    assert float((lk_bin - l1_bin).mean()) > 2  # K draws tighten the bound by more than 2 nats
if LEVEL == "cpu":
    assert flow_bin_bound < float(-lk_lin_bin.mean())  # better than the best linear flow
    assert float(pcnn_nll.mean()) < float(vae_nll.mean()) < flow_bin_bound  # PixelCNN < VAE < flow
record(
    "flows/binarized_mnist_nll_bound",
    flow_bin_bound,
    lecture="12_normalizing_flows",
    description=f"RealNVP on dequantised binarised MNIST: test −L_{K_BOUND} (upper bound on −log P(x), nats)",
    unit="nats",
    seeds=[0],
    wall_time_s=FLOW_BIN_TIME,
    baseline={"independent pixels": float(indep_nll_bin.mean())},
    higher_is_better=False,
    note=(
        f"first {len(x_eval_bin):,} binarised test digits of lectures 0 and 1, {len(x_train_bin):,} training images; "
        f"standard error {float(lk_bin.std()) / math.sqrt(len(lk_bin)):.2f}; −L_1 {float(-l1_bin.mean()):.1f}; "
        f"at the same small budget: best linear flow {float(-lk_lin_bin.mean()):.1f}, VAE (IS, K = {K_IS}) "
        f"{float(vae_nll.mean()):.1f}, PixelCNN (exact) {float(pcnn_nll.mean()):.1f}"
    ),
)

# %% [markdown]
# **Samples.** A sample of the discrete model is a flow sample rounded down (Section 4.1): draw
# $z \sim \mathcal N(0, I)$, map it to $v = f^{-1}(z)$, and read off, pixel by pixel, the level $k$
# whose cell contains $F_i^{-1}(\Phi(v_i))$ (`PixelGaussianiser.levels_of`).


# %%
def flow_images(flow: RealNVP, gauss: PixelGaussianiser, n: int, seed: int) -> torch.Tensor:
    """n samples of the discrete model, as images in [0, 1]."""
    levels = gauss.levels_of(flow.sample(n, torch.Generator().manual_seed(seed)))
    return (levels.float() / (gauss.probs.shape[1] - 1)).view(n, 1, 28, 28)


fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
show_images(x_eval_bin[:32].view(-1, 1, 28, 28), nrow=16, ax=axes[0], title="binarised test digits")
show_images(flow_images(flow_bin, gauss_bin, 32, seed=0), nrow=16, ax=axes[1], title="RealNVP samples")
plt.show()
plot_history(hist_bin, ["loss"], smooth=20).set(
    ylabel="−log p(x + u) (nats)", title="flow training, binarised MNIST"
)
plt.show()

# %% [markdown]
# ### 4.4 8-bit digits: bits per dimension
#
# Flows are usually compared on 8-bit images, $L = 256$, in **bits per dimension**: the negative
# log-likelihood of an image in nats divided by $D \ln 2$ (`gencourse.flows.bits_per_dim`), the
# average number of bits per pixel that an ideal code built on the model would use. For a
# dequantised model it is an upper bound, as above. Two trivial baselines on the same metric:
#
# * **uniform levels**: every level equally likely, exactly $\log_2 256 = 8$ bits per dimension;
# * **independent pixels**: one categorical distribution over the 256 levels per pixel, the
#   training digits' frequencies with one pseudo-count per level (the fresh flow, again).
#
# The published numbers are for RealNVP {cite}`dinh2017density`, Glow {cite}`kingma2018glow` and
# FFJORD {cite}`grathwohl2019ffjord` on dequantised MNIST: 1.06, 1.05 and 0.99 bits per dimension
# as quoted by Grathwohl et al. (2019, Table 2); the RealNVP paper itself reports no MNIST number.
# **Our protocol differs**: offline the course has only MNIST's 10,000 test images, of which 9,000
# train and 1,000 are held out (as in every lecture); our flow is MLP couplings after a per-pixel
# Gaussianising map, without the convolutional multi-scale architecture; and it trains for a
# minute on a CPU, not for days on GPUs. The number below is therefore not a reproduction of 1.06,
# and the scoreboard says so.

# %%
x_train_8 = torch.round(train_set.images.flatten(1) * 255)  # the integer levels 0 … 255
x_eval_8 = torch.round(test_set.images[:n_eval].flatten(1) * 255)
gauss_8 = PixelGaussianiser(x_train_8, 256)
flow_8, hist_8, FLOW_8_TIME = train_mnist_flow(x_train_8, gauss_8, "flow, 8-bit MNIST")
l1_8, lk_8 = dequantised_bounds(
    lambda x, g: dequantised_log_density(flow_8, gauss_8, x, g), x_eval_8, K_BOUND
)
l1_lin_8, lk_lin_8 = dequantised_bounds(linear_flow(gauss_8, x_train_8), x_eval_8, K_BOUND)
D_PIX = x_train_8.shape[1]
bpd_flow = float(bits_per_dim(-lk_8.mean(), D_PIX))
bpd_se = float(bits_per_dim(lk_8.std() / math.sqrt(len(lk_8)), D_PIX))
BPD_BASELINES = {
    "uniform levels": float(bits_per_dim(D_PIX * math.log(256), D_PIX)),
    "independent pixels": float(bits_per_dim(-gauss_8.independent_log_likelihood(x_eval_8).mean(), D_PIX)),
}
bpd_linear = float(bits_per_dim(-lk_lin_8.mean(), D_PIX))
PAPER_BPD = {"RealNVP": 1.06, "Glow": 1.05, "FFJORD": 0.99}  # as quoted by Grathwohl et al. 2019, Table 2
print(f"8-bit MNIST, first {len(x_eval_8):,} test digits, bits per dimension:")
print(f"  RealNVP (ours), −L_{K_BOUND}         {bpd_flow:.3f} ± {bpd_se:.3f}   (−L_1: {float(bits_per_dim(-l1_8.mean(), D_PIX)):.3f}; {FLOW_8_TIME:.0f} s of training)")  # fmt: skip
print(f"  best linear flow, −L_{K_BOUND}       {bpd_linear:.3f}")
for label, value in BPD_BASELINES.items():
    print(f"  {label:27s} {value:.3f}")
for label, value in PAPER_BPD.items():
    print(f"  {label} (published, full protocol) {value:.2f}")
assert math.isclose(BPD_BASELINES["uniform levels"], 8.0, rel_tol=1e-12)
show_images(flow_images(flow_8, gauss_8, 32, seed=0), nrow=16, title="RealNVP samples, 8-bit MNIST")
plt.show()

# %% [markdown]
# **Reading the numbers** (at the `cpu` budget, asserted below): the flow beats both trivial
# baselines, uniform levels by a wide margin and independent pixels by more than 0.1 bit per
# dimension; but it is no better than the best linear flow (not lower by more than three
# standard errors; the cell above prints both): in a minute of training, the MLP couplings have
# learned no more than a full-covariance Gaussian gets in closed form. And it is far from the
# published 1.06 bits per dimension (by more than 0.2), as expected from the protocol: the
# scoreboard records the paper's number beside ours, with the verdict "not reproduced".

# %%
if LEVEL != "ci":
    assert bpd_flow < BPD_BASELINES["independent pixels"] - 0.1
if LEVEL == "cpu":
    assert bpd_flow > bpd_linear - 3 * bpd_se  # no better than the best linear flow
    assert bpd_flow > PAPER_BPD["RealNVP"] + 0.2
record(
    "flows/mnist_8bit_bits_per_dim",
    bpd_flow,
    paper=PAPER_BPD["RealNVP"],
    lecture="12_normalizing_flows",
    description=f"RealNVP on dequantised 8-bit MNIST: test bits per dimension (−L_{K_BOUND}, an upper bound)",
    unit="bits/dim",
    seeds=[0],
    wall_time_s=FLOW_8_TIME,
    baseline=BPD_BASELINES,
    higher_is_better=False,
    note=(
        f"paper: RealNVP as quoted by Grathwohl et al. 2019 (FFJORD), Table 2 (Glow {PAPER_BPD['Glow']}, FFJORD "
        f"{PAPER_BPD['FFJORD']}); ours: {len(x_train_8):,} training images (the bundled 10k test split, 1,000 held out, "
        f"first {len(x_eval_8):,} evaluated), MLP couplings after a per-pixel Gaussianising map, no multi-scale "
        f"architecture, {FLOW_MNIST['steps']:,} updates on a CPU; standard error {bpd_se:.3f}; best linear flow {bpd_linear:.3f}"
    ),
)

# %% [markdown]
# ## Summary
#
# * **Change of variables**: $\log p_X(x) = \log p_Z(f(x)) + \log\lvert\det J_f(x)\rvert$ for a
#   bijection $f$, derived from the distribution function in 1-D and from volumes in $D$
#   dimensions, and checked against scipy (log-normal, linear Gaussian flows); forgetting the
#   Jacobian gives a "density" that integrates to $e^{1/2}$.
# * **Exact likelihood needs** an invertible map with a cheap log-determinant; a triangular
#   Jacobian's is the sum of the log-diagonal.
# * **Affine coupling** keeps half of the coordinates and scales and shifts the other half by
#   functions of the first: inverse in closed form, $\log\lvert\det J\rvert = \sum s$, both checked
#   against autograd's full Jacobian; permutations add nothing to the log-determinant, and a 1×1
#   convolution adds $HW \log\lvert\det W\rvert$ (checked).
# * **On lecture 4's ring and grid**, a flow trained by maximum likelihood keeps (nearly) all
#   modes, with a far better density than the fitted Gaussian, but at this budget its samples
#   are too diffuse to pass lecture 4's 70 % rule; the GAN is sharp and drops modes. A flow
#   started at the identity on independent coordinates sits at a stationary point (measured).
# * **Dequantisation**: $\mathbb E_u[\log p(x + u)] \le \log P(x)$ (Jensen), with a gap
#   $\mathrm{KL}(U \,\|\, p(\cdot\mid x))$ that $K$ draws of $u$ shrink, checked where $P(x)$ is
#   exact. A per-pixel Gaussianising map makes a fresh flow *equal* to the independent-pixel
#   baseline (checked image by image), so training starts from the baseline and learns the
#   dependencies between pixels.
# * **On binarised MNIST** the flow's bound beats independent pixels and the best linear flow but,
#   at a matched small budget, trails the VAE and the PixelCNN. **On 8-bit MNIST** it beats
#   both trivial baselines in bits per dimension, is no better than the best linear flow, and is far
#   from the published 1.06 bits per dimension, with a protocol that differs in data,
#   architecture and training time.
#
# Next: lecture 13 derives diffusion models from lecture 1's ELBO.

# %%
LECTURE.finish()  # prints and records the lecture's wall time
