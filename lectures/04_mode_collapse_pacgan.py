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

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.optimize import linprog, minimize_scalar

from gencourse.data import grid_mixture, load_mnist, ring_mixture
from gencourse.divergences import tv_distance, tv_product
from gencourse.gan import sample_latent, train_gan
from gencourse.lecture import start
from gencourse.nets import DCGANDiscriminator, DCGANGenerator, MNISTClassifier, accuracy, train_classifier
from gencourse.pacgan import (
    HIGH_QUALITY_MIN,
    MIXTURE_CPU_PROTOCOL,
    MaxoutDiscriminator,
    Packed,
    beyond_spread,
    blur_images,
    collapsed_extremal_pair,
    gaussian_fit_samples,
    has_mode_collapse,
    lower_boundary,
    matched_maxout_hidden,
    mean_std,
    mode_stats,
    mode_stats_over_draws,
    pack,
    packing_bounds,
    parameter_count,
    runs_invalid_reason,
    train_mixture_setting,
    uniform_box_samples,
)
from gencourse.plotting import show_images
from gencourse.report import record
from gencourse.runtime import budget, seed_everything

# %%
# the budget level and the device every number below was computed with; starts the clock
LECTURE = start("04_mode_collapse_pacgan")
LEVEL, DEVICE = LECTURE.level, LECTURE.device

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
# (packed) examples, 400,000 updates, 10 runs per setting. The opt-in `paper` budget
# (`GENCOURSE_BUDGET=paper`) uses exactly that (expect several hours for the whole table, even on
# a GPU); the `gpu` budget, sized for a Colab session, runs the `cpu` protocol two and a half times
# longer (10,000 updates) with 10 runs per setting. On a
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
# gencourse.pacgan.MIXTURE_CPU_PROTOCOL: generator 64 × 3 without batch norm, maxout discriminator
# 48 wide, PyTorch's initialisation, lr 1e-3 (G) / 1e-2 (D) decaying to 1e-4, betas (0.5, 0.9), 4,000 updates
CPU_PROTOCOL = dict(MIXTURE_CPU_PROTOCOL)
PROTOCOL = budget(
    ci={**CPU_PROTOCOL, "g_hidden": 16, "d_hidden": 8, "steps": 40},
    cpu=CPU_PROTOCOL,
    gpu={**CPU_PROTOCOL, "steps": 10_000},  # sized for a Colab session
    paper=PAPER_PROTOCOL,  # the paper's Table 1 protocol: hours, opt-in only
)
SEEDS = list(range(budget(ci=2, cpu=5, gpu=10)))  # the paper: 10 runs per setting
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
    members = len(SEEDS)
    evaluated = []  # the points of every run at every evaluation, run by run

    def evaluate(points: torch.Tensor) -> dict:
        evaluated.append(points)
        return mode_stats(points, mix.centers, mix.std)

    t = time.perf_counter()
    # torch.manual_seed(seed), G and D built from PROTOCOL, train_pacgan with its learning rates
    history, _, d = train_mixture_setting(
        data, PROTOCOL, m, members=members, seed=seed, evaluate=evaluate, n_eval=N_EVAL,
        eval_every=PROTOCOL["steps"] // N_CURVE, pieces=PIECES, batch_size=BATCH * batch_factor,
        d_hidden=d_hidden, bn_groups=batch_factor if batch_factor > 1 else None, unroll=unroll,
        device=DEVICE, desc=f"{data_name} m={m}",
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
def square_panels(axes, lim: float) -> None:
    """Scatter panels on the square [−lim, lim]², equal aspect, no ticks."""
    for ax in axes:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])


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
    square_panels(row, lim)
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
# **one** sample at a time can only ask "how likely is this point under the data, compared with
# under the generator?". That question does see collapse. Take the 25 modes as 25 atoms with
# $p = 1/25$ each, and a generator that puts all its mass evenly on 15 of them, $q = 1/15$ there
# and $0$ on the other 10. Lecture 2's optimal discriminator $D^*(x) = p(x) / (p(x) + q(x))$ is
#
# $$
# D^*(x) = \frac{1/25}{1/25 + 1/15} = \frac{15}{40} = 0.375 \ \text{on a covered mode},
# \qquad D^*(x) = \frac{1/25}{1/25 + 0} = 1 \ \text{on a missing mode},
# $$
#
# not the $\tfrac12$ of a perfect generator, and the two distributions are far apart:
# $d_{TV}(P, Q) = \tfrac12\big(15\,|\tfrac1{25} - \tfrac1{15}| + 10 \cdot \tfrac1{25}\big) = 0.4 > 0$
# (section 3 defines $d_{TV}$). So a one-sample discriminator *does* penalise this collapse. What it
# cannot do is tell collapse apart from mass that is merely misplaced: a generator that covers
# every mode, giving 5 of them $0.12$ each and the other 20 $0.02$ each, is at the same distance
# $d_{TV} = \tfrac12\big(5 \cdot 0.08 + 20 \cdot 0.02\big) = 0.4$, and a one-sample game whose optimum is
# $d_{TV}$ scores the two generators the same. Diversity is a property of *several* samples. If
# the discriminator sees $m$ samples at once, all real or all generated, the collapsed generator
# stands out: the chance that $m$ points all fall on the 15 covered modes is $0.6^m$ for real
# data but $1$ for the collapsed generator, and the distance between packs grows to
# $1 - 0.6^m$ for it ($0.64$ at $m = 2$), against $0.48$ for the spread-out one (checked below;
# section 3 explains why).
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

# the 25-mode example: a one-sample discriminator sees collapse, but not collapse *as such*
p_grid = np.full(25, 1 / 25)  # the data: 25 equally likely modes
q_collapsed = np.r_[np.full(15, 1 / 15), np.zeros(10)]  # all mass on 15 modes
q_misplaced = np.r_[np.full(5, 0.12), np.full(20, 0.02)]  # every mode covered, wrong weights
d_star = p_grid / (p_grid + q_collapsed)  # lecture 2's optimal one-sample discriminator
print(f"D* on covered modes {d_star[0]:.3f}, on missing modes {d_star[-1]:.3f}")
assert np.allclose(d_star[:15], 0.375) and np.allclose(d_star[15:], 1.0)
for m in (1, 2, 3):
    tv_c, tv_m = tv_product(p_grid, q_collapsed, m), tv_product(p_grid, q_misplaced, m)
    print(f"m = {m}: d_TV(Pᵐ, Qᵐ) collapsed {tv_c:.3f}, misplaced {tv_m:.3f}")
    assert math.isclose(tv_c, 1 - 0.6**m, abs_tol=1e-9)  # 0.4 at m = 1: the collapse is penalised
    assert math.isclose(tv_m, 0.4, abs_tol=1e-9) if m == 1 else tv_m < tv_c - 0.1
