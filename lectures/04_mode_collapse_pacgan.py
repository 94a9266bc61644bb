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
# # Lecture 4: Mode collapse and PacGAN
#
# A GAN's generator can win the game of lecture 2 while producing only part of the data: it
# *collapses* onto a few modes. This lecture shows the phenomenon, explains why a discriminator
# that judges one sample at a time cannot see it, and studies PacGAN {cite}`lin2018pacgan`, which
# lets the discriminator judge $m$ samples at once:
#
# 1. mode collapse on PacGAN's 2-D ring and grid, snapshot by snapshot;
# 2. the packing idea;
# 3. the theory: an idealised GAN objective whose optimum is a total-variation distance (with
#    the factor ½ that slides often drop), how packing amplifies the distance of a collapsed
#    generator, the bounds $\tau \le d_{TV}(P^m, Q^m) \le 1 - (1 - \tau)^m$, and the definition of
#    $(\varepsilon, \delta)$-mode collapse;
# 4. the paper's Table 1 on the grid and the ring, GAN against PacGAN2/3/4, with
# 5. an unrolled GAN {cite}`metz2017unrolled` as a second remedy, and
# 6. two controls: a GAN with a discriminator as large as PacGAN's, and one with $m$ times the
#    batch;
# 7. Stacked MNIST (1,000 modes) counted with a course-trained classifier: DCGAN against PacDCGAN2,
#    beside generators that copy real digits, blur them, or output the mean digit.
#
# Prerequisites: lectures 2 and 3 (the GAN game, the non-saturating loss, the training loop).
#
# ```{note}
# Runs on Colab (GPU: *Runtime → Change runtime type*) and on a CPU. The amount of training is
# set by `gencourse.runtime.budget` from `GENCOURSE_BUDGET` (`ci`, `cpu`, `gpu`); numbers quoted
# below were measured at the budget printed by the set-up cell.
# ```

# %%
# Colab: install the course package (this cell does nothing elsewhere).
import subprocess
import sys

PACKAGE = "gencourse @ git+https://github.com/gencourse/gencourse@v0.1.0"
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", PACKAGE], check=True)

# %%
import itertools
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.optimize import linprog

from gencourse.data import grid_mixture, load_mnist, ring_mixture
from gencourse.divergences import tv_distance, tv_product
from gencourse.gan import sample_latent, train_gan
from gencourse.nets import DCGANDiscriminator, DCGANGenerator, MNISTClassifier, accuracy, train_classifier
from gencourse.pacgan import (
    HIGH_QUALITY_MIN,
    MaxoutDiscriminator,
    PacGANGenerator,
    Packed,
    beyond_spread,
    blur_images,
    gaussian_fit_samples,
    has_mode_collapse,
    matched_maxout_hidden,
    mode_stats,
    pack,
    packing_bounds,
    parameter_count,
    quality_invalid_reason,
    train_pacgan,
    uniform_box_samples,
)
from gencourse.plotting import show_images
from gencourse.runtime import budget, budget_level, get_device, seed_everything
from gencourse.scoreboard import record, record_timing

LEVEL, DEVICE = budget_level(), get_device()
T0 = time.perf_counter()
print(f"budget level: {LEVEL}, device: {DEVICE}")
# %% [markdown]
# ## 1. Mode collapse, seen
#
# PacGAN's two benchmark data sets are mixtures of Gaussians in the plane
# (`gencourse.data.ring_mixture`, `grid_mixture`): a **ring** of 8 modes on the unit circle with
# standard deviation 0.01, and a **grid** of 25 modes at $\{-4, -2, 0, 2, 4\}^2$ with standard
# deviation 0.05, each learned from a fixed training set of 100,000 points with $z \sim
# \mathcal N(0, I_2)$. The paper's metrics, on 2,500 generated samples
# (`gencourse.pacgan.mode_stats`): a sample is of **high quality** if it lies within three standard
# deviations of its nearest mode; a mode is **captured** if at least one high-quality sample
# falls on it; and the **reverse KL** is $\mathrm{KL}(\hat q \,\|\, U)$ of the histogram $\hat q$ of
# the high-quality samples over the modes against the uniform distribution (0 when every mode gets
# the same share, $\log K$ when one mode gets everything).
#
# **Networks and protocol.** The paper's networks are a generator with four hidden layers of 400
# units (batch norm and ReLU) and a discriminator with three maxout layers of 200 units and 5
# pieces; non-saturating loss, Adam with learning rate $10^{-4}$ and $\beta_1 = 0.8$, batches of 100
# (packed) examples, 400,000 updates, 10 runs per setting. The `gpu` budget uses exactly that
# (expect several hours for the whole table, even on a GPU). On a
# CPU, 400,000 updates of these networks take hours per run, so the `cpu` and `ci` budgets use a
# protocol of their own, printed by the next cell and the **same for every row** of the tables
# below (GAN, PacGAN, the unrolled GAN and the controls differ only in what the row's name says):
#
# * a generator with three hidden layers of 64 units and ReLU, **without** batch norm, and a
#   discriminator with three maxout layers of 48 units (5 pieces each), with PyTorch's default
#   initialisation instead of the paper's $\mathcal N(0, 0.02^2)$ weights;
# * 4,000 updates instead of 400,000, and 5 runs per setting instead of 10;
# * Adam with $\beta = (0.5, 0.9)$, learning rate $10^{-3}$ for the generator and $10^{-2}$ for
#   the discriminator (ten times faster: a "two time-scale" choice), both decayed linearly to a
#   tenth of their value over the run.
#
# We chose it by a search of about an hour, tracking modes, high-quality fraction and reverse
# KL against updates (as the curves of Section 4 do), and state what we saw (the search is not
# run here). With equal learning rates ($10^{-3}$) no setting left the diffuse phase within
# 3,000 updates (under 5 % high-quality samples): such a table compares noise with noise. The
# previous version of this lecture ran 2,000 updates with rates $3 \cdot 10^{-4}$ and
# $3 \cdot 10^{-3}$: the GAN never left the central mode (1 mode, 97 % high quality) while the
# PacGANs stayed diffuse, which is the trap of a short protocol. A generator with batch norm
# (three layers of 128) gave the GAN about 16 of 25 modes, close to the paper's 17.3, but cost
# twice as much per update and its PacGAN2 was still under 25 % high quality after 3,000
# updates. The protocol above is the cheapest we found at which the GAN's samples reach the
# 70 % bar of Section 4 within the `cpu` budget; whether the PacGANs reach it is what the
# curves show.
#
# We first train plain GANs on both data sets and look at one run every few hundred updates.

# %%
PAPER_PROTOCOL = dict(
    g_hidden=400, g_depth=4, g_batch_norm=True, d_hidden=200, init_std=0.02, lr=1e-4, lr_d=1e-4,
    lr_end=None, betas=(0.8, 0.999), steps=400_000,
)  # fmt: skip
CPU_PROTOCOL = dict(
    g_hidden=64, g_depth=3, g_batch_norm=False, d_hidden=48, init_std=None, lr=1e-3, lr_d=1e-2,
    lr_end=1e-4, betas=(0.5, 0.9), steps=4_000,
)  # fmt: skip
PROTOCOL = budget(
    ci={**CPU_PROTOCOL, "g_hidden": 16, "d_hidden": 8, "steps": 40}, cpu=CPU_PROTOCOL, gpu=PAPER_PROTOCOL
)
SEEDS = list(range(budget(ci=2, cpu=5, gpu=10)))
BATCH, PIECES, N_EVAL, N_CURVE = 100, 5, 2_500, budget(ci=2, cpu=8, gpu=20)
MIXTURES = {"ring": ring_mixture(), "grid": grid_mixture()}
TRAIN_SETS = {name: mix.sample(100_000, torch.Generator().manual_seed(1)) for name, mix in MIXTURES.items()}
print(f"protocol at budget '{LEVEL}': {PROTOCOL}; {len(SEEDS)} runs per setting, batches of {BATCH}")