assert math.isclose(tv_product(p_grid, q_misplaced, 2), 0.48, abs_tol=1e-9)

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
# The second form needs the condition $Q \ll P$ ("$Q$ is absolutely continuous with respect to
# $P$": $q(x) = 0$ wherever $p(x) = 0$). The expectation only visits points with $p(x) > 0$, where
# $p(x)\,|1 - q(x)/p(x)| = |p(x) - q(x)|$; so in general
#
# $$
# \mathbb E_{x \sim P}\Big|1 - \frac{q(x)}{p(x)}\Big| = \sum_{x:\, p(x) > 0} |p(x) - q(x)|
# = 2\, d_{TV}(P, Q) - Q(\{x : p(x) = 0\}),
# $$
#
# which misses exactly the generator's mass off the data. A generator that copies $P = (\tfrac12,
# \tfrac12, 0)$ on its first two points but puts $0.2$ on the third, $Q = (0.4, 0.4, 0.2)$, has
# $d_{TV} = 0.2$ but $\mathbb E_P|1 - Q/P| = 0.2$, not $0.4$ (checked below).
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
# and call the inner expression $d_{TV}(P, Q)$. When $Q \ll P$, that expression equals
# $\sum_x |p(x) - q(x)|$, which is **twice** the total variation: $d_{TV}(P, Q) =
# \tfrac12\,\mathbb E_P|1 - Q/P|$. The slides' own example below ($Q_1 \ll P$) has $d_{TV} = 0.2$,
# while $\mathbb E_P|1 - Q_1/P| = 0.4$ (checked below). Without $Q \ll P$ the expression is not
# even $2\,d_{TV}$: it ignores the generator's mass where the data has none.
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

# without Q ≪ P the identity E_P|1 − Q/P| = Σ|p − q| fails: Q puts 0.2 where P has no mass
p_off, q_off = np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])
on_p = p_off > 0
expectation_p = float(np.sum(p_off[on_p] * np.abs(1 - q_off[on_p] / p_off[on_p])))  # E_P|1 − q/p|
print(f"Q not ≪ P: E_P|1 − q/p| = {expectation_p:.2f}, Σ|p − q| = {np.abs(p_off - q_off).sum():.2f}")
assert math.isclose(expectation_p, 0.2, abs_tol=1e-12) and math.isclose(tv_distance(p_off, q_off), 0.2)
assert math.isclose(np.abs(p_off - q_off).sum(), 0.4) and expectation_p < np.abs(p_off - q_off).sum() - 0.1
assert math.isclose(expectation_p, 2 * tv_distance(p_off, q_off) - q_off[~on_p].sum(), abs_tol=1e-12)

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
# $3^m$ cell sequences. It asserts the published values, which are the rows $m = 1, 2$ (the slides
# print $0.2, 0.2$ and $0.36, 0.24$), and the rows $m = 3, 4$ to three decimals; those two rows are
# **computed** here from the closed forms, not taken from a publication (the slides print only
# $m \le 2$).

# %%
PUBLISHED = {1: (0.20, 0.20), 2: (0.36, 0.24)}  # printed by the slides
COMPUTED = {3: (0.488, 0.284), 4: (0.590, 0.339)}  # our closed forms, rounded: not published


def tv_q2_closed_form(m: int) -> float:
    """½ Σₖ C(m, k) 2⁻ᵐ |1 − 1.4ᵏ 0.6^(m−k)|."""
    return 0.5 * sum(math.comb(m, k) * 0.5**m * abs(1 - 1.4**k * 0.6 ** (m - k)) for k in range(m + 1))


def tv_brute_force(p: np.ndarray, q: np.ndarray, m: int) -> float:
    """½ Σ over all 3ᵐ sequences of cells |Π p − Π q|."""
    return 0.5 * sum(
        abs(math.prod(p[i] for i in seq) - math.prod(q[i] for i in seq))
        for seq in itertools.product(range(len(p)), repeat=m)
    )


print(" m   d_TV(Pᵐ, Q1ᵐ)   d_TV(Pᵐ, Q2ᵐ)   ratio   published")
for m, (paper1, paper2) in {**PUBLISHED, **COMPUTED}.items():
    t1, t2 = tv_product(P_CELLS, Q1_CELLS, m), tv_product(P_CELLS, Q2_CELLS, m)
    shown = f"{paper1:.3f}, {paper2:.3f}" if m in PUBLISHED else "— (computed, not published)"
    print(f" {m}   {t1:13.4f}   {t2:13.4f}   {t1 / t2:5.2f}   {shown}")
    assert math.isclose(t1, 1 - 0.8**m, abs_tol=1e-12) and math.isclose(
        t2, tv_q2_closed_form(m), abs_tol=1e-12
    )
    assert math.isclose(t1, tv_brute_force(P_CELLS, Q1_CELLS, m), abs_tol=1e-12)
    assert math.isclose(t2, tv_brute_force(P_CELLS, Q2_CELLS, m), abs_tol=1e-12)
    assert round(t1, 3) == paper1 and round(t2, 3) == paper2  # published (m ≤ 2) or computed rows, 3 decimals
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
# *When is the upper bound attained?* Write $S^* = \{p > q\}$ and $T^* = \{q > p\}$. For
# $\tau > 0$ and $m \ge 2$,
#
# $$
# d_{TV}(P^m, Q^m) = 1 - (1 - \tau)^m
# \quad\Longleftrightarrow\quad
# Q(S^*) = 0 \ \text{ or } \ P(T^*) = 0 :
# $$
#
# the generator puts no mass at all where the data outweighs it (then $P(S^*) = \tau$: the
# generator misses a region of probability $\tau$), or, the mirror image, the data has no mass
# where the generator outweighs it (the generator puts mass $\tau$ off the data). *Proof.* The
# packed distance is $1 - \sum_{x_{1:m}} \min\big(\prod_i p(x_i), \prod_i q(x_i)\big)$ (the
# single-sample identity $d_{TV} = 1 - \sum \min(p, q)$ applied to packs), and termwise
# $\min\big(\prod_i p(x_i), \prod_i q(x_i)\big) \ge \prod_i \min(p(x_i), q(x_i))$, whose sum over all
# packs is $\big(\sum_x \min(p, q)\big)^m = (1 - \tau)^m$. So equality holds if and only if every
# term is equal. If $Q(S^*) = 0$, then on packs with a point in $S^*$ both sides are $0$, and on
# the other packs every point has $q \ge p$, so both sides are $\prod_i p(x_i)$: equal (likewise if
# $P(T^*) = 0$). If instead some $x \in S^*$ has $q(x) > 0$ and some $y \in T^*$ has $p(y) > 0$, the
# pack $(x, y, x, \dots, x)$ has $\prod \min = q(x)^{m-1} p(y)$, strictly below both
# $\prod p = p(x)^{m-1} p(y)$ (as $q(x) < p(x)$, $p(y) > 0$) and $\prod q = q(x)^{m-1} q(y)$ (as
# $p(y) < q(y)$, $q(x) > 0$): the inequality is strict. $\square$
#
# The collapsed $Q_1$ attains the upper bound ($1 - 0.8^m$ with $\tau = 0.2$) because it misses
# $[0, 0.2)$ entirely: $Q_1(S^*) = 0$. A generator with $(\varepsilon, \delta)$-mode collapse
# (section 3.4: a region of data probability $\ge \delta$ gets generator probability
# $\le \varepsilon$) with $\varepsilon > 0$ need not attain it. $P = (\tfrac12, \tfrac12)$ and
# $Q = (0.1, 0.9)$ have $\tau = 0.4$, and $Q$ gives the first point, of data probability $0.5$, only
# $0.1$: a $(0.1, 0.5)$-mode collapse. Yet
# $d_{TV}(P^2, Q^2) = \tfrac12\big(|0.25 - 0.01| + 2\,|0.25 - 0.09| + |0.25 - 0.81|\big) = 0.56
# < 1 - 0.6^2 = 0.64$. The cell checks both bounds on random pairs of distributions on five
# points, for $m = 1, \dots, 4$, the equality condition, and this example, and draws the lecture's
# two examples against the bounds.

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


def attains_ceiling(p: np.ndarray, q: np.ndarray, m: int) -> bool:
    """Whether d_TV(pᵐ, qᵐ) = 1 − (1 − τ)ᵐ, to 1e-9."""
    return math.isclose(tv_product(p, q, m), 1 - (1 - tv_distance(p, q)) ** m, abs_tol=1e-9)


# equality ⟺ Q(S*) = 0 or P(T*) = 0, on random pairs with some atoms of p or q zeroed
for _ in range(300):
    p_rand, q_rand = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
    p_rand, q_rand = p_rand * (rng.random(4) < 0.8), q_rand * (rng.random(4) < 0.6)
    if p_rand.sum() == 0 or q_rand.sum() == 0:
        continue
    p_rand, q_rand = p_rand / p_rand.sum(), q_rand / q_rand.sum()
    if tv_distance(p_rand, q_rand) < 1e-6:
        continue
    condition = q_rand[p_rand > q_rand].sum() == 0 or p_rand[q_rand > p_rand].sum() == 0
    assert all(attains_ceiling(p_rand, q_rand, m) == condition for m in (2, 3))
# (0.1, 0.5)-collapse without attaining the ceiling: 0.56 < 0.64
p_half, q_tilted = np.array([0.5, 0.5]), np.array([0.1, 0.9])
assert has_mode_collapse(p_half, q_tilted, 0.1, 0.5) and math.isclose(tv_distance(p_half, q_tilted), 0.4)
assert math.isclose(tv_product(p_half, q_tilted, 2), 0.56, abs_tol=1e-12) and not attains_ceiling(
    p_half, q_tilted, 2
)
print(
    f"P = (½, ½), Q = (0.1, 0.9): d_TV(P², Q²) = {tv_product(p_half, q_tilted, 2):.2f} < 1 − 0.6² = {1 - 0.6**2:.2f}"
)

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
# paper's main result (its section 3) describes, for a given $\tau$, the range of values
# $d_{TV}(P^m, Q^m)$ can take over **all** pairs with $(\varepsilon, \delta)$-mode collapse, and
# over all pairs without it. We first define the tool it uses, then state the result and prove
# it.
#
# **The region of a pair.** As for densities, let an "event" take a fraction of an atom: a
# *test* is a function $\varphi$ with values in $[0, 1]$ (an ordinary event $S$ is the test
# $\mathbb 1_S$), and it has probabilities $P(\varphi) = \sum_x \varphi(x) p(x)$ and
# $Q(\varphi) = \sum_x \varphi(x) q(x)$. The **region** of the pair is the set of points
#
# $$
# \mathcal R(P, Q) = \{ (P(\varphi), Q(\varphi)) : \varphi \text{ a test} \} \subset [0, 1]^2 .
# $$
#
# 1. It contains $(0, 0)$ ($\varphi = 0$) and $(1, 1)$ ($\varphi = 1$).
# 2. It is convex: the test $\lambda \varphi + (1 - \lambda) \psi$ has the point
#    $\lambda (P(\varphi), Q(\varphi)) + (1 - \lambda) (P(\psi), Q(\psi))$.
# 3. It is symmetric about $(\tfrac12, \tfrac12)$: the test $1 - \varphi$ has the point
#    $(1 - P(\varphi), 1 - Q(\varphi))$.
# 4. Its lower edge $g(x) = \min \{ Q(\varphi) : P(\varphi) = x \}$ is obtained by spending the
#    $P$-mass $x$ on the atoms of smallest ratio $q/p$ first (if a test used some of a
#    higher-ratio atom while a lower-ratio atom had room, moving that $P$-mass to the lower-ratio
#    atom would lower $Q(\varphi)$ and keep $P(\varphi)$). So $g$ is the polygon through the
#    atoms sorted by increasing $q/p$, starting at $(0, 0)$: increasing and convex (its slopes
#    are the sorted ratios), and if $Q$ puts mass where $P$ has none, the polygon ends with a
#    vertical segment up to $(1, 1)$. For each $x$, the $Q$-masses of the tests with
#    $P(\varphi) = x$ run from $g(x)$ up to $1 - g(1 - x)$ (item 3), and by item 2 they fill that
#    interval: the region is everything between $g$ and its mirror image.
#
# Two facts can be read off the lower edge:
#
# * **The total variation is the largest vertical gap below the diagonal.** For any test,
#   $P(\varphi) - Q(\varphi) = \sum_x \varphi(x)(p(x) - q(x)) \le \sum_{x \in S^*} (p(x) - q(x)) = \tau$,
#   with equality for $\varphi = \mathbb 1_{S^*}$ ($S^* = \{p > q\}$, section 3.1). So
#   $\tau = \max_x (x - g(x))$, attained at $a = P(S^*)$, where $g(a) = a - \tau$.
# * **Collapse is a point in the region.** $(P, Q)$ has $(\varepsilon, \delta)$-mode collapse if and
#   only if $(\delta, \varepsilon) \in \mathcal R(P, Q)$, if and only if $g(\delta) \le \varepsilon$.
#   Indeed, if a test has $P(\varphi) = x \ge \delta$ and $Q(\varphi) = y \le \varepsilon$, the test
#   $(\delta / x) \varphi$ has the point $(\delta, y \delta / x)$ with $y\delta/x \le \varepsilon$, so
#   $g(\delta) \le \varepsilon$; and since the upper edge at $\delta$ is at least $\delta > \varepsilon$,
#   the point $(\delta, \varepsilon)$ lies between the edges. The converse is the definition.
#   (`gencourse.pacgan.lower_boundary` computes $g$, and `has_mode_collapse` tests $g(\delta) \le \varepsilon$.)
#
# In particular collapse at distance $\tau$ needs $\tau \ge \delta - g(\delta) \ge \delta - \varepsilon$.
#
# **Channels can only lose information.** A *channel* $K$ sends each point $x$ to a random
# output with probabilities $K(x, j)$ ($K(x, j) \ge 0$, $\sum_j K(x, j) = 1$); it turns $P$ into
# $KP(j) = \sum_x p(x) K(x, j)$ and $Q$ into $KQ$. Applied to each point of a pack separately and
# independently, it turns $P^m$ into $(KP)^m$ and $Q^m$ into $(KQ)^m$. For any output event $B$
# and any distributions $\mu, \nu$,
#
# $$
# K\mu(B) - K\nu(B) = \sum_x K(x, B)\,\big(\mu(x) - \nu(x)\big) \le \sum_{x:\, \mu(x) > \nu(x)} \big(\mu(x) - \nu(x)\big) = d_{TV}(\mu, \nu),
# $$
#
# because $0 \le K(x, B) \le 1$; so $d_{TV}(K\mu, K\nu) \le d_{TV}(\mu, \nu)$, and with
# $\mu = P^m$, $\nu = Q^m$:
#
# $$
# d_{TV}\big((KP)^m, (KQ)^m\big) \le d_{TV}(P^m, Q^m). \qquad (\ast)
# $$
#
# **The extremal pairs.** For $a \in [\tau, 1]$, let $(E_a, F_a)$ be the pair whose lower edge is
# the lower convex hull of the four points $(0, 0)$, $(\delta, \varepsilon)$, $(a, a - \tau)$ and
# $(1, 1)$: one atom per segment of the hull, with $E_a$-mass the segment's width and
# $F_a$-mass its height (`gencourse.pacgan.collapsed_extremal_pair`). When $(\delta, \varepsilon)$ is
# a corner of the hull and $\delta \le a$, this is the three-point pair
# $E_a = (\delta,\ a - \delta,\ 1 - a)$, $F_a = (\varepsilon,\ a - \tau - \varepsilon,\ 1 - a + \tau)$ (with
# $\delta > a$ the first two corners swap); otherwise it is the two-point pair
# $(a, 1 - a)$, $(a - \tau, 1 - a + \tau)$. Its region contains $(\delta, \varepsilon)$, and its largest
# gap below the diagonal is $\tau$ (the gaps at the corners are $0$, $\delta - \varepsilon \le \tau$,
# $\tau$ and $0$): $(E_a, F_a)$ has $(\varepsilon, \delta)$-mode collapse and total variation $\tau$.
#
# ```{admonition} Theorem (packing and mode collapse, after Lin, Khetan, Fanti and Oh, section 3)
# Let $0 \le \varepsilon < \delta \le 1$, $m \ge 1$ and $0 < \tau \le 1$. Pairs $(P, Q)$ with
# $(\varepsilon, \delta)$-mode collapse and $d_{TV}(P, Q) = \tau$ exist only if $\tau \ge \delta - \varepsilon$,
# and over all of them
#
# $$
# L(\varepsilon, \delta, \tau, m) := \min_{a \in [\tau, 1]} d_{TV}(E_a^m, F_a^m)
# \;\le\; d_{TV}(P^m, Q^m) \;\le\; 1 - (1 - \tau)^m ,
# $$
#
# and both bounds are attained. Over all pairs **without** $(\varepsilon, \delta)$-mode collapse and
# with $d_{TV}(P, Q) = \tau$, $\tau \le d_{TV}(P^m, Q^m) \le 1 - (1 - \tau)^m$, and when
# $\tau < 1 - \varepsilon / \delta$ the upper value is attained.
#
# (Here $P^m$ is the law of a pack of $m$ independent draws from $P$; for $m = 1$ the floor $L$ is
# $\tau$ itself, and the statement says nothing beyond section 3.3.)
# ```
#
# *What is the paper's and what is ours.* The paper states this result as a minimum of
# $d_{TV}(P^m, Q^m)$ over collapsed pairs with $d_{TV}(P, Q) \ge \tau$ and a maximum over pairs
# without collapse with $d_{TV}(P, Q) \le \tau$, each written as an optimisation over a small family
# of distributions on a few points, and proves it with Blackwell's theorem on the ordering of
# experiments. We could not check its formulas symbol by symbol when preparing this lecture;
# the parametrisation by the hull above, the proof below, and the remark that the upper value
# for pairs without collapse is simply $1 - (1 - \tau)^m$ are this lecture's own, and the cell
# below checks every statement numerically.
#
# *Proof of the lower bound.* Take a collapsed pair with $d_{TV}(P, Q) = \tau$ and let
# $a = P(S^*)$, so $a \ge \tau$ and $(a, a - \tau)$ is on its lower edge. We build a channel $K$
# with $KP = E_a$ and $KQ = F_a$; then $(\ast)$ gives $d_{TV}(P^m, Q^m) \ge d_{TV}(E_a^m, F_a^m) \ge L$.
# If $(\delta, \varepsilon)$ is not a corner of the hull, send $S^*$ to output 1 and the rest to
# output 2: the outputs have probabilities $(a, 1 - a)$ under $P$ and $(a - \tau, 1 - a + \tau)$
# under $Q$. Otherwise, say $\delta \le a$ (the case $\delta > a$ is the mirror image, with the
# complement of $S^*$ in place of $S^*$). We need a test $\varphi \le \mathbb 1_{S^*}$ with
# $P(\varphi) = \delta$ and $Q(\varphi) = \varepsilon$; then $K(x) = (\varphi(x),\ \mathbb 1_{S^*}(x) - \varphi(x),\
# 1 - \mathbb 1_{S^*}(x))$ is a channel to three outputs with probabilities
# $(\delta, a - \delta, 1 - a) = E_a$ and $(\varepsilon, a - \tau - \varepsilon, 1 - a + \tau) = F_a$.
# The tests below $\mathbb 1_{S^*}$ with $P$-mass $\delta$ include the one that spends $\delta$ on
# the lowest ratios ($Q$-mass $g(\delta)$; these atoms lie in $S^*$ because $\delta \le a$) and the
# complement within $S^*$ of the one that spends $a - \delta$ there ($Q$-mass $a - \tau - g(a - \delta)$);
# mixtures of the two give every $Q$-mass in between, so we need
# $g(\delta) \le \varepsilon \le a - \tau - g(a - \delta)$. The left inequality is the collapse. For the
# right one, $g$ is convex with $g(0) = 0$ and $g(a) = a - \tau$, so
# $g(a - \delta) \le (a - \delta)(a - \tau)/a$, and $(\delta, \varepsilon)$ being a corner of the hull
# means it lies on or below the chord from $(0, 0)$ to $(a, a - \tau)$,
# $\varepsilon \le \delta (a - \tau)/a = a - \tau - (a - \delta)(a - \tau)/a \le a - \tau - g(a - \delta)$.
# The minimum is attained, by $(E_a, F_a)$ at the minimising $a$, which is collapsed and at
# distance $\tau$. The upper bound is that of section 3.3, attained by the collapsed pair
# $P = (\tau, 1 - \tau, 0)$, $Q = (0, 1 - \tau, \tau)$ (lower edge $\max(0, x - \tau)$, so
# $g(\delta) = \delta - \tau \le \varepsilon$, and $Q(S^*) = 0$). $\square$
#
# *Proof for pairs without collapse.* Section 3.3 gives both bounds. When
# $\tau < 1 - \varepsilon/\delta$, the generator that copies the data and puts its remaining mass off
# it, $Q = (1 - \tau) P + \tau\, \mathbb 1_{\{x_0\}}$ with $p(x_0) = 0$, has $P(T^*) = 0$, so it
# attains $1 - (1 - \tau)^m$ (section 3.3); its lower edge is $g(x) = (1 - \tau) x$, and
# $g(\delta) = (1 - \tau)\delta > \varepsilon$: no collapse. $\square$
#
# So the part of the theorem that packing adds is the **floor**: a collapsed generator at
# distance $\tau$ costs at least $L(\varepsilon, \delta, \tau, m)$, while over all pairs at distance
# $\tau$ the floor is lower (strictly for $m \ge 2$, as the figure below checks; it is attained by a
# two-point pair $(a, 1 - a)$, $(a - \tau, 1 - a + \tau)$ minimised over $a$, by the same argument
# with the channel "$S^*$ or not"). Mass placed off the data is penalised as much as missing mass, and it is not
# collapse in the sense of the definition.
#
# *Why fixing $d_{TV}(P, Q) = \tau$ and bounding it by $\tau$ agree.* Lowering the corner
# $(a, a - \tau)$ to $(a, a - \tau')$ with $\tau' > \tau$ can only enlarge the hull, and a pair whose
# region contains another's is at least as informative: by Blackwell's theorem (1953: one pair's
# region contains another's if and only if a channel turns the first pair into the second; the
# "if" direction is the easy one, since a test composed with a channel is a test) there is then a
# channel from the first to the second, and $(\ast)$ applies. This is the one step we cite
# rather than prove. So $L$ does not decrease with
# $\tau$, and the minimum over collapsed pairs with $d_{TV}(P, Q) \ge \tau$ is $L(\varepsilon, \delta, \tau, m)$,
# the value at $d_{TV} = \tau$; likewise the maximum over pairs without collapse with
# $d_{TV}(P, Q) \le \tau$ is the value at $\tau$, since $1 - (1 - \tau)^m$ increases with $\tau$. The
# cell checks the monotonicity of $L$ on a grid of $\tau$.
#
# The next cell checks the theorem on random pairs: for each of several hundred pairs on two to
# four points and a random $(\varepsilon, \delta)$ near the pair's lower edge, it computes
# $d_{TV}(P^m, Q^m)$ exactly (`tv_product`) for $m = 2, 3$, asserts that it lies within the bounds
# for its class, finds the channel of the proof by linear programming
# (`scipy.optimize.linprog`) and checks that the extremal pairs attain the bounds.