def train_setting(
    data_name: str, m: int = 1, *, unroll: int = 0, d_hidden: int | None = None, batch_factor: int = 1
) -> dict:
    """Train len(SEEDS) runs of one setting at once (one ensemble) on the ring or the grid.
    Returns the paper's metrics of every run at N_CURVE evaluations during training (curves:
    arrays of shape (N_CURVE, runs)) and after the last update ("modes", "high_quality" in %,
    "reverse_kl": one number per run), and the samples of run 0 at every evaluation.
    m > 1: PacGAN with packing degree m; unroll = k: unrolled GAN; d_hidden: discriminator
    width; batch_factor = b: a GAN (m = 1) with b times the batch, its generated points made in
    b batch-norm groups like PacGAN_b's."""
    mix, data = MIXTURES[data_name], TRAIN_SETS[data_name]
    seed = 1000 * m + 100 * unroll + 10 * batch_factor + (d_hidden is not None)
    torch.manual_seed(seed)
    members = len(SEEDS)
    g = PacGANGenerator(
        2, PROTOCOL["g_hidden"], PROTOCOL["g_depth"], 2, members=members,
        batch_norm=PROTOCOL["g_batch_norm"], init_std=PROTOCOL["init_std"],
    ).to(DEVICE)  # fmt: skip
    d = MaxoutDiscriminator(
        2 * m, d_hidden or PROTOCOL["d_hidden"], PIECES, 3, members=members, init_std=PROTOCOL["init_std"]
    ).to(DEVICE)  # fmt: skip
    evaluated = []  # the points of every run at every evaluation, run by run

    def evaluate(points: torch.Tensor) -> dict:
        evaluated.append(points)
        return mode_stats(points, mix.centers, mix.std)

    steps = PROTOCOL["steps"]
    t = time.perf_counter()
    history = train_pacgan(
        g, d, data, steps, pack=m, batch_size=BATCH * batch_factor, lr=PROTOCOL["lr"], lr_d=PROTOCOL["lr_d"],
        betas=PROTOCOL["betas"], lr_end=PROTOCOL["lr_end"], bn_groups=batch_factor if batch_factor > 1 else None,
        unroll=unroll, seed=seed, eval_every=steps // N_CURVE, evaluate=evaluate, n_eval=N_EVAL,
        desc=f"{data_name} m={m}",
    )  # fmt: skip
    curves = {key: np.array(history[key], dtype=float) for key in ("modes", "high_quality", "reverse_kl")}
    curves["high_quality"] *= 100
    return {
        **{key: curve[-1] for key, curve in curves.items()},
        "curves": curves,
        "curve_steps": np.array(history["eval_step"]),
        "seconds": time.perf_counter() - t,
        "d_params": parameter_count(d),
        "snapshots": evaluated[::members],  # run 0 at each evaluation
        "final": evaluated[-members],  # run 0 after the last update
    }


RESULTS = {(name, "GAN"): train_setting(name) for name in ("ring", "grid")}

# %%
n_snap = len(RESULTS["grid", "GAN"]["snapshots"])
fig, axes = plt.subplots(2, n_snap + 1, figsize=(2.4 * (n_snap + 1), 5.2))
for row, name in zip(axes, ("ring", "grid"), strict=True):
    mix, res = MIXTURES[name], RESULTS[name, "GAN"]
    lim = 1.5 if name == "ring" else 5.5
    real = mix.sample(N_EVAL, torch.Generator().manual_seed(2))
    row[0].scatter(real[:, 0], real[:, 1], s=1, c="k")
    row[0].set_title(f"{name}: data")
    for ax, step, points in zip(row[1:], res["curve_steps"], res["snapshots"], strict=True):
        stats = mode_stats(points, mix.centers, mix.std)
        ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.4)
        ax.scatter(mix.centers[:, 0], mix.centers[:, 1], marker="x", c="r", s=12, lw=0.8)
        ax.set_title(f"{step} updates: {stats['modes']} modes", fontsize=9)
    for ax in row:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
plt.show()

for name in ("ring", "grid"):
    mix, res = MIXTURES[name], RESULTS[name, "GAN"]
    covered = []
    for points in res["snapshots"]:
        dist, nearest = torch.cdist(points.double(), mix.centers.double()).min(1)
        covered.append(set(nearest[dist < 3 * mix.std].tolist()))
    ever = set().union(*covered)
    print(f"{name}, run 0: modes captured per snapshot {[len(c) for c in covered]}; captured at some "
          f"snapshot {len(ever)}, at every snapshot {len(set.intersection(*covered))}")  # fmt: skip

# %% [markdown]
# Each panel is one snapshot of the same run: its samples from a fixed set of codes, with the
# modes marked by crosses. The cell prints, for that run, the modes captured at each snapshot,
# how many different modes it captured at some snapshot, and how many it held at every one: a
# generator that wanders between modes visits more of them over training than it holds at any
# time. Section 4 measures the final state of all runs.
#
# ```{admonition} How this runs
# :class: note
# Each setting's runs (5 at `cpu`) are trained at once as one batched "ensemble" model
# (`members` in `gencourse.pacgan`: every member has its own weights, data and noise, and
# receives exactly the gradient of its own loss, as if trained alone), which pays a CPU's
# per-operation overhead once for all runs. The number of updates, runs and evaluations is set
# by `budget(ci=..., cpu=..., gpu=...)`; at `ci` the networks are tiny and train for 40 updates,
# which checks the code, not the result.
# ```
# %% [markdown]
# ## 2. The packing idea
#
# Look at the grid snapshots above through the discriminator's eyes. A discriminator that sees
# **one** sample at a time can only ask "does this point look like a data point?". A generator
# that puts all its mass on 15 of the 25 modes, each sample sharp and well placed, passes that
# test sample by sample: nothing in a single point reveals that other modes are missing.
# Diversity is a property of *several* samples. If the discriminator sees $m$ samples at once,
# all real or all generated, a collapsed generator shows itself: among $m$ points from a
# generator that covers only 60 % of the modes, the chance that all of them fall on covered modes
# is $0.6^m$ for real data but $1$ for the generator.
#
# PacGAN {cite}`lin2018pacgan` does exactly this, and nothing else: the discriminator's input
# layer takes $m$ samples concatenated, $D(x_1, \dots, x_m)$, and is trained to say "real" on
# packs of $m$ independent data points and "fake" on packs of $m$ independent generated points.
# The generator, the loss and the optimiser are unchanged; only the discriminator's first layer
# grows (from $d$ to $m d$ inputs). `gencourse.pacgan.pack` groups consecutive samples,
# $(n m, d) \to (n, m d)$ for vectors and $(n m, C, H, W) \to (n, m C, H, W)$ for images
# (channels concatenated), and `Packed` wraps any discriminator with it.

# %%
x = torch.arange(12.0).reshape(6, 2)  # six points in the plane
print(pack(x, 3))  # two packs of three points each
assert pack(x, 3).tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
images = torch.randn(8, 3, 28, 28)
assert pack(images, 2).shape == (4, 6, 28, 28)
assert torch.equal(pack(images, 2)[1], torch.cat([images[2], images[3]]))  # pack 1 = samples 2, 3
d2 = Packed(MaxoutDiscriminator(in_dim=2 * 2, hidden=16), m=2)  # any discriminator for m·d inputs
assert d2(torch.randn(10, 2)).shape == (5,)  # ten points → five packs → five scores

# %% [markdown]
# Why should that help the *generator*? Because the discriminator, at its optimum, measures a
# distance between the distributions it compares, and the generator descends that distance. A
# packed discriminator compares the product distributions $P^m$ (packs of $m$ independent data
# points) and $Q^m$. Section 3 shows that distances between products amplify missing mass much
# more than they amplify mass that is merely misplaced.
#
# ## 3. Theory: total variation, packing and mode collapse
#
# ### 3.1 The idealised objective is a total-variation distance (with a factor ½)
#
# The analysis of {cite}`lin2018pacgan` replaces the cross-entropy game of lecture 2 by an
# idealised one whose optimum is easy to compute. Let the discriminator be any function with
# $|D(x)| \le 1$, and let it maximise the difference of its average scores on real and on
# generated data:
#
# $$
# V(D, Q) = \mathbb E_{x \sim P}[D(x)] - \mathbb E_{x \sim Q}[D(x)]
#          = \sum_x D(x)\,\big(p(x) - q(x)\big)
# $$
#
# (a sum for discrete distributions, an integral for densities). Each term depends on $D$ only
# through $D(x)$, so we maximise pointwise: $D(x)(p(x) - q(x))$ over $D(x) \in [-1, 1]$ is largest
# at $D^*(x) = \operatorname{sign}(p(x) - q(x))$, where it equals $|p(x) - q(x)|$. Hence
#
# $$
# \max_{|D| \le 1} V(D, Q) = \sum_x |p(x) - q(x)| .
# $$
#
# The **total-variation distance** is $d_{TV}(P, Q) = \sup_S |P(S) - Q(S)|$, the largest
# difference in probability that the two distributions give to one event. With
# $S^* = \{x : p(x) > q(x)\}$, and since $\sum_x (p(x) - q(x)) = 1 - 1 = 0$,
#
# $$
# \sum_{x \in S^*} (p - q) = \sum_{x \notin S^*} (q - p)
# \quad\Longrightarrow\quad
# \sum_x |p - q| = 2 \sum_{x \in S^*} (p - q) = 2\,\big(P(S^*) - Q(S^*)\big),
# $$
#
# and every other event does worse, $P(S) - Q(S) = \sum_{S}(p - q) \le \sum_{S \cap S^*}(p - q)
# \le P(S^*) - Q(S^*)$ (and symmetrically for $Q(S) - P(S)$, using the complement). So
# $d_{TV}(P, Q) = P(S^*) - Q(S^*) = \tfrac12 \sum_x |p(x) - q(x)|$, and
#
# $$
# \max_{|D| \le 1} V(D, Q) = 2\, d_{TV}(P, Q),
# \qquad\text{equivalently}\qquad
# d_{TV}(P, Q) = \tfrac12\, \mathbb E_{x \sim P}\Big|1 - \frac{q(x)}{p(x)}\Big|
# \quad (\text{if } Q \ll P).
# $$
#
# The generator of this idealised game therefore solves
# $\min_Q \max_{|D|\le1} V(D, Q) = \min_Q 2\,d_{TV}(P, Q)$: it minimises the total variation. (With
# $D$ restricted to $[0, 1]$ instead, the maximiser is the indicator of $S^*$ and the maximum is
# $d_{TV}$ itself, without the factor 2.) With packing, the same argument on packs gives
# $\max_{|D| \le 1} \mathbb E_{P^m} D - \mathbb E_{Q^m} D = 2\, d_{TV}(P^m, Q^m)$.
#
# ```{admonition} Erratum
# :class: warning
# Some slides write the optimum of this objective as $\min_Q \mathbb E_{x\sim P}\,|1 - Q(x)/P(x)|$
# and call the inner expression $d_{TV}(P, Q)$. That expression equals $\sum_x |p(x) - q(x)|$,
# which is **twice** the total variation: $d_{TV}(P, Q) = \tfrac12\,\mathbb E_P|1 - Q/P|$. The
# slides' own example below has $d_{TV} = 0.2$, while $\mathbb E_P|1 - Q/P| = 0.4$ (checked below).
# ```
#
# The check uses the lecture's running example (next section): $P = U[0, 1]$ and
# $Q_1 = U[0.2, 1]$. Both densities are constant on the cells $[0, 0.2)$, $[0.2, 0.5)$,
# $[0.5, 1]$, so the optimal $D$ is constant on them too, and the problem reduces to three atoms.
# The cell maximises $V$ over $D \in [-1, 1]^3$ and over $D \in [0, 1]^3$ by linear programming
# (`scipy.optimize.linprog`), and estimates $\mathbb E_P|1 - q_1/p|$ by Monte Carlo.

# %%
CELLS = np.array([0.2, 0.3, 0.5])  # lengths of [0, 0.2), [0.2, 0.5), [0.5, 1]
P_CELLS = CELLS * 1.0  # U[0, 1]: density 1
Q1_CELLS = CELLS * np.array([0.0, 1.25, 1.25])  # U[0.2, 1]: density 1.25 on [0.2, 1]
Q2_CELLS = CELLS * np.array([1.4, 1.4, 0.6])  # density 1.4 on [0, 0.5), 0.6 on [0.5, 1]


def max_objective(p: np.ndarray, q: np.ndarray, low: float) -> float:
    """max Σ D(x)(p(x) − q(x)) over D(x) ∈ [low, 1], by linear programming."""
    res = linprog(-(p - q), bounds=[(low, 1.0)] * len(p))
    return -res.fun


tv1 = tv_distance(P_CELLS, Q1_CELLS)
v_signed, v_indicator = max_objective(P_CELLS, Q1_CELLS, -1.0), max_objective(P_CELLS, Q1_CELLS, 0.0)
gen = torch.Generator().manual_seed(0)
u = torch.rand(1_000_000, generator=gen, dtype=torch.float64)  # x ~ P = U[0, 1], p(x) = 1
q1_density = torch.where(u >= 0.2, 1.25, 0.0)
slides_expression = (1 - q1_density).abs().mean().item()  # E_P |1 − Q₁(x)/P(x)|
print(f"d_TV(P, Q1) = {tv1:.4f}")
print(f"max over |D| ≤ 1 of E_P D − E_Q D = {v_signed:.4f};  over 0 ≤ D ≤ 1: {v_indicator:.4f}")
print(f"E_P |1 − Q1/P| (Monte Carlo, 10⁶ samples) = {slides_expression:.4f}")
assert math.isclose(tv1, 0.2, abs_tol=1e-12)
assert math.isclose(v_signed, 2 * tv1, abs_tol=1e-9)  # the optimum is 2 d_TV ...
assert math.isclose(v_indicator, tv1, abs_tol=1e-9)  # ... or d_TV when D ∈ [0, 1]
assert abs(slides_expression - 0.4) < 0.003  # the slides' expression is 2 d_TV, not d_TV
assert abs(0.5 * slides_expression - tv1) < 0.0015  # the factor ½ is needed

# %% [markdown]
# ### 3.2 Same distance, different collapse: the lecture example
#
# Take $P = U[0, 1]$ and two generators at the **same** total variation from it:
#
# * $Q_1 = U[0.2, 1]$ (density $1.25$ on $[0.2, 1]$) misses the interval $[0, 0.2)$ entirely:
#   mode collapse. $d_{TV}(P, Q_1) = P([0, 0.2)) - Q_1([0, 0.2)) = 0.2$.
# * $Q_2$ has density $1.4$ on $[0, 0.5)$ and $0.6$ on $[0.5, 1]$: every region gets mass, just
#   the wrong amount. $d_{TV}(P, Q_2) = P([0.5, 1]) - Q_2([0.5, 1]) = 0.5 - 0.3 = 0.2$.
#
# A discriminator that sees one sample cannot prefer one generator to the other. Now pack two
# samples. For $Q_1$, $S^* = \{(x_1, x_2): \text{some } x_i < 0.2\}$: on it $q_1^2 = 0$ and off it
# $q_1^2 = 1.25^2 > 1 = p^2$, so
#
# $$
# d_{TV}(P^m, Q_1^m) = P^m(S^*) - Q_1^m(S^*) = 1 - 0.8^m, \qquad m = 2:\ 1 - 0.64 = 0.36 .
# $$
#
# For $Q_2$, the density of a pack depends only on the number $k$ of its points that fall in
# $[0, 0.5)$, which is Binomial$(m, \tfrac12)$ under $P$; a pack with $k$ such points has density
# $1.4^k\, 0.6^{m-k}$ under $Q_2^m$, and 1 under $P^m$. Hence
#
# $$
# d_{TV}(P^m, Q_2^m) = \frac12 \sum_{k=0}^{m} \binom{m}{k} 2^{-m}\, \big|1 - 1.4^k\, 0.6^{m-k}\big|,
# \qquad m = 2:\ \tfrac12 \cdot \tfrac14\,\big(|1 - 0.36| + 2\,|1 - 0.84| + |1 - 1.96|\big) = 0.24 .
# $$
#
# Packing two samples makes the collapsed generator $0.36 / 0.24 = 1.5$ times as costly as the
# spread one. The cell computes the table for $m = 1, \dots, 4$ three ways, from the closed forms,
# with `gencourse.divergences.tv_product` on the three cells (exact: the densities are constant
# on cells, so the pack's cell counts are a sufficient statistic), and by brute force over all
# $3^m$ cell sequences, and asserts the published values.

# %%
PUBLISHED = {1: (0.20, 0.20), 2: (0.36, 0.24), 3: (0.488, 0.284), 4: (0.590, 0.339)}


def tv_q2_closed_form(m: int) -> float:
    """½ Σₖ C(m, k) 2⁻ᵐ |1 − 1.4ᵏ 0.6^(m−k)|."""
    return 0.5 * sum(math.comb(m, k) * 0.5**m * abs(1 - 1.4**k * 0.6 ** (m - k)) for k in range(m + 1))


def tv_brute_force(p: np.ndarray, q: np.ndarray, m: int) -> float:
    """½ Σ over all 3ᵐ sequences of cells |Π p − Π q|."""
    return 0.5 * sum(
        abs(math.prod(p[i] for i in seq) - math.prod(q[i] for i in seq))
        for seq in itertools.product(range(len(p)), repeat=m)
    )


print(" m   d_TV(Pᵐ, Q1ᵐ)   d_TV(Pᵐ, Q2ᵐ)   ratio   paper")
for m, (paper1, paper2) in PUBLISHED.items():
    t1, t2 = tv_product(P_CELLS, Q1_CELLS, m), tv_product(P_CELLS, Q2_CELLS, m)
    print(f" {m}   {t1:13.4f}   {t2:13.4f}   {t1 / t2:5.2f}   {paper1:.3f}, {paper2:.3f}")
    assert math.isclose(t1, 1 - 0.8**m, abs_tol=1e-12) and math.isclose(
        t2, tv_q2_closed_form(m), abs_tol=1e-12
    )
    assert math.isclose(t1, tv_brute_force(P_CELLS, Q1_CELLS, m), abs_tol=1e-12)
    assert math.isclose(t2, tv_brute_force(P_CELLS, Q2_CELLS, m), abs_tol=1e-12)
    assert round(t1, 3) == paper1 and round(t2, 3) == paper2  # the table, to three decimals
    assert m == 1 or t1 > t2  # packing penalises the collapsed generator more