# %%
def optimise(f, lo: float, hi: float, n_grid: int = 41) -> tuple[float, float]:
    """min of f over [lo, hi]: the best point of a grid, refined by a bounded scalar search
    between its grid neighbours. Returns (value, argument)."""
    xs = np.linspace(lo, hi, n_grid)
    values = [f(x) for x in xs]
    i = int(np.argmin(values))
    best = (values[i], xs[i])
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, n_grid - 1)]
    if b > a:
        res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-10})
        best = min(best, (float(res.fun), float(res.x)))
    return best


def collapse_floor(eps: float, delta: float, tau: float, m: int) -> tuple[float, float]:
    """L(ε, δ, τ, m) = min over a ∈ [τ, 1] of d_TV(E_aᵐ, F_aᵐ), and the minimising a."""
    return optimise(lambda a: tv_product(*collapsed_extremal_pair(eps, delta, tau, a), m), tau, 1.0)


def channel_exists(p: np.ndarray, q: np.ndarray, p_out: np.ndarray, q_out: np.ndarray) -> bool:
    """Whether some channel K (rows K(x, ·) ≥ 0 summing to 1) has Kp = p_out and Kq = q_out: a
    linear feasibility problem in the entries of K, solved by linprog."""
    k, j = len(p), len(p_out)
    rows_sum = np.kron(np.eye(k), np.ones(j))  # Σⱼ K(x, j) = 1 for each x
    push_p, push_q = np.kron(p, np.eye(j)), np.kron(q, np.eye(j))  # Σₓ p(x) K(x, j) = p_out(j)
    a_eq = np.vstack([rows_sum, push_p, push_q])
    b_eq = np.concatenate([np.ones(k), p_out, q_out])
    return linprog(np.zeros(k * j), A_eq=a_eq, b_eq=b_eq, bounds=(0, None)).status == 0


def s_star_mass(p: np.ndarray, q: np.ndarray) -> float:
    """a = P(S*), S* = {p > q} (at least τ = P(S*) − Q(S*); the max guards against rounding)."""
    return max(float(p[p > q].sum()), tv_distance(p, q))


rng_theorem = np.random.default_rng(4)
counts = {"collapsed": 0, "not collapsed": 0}
for _ in range(400):
    k = int(rng_theorem.integers(2, 5))
    p_rand, q_rand = rng_theorem.dirichlet(np.ones(k)), rng_theorem.dirichlet(np.ones(k))
    if rng_theorem.random() < 0.3:  # sometimes let the generator miss a point entirely
        q_rand[rng_theorem.integers(k)] = 0.0
        q_rand /= q_rand.sum()
    tau = tv_distance(p_rand, q_rand)
    xs, ys = lower_boundary(p_rand, q_rand)
    delta = float(rng_theorem.uniform(0.05, 0.95))
    g_delta = float(np.interp(delta, xs, ys))  # the lower edge at δ (p > 0 everywhere: xs increases)
    eps = g_delta + float(rng_theorem.uniform(-0.1, 0.1))  # near the lower edge, on either side
    if not 0 <= eps < delta or tau < 1e-3 or abs(eps - g_delta) < 1e-6:
        continue
    collapsed = has_mode_collapse(p_rand, q_rand, eps, delta)
    assert collapsed == (g_delta <= eps)  # collapse ⟺ (δ, ε) on or above the lower edge
    counts["collapsed" if collapsed else "not collapsed"] += 1
    for m in (2, 3):
        packed, ceiling = tv_product(p_rand, q_rand, m), 1 - (1 - tau) ** m
        assert tau - 1e-12 <= packed <= ceiling + 1e-12
        if collapsed:
            assert tau >= delta - eps - 1e-12
            floor, _ = collapse_floor(eps, delta, tau, m)
            extremal = collapsed_extremal_pair(eps, delta, tau, s_star_mass(p_rand, q_rand))
            assert packed >= tv_product(*extremal, m) - 1e-12 >= floor - 1e-9  # (∗), then the minimum
    if collapsed:  # the channel of the proof exists
        assert channel_exists(
            p_rand, q_rand, *collapsed_extremal_pair(eps, delta, tau, s_star_mass(p_rand, q_rand))
        )