# %% [markdown]
# ### 3.3 How fast can packing grow the distance?
#
# For any pair with $\tau = d_{TV}(P, Q)$,
#
# $$
# \tau \;\le\; d_{TV}(P^m, Q^m) \;\le\; 1 - (1 - \tau)^m .
# $$
#
# *Lower bound.* An event about the first sample alone, $S \times \mathcal X^{m-1}$, has
# probability $P(S)$ under $P^m$ and $Q(S)$ under $Q^m$; the supremum over all events of the pack
# is at least the supremum over these, which is $\tau$.
#
# *Upper bound (coupling).* For any pair of random variables $(X, Y)$ with $X \sim P$ and
# $Y \sim Q$, $|P(S) - Q(S)| = |\Pr(X \in S) - \Pr(Y \in S)| \le \Pr(X \ne Y)$, so
# $d_{TV}(P, Q) \le \Pr(X \ne Y)$; the *maximal coupling* (put mass $\min(p, q)$ on $X = Y$)
# attains $\Pr(X \ne Y) = 1 - \sum_x \min(p, q) = \tau$. Couple the $m$ coordinates of a pack
# independently, each maximally: then $\Pr(X^m \ne Y^m) = 1 - \Pr(\text{all } m \text{ agree}) =
# 1 - (1 - \tau)^m$, and $d_{TV}(P^m, Q^m) \le 1 - (1 - \tau)^m$.
#
# The collapsed $Q_1$ **attains the upper bound** ($1 - 0.8^m$ with $\tau = 0.2$): missing mass is
# the worst case, and packing amplifies it as fast as possible. The cell checks both bounds on
# random pairs of distributions on five points, for $m = 1, \dots, 4$, and draws both examples
# against the bounds.

# %%
rng = np.random.default_rng(0)
for _ in range(200):
    p_rand, q_rand = rng.dirichlet(np.ones(5) * 0.5), rng.dirichlet(np.ones(5) * 0.5)
    tau = tv_distance(p_rand, q_rand)
    for m in range(1, 5):
        packed = tv_product(p_rand, q_rand, m)
        assert tau - 1e-12 <= packed <= 1 - (1 - tau) ** m + 1e-12
# the maximal coupling attains Pr(X ≠ Y) = 1 − Σ min(p, q) = τ
assert math.isclose(1 - np.minimum(p_rand, q_rand).sum(), tv_distance(p_rand, q_rand), abs_tol=1e-12)

ms = np.arange(1, 11)
tv_q1 = [tv_product(P_CELLS, Q1_CELLS, int(m)) for m in ms]
tv_q2 = [tv_product(P_CELLS, Q2_CELLS, int(m)) for m in ms]
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.fill_between(ms, 0.2, 1 - 0.8**ms, color="0.9", label="τ ≤ d_TV(Pᵐ, Qᵐ) ≤ 1 − (1 − τ)ᵐ, τ = 0.2")
ax.plot(ms, tv_q1, "o-", color="C3", label="Q₁ = U[0.2, 1] (misses [0, 0.2))")
ax.plot(ms, tv_q2, "s-", color="C0", label="Q₂ (densities 1.4 / 0.6)")
ax.set_xlabel("packing degree m")
ax.set_ylabel("d_TV(Pᵐ, Qᵐ)")
ax.set_title("packing amplifies missing mass faster")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# In the notebook (locally or on Colab) the next cell is a **PacGAN TV calculator**: choose the
# uniform example's parameters (where $Q_1$ starts, and $Q_2$'s density on $[0, 0.5)$) or type two
# small discrete distributions, choose $m$, and read $d_{TV}(P^m, Q^m)$. The rendered book shows
# the static figure above instead.

# %% tags=["remove-cell"]
import ipywidgets as widgets


def parse_distribution(text: str) -> np.ndarray:
    """'0.5, 0.3, 0.2' → a probability vector (normalised)."""
    values = np.array([float(v) for v in text.replace(";", ",").split(",") if v.strip()])
    return values / values.sum()


def tv_calculator(
    example: str = "uniform", a: float = 0.2, h: float = 1.4, p_text: str = "0.5, 0.3, 0.2",
    q_text: str = "0.3, 0.3, 0.4", m: int = 2,
) -> None:  # fmt: skip
    """Print and draw d_TV(Pᵐ, Qᵐ) for the chosen pair."""
    if example == "uniform":  # P = U[0, 1] on cells [0, a), [a, ½), [½, 1] (a < ½)
        cells = np.array([a, 0.5 - a, 0.5])
        pairs = {
            f"Q1 = U[{a:.2f}, 1]": (cells, cells * np.array([0, 1, 1]) / (1 - a)),
            f"Q2: density {h:.2f} / {2 - h:.2f}": (cells, cells * np.array([h, h, 2 - h])),
        }
    else:
        p_vec, q_vec = parse_distribution(p_text), parse_distribution(q_text)
        if len(p_vec) != len(q_vec):
            print("P and Q need the same number of entries")
            return
        pairs = {"Q": (p_vec, q_vec)}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (pp, qq) in pairs.items():
        values = [tv_product(pp, qq, k) for k in range(1, m + 1)]
        ax.plot(range(1, m + 1), values, "o-", label=name)
        print(f"{name}: d_TV(P, Q) = {values[0]:.4f}, d_TV(P^{m}, Q^{m}) = {values[-1]:.4f}")
    ax.set_xlabel("m")
    ax.set_ylabel("d_TV(Pᵐ, Qᵐ)")
    ax.legend()
    plt.show()


_ = widgets.interact(
    tv_calculator,
    example=widgets.Dropdown(options=["uniform", "discrete"], value="uniform"),
    a=widgets.FloatSlider(min=0.02, max=0.48, step=0.02, value=0.2),
    h=widgets.FloatSlider(min=1.0, max=2.0, step=0.05, value=1.4),
    p_text=widgets.Text(value="0.5, 0.3, 0.2"),
    q_text=widgets.Text(value="0.3, 0.3, 0.4"),
    m=widgets.IntSlider(min=1, max=8, value=2),
)

# %% [markdown]
# ### 3.4 Mode collapse, defined, and what packing does to it
#
# {cite}`lin2018pacgan` make "mode collapse" precise. For $0 \le \varepsilon < \delta \le 1$, a
# target $P$ and a generator $Q$ have **$(\varepsilon, \delta)$-mode collapse** if there is an event
# $S$ with
#
# $$
# P(S) \ge \delta \qquad\text{and}\qquad Q(S) \le \varepsilon :
# $$
#
# a region that holds at least $\delta$ of the data gets at most $\varepsilon$ of the samples.
# $Q_1$ has $(0, 0.2)$-mode collapse ($S = [0, 0.2)$). $Q_2$ has no $(0.1, 0.2)$-mode collapse:
# its density is at least $0.6$ everywhere, so $Q_2(S) \ge 0.6\,P(S) \ge 0.12$ whenever
# $P(S) \ge 0.2$. (`gencourse.pacgan.has_mode_collapse` decides this for discrete pairs, letting
# $S$ take fractions of atoms, as for densities.)
#
# Total variation alone cannot tell collapse apart: $Q_1$ and $Q_2$ have the same $\tau$. The
# paper's main result describes, for a given $\tau = d_{TV}(P, Q)$, the range of values
# $d_{TV}(P^m, Q^m)$ can take over **all** pairs with $(\varepsilon, \delta)$-mode collapse, and
# over all pairs without it. The key tool is that $d_{TV}(P^m, Q^m)$ depends on the pair only
# through the region $\{(P(S), Q(S))\}$ of all events, and grows when that region grows
# (Blackwell's ordering of experiments): a collapsed pair's region contains the point
# $(\delta, \varepsilon)$, so its packed distance is at least that of the smallest convex region
# through $(0, 0)$, $(\delta, \varepsilon)$, a point $(a, a - \tau)$ and $(1, 1)$; a pair without
# collapse has a region that avoids $(\delta, \varepsilon)$, hence lies above a line through it.
# `gencourse.pacgan.packing_bounds` computes both extremes numerically:
# `collapsed_min` (the smallest packed distance of a collapsed pair) and `uncollapsed_max` (the
# largest of a pair without collapse); the smallest packed distance over *all* pairs at
# distance $\tau$ is attained by a two-point pair $p = (a, 1 - a)$, $q = (a - \tau, 1 - a + \tau)$,
# minimised over $a$.
#
# The figure shades, for $(\varepsilon, \delta) = (0, 0.3)$ (a region holding 30 % of the data gets
# no samples at all) and $m = 1, \dots, 4$, where collapsed pairs can lie (red: from
# `collapsed_min` up to the upper bound of Section 3.3) and where pairs without collapse can lie
# (blue: from the smallest value over all pairs up to `uncollapsed_max`). At $m = 1$ both are the
# diagonal $d_{TV} = \tau$: the unpacked discriminator cannot see collapse. With $m \ge 2$ the
# floor under the collapsed pairs lies strictly above the floor over all pairs, for every $\tau$
# at which collapse is possible (checked up to $\tau = 0.9$; as $\tau \to 1$ everything tends to
# 1), and near $\tau = \delta$ that gap widens as $m$ grows: the
# **least** a collapsed generator can be penalised grows faster with $m$ than the least a
# spread-out one is. The bands still overlap (a badly spread generator can cost as much as a
# mildly collapsed one), which is the precise sense of "packing penalises collapse more". The
# cell asserts these statements on a grid of $\tau$.

# %%
EPS, DELTA = 0.0, 0.3
assert has_mode_collapse(P_CELLS, Q1_CELLS, 0.0, 0.2) and not has_mode_collapse(P_CELLS, Q2_CELLS, 0.1, 0.2)


def smallest_packed_tv(tau: float, m: int, n_grid: int = 201) -> float:
    """min over all pairs with d_TV = τ of d_TV(Pᵐ, Qᵐ): the two-point pairs (a, 1 − a) vs
    (a − τ, 1 − a + τ), minimised over a ∈ [τ, 1]."""
    return min(tv_product([a, 1 - a], [a - tau, 1 - a + tau], m) for a in np.linspace(tau, 1, n_grid)[:-1])


taus = np.linspace(0.02, 0.98, 25)
bands = {}
for m in range(1, 5):
    bounds = [packing_bounds(EPS, DELTA, float(t), m, n_grid=101) for t in taus]
    bands[m] = {
        "collapsed_min": np.array([b["collapsed_min"] for b in bounds]),
        "uncollapsed_max": np.array([b["uncollapsed_max"] for b in bounds]),
        "floor": np.array([smallest_packed_tv(float(t), m) for t in taus]),
        "ceiling": 1 - (1 - taus) ** m,
    }
fig, axes = plt.subplots(1, 4, figsize=(16, 4), sharey=True)
for ax, (m, band) in zip(axes, bands.items(), strict=True):
    ax.fill_between(
        taus, band["collapsed_min"], band["ceiling"], color="C3", alpha=0.3, label="with collapse"
    )
    ax.fill_between(taus, band["floor"], band["uncollapsed_max"], color="C0", alpha=0.3, label="without")
    ax.plot(taus, band["collapsed_min"], color="C3")
    ax.plot(taus, band["floor"], color="C0")
    ax.set_title(f"m = {m}")
    ax.set_xlabel("τ = d_TV(P, Q)")
axes[0].set_ylabel("d_TV(Pᵐ, Qᵐ)")
axes[0].legend(loc="upper left", fontsize=8)
fig.suptitle(f"(ε, δ) = ({EPS}, {DELTA})-mode collapse: where pairs can lie")
plt.show()

collapse = ~np.isnan(bands[2]["collapsed_min"])  # τ ≥ δ − ε: collapse is possible
gaps = {m: band["collapsed_min"][collapse] - band["floor"][collapse] for m, band in bands.items()}
near = (taus[collapse] >= DELTA - 1e-9) & (taus[collapse] <= 0.45)
for m in range(1, 5):
    print(
        f"m = {m}: collapsed floor − overall floor at τ = {taus[collapse][near].round(2)}: {gaps[m][near].round(3)}"
    )
assert np.allclose(bands[1]["collapsed_min"][collapse], taus[collapse], atol=1e-9)
assert np.allclose(bands[1]["floor"], taus, atol=1e-9)  # m = 1: everything on the diagonal
for m in (2, 3, 4):
    assert (gaps[m][taus[collapse] <= 0.9] > 1e-4).all()  # collapsed floor strictly above
    assert (
        bands[m]["uncollapsed_max"][~np.isnan(bands[m]["uncollapsed_max"])]
        <= 1 - (1 - taus[~np.isnan(bands[m]["uncollapsed_max"])]) ** m + 1e-9
    ).all()
assert (gaps[2][near] < gaps[3][near]).all() and (gaps[3][near] < gaps[4][near]).all()  # widening near τ = δ
# %% [markdown]
# ## 4. Reproducing Table 1: GAN against PacGAN on the ring and the grid
#
# PacGAN$m$ is the GAN of Section 1 with one change: the discriminator's input layer takes $m$
# points (the first maxout layer has $2m$ inputs), and it sees packs of $m$ real or $m$ generated
# points. Everything else (networks, loss, optimiser, number of updates, 100 packed examples per
# batch, so $100\,m$ points of each kind per update) is as for the GAN. With the `gpu` protocol's
# batch-norm generator, as in the paper's code, the $100\,m$ points of an update are made in $m$
# blocks of 100 with their own batch-norm statistics, one block per slot of a pack.
#
# ## 5. Another remedy: the unrolled GAN
#
# The unrolled GAN {cite}`metz2017unrolled` attacks collapse from the generator's side. A
# generator that moves all its mass to the mode the discriminator currently likes is punished only
# after the discriminator reacts, one step later, by which time the generator has moved on: the
# two chase each other round the modes. Unrolling lets the generator anticipate the reaction: it
# minimises its loss against $D_{\theta_k}$, the discriminator after $k$ simulated Adam steps,
#
# $$
# \theta_0 = \theta, \qquad \theta_{i+1} = \theta_i - \eta\, \mathrm{Adam}\big(\nabla_\theta L_D(\theta_i, G_\phi)\big),
# \qquad \min_\phi L_G\big(G_\phi, D_{\theta_k(\phi)}\big),
# $$
#
# differentiating through the $k$ steps (`train_pacgan(..., unroll=k)`; the discriminator itself
# still takes one ordinary step per update).
#
# ## 6. Controls: a bigger discriminator, or a bigger batch?
#
# PacGAN changes two other things besides packing. Its discriminator has more parameters (the
# first layer has $2m$ inputs instead of 2), and each update sees $m$ times as many points. Two
# controls separate these from packing itself:
#
# * **GAN, large D**: a GAN whose (unpacked) maxout discriminator is widened until it has as many
#   parameters as PacGAN4's (`gencourse.pacgan.matched_maxout_hidden`);
# * **GAN, 4× batch**: a GAN trained on batches of $4 \times 100$ points (generated in four
#   batch-norm blocks like PacGAN4's, which matters only for the `gpu` protocol's batch-norm
#   generator), so that it sees exactly as many points per update.
#
# The unrolled GAN and the controls are run on the grid, where the paper's differences are
# largest. The cell after the baselines prints each setting's mean ± standard deviation over
# its runs next to the paper's Table 1 (10 runs, 400,000 updates), and the wall time per setting.
#
# ```{admonition} How this runs
# :class: note
# Every setting trains its runs as one ensemble (Section 1) and evaluates them at a few points
# during training, which gives the curves below at no extra training. Unrolling costs about
# $k$ extra forward and backward passes of the discriminator per update, with second
# derivatives, so the `cpu` budget affords $k = 1$ (the `gpu` budget unrolls 5 steps); the GAN
# with four times the batch costs about four times as much per update as the GAN.
# ```

# %%
PAPER_TABLE1 = {  # (modes, high-quality %, reverse KL): ring then grid; Lin et al. 2018, Table 1
    "GAN": ((6.3, 98.2, 0.45), (17.3, 94.8, 0.70)),
    "PacGAN2": ((7.9, 95.6, 0.07), (23.8, 91.3, 0.13)),
    "PacGAN3": ((7.8, 97.7, 0.10), (24.6, 94.2, 0.06)),
    "PacGAN4": ((7.8, 95.9, 0.07), (24.8, 93.6, 0.04)),
}
PAPER_MODES_SPREAD = {  # the ± of the paper's mode counts (Table 1, 10 runs): ring then grid
    "GAN": (0.5, 0.8), "PacGAN2": (0.1, 0.7), "PacGAN3": (0.1, 0.4), "PacGAN4": (0.1, 0.2),
}  # fmt: skip
UNROLL = budget(ci=1, cpu=1, gpu=5)  # look-ahead steps (Metz et al. used up to 10)
for name in ("ring", "grid"):
    for m in (2, 3, 4):
        RESULTS[name, f"PacGAN{m}"] = train_setting(name, m)