print(
    f"theorem checked on {counts['collapsed']} collapsed and {counts['not collapsed']} uncollapsed random pairs"
)
assert min(counts.values()) >= 100

# the extremal pairs attain the bounds
for eps, delta, tau in [(0.0, 0.3, 0.3), (0.0, 0.3, 0.5), (0.1, 0.5, 0.4), (0.1, 0.5, 0.7), (0.05, 0.2, 0.6)]:
    for m in (2, 3, 4):
        floor, a_best = collapse_floor(eps, delta, tau, m)
        e_a, f_a = collapsed_extremal_pair(eps, delta, tau, a_best)
        assert has_mode_collapse(e_a, f_a, eps, delta) and math.isclose(
            tv_distance(e_a, f_a), tau, abs_tol=1e-9
        )
        assert math.isclose(tv_product(e_a, f_a, m), floor, abs_tol=1e-12)  # the floor is attained
        top_p, top_q = np.array([tau, 1 - tau, 0.0]), np.array([0.0, 1 - tau, tau])  # edge max(0, x − τ)
        assert has_mode_collapse(top_p, top_q, eps, delta) and math.isclose(
            tv_product(top_p, top_q, m), 1 - (1 - tau) ** m
        )
        if tau < 1 - eps / delta:  # without collapse: Q = (1 − τ)P + τ·(a point off the data)
            off_p = np.array([0.5, 0.3, 0.2, 0.0])  # the data, and a point it never produces
            off_q = np.r_[(1 - tau) * off_p[:3], tau]
            assert not has_mode_collapse(off_p, off_q, eps, delta)
            assert math.isclose(tv_product(off_p, off_q, m), 1 - (1 - tau) ** m, abs_tol=1e-9)
        two_point = lambda a, t=tau, k=m: tv_product([a, 1 - a], [max(a - t, 0.0), min(1 - a + t, 1.0)], k)  # noqa: E731
        overall_floor = optimise(two_point, tau, 1.0)[0]
        assert overall_floor <= floor + 1e-12  # collapse can only raise the floor
# the counterexample of section 3.3 sits exactly on the floor: L(0.1, 0.5, 0.4, 2) = 0.56
assert math.isclose(collapse_floor(0.1, 0.5, 0.4, 2)[0], 0.56, abs_tol=1e-9)
# fixing d_TV = τ or bounding it below by τ gives the same minimum: L does not decrease with τ
for eps, delta in [(0.0, 0.3), (0.1, 0.5)]:
    floors = [collapse_floor(eps, delta, float(t), 3)[0] for t in np.linspace(delta - eps, 0.95, 12)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(floors))

# %% [markdown]
# The figure shades, for $(\varepsilon, \delta) = (0, 0.3)$ (a region holding 30 % of the data gets
# no samples at all) and $m = 1, \dots, 4$, where collapsed pairs can lie (red: from the floor
# $L$, `collapsed_min` of `gencourse.pacgan.packing_bounds`, up to the ceiling $1 - (1 - \tau)^m$)
# and where pairs without collapse can lie (blue: from the floor over all pairs up to
# `uncollapsed_max`, which here equals the ceiling, as the theorem says for
# $\tau < 1 - \varepsilon/\delta = 1$). At $m = 1$ both floors are the diagonal $d_{TV} = \tau$: the
# unpacked discriminator cannot see collapse. With $m \ge 2$ the floor under the collapsed pairs
# lies strictly above the floor over all pairs, for every $\tau$ at which collapse is possible
# (checked up to $\tau = 0.9$; as $\tau \to 1$ everything tends to 1), and near $\tau = \delta$ that
# gap widens as $m$ grows: the **least** a collapsed generator can be penalised grows faster with
# $m$ than the least a generator at the same distance can be. The bands overlap (a generator that
# misplaces mass, or puts mass off the data, can cost as much as a collapsed one), which is the
# precise sense of "packing penalises collapse more". The cell asserts these statements on a grid
# of $\tau$.

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
for m in range(1, 5):  # without collapse the ceiling is reached: τ < 1 − ε/δ = 1 on the whole grid
    assert np.allclose(bands[m]["uncollapsed_max"], bands[m]["ceiling"], atol=1e-9)
assert (gaps[2][near] < gaps[3][near]).all() and (gaps[3][near] < gaps[4][near]).all()  # widening near τ = δ
# %% [markdown]
# ## 4. Reproducing Table 1: GAN against PacGAN on the ring and the grid
#
# PacGAN$m$ is the GAN of Section 1 with one change: the discriminator's input layer takes $m$
# points (the first maxout layer has $2m$ inputs), and it sees packs of $m$ real or $m$ generated
# points. Everything else (networks, loss, optimiser, number of updates, 100 packed examples per
# batch, so $100\,m$ points of each kind per update) is as for the GAN. With the `paper` protocol's
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
#   batch-norm blocks like PacGAN4's, which matters only for the `paper` protocol's batch-norm
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
# derivatives, so the `cpu` budget affords $k = 1$ (the `gpu` budget unrolls 3 steps, the
# `paper` budget 5); the GAN with four times the batch costs about four times as much per update
# as the GAN.
# ```