RESULTS["grid", f"Unrolled GAN (k = {UNROLL})"] = train_setting("grid", unroll=UNROLL)
pac4_params = RESULTS["grid", "PacGAN4"]["d_params"]
wide = matched_maxout_hidden(pac4_params, in_dim=2, pieces=PIECES, depth=3)
RESULTS["grid", "GAN, large D"] = train_setting("grid", d_hidden=wide)
RESULTS["grid", "GAN, 4× batch"] = train_setting("grid", batch_factor=4)
print(
    f"discriminator parameters: GAN {RESULTS['grid', 'GAN']['d_params']:,}, PacGAN4 {pac4_params:,}, "
    f"GAN large D (width {wide}) {RESULTS['grid', 'GAN, large D']['d_params']:,}"
)
width_gaps = {
    w: abs(parameter_count(MaxoutDiscriminator(2, w, PIECES, 3)) - pac4_params)
    for w in (wide - 1, wide, wide + 1)
}
assert min(width_gaps, key=width_gaps.get) == wide  # the closest width to PacGAN4's parameter count

# %% [markdown]
# **Trivial baselines on the same metric.** Before reading any row, three generators that
# learn nothing, scored by `mode_stats` on 2,500 samples exactly like the GANs (5 draws each):
# uniform noise on the data's bounding box (`gencourse.pacgan.uniform_box_samples`), the single
# Gaussian fitted to the training set by maximum likelihood (`gaussian_fit_samples`), and the
# true mixture itself (the ceiling). Noise spread over the plane touches most modes of the grid
# with a few of its points, so **a mode count means nothing without the high-quality
# fraction beside it**. The rule of this lecture, enforced in the code below: a setting's modes
# and reverse KL are read only if the mean over its runs of the high-quality fraction is at
# least 70 % (`gencourse.pacgan.HIGH_QUALITY_MIN`; the paper's GAN, 17.3 modes at 94.8 %,
# passes it; uniform noise does not); a row below that gets a computed reason
# (`quality_invalid_reason`), printed in the table and carried to the scoreboard.

# %%
BASELINE_DRAWS = 5


def baseline_stats(data_name: str) -> dict[str, dict[str, np.ndarray]]:
    """mode_stats of the three trivial generators, BASELINE_DRAWS draws of N_EVAL points each,
    in the same format as train_setting's results (high quality in %)."""
    mix, data = MIXTURES[data_name], TRAIN_SETS[data_name]
    samplers = {
        "uniform on the data's box": lambda gen: uniform_box_samples(data, N_EVAL, gen),
        "one Gaussian fitted": lambda gen: gaussian_fit_samples(data, N_EVAL, gen),
        "the true mixture": lambda gen: mix.sample(N_EVAL, gen),
    }
    out = {}
    for label, sample in samplers.items():
        stats = [mode_stats(sample(torch.Generator().manual_seed(50 + i)), mix.centers, mix.std) for i in range(BASELINE_DRAWS)]  # fmt: skip
        out[label] = {key: np.array([s[key] for s in stats], dtype=float) for key in ("modes", "high_quality", "reverse_kl")}  # fmt: skip
        out[label]["high_quality"] *= 100
    return out


BASELINES = {name: baseline_stats(name) for name in ("ring", "grid")}


def invalid(res: dict) -> str:
    """The 70 % rule: "" if the runs' mean high-quality fraction is ≥ 70 %, else the reason."""
    return quality_invalid_reason(res["high_quality"] / 100)


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (ddof 1) over runs, NaN runs (no high-quality sample) dropped."""
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


for name in ("ring", "grid"):
    k = len(MIXTURES[name].centers)
    print(f"\n{name} ({k} modes), {PROTOCOL['steps']:,} updates, {len(SEEDS)} runs per setting "
          f"(baselines: {BASELINE_DRAWS} draws); mean ± std, paper in brackets")  # fmt: skip
    print(f"{'':26s} {'modes':>20s} {'high quality %':>21s} {'reverse KL':>19s} {'s':>5s}  validity")
    rows = [(s, r) for (d_name, s), r in RESULTS.items() if d_name == name] + list(BASELINES[name].items())
    for setting, res in rows:
        paper = PAPER_TABLE1.get(setting, (None, None))[0 if name == "ring" else 1]
        cols = []
        for i, key in enumerate(("modes", "high_quality", "reverse_kl")):
            mu, sd = mean_std(res[key])
            ref = f"[{paper[i]:g}]" if paper else ""
            cols.append(f"{mu:6.2f} ± {sd:4.2f} {ref:>6s}")
        secs = f"{res['seconds']:5.0f}" if "seconds" in res else "    –"
        print(f"{setting:26s} {cols[0]:>20s} {cols[1]:>21s} {cols[2]:>19s} {secs}  {invalid(res) or 'valid'}")

# %%
assert all(b["the true mixture"]["high_quality"].mean() > 95 for b in BASELINES.values())
assert BASELINES["grid"]["the true mixture"]["modes"].min() == 25
if LEVEL != "ci":  # noise touches most modes of the grid, with almost no high-quality sample
    assert BASELINES["grid"]["uniform on the data's box"]["modes"].mean() > 20
    assert all(
        invalid(BASELINES[n][b])
        for n in MIXTURES
        for b in ("uniform on the data's box", "one Gaussian fitted")
    )

# %% [markdown]
# **Curves.** Each panel shows one metric against the number of updates, the mean over the runs
# of each setting with a band of ± one standard deviation; the dotted line in the high-quality
# panels is the 70 % threshold, and the grey lines mark uniform noise on the data's box.

# %%
fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
for row, name in zip(axes, ("ring", "grid"), strict=True):
    for (d_name, setting), res in RESULTS.items():
        if d_name != name:
            continue
        for ax, key in zip(row, ("modes", "high_quality", "reverse_kl"), strict=True):
            curve = res["curves"][key]
            mu, sd = np.nanmean(curve, 1), np.nanstd(curve, 1)
            ax.plot(res["curve_steps"], mu, label=setting, lw=1.2)
            ax.fill_between(res["curve_steps"], mu - sd, mu + sd, alpha=0.15)
    for ax, key, title in zip(row, ("modes", "high_quality", "reverse_kl"), ("modes captured", "high quality %", "reverse KL"), strict=True):  # fmt: skip
        ax.axhline(np.nanmean(BASELINES[name]["uniform on the data's box"][key]), c="grey", lw=0.8)
        ax.set_title(f"{name}: {title}", fontsize=10)
        ax.set_xlabel("updates")
    row[1].axhline(100 * HIGH_QUALITY_MIN, c="k", ls=":", lw=0.8)
axes[1, 0].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Verdicts.** The paper's comparisons, computed from the runs. "PacGAN$m$ beats the GAN" means:
# both settings pass the 70 % rule, PacGAN$m$ captures more modes **and** has a lower reverse KL,
# each difference larger than two standard errors of the difference over the runs
# (`gencourse.pacgan.beyond_spread`). The same test compares PacGAN4 with the unrolled GAN and
# the two controls.

# %%
PACS = ("PacGAN2", "PacGAN3", "PacGAN4")
CONTROLS = (f"Unrolled GAN (k = {UNROLL})", "GAN, large D", "GAN, 4× batch")


def beats(data_name: str, a: str, b: str) -> bool:
    """Setting a beats setting b: both pass the 70 % rule, more modes and lower reverse KL
    beyond the spread over the runs."""
    ra, rb = RESULTS[data_name, a], RESULTS[data_name, b]
    return (
        not invalid(ra)
        and not invalid(rb)
        and beyond_spread(ra["modes"], rb["modes"], higher_is_better=True)
        and beyond_spread(ra["reverse_kl"], rb["reverse_kl"], higher_is_better=False)
    )


ORDERING = {(n, p): beats(n, p, "GAN") for n in MIXTURES for p in PACS}
ORDERING.update({(n, "GAN"): all(ORDERING[n, p] for p in PACS) for n in MIXTURES})
ORDERING.update({("grid", c): beats("grid", "PacGAN4", c) for c in CONTROLS})
for (data_name, setting), held in ORDERING.items():
    print(f"{data_name:4s} {setting:24s} {'ordering held' if held else 'not reproduced at this budget'}"
          f"{'  (' + invalid(RESULTS[data_name, setting]) + ')' if invalid(RESULTS[data_name, setting]) else ''}")  # fmt: skip

# %% [markdown]
# **Reading the table at the `cpu` budget.** On the grid the paper's comparison is **not
# reproduced at this budget**. The curves show why: as the learning rates decay, the samples
# of the GAN and of every PacGAN on the grid sharpen (the high-quality fraction is higher at the
# end than at the first evaluation), and the GAN's end sharper than every PacGAN's: the packed
# discriminators sharpen their generators more slowly. After 4,000 updates no PacGAN's samples
# are 70 % high quality, so their mode counts and reverse KL cannot be read, and every ordering
# above on the grid, the controls' included, is "not reproduced". The cell below asserts each of
# these statements at the `cpu` budget. On the ring the
# verdicts printed above are what the scoreboard records. The paper's Table 1 needs its own
# protocol (wider networks with batch norm and 100 times as many updates), which is what the
# `gpu` budget runs.

# %%
if LEVEL == "cpu":  # the statements of the text above
    assert all(invalid(RESULTS["grid", p]) for p in PACS)
    assert not any(held for (data_name, _), held in ORDERING.items() if data_name == "grid")
    grid_hq = {setting: mean_std(RESULTS["grid", setting]["high_quality"])[0] for setting in ("GAN", *PACS)}
    assert all(grid_hq["GAN"] > grid_hq[p] for p in PACS), grid_hq
    for setting in ("GAN", *PACS):
        curve = np.nanmean(RESULTS["grid", setting]["curves"]["high_quality"], 1)
        assert curve[-1] > curve[0], setting  # sharper at the end than at the first evaluation

# %%
fig, axes = plt.subplots(2, 5, figsize=(14, 5.8))
for row, name in zip(axes, ("ring", "grid"), strict=True):
    mix = MIXTURES[name]
    lim = 1.5 if name == "ring" else 5.5
    real = mix.sample(N_EVAL, torch.Generator().manual_seed(2))
    row[0].scatter(real[:, 0], real[:, 1], s=1, c="k")
    row[0].set_title(f"{name}: data")
    for ax, setting in zip(row[1:], ("GAN", *PACS), strict=True):
        res = RESULTS[name, setting]
        ax.scatter(res["final"][:, 0], res["final"][:, 1], s=1, alpha=0.4)
        ax.scatter(mix.centers[:, 0], mix.centers[:, 1], marker="x", c="r", s=12, lw=0.8)
        ax.set_title(f"{setting}: {res['modes'][0]:.0f} modes, {res['high_quality'][0]:.0f}% HQ", fontsize=9)
    for ax in row:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
plt.show()

# %%
# headline numbers for the reproduction scoreboard (written only when GENCOURSE_RESULTS is set)
protocol_note = (
    f"{PROTOCOL['steps']:,} updates; generator {PROTOCOL['g_hidden']}×{PROTOCOL['g_depth']}"
    f"{' with batch norm' if PROTOCOL['g_batch_norm'] else ' without batch norm'}, maxout discriminator "
    f"{PROTOCOL['d_hidden']}×{PIECES}×3, lr {PROTOCOL['lr']:g} (G) / {PROTOCOL['lr_d']:g} (D)"
)


def raw(res: dict) -> dict[str, float]:
    """A setting's recorded numbers: means over runs of modes, high-quality % and reverse KL."""
    return {key: mean_std(res[k])[0] for key, k in (("modes", "modes"), ("high_quality_pct", "high_quality"), ("reverse_kl", "reverse_kl"))}  # fmt: skip


def ruled_baseline(res: dict) -> dict[str, float]:
    """A trivial baseline on the compared keys, modes counted under the 70 % rule (0 where its
    samples fail it: its mode count cannot be read) and its high-quality %."""
    return {"modes": 0.0 if invalid(res) else mean_std(res["modes"])[0], "high_quality_pct": mean_std(res["high_quality"])[0]}  # fmt: skip


CLAIMS = {
    "GAN": "every PacGAN beats the GAN: both ≥ 70 % high quality, more modes and lower reverse KL beyond 2 standard errors over the runs",
    **{p: f"{p} beats the GAN: both ≥ 70 % high quality, more modes and lower reverse KL beyond 2 standard errors over the runs" for p in PACS},
    **{c: f"PacGAN4 beats the {c}: both ≥ 70 % high quality, more modes and lower reverse KL beyond 2 standard errors over the runs" for c in CONTROLS},
}  # fmt: skip
for (data_name, setting), res in RESULTS.items():
    short = setting.lower().split(" (")[0].replace(",", "").replace("× ", "x_").replace(" ", "_")
    i = 0 if data_name == "ring" else 1
    paper = PAPER_TABLE1.get(setting, (None, None))[i]
    record(
        f"pacgan/{data_name}_modes_{short}",
        raw(res),
        paper=dict(zip(("modes", "high_quality_pct", "reverse_kl"), paper, strict=True)) if paper else None,
        higher_is_better=True,
        unit=f"modes of {len(MIXTURES[data_name].centers)}; high-quality %; reverse KL (lower is better, not compared with the baselines)",
        lecture="04_mode_collapse_pacgan",
        description=f"{setting} on the 2-D {data_name}: modes, high-quality % and reverse KL (means over runs, 2,500 samples each)",
        seeds=SEEDS,
        wall_time_s=res["seconds"],
        baseline={
            label: ruled_baseline(b)
            for label, b in BASELINES[data_name].items()
            if label != "the true mixture"
        },
        spread=mean_std(res["modes"])[1],
        paper_spread=PAPER_MODES_SPREAD[setting][i] if setting in PAPER_MODES_SPREAD else None,
        ordering=ORDERING.get((data_name, setting)),
        ordering_claim=CLAIMS[setting] if (data_name, setting) in ORDERING else "",
        invalid_reason=invalid(res),
        note=(
            "baselines' modes counted under the 70 % rule (0 where their samples fail it); "
            f"the true mixture: {BASELINES[data_name]['the true mixture']['modes'].mean():.1f} modes, "
            f"{BASELINES[data_name]['the true mixture']['high_quality'].mean():.1f} % high quality; {protocol_note}"
        ),
    )

# %% [markdown]
# ## 7. Stacked MNIST: 1,000 modes
#
# The image benchmark of {cite}`lin2018pacgan` (from {cite}`metz2017unrolled` and
# {cite}`srivastava2017veegan`) stacks three MNIST digits, drawn independently, as the three
# channels of one $3 \times 28 \times 28$ image: there are $10^3 = 1000$ modes (one per triple of
# digits), all equally likely. A generated image's mode is read off by an MNIST classifier applied
# to each channel; the metrics are the number of modes among the generated samples (the paper uses
# 26,000) and $\mathrm{KL}(\hat q \,\|\, U)$ of the modes' histogram against the uniform
# distribution on 1,000. We train the course's classifier (`gencourse.nets.MNISTClassifier`) and
# check it on real stacked images first: they must show (nearly) all modes.

# %%
mnist, mnist_test = load_mnist("train"), load_mnist("test")
seed_everything(0)
classifier = MNISTClassifier().to(DEVICE)
train_classifier(
    classifier,
    mnist.images.to(DEVICE),
    mnist.labels.to(DEVICE),
    steps=budget(ci=150, cpu=400, gpu=3000),
    seed=0,
)
classifier.eval()
classifier_accuracy = accuracy(classifier, mnist_test.images, mnist_test.labels)
N_STACKED = budget(ci=2_000, cpu=5_000, gpu=26_000)