# %%
PAPER_COLUMNS = ("modes", "high_quality_pct", "reverse_kl")  # Lin et al. 2018, Table 1
PAPER_TABLE1 = {  # setting -> mixture -> modes, high-quality %, reverse KL (Lin et al. 2018, Table 1)
    "GAN": {"ring": {"modes": 6.3, "high_quality_pct": 98.2, "reverse_kl": 0.45}, "grid": {"modes": 17.3, "high_quality_pct": 94.8, "reverse_kl": 0.70}},
    "PacGAN2": {"ring": {"modes": 7.9, "high_quality_pct": 95.6, "reverse_kl": 0.07}, "grid": {"modes": 23.8, "high_quality_pct": 91.3, "reverse_kl": 0.13}},
    "PacGAN3": {"ring": {"modes": 7.8, "high_quality_pct": 97.7, "reverse_kl": 0.10}, "grid": {"modes": 24.6, "high_quality_pct": 94.2, "reverse_kl": 0.06}},
    "PacGAN4": {"ring": {"modes": 7.8, "high_quality_pct": 95.9, "reverse_kl": 0.07}, "grid": {"modes": 24.8, "high_quality_pct": 93.6, "reverse_kl": 0.04}},
}  # fmt: skip
PAPER_MODES_SPREAD = {  # the ± of the paper's mode counts (Table 1, 10 runs)
    "GAN": {"ring": 0.5, "grid": 0.8}, "PacGAN2": {"ring": 0.1, "grid": 0.7},
    "PacGAN3": {"ring": 0.1, "grid": 0.4}, "PacGAN4": {"ring": 0.1, "grid": 0.2},
}  # fmt: skip
UNROLL = budget(ci=1, cpu=1, gpu=3, paper=5)  # look-ahead steps (Metz et al. used up to 10)
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
    return {
        label: mode_stats_over_draws(sample, mix.centers, mix.std, draws=BASELINE_DRAWS, seed=50)
        for label, sample in samplers.items()
    }


BASELINES = {name: baseline_stats(name) for name in ("ring", "grid")}


for name in ("ring", "grid"):
    k = len(MIXTURES[name].centers)
    print(f"\n{name} ({k} modes), {PROTOCOL['steps']:,} updates, {len(SEEDS)} runs per setting "
          f"(baselines: {BASELINE_DRAWS} draws); mean ± std, paper in brackets")  # fmt: skip
    print(f"{'':26s} {'modes':>20s} {'high quality %':>21s} {'reverse KL':>19s} {'s':>5s}  validity")
    rows = [(s, r) for (d_name, s), r in RESULTS.items() if d_name == name] + list(BASELINES[name].items())
    for setting, res in rows:
        paper = PAPER_TABLE1.get(setting, {}).get(name)
        cols = []
        for key, paper_key in zip(("modes", "high_quality", "reverse_kl"), PAPER_COLUMNS, strict=True):
            mu, sd = mean_std(res[key])
            ref = f"[{paper[paper_key]:g}]" if paper else ""
            cols.append(f"{mu:6.2f} ± {sd:4.2f} {ref:>6s}")
        secs = f"{res['seconds']:5.0f}" if "seconds" in res else "    –"
        print(
            f"{setting:26s} {cols[0]:>20s} {cols[1]:>21s} {cols[2]:>19s} {secs}  {runs_invalid_reason(res) or 'valid'}"
        )

# %%
assert all(b["the true mixture"]["high_quality"].mean() > 95 for b in BASELINES.values())
assert BASELINES["grid"]["the true mixture"]["modes"].min() == 25
if LEVEL != "ci":  # noise touches most modes of the grid, with almost no high-quality sample
    assert BASELINES["grid"]["uniform on the data's box"]["modes"].mean() > 20
    assert all(
        runs_invalid_reason(BASELINES[n][b])
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
        not runs_invalid_reason(ra)
        and not runs_invalid_reason(rb)
        and beyond_spread(ra["modes"], rb["modes"], higher_is_better=True)
        and beyond_spread(ra["reverse_kl"], rb["reverse_kl"], higher_is_better=False)
    )


ORDERING = {(n, p): beats(n, p, "GAN") for n in MIXTURES for p in PACS}
ORDERING.update({(n, "GAN"): all(ORDERING[n, p] for p in PACS) for n in MIXTURES})
ORDERING.update({("grid", c): beats("grid", "PacGAN4", c) for c in CONTROLS})
for (data_name, setting), held in ORDERING.items():
    print(f"{data_name:4s} {setting:24s} {'ordering held' if held else 'not reproduced at this budget'}"
          f"{'  (' + runs_invalid_reason(RESULTS[data_name, setting]) + ')' if runs_invalid_reason(RESULTS[data_name, setting]) else ''}")  # fmt: skip

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
# opt-in `paper` budget runs.

# %%
if LEVEL == "cpu":  # the statements of the text above
    assert all(runs_invalid_reason(RESULTS["grid", p]) for p in PACS)
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
    square_panels(row, lim)
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
    return {"modes": 0.0 if runs_invalid_reason(res) else mean_std(res["modes"])[0], "high_quality_pct": mean_std(res["high_quality"])[0]}  # fmt: skip


CLAIMS = {
    "GAN": "every PacGAN beats the GAN: both ≥ 70 % high quality, more modes and lower reverse KL beyond 2 standard errors over the runs",
    **{p: f"{p} beats the GAN: both ≥ 70 % high quality, more modes and lower reverse KL beyond 2 standard errors over the runs" for p in PACS},
    **{c: f"PacGAN4 beats the {c}: both ≥ 70 % high quality, more modes and lower reverse KL beyond 2 standard errors over the runs" for c in CONTROLS},
}  # fmt: skip
for (data_name, setting), res in RESULTS.items():
    short = setting.lower().split(" (")[0].replace(",", "").replace("× ", "x_").replace(" ", "_")
    paper = PAPER_TABLE1.get(setting, {}).get(data_name)
    record(
        f"pacgan/{data_name}_modes_{short}",
        raw(res),
        paper=paper,
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
        paper_spread=PAPER_MODES_SPREAD[setting][data_name] if setting in PAPER_MODES_SPREAD else None,
        ordering=ORDERING.get((data_name, setting)),
        ordering_claim=CLAIMS[setting] if (data_name, setting) in ORDERING else "",
        invalid_reason=runs_invalid_reason(res),
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
def stacked_modes(x: torch.Tensor) -> dict[str, float]:
    """{"modes": modes captured, "kl": KL(q̂ ‖ U₁₀₀₀)} of images x (n, 3, 28, 28): the mode of an
    image is 100·c₁ + 10·c₂ + c₃ with cᵢ the classifier's digit for channel i."""
    digits = torch.cat(
        [classifier(chunk.reshape(-1, 1, 28, 28).to(DEVICE)).argmax(1).cpu() for chunk in x.split(1000)]
    )
    modes = digits.view(-1, 3) @ torch.tensor([100, 10, 1])
    q = torch.bincount(modes, minlength=1000).double() / len(modes)
    q = q[q > 0]
    return {"modes": len(q), "kl": float((q * torch.log(1000 * q)).sum())}


real_stacked = stacked_sampler(mnist_test.images)(N_STACKED, torch.Generator().manual_seed(0))
real_scores = stacked_modes(real_stacked)
real_modes, real_kl = real_scores["modes"], real_scores["kl"]
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
STACK_STEPS = budget(ci=15, cpu=400, gpu=4_000, paper=20_000)
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
        STACKED[name, seed] = {**stacked_modes(samples), "secs": time.perf_counter() - t}
        if seed == STACK_SEEDS[0]:
            STACKED[name, "samples"] = samples[:32]

PAPER_STACKED = {"DCGAN": {"modes": 99.0, "kl": 3.40}, "PacDCGAN2": {"modes": 1000.0, "kl": 0.06}}
print(
    f"Stacked MNIST, {STACK_STEPS:,} updates, {N_STACKED:,} samples, seeds {STACK_SEEDS}; paper in brackets"
)
stacked_summary = {}
for name in ("DCGAN", "PacDCGAN2"):
    modes = np.array([STACKED[name, s]["modes"] for s in STACK_SEEDS], dtype=float)
    kls = np.array([STACKED[name, s]["kl"] for s in STACK_SEEDS])
    secs = sum(STACKED[name, s]["secs"] for s in STACK_SEEDS)
    stacked_summary[name] = {"modes": modes.mean(), "kl": kls.mean(), "secs": secs}
    paper = PAPER_STACKED[name]
    print(
        f"{name:10s} modes {modes.mean():7.1f} [{paper['modes']:g}]   KL {kls.mean():5.2f} [{paper['kl']:g}]   {secs:4.0f} s"
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
    "random real triples": real_scores,
    f"blurred real triples (σ = {BLUR_SIGMA:g} px)": stacked_modes(blur_images(real_stacked, BLUR_SIGMA)),
    "mean digit in every channel": stacked_modes(mean_digit),
}
print(f"{'':34s} {'modes of 1000':>14s} {'KL to uniform':>14s}")
for label, scores in [
    *((n, stacked_summary[n]) for n in ("DCGAN", "PacDCGAN2")),
    *STACK_BASELINES.items(),
]:
    print(f"{label:34s} {scores['modes']:14.1f} {scores['kl']:14.2f}")
blurred_modes = STACK_BASELINES[f"blurred real triples (σ = {BLUR_SIGMA:g} px)"]["modes"]
assert STACK_BASELINES["mean digit in every channel"]["modes"] == 1
assert math.isclose(STACK_BASELINES["mean digit in every channel"]["kl"], math.log(1000), rel_tol=1e-9)
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
        float(stacked_summary[name]["modes"]),
        paper=PAPER_STACKED[name]["modes"],
        higher_is_better=True,
        unit="modes of 1000",
        lecture="04_mode_collapse_pacgan",
        description=f"{name} on Stacked MNIST: modes among {N_STACKED:,} samples (course classifier)",
        seeds=STACK_SEEDS,
        wall_time_s=stacked_summary[name]["secs"],
        baseline={
            label: float(v["modes"]) for label, v in STACK_BASELINES.items() if label != "random real triples"
        },
        note=(
            f"{STACK_STEPS:,} updates of lecture 2's small DCGAN pair; KL to uniform {stacked_summary[name]['kl']:.2f}; "
            f"ceiling (random real triples) {real_modes} modes, KL {real_kl:.2f}"
        ),
    )

# %% [markdown]
# ## Summary
#
# * A discriminator that judges one sample at a time cannot see missing diversity; PacGAN's
#   discriminator judges packs of $m$ samples, all real or all generated, and nothing else changes.
# * The idealised objective $\max_{|D|\le 1} \mathbb E_P D - \mathbb E_Q D$ equals
#   $2\,d_{TV}(P, Q) = \sum_x |p - q|$, which equals $\mathbb E_P|1 - q/p|$ when $Q \ll P$ (the
#   generator puts no mass where the data has none): the total variation carries a factor ½ that
#   slides drop (checked by linear programming and Monte Carlo).
# * A one-sample discriminator does penalise collapse (on 15 of 25 modes, $D^* = 0.375$ on the
#   covered modes and $d_{TV} = 0.4$), but it scores collapse and misplaced mass at the same
#   distance alike; packing separates them.
# * Packing amplifies missing mass: with $\tau = 0.2$ for both, $d_{TV}(P^m, Q_1^m) = 1 - 0.8^m$
#   (0.36 at $m = 2$) for the collapsed $Q_1$ against 0.24 for the spread $Q_2$; in general
#   $\tau \le d_{TV}(P^m, Q^m) \le 1 - (1 - \tau)^m$, and for $m \ge 2$ the upper bound is attained
#   exactly when $Q(S^*) = 0$ (the generator misses the region where the data outweighs it, as
#   $Q_1$ does) or $P(T^*) = 0$ (it puts its excess mass off the data); a milder collapse need not
#   attain it ($P = (\tfrac12, \tfrac12)$, $Q = (0.1, 0.9)$: $0.56 < 0.64$).
# * PacGAN's theorem: over pairs at the same $\tau$, the least packed distance of an
#   $(\varepsilon, \delta)$-collapsed pair is $L(\varepsilon, \delta, \tau, m)$, attained by a pair on
#   at most three points, and it lies above the least over all pairs as soon as $m \ge 2$, by a
#   margin that widens with $m$ near $\tau = \delta$; pairs without collapse can still reach the
#   ceiling $1 - (1 - \tau)^m$.
# * A mode count means something only beside the fraction of high-quality samples: uniform
#   noise touches most of the grid's modes. Modes and reverse KL are read here only where at
#   least 70 % of the samples are of high quality.
# * On PacGAN's 2-D grid, with a protocol cut to fit a CPU (4,000 updates), the paper's
#   comparison is not reproduced at this budget: no PacGAN's samples reach 70 % high quality
#   (asserted at the `cpu` budget); the curves and the verdicts say where each setting stands,
#   and the paper's own protocol is the `paper` budget's.
# * On Stacked MNIST, blurred copies of real digits keep at least 80 % of the real ones' modes: the
#   count measures coverage, not sharpness, and is read against that ceiling.
#
# Next: lecture 5 uses a trained generator as a prior for inverse problems.

# %%
LECTURE.finish()  # prints and records the lecture's wall time