def stacked_sampler(images: torch.Tensor):
    """sample_real(n, gen) for train_gan: n images of three independent digits as channels."""

    def sample_real(n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        idx = torch.randint(len(images), (n, 3), generator=gen)
        return images[idx].squeeze(2)  # (n, 3, 1, 28, 28) → (n, 3, 28, 28)

    return sample_real


@torch.no_grad()
def stacked_modes(x: torch.Tensor) -> tuple[int, float]:
    """(modes, KL(q̂ ‖ U₁₀₀₀)) of images x (n, 3, 28, 28): the mode of an image is
    100·c₁ + 10·c₂ + c₃ with cᵢ the classifier's digit for channel i."""
    digits = torch.cat(
        [classifier(chunk.reshape(-1, 1, 28, 28).to(DEVICE)).argmax(1).cpu() for chunk in x.split(1000)]
    )
    modes = digits.view(-1, 3) @ torch.tensor([100, 10, 1])
    q = torch.bincount(modes, minlength=1000).double() / len(modes)
    q = q[q > 0]
    return len(q), float((q * torch.log(1000 * q)).sum())


real_stacked = stacked_sampler(mnist_test.images)(N_STACKED, torch.Generator().manual_seed(0))
real_modes, real_kl = stacked_modes(real_stacked)
expected = 1000 * (1 - (1 - 1 / 1000) ** N_STACKED)  # distinct modes among N uniform draws
print(f"classifier test accuracy {classifier_accuracy:.3f}")
print(
    f"real stacked test images (N = {N_STACKED:,}): {real_modes} modes (uniform draws: {expected:.0f} expected), KL {real_kl:.3f}"
)
if LEVEL != "ci":
    assert classifier_accuracy > 0.95 and real_modes >= 0.97 * expected

# %% [markdown]
# **DCGAN against PacDCGAN2.** The generator and discriminator are lecture 2's small DCGAN pair
# (`DCGANGenerator` with 3 output channels, `DCGANDiscriminator`), non-saturating loss, Adam with
# $\beta = (0.5, 0.999)$, batches of 64. PacDCGAN2 is the same with packing $m = 2$: the
# discriminator's input has $2 \times 3 = 6$ channels (`train_gan(..., pack=2)`, which builds the
# packs with `gencourse.gan.pack_samples`, the same grouping as `gencourse.pacgan.pack`).
# Departures from the paper, stated: its Table 2 uses the DCGAN setting of the VEEGAN
# experiments {cite}`srivastava2017veegan` (larger networks, longer training) and counts 26,000
# samples; here the networks are lecture 2's small pair, the `cpu` budget trains for only the
# number of updates the cell prints (a few hundred) and counts the printed number of samples,
# and there is one run per setting below the `gpu` budget. At the `cpu` budget this is a
# demonstration of the pipeline, not a reproduction: the samples are far from converged, and the
# cell asserts nothing about the two models' ordering.

# %%
STACK_STEPS = budget(ci=15, cpu=400, gpu=20_000)
STACK_SEEDS = budget(ci=[0], cpu=[0], gpu=[0, 1, 2])
stacked_train = stacked_sampler(mnist.images.to(DEVICE))
STACKED = {}
for name, m in (("DCGAN", 1), ("PacDCGAN2", 2)):
    for seed in STACK_SEEDS:
        seed_everything(seed)
        g, d = (
            DCGANGenerator(latent_dim=64, out_channels=3).to(DEVICE),
            DCGANDiscriminator(in_channels=3 * m).to(DEVICE),
        )
        t = time.perf_counter()
        train_gan(
            g,
            d,
            stacked_train,
            64,
            STACK_STEPS,
            loss="ns",
            lr_g=1e-3,
            lr_d=1e-3,
            batch_size=64,
            pack=m,
            seed=seed,
            desc=name,
        )
        with torch.no_grad():
            samples = torch.cat(
                [
                    g(sample_latent(1000, 64, torch.Generator().manual_seed(10 + i), DEVICE)).cpu()
                    for i in range(N_STACKED // 1000)
                ]
            )
        STACKED[name, seed] = (*stacked_modes(samples), time.perf_counter() - t)
        if seed == STACK_SEEDS[0]:
            STACKED[name, "samples"] = samples[:32]

PAPER_STACKED = {"DCGAN": (99.0, 3.40), "PacDCGAN2": (1000.0, 0.06)}
print(
    f"Stacked MNIST, {STACK_STEPS:,} updates, {N_STACKED:,} samples, seeds {STACK_SEEDS}; paper in brackets"
)
stacked_summary = {}
for name in ("DCGAN", "PacDCGAN2"):
    modes = np.array([STACKED[name, s][0] for s in STACK_SEEDS], dtype=float)
    kls = np.array([STACKED[name, s][1] for s in STACK_SEEDS])
    secs = sum(STACKED[name, s][2] for s in STACK_SEEDS)
    stacked_summary[name] = (modes.mean(), kls.mean(), secs)
    print(
        f"{name:10s} modes {modes.mean():7.1f} [{PAPER_STACKED[name][0]:g}]   KL {kls.mean():5.2f} [{PAPER_STACKED[name][1]:g}]   {secs:4.0f} s"
    )
fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
show_images(real_stacked[:32], nrow=8, ax=axes[0], title="real stacked MNIST")
show_images(STACKED["DCGAN", "samples"], nrow=8, ax=axes[1], title="DCGAN")
show_images(STACKED["PacDCGAN2", "samples"], nrow=8, ax=axes[2], title="PacDCGAN2")
plt.show()

# %% [markdown]
# **Baselines on the same metric.** Three generators that learn nothing about making digits,
# scored by the same classifier on the same number of samples: random triples of real test
# digits (the "real stacked test images" above: every mode is reachable, the ceiling for
# coverage), the same triples blurred by a Gaussian of standard deviation 2 pixels
# (`gencourse.pacgan.blur_images`: a blurry generator that has memorised the data), and the mean
# training digit in every channel (one image: one mode, and KL $= \log 1000$).

# %%
BLUR_SIGMA = 2.0
mean_digit = mnist.images.mean(0, keepdim=True).expand(N_STACKED, 3, 28, 28)
STACK_BASELINES = {
    "random real triples": (real_modes, real_kl),
    f"blurred real triples (σ = {BLUR_SIGMA:g} px)": stacked_modes(blur_images(real_stacked, BLUR_SIGMA)),
    "mean digit in every channel": stacked_modes(mean_digit),
}
print(f"{'':34s} {'modes of 1000':>14s} {'KL to uniform':>14s}")
for label, (modes, kl) in [
    *((n, stacked_summary[n][:2]) for n in ("DCGAN", "PacDCGAN2")),
    *STACK_BASELINES.items(),
]:
    print(f"{label:34s} {modes:14.1f} {kl:14.2f}")
blurred_modes = STACK_BASELINES[f"blurred real triples (σ = {BLUR_SIGMA:g} px)"][0]
assert STACK_BASELINES["mean digit in every channel"][0] == 1
assert math.isclose(STACK_BASELINES["mean digit in every channel"][1], math.log(1000), rel_tol=1e-9)
if LEVEL == "cpu":  # the statement of the text below
    assert blurred_modes >= 0.8 * real_modes

# %% [markdown]
# **What the baselines say about the GAN numbers.** The mean digit scores one mode with the
# largest possible KL, $\log 1000$, as it must. The blurred copies of real triples keep at least
# 80 % of the real triples' modes at the `cpu` budget (asserted above; the cell prints both):
# the classifier still reads a blurred digit, so the mode count measures **coverage, not
# sharpness**. A generator's count is therefore read against the real triples (the ceiling at
# this number of samples), and what it says about quality has to come from looking at the
# samples. On the scoreboard, both baselines stand beside the DCGAN's and PacDCGAN2's counts;
# where a model covers fewer modes than the blurred copies, its row says "below baseline".

# %%
for name in ("DCGAN", "PacDCGAN2"):
    record(
        f"pacgan/stacked_mnist_modes_{name.lower()}",
        float(stacked_summary[name][0]),
        paper=PAPER_STACKED[name][0],
        higher_is_better=True,
        unit="modes of 1000",
        lecture="04_mode_collapse_pacgan",
        description=f"{name} on Stacked MNIST: modes among {N_STACKED:,} samples (course classifier)",
        seeds=STACK_SEEDS,
        wall_time_s=stacked_summary[name][2],
        baseline={
            label: float(v[0]) for label, v in STACK_BASELINES.items() if label != "random real triples"
        },
        note=(
            f"{STACK_STEPS:,} updates of lecture 2's small DCGAN pair; KL to uniform {stacked_summary[name][1]:.2f}; "
            f"ceiling (random real triples) {real_modes} modes, KL {real_kl:.2f}"
        ),
    )

# %% [markdown]
# ## Summary
#
# * A discriminator that judges one sample at a time cannot see missing diversity; PacGAN's
#   discriminator judges packs of $m$ samples, all real or all generated, and nothing else changes.
# * The idealised objective $\max_{|D|\le 1} \mathbb E_P D - \mathbb E_Q D$ equals
#   $2\,d_{TV}(P, Q) = \sum_x |p - q| = \mathbb E_P|1 - q/p|$: the total variation carries a factor
#   ½ that slides drop (checked by linear programming and Monte Carlo).
# * Packing amplifies missing mass: with $\tau = 0.2$ for both, $d_{TV}(P^m, Q_1^m) = 1 - 0.8^m$
#   (0.36 at $m = 2$) for the collapsed $Q_1$ against 0.24 for the spread $Q_2$; in general
#   $\tau \le d_{TV}(P^m, Q^m) \le 1 - (1 - \tau)^m$, and collapse attains the upper bound.
# * Over all pairs at the same $\tau$, the least packed distance of an $(\varepsilon, \delta)$-collapsed
#   pair lies above the least over all pairs as soon as $m \ge 2$, by a margin that widens with $m$.
# * A mode count means something only beside the fraction of high-quality samples: uniform
#   noise touches most of the grid's modes. Modes and reverse KL are read here only where at
#   least 70 % of the samples are of high quality.
# * On PacGAN's 2-D grid, with a protocol cut to fit a CPU (4,000 updates), the paper's
#   comparison is not reproduced at this budget: no PacGAN's samples reach 70 % high quality
#   (asserted at the `cpu` budget); the curves and the verdicts say where each setting stands,
#   and the paper's own protocol is the `gpu` budget's.
# * On Stacked MNIST, blurred copies of real digits keep at least 80 % of the real ones' modes: the
#   count measures coverage, not sharpness, and is read against that ceiling.
#
# Next: lecture 5 uses a trained generator as a prior for inverse problems.

# %%
ELAPSED = time.perf_counter() - T0
record_timing("04_mode_collapse_pacgan", ELAPSED)
print(f"lecture run time at budget '{LEVEL}': {ELAPSED:.0f} s")
