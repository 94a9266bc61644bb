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
# # Lecture 6: The deep image prior
#
# Lecture 5 recovered images with a generator *trained* on thousands of digits. Ulyanov, Vedaldi
# and Lempitsky {cite}`ulyanov2018deep` observed that a convolutional generator that has never
# seen an image already carries a strong prior: fitted to one corrupted image, it reproduces the
# image's structure long before it reproduces the corruption. This lecture
#
# 1. states the deep image prior (DIP) precisely: the fit is over the network's **weights**, from
#    a fixed random input, and measures the bias behind it (natural images are fitted faster
#    than noise);
# 2. denoises a photograph and follows the PSNR against the clean image over the iterations:
#    it rises, peaks and falls, hence early stopping;
# 3. inpaints a colour image;
# 4. compares the DIP with the trained-GAN approach of Lecture 5 (optimise $z$) on the same
#    corrupted digits, and on an image that is not a digit;
# 5. does compressed sensing with an untrained generator (CS-DIP {cite}`vanveen2018compressed`)
#    against the Lasso at few measurements.
#
# Prerequisites: Lecture 5 (inverse problems, CSGM, the Lasso); convolutional networks.
#
# ```{note}
# Runs on Colab (GPU: *Runtime → Change runtime type*) and on a CPU. The amount of training is
# set by `gencourse.runtime.budget` from `GENCOURSE_BUDGET` (`ci`, `cpu`, `gpu`); numbers quoted
# below were measured at the budget printed by the set-up cell. At `ci` the images are small
# crops and the fits short, so the numbers there only show that the code runs.
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
from skimage import data as skdata
from skimage.restoration import denoise_tv_chambolle, inpaint_biharmonic

from gencourse.data import load_mnist
from gencourse.dip import PixelImage, SkipNet, dip_input, fit_dip, fit_dip_batch
from gencourse.gan import trained_dcgan
from gencourse.inverse import box_mask, csgm, gaussian_matrix, lasso, mask_matrix, measure, project
from gencourse.lecture import start
from gencourse.plotting import show_images
from gencourse.report import record
from gencourse.restoration import psnr
from gencourse.runtime import budget

# %%
# the budget level and the device every number below was computed with; starts the clock
LECTURE = start("06_deep_image_prior")
LEVEL, DEVICE = LECTURE.level, LECTURE.device

# %% [markdown]
# ## 1. The deep image prior
#
# Let $x_0$ be a corrupted observation of an image $x^*$: noisy, with missing pixels, or a few
# linear measurements, $x_0 = f(x^*) + \text{noise}$ for a known forward operator $f$. Let
# $G_w$ be a convolutional encoder-decoder with weights $w$ and $z$ a random input of the size of
# the image, drawn once. The deep image prior estimates
#
# $$
# \hat w = \arg\min_{w} \; \ell\big(f(G_w(z)),\, x_0\big), \qquad \hat x = G_{\hat w}(z),
# $$
#
# with $\ell$ the squared error, by gradient descent on $w$ from a random initialisation, stopped
# early. Compare Lecture 5, where the generator was trained and fixed and the search was over
# $z$: $\hat z = \arg\min_z \ell(f(G(z)), x_0)$. Here the roles are swapped: $z$ is fixed and the
# **weights** are the unknowns; there is no training set, only the one corrupted image.
#
# ```{admonition} Erratum
# :class: warning
# Some lecture slides write the DIP as "fix $z$ and find $w$ that minimise$_z$
# $\ell(G_w(z), x_0)$". The minimisation is over the weights $w$, not over $z$:
# $\hat w = \arg\min_w \ell(f(G_w(z)), x_0)$ with $z$ fixed. The first code cell of Section 2
# asserts it: after the fit, the input $z$ is unchanged bit for bit and has no gradient, while
# the weights have moved.
# ```
#
# Why should this work? The network can represent almost any image: with enough iterations it
# fits the noise too, and $\hat x \to x_0$. What makes it a prior is the *order* in which it fits:
# convolutions with shared weights and upsampling favour smooth, self-similar structure, so the
# loss falls fast on the natural-image content of $x_0$ and slowly on its noise. Before measuring
# anything on corrupted images we measure this bias, as in Fig. 2 of the paper: fit the same
# network to a natural image, to the same image with its pixels shuffled (the same histogram, no
# structure), and to uniform noise, and count the steps each needs to bring the error down to a
# tenth of the target's variance.
#
# The network (`gencourse.dip.SkipNet`) is a scaled-down version of the paper's "skip"
# architecture: at each level a stride-2 convolution halves the size and a 1×1 branch keeps four
# channels as a skip connection; the decoder upsamples bilinearly and concatenates the skips;
# batch norm and LeakyReLU throughout, a sigmoid at the end. The input $z$ has 32 channels of
# $\mathcal U(0, 0.1)$ noise; Adam with learning rate 0.01, as in the paper.

# %%
SIZE = budget(ci=48, cpu=96, gpu=128)  # side of the photograph crops (at most 146: the astronaut crop below)
WIDTH = budget(ci=24, cpu=24, gpu=128)
LEVELS = 3


def camera_crop(size: int) -> torch.Tensor:
    """A size × size crop around the cameraman of scikit-image's ``camera`` (512 × 512), after
    averaging 2 × 2 blocks; shape (1, 1, size, size), values in [0, 1]."""
    img = torch.from_numpy(skdata.camera().astype(np.float32) / 255)
    img = torch.nn.functional.avg_pool2d(img[None, None], 2)  # 256 × 256
    top, left = 30 + (128 - size) // 2, 90 + (128 - size) // 2
    return img[..., top : top + size, left : left + size].contiguous()


def new_net(channels_out: int = 1, seed: int = 0) -> SkipNet:
    """A freshly initialised DIP network (the initialisation is part of the prior: seeded)."""
    torch.manual_seed(seed)
    return SkipNet(32, channels_out, (WIDTH,) * LEVELS, skip_channels=4).to(DEVICE)


clean = camera_crop(SIZE).to(DEVICE)
z = dip_input(32, SIZE, SIZE, seed=0).to(DEVICE)
gen = torch.Generator().manual_seed(100)  # not z's seed: see the remark below
shuffled = clean.flatten()[torch.randperm(clean.numel(), generator=gen)].view_as(clean)
noise = torch.rand(clean.shape, generator=gen).to(DEVICE)
FIT_STEPS = budget(ci=150, cpu=1_000, gpu=2_000)
fit_curves = {}
for name, target in [("natural image", clean), ("shuffled pixels", shuffled), ("uniform noise", noise)]:
    h = fit_dip(new_net(), z, target, FIT_STEPS, lr=0.01)
    fit_curves[name] = np.array(h["loss"]) / target.var().item()
reach = {name: int(np.argmax(c <= 0.1)) if (c <= 0.1).any() else FIT_STEPS for name, c in fit_curves.items()}
print("steps to reach a tenth of the target's variance:", reach, f"(of {FIT_STEPS})")
assert reach["natural image"] < reach["shuffled pixels"] and reach["natural image"] < reach["uniform noise"]

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, c in fit_curves.items():
    ax.plot(c, label=name)
ax.axhline(0.1, color="grey", ls=":")
ax.set_yscale("log")
ax.set_xlabel("Adam step (on the weights)")
ax.set_ylabel("MSE / Var(target)")
ax.legend()
plt.show()

# %% [markdown]
# The natural image is fitted first (asserted); the same pixel values without their spatial
# arrangement, and pure noise, take longer. The network does not resist images in general: it
# resists the ones without structure, and that is the prior.
#
# A pitfall met while writing this cell: drawn from the *same* seed as the input $z$, the
# "uniform noise" target is a shifted copy of $z$'s first channel (one random stream), and the
# full-resolution skip connection copies it through in a few dozen steps, faster than the natural
# image. The targets here are drawn from another seed.
#
# ## 2. Denoising, and why to stop early
#
# Add Gaussian noise of standard deviation $\sigma = 25/255$ (the paper's denoising level) and fit
# the network to the noisy image, $\ell = \frac1n\|G_w(z) - x_0\|^2$, recording the PSNR of
# $G_w(z)$ against the *clean* image, $\mathrm{PSNR} = 10\log_{10}(1/\mathrm{MSE})$ dB. The PSNR
# first rises above that of the noisy input (structure is fitted), peaks, then falls back towards
# it as the network starts to fit the noise.
#
# The peak is found here with the clean image, which a real user does not have. A rule that needs
# only the noise level is the **discrepancy principle**: an estimate that explains the data better
# than the noise allows is fitting the noise, so stop at the first step at which
# $\frac1n\|G_w(z) - x_0\|^2 \le \sigma^2$ (`fit_dip(..., stop_loss=σ²)`). Following the authors'
# code, the input is perturbed by fresh noise of standard deviation 1/30 at every step, which
# slows the fit to the noise.

# %%
SIGMA = 25 / 255
DENOISE_STEPS = budget(ci=300, cpu=3_000, gpu=5_000)
noisy = clean + SIGMA * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
net = new_net()
z_before = z.clone()
w_before = [p.detach().clone() for p in net.parameters()]
snapshots = {}
t = time.perf_counter()
den = fit_dip(
    net,
    z,
    noisy,
    DENOISE_STEPS,
    lr=0.01,
    clean=clean,
    input_noise=1 / 30,
    callback=lambda step, out: snapshots.__setitem__(step, out.cpu()),
)
print(f"{DENOISE_STEPS:,} steps in {time.perf_counter() - t:.0f} s")
# Erratum 7: the minimisation is over the weights w; the input z is fixed
assert torch.equal(z, z_before) and z.grad is None
assert all(p.grad is not None for p in net.parameters())
assert sum(not torch.equal(a, b) for a, b in zip(w_before, net.parameters(), strict=True)) == len(w_before)

curve, loss = np.array(den["psnr"]), np.array(den["loss"])
best_step = int(curve.argmax())
stop_step = int(np.argmax(loss <= SIGMA**2)) if (loss <= SIGMA**2).any() else len(loss) - 1
psnr_noisy = psnr(noisy.clamp(0, 1), clean)
tv_denoised = denoise_tv_chambolle(noisy.squeeze().cpu().numpy(), weight=0.1)
psnr_tv = psnr(tv_denoised, clean.squeeze())
print(f"PSNR: noisy input {psnr_noisy:.2f} dB; DIP at its best step ({best_step}) {curve[best_step]:.2f} dB;")
print(
    f"      DIP at the discrepancy stop (step {stop_step}) {curve[stop_step]:.2f} dB; after {len(curve)} steps {curve[-1]:.2f} dB"
)
print(f"      total-variation denoising (Chambolle, weight 0.1) {psnr_tv:.2f} dB")
assert curve[best_step] > psnr_noisy + 2  # the early output is much cleaner than the input
if LEVEL != "ci":
    assert curve[stop_step] > psnr_noisy + 2
    assert curve[-1] < curve[best_step] - 0.5  # running on fits the noise
# headline numbers for the reproduction scoreboard (written only when GENCOURSE_RESULTS is set),
# beside the trivial baselines on the same metric: the noisy input itself, and TV denoising
tv_gain = float(psnr_tv - psnr_noisy)
record(
    "dip/denoise_psnr_gain_stop",
    float(curve[stop_step] - psnr_noisy),
    lecture="06_deep_image_prior",
    unit="dB",
    seeds=[1],
    description="DIP denoising (σ = 25/255): PSNR gain over the noisy input at the discrepancy stop",
    note=f"input {psnr_noisy:.2f} dB; {DENOISE_STEPS:,} steps; TV denoising gains {tv_gain:.2f} dB",
    baseline={"TV denoising (Chambolle, weight 0.1)": tv_gain},
    higher_is_better=True,
)
record(
    "dip/denoise_psnr_best",
    float(curve[best_step]),
    lecture="06_deep_image_prior",
    unit="dB",
    paper=[29, 31],
    seeds=[1],
    description="DIP denoising (σ = 25/255): PSNR at the best step (an oracle stop)",
    note=f"best step {best_step}; the paper's 29–31 dB: σ = 25, full-size images, unconfirmed",
    baseline={"noisy input": float(psnr_noisy), "TV denoising (Chambolle, weight 0.1)": float(psnr_tv)},
    higher_is_better=True,
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
axes[0].plot(curve, label="DIP output vs clean")
axes[0].axhline(psnr_noisy, color="grey", ls=":", label="noisy input")
axes[0].axvline(best_step, color="C1", ls="--", label="best (oracle)")
axes[0].axvline(stop_step, color="C2", ls="--", label="discrepancy stop")
axes[0].set_xlabel("Adam step")
axes[0].set_ylabel("PSNR (dB)")
axes[0].legend(fontsize=8)
axes[1].plot(loss, label="MSE to the noisy image")
axes[1].axhline(SIGMA**2, color="grey", ls=":", label="σ²")
axes[1].set_yscale("log")
axes[1].set_xlabel("Adam step")
axes[1].legend(fontsize=8)
plt.show()
picks = [
    clean.cpu(),
    noisy.clamp(0, 1).cpu(),
    snapshots[stop_step],
    snapshots[best_step],
    snapshots[len(curve) - 1],
]
show_images(torch.cat(picks), nrow=5, title="clean | noisy | discrepancy stop | best step | last step")
plt.show()

# %% [markdown]
# The cell prints the PSNR of the noisy input, of the DIP at its best step, at the discrepancy
# stop and at the end, and of total-variation denoising for reference. The early outputs gain
# several dB over the input (asserted: more than 2 dB at the best step, and, at the `cpu`
# budget, at the discrepancy stop), and continuing the fit loses part of the gain (asserted at
# `cpu`), which is why the DIP needs a stopping rule. The paper reports about 29–31 dB at this
# noise level on full-size standard images with a wider, deeper network and thousands of steps;
# our crop is small and the network narrow, so expect less.
#
# ## 3. Inpainting
#
# For inpainting, $f$ keeps the observed pixels: $\ell = \frac{1}{|\Omega|}\sum_{i \in \Omega}
# (G_w(z)_i - x_{0,i})^2$ over the set $\Omega$ of known pixels, and the network fills the rest.
# Here half the pixels of a colour crop of scikit-image's `astronaut` are missing at random. The
# baseline is biharmonic inpainting (scikit-image), which extends the known pixels smoothly.

# %%
astro = torch.from_numpy(skdata.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
astro = (
    torch.nn.functional.avg_pool2d(astro, 2)[..., 20 : 20 + SIZE, 110 : 110 + SIZE].contiguous().to(DEVICE)
)
known = torch.rand(SIZE, SIZE, generator=torch.Generator().manual_seed(2)) > 0.5
known_dev = known.to(DEVICE)
INPAINT_STEPS = budget(ci=300, cpu=2_000, gpu=5_000)
net_inp = new_net(channels_out=3, seed=1)
inp_hist = fit_dip(
    net_inp,
    z,
    astro[..., known_dev],
    INPAINT_STEPS,
    lr=0.01,
    operator=lambda x: x[..., known_dev],
    clean=astro,
)
with torch.no_grad():
    dip_inpainted = net_inp(z).cpu()
observed = astro.cpu() * known
biharmonic = inpaint_biharmonic(
    astro.squeeze(0).permute(1, 2, 0).cpu().numpy(), (~known).numpy(), channel_axis=-1
)
biharmonic = torch.from_numpy(biharmonic).permute(2, 0, 1)[None].float()
scores = {
    "observed (missing = 0)": psnr(observed, astro.cpu()),
    "biharmonic": psnr(biharmonic, astro.cpu()),
    "DIP": psnr(dip_inpainted, astro.cpu()),
}
print(", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()))
assert scores["DIP"] > scores["observed (missing = 0)"] + 5
show_images(
    torch.cat([astro.cpu(), observed, biharmonic, dip_inpainted]),
    nrow=4,
    title="truth | observed | biharmonic | DIP",
)
plt.show()

# %% [markdown]
# The DIP fills the missing half from the known half alone (asserted: far above the PSNR of the
# observed image); the printed numbers compare it with the biharmonic baseline.
#
# ## 4. The DIP against a trained generator
#
# Lecture 5's approach needs a generator trained on the kind of image to recover, and then
# searches its latent space; the DIP needs nothing but the corrupted image. We compare the two on
# the same corrupted digits:
#
# * **denoising**: $\sigma = 0.3$ on held-out MNIST digits;
# * **inpainting**: the central $12 \times 12$ square missing.
#
# The trained-GAN estimate is $G(\hat z)$ with $\hat z$ from the latent search of Lecture 5
# (`project` for denoising, `csgm` with the mask matrix for inpainting, observed pixels then kept).
# The DIP uses a two-level network on the $28 \times 28$ digit, stopped by the discrepancy
# principle for denoising and after a fixed number of steps for inpainting. A third image is a
# $28 \times 28$ patch of the `camera` photograph: the GAN has only ever seen digits.
#
# Each image gets its own network, fitted on its own, but all the fits run side by side:
# `gencourse.dip.fit_dip_batch` stacks the networks into one (`SkipNet.stack`: every convolution
# becomes one grouped convolution, every batch norm keeps each member's own statistics). For these
# small $28 \times 28$ fits that takes less time than separate fits on a CPU core; for the
# $96 \times 96$ photograph of Section 1 it took more, so the fits there run one at a time. Summing the members' losses
# couples nothing, since member $s$'s weights get the gradient of its own loss only and Adam
# updates each weight on its own; each denoising fit stops at its own discrepancy step and keeps
# the weights of that step. In exact arithmetic this is the computation of one `fit_dip` per
# image (the package's tests check it to $10^{-10}$ in double precision); in single precision the
# grouped convolution rounds differently, and Adam's first, nearly sign-like steps amplify such
# differences, so the numbers are not bit-identical to those of one-at-a-time fits.
#
# The GAN is the small DCGAN of Lecture 5, trained here the same way (non-saturating loss,
# `gencourse.gan.train_gan`, through `gencourse.gan.trained_dcgan`) on the 9,000 training digits
# available offline. In the book build it is trained once for lectures 5, 6 and 9 (`gencourse.cache`:
# the run is deterministic, so loading gives the weights that training here would give).

# %%
GAN_STEPS = budget(ci=200, cpu=4_000, gpu=20_000)
KG = 64
train_set, test_set = load_mnist("train"), load_mnist("test")
gan_g, _, _ = trained_dcgan(train_set.images, KG, steps=GAN_STEPS, loss="ns", seed=0, device=DEVICE)
gan_g.requires_grad_(False)


def GG(z_: torch.Tensor) -> torch.Tensor:
    """The trained GAN generator, flattened to (batch, 784)."""
    return gan_g(z_).flatten(1)


N_DIGITS = budget(ci=2, cpu=8, gpu=16)
SEARCH = dict(steps=budget(ci=200, cpu=1_000, gpu=1_000), restarts=budget(ci=2, cpu=5, gpu=10))
DIGIT_STEPS = budget(ci=150, cpu=1_000, gpu=2_000)
patch = torch.from_numpy(skdata.camera()[100:212:4, 200:312:4].astype(np.float32) / 255)[None, None]
digits = torch.cat([test_set.images[:N_DIGITS], patch]).to(DEVICE)  # the last one is not a digit
noisy_digits = digits + 0.3 * torch.randn(digits.shape, generator=torch.Generator().manual_seed(3)).to(DEVICE)
hole = box_mask(28, 28, hole=12).to(DEVICE)
A_hole = mask_matrix(hole.cpu()).to(DEVICE)

w_gan = [p.detach().clone() for p in gan_g.parameters()]
gan_denoised, _ = project(GG, noisy_digits.flatten(1), KG, **SEARCH)
gan_inpainted, _ = csgm(GG, A_hole, measure(A_hole, digits), KG, lam=0.0, **SEARCH)
gan_inpainted = torch.where(hole.flatten(), digits.flatten(1), gan_inpainted)
assert all(torch.equal(a, b) for a, b in zip(w_gan, gan_g.parameters(), strict=True))  # GAN: z moves, w fixed

z_small = dip_input(32, 28, 28, seed=4).to(DEVICE)


def digit_nets() -> list[SkipNet]:
    """One fresh network per digit, network i drawn from seed i."""
    nets = []
    for i in range(len(digits)):
        torch.manual_seed(i)
        nets.append(SkipNet(32, 1, (WIDTH, WIDTH), 4).to(DEVICE))
    return nets


# every digit's fit runs in one batched fit, each stopping on its own (`fit_dip_batch`)
nets_d = digit_nets()
fit_dip_batch(nets_d, z_small, noisy_digits, DIGIT_STEPS, lr=0.01, stop_loss=0.3**2)
nets_i = digit_nets()
fit_dip_batch(nets_i, z_small, digits[..., hole], DIGIT_STEPS, lr=0.01, operator=lambda x: x[..., hole])
with torch.no_grad():
    dip_denoised = torch.cat([net(z_small).flatten(1) for net in nets_d])
    dip_inpainted_digits = torch.stack(
        [
            torch.where(hole.flatten(), d.flatten(), net(z_small).flatten())
            for d, net in zip(digits, nets_i, strict=True)
        ]
    )

truth = digits.flatten(1)
in_hole = ~hole.flatten()
mse = {
    "denoising, GAN (z)": ((gan_denoised - truth) ** 2).mean(1),
    "denoising, DIP (w)": ((dip_denoised - truth) ** 2).mean(1),
    "inpainting, GAN (z)": ((gan_inpainted - truth)[:, in_hole] ** 2).mean(1),
    "inpainting, DIP (w)": ((dip_inpainted_digits - truth)[:, in_hole] ** 2).mean(1),
}
print(f"{'per-pixel MSE':22s} | digits (mean of {N_DIGITS}) | camera patch")
for k, v in mse.items():
    print(f"{k:22s} | {v[:-1].mean():22.4f} | {v[-1]:.4f}")
if LEVEL != "ci":
    assert mse["inpainting, GAN (z)"][:-1].mean() < mse["inpainting, DIP (w)"][:-1].mean()
    assert mse["denoising, DIP (w)"][-1] < mse["denoising, GAN (z)"][-1]

# %%
rows = [
    truth,
    noisy_digits.flatten(1).clamp(0, 1),
    gan_denoised,
    dip_denoised,
    truth * hole.flatten(),
    gan_inpainted,
    dip_inpainted_digits,
]
show_images(
    torch.cat(rows).view(-1, 1, 28, 28).cpu(),
    nrow=len(digits),
    title="truth | noisy | GAN denoised | DIP denoised | masked | GAN inpainted | DIP inpainted",
)
plt.show()

# %% [markdown]
# The table shows the trade-off. Inside a large hole the known pixels do not say what the missing
# stroke is; a generator trained on digits completes it with a plausible stroke, while the DIP
# can only continue the surrounding structure, so the trained GAN wins on digits (asserted at the
# `cpu` budget). On the camera patch the GAN can only answer with a digit, and its denoising
# error is far above the DIP's (asserted at `cpu`): a trained prior is only as good as its
# range, the untrained one assumes little and so fails gracefully.
#
# ## 5. Compressed sensing with an untrained generator (CS-DIP)
#
# Van Veen et al. {cite}`vanveen2018compressed` fit the DIP through Gaussian measurements:
#
# $$
# \hat w = \arg\min_w \tfrac1m\|A\,G_w(z) - y\|^2 + \beta\, \mathrm{TV}(G_w(z)), \qquad
# \hat x = G_{\hat w}(z),
# $$
#
# with the anisotropic total variation $\mathrm{TV}(x) = \sum |x_{i+1,j} - x_{i,j}| + \sum
# |x_{i,j+1} - x_{i,j}|$ (normalised by the number of pixels in `fit_dip`). Same measurements as in
# Lecture 5: $A$ with $\mathcal N(0, 1/m)$ entries, noise with $\mathbb E\|\eta\|^2 = 0.01$. We
# compare with the Lasso (pixel and DCT bases, $\alpha = 0.1$), and separate the two ingredients
# of CS-DIP: the DIP without the TV term, and the TV term without the network (the same objective
# minimised directly over the pixels, an image "network" whose output is its own parameters,
# `gencourse.dip.PixelImage`).


# %%
CS_M = budget(ci=[100], cpu=[50, 100, 200], gpu=[25, 50, 100, 200])
N_CS = budget(ci=2, cpu=6, gpu=20)
CS_STEPS = budget(ci=150, cpu=800, gpu=1_500)
TV = 0.05
x_cs = test_set.images[-N_CS:].to(DEVICE)
cs_err = {name: {} for name in ("Lasso (pixel)", "Lasso (DCT)", "TV only", "DIP", "DIP + TV")}
cs_examples = {}
for m in CS_M:
    A = gaussian_matrix(m, 784, seed=m).to(DEVICE)
    y = measure(A, x_cs, noise_std=0.1 / math.sqrt(m), seed=m)
    est = {
        "Lasso (pixel)": lasso(A, y, 0.1, clip=(0, 1)).to(DEVICE),
        "Lasso (DCT)": lasso(A, y, 0.1, basis="dct", clip=(0, 1)).to(DEVICE),
    }

    def forward_op(x: torch.Tensor, A=A) -> torch.Tensor:
        return x.flatten(1) @ A.T

    for name, make, tv, lr in [
        ("TV only", PixelImage, TV, 0.02),
        ("DIP", lambda: SkipNet(16, 1, (WIDTH, WIDTH), 4), 0.0, 0.01),
        ("DIP + TV", lambda: SkipNet(16, 1, (WIDTH, WIDTH), 4), TV, 0.01),
    ]:
        models = []
        for i in range(N_CS):
            torch.manual_seed(i)
            models.append(make().to(DEVICE))
        z_cs = torch.cat([dip_input(16, 28, 28, seed=i) for i in range(N_CS)]).to(DEVICE)
        # the N_CS digits' fits run side by side (fit_dip_batch, as in Section 4)
        fit_dip_batch(models, z_cs, y, CS_STEPS, lr=lr, operator=forward_op, tv_weight=tv)
        with torch.no_grad():
            est[name] = torch.cat(
                [mdl(z_cs[i : i + 1]).clamp(0, 1).flatten(1) for i, mdl in enumerate(models)]
            )
    for name, x_hat in est.items():
        cs_err[name][m] = ((x_hat - x_cs.flatten(1)) ** 2).mean(1).cpu().numpy()
    cs_examples[m] = est
    print(f"m = {m:3d}: " + ", ".join(f"{k} {v[m].mean():.4f}" for k, v in cs_err.items()))
if LEVEL != "ci":
    for m in CS_M:
        best_lasso = min(cs_err["Lasso (pixel)"][m].mean(), cs_err["Lasso (DCT)"][m].mean())
        assert cs_err["DIP + TV"][m].mean() < best_lasso

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 1.2]})
for (name, res), marker in zip(cs_err.items(), "os^dv", strict=True):
    mean = np.array([res[m].mean() for m in CS_M])
    ci95 = np.array(
        [1.96 * res[m].std(ddof=1) / math.sqrt(len(res[m])) if len(res[m]) > 1 else 0 for m in CS_M]
    )
    axes[0].errorbar(CS_M, mean, yerr=ci95, marker=marker, capsize=3, label=name)
axes[0].set_xlabel("measurements m")
axes[0].set_ylabel("per-pixel MSE")
axes[0].set_yscale("log")
axes[0].legend(fontsize=8)
m_show = CS_M[len(CS_M) // 2]
show_images(
    torch.cat([x_cs.flatten(1)] + list(cs_examples[m_show].values())).view(-1, 1, 28, 28).cpu(),
    nrow=N_CS,
    ax=axes[1],
    title=f"m = {m_show}: truth | " + " | ".join(cs_examples[m_show]),
)
plt.show()

# %% [markdown]
# The cell prints the per-pixel error of each method at each $m$. CS-DIP (with its TV term) beats
# the Lasso in both bases at every $m$ of the sweep (asserted at the `cpu` budget): like the
# generative prior of Lecture 5, but without any training data. The two ablations show where the
# gain comes from: the TV penalty alone is already a strong prior for digits (piecewise-constant
# strokes), and the printed numbers show whether the network's own bias adds to it at each $m$.
# Unlike CSGM, nothing here levels off at a representation error: the untrained network can
# represent any image, so with enough measurements CS-DIP keeps improving.
#
# ## Summary
#
# * The deep image prior fits the **weights** of an untrained network to one corrupted image from a
#   fixed input: $\hat w = \arg\min_w \ell(f(G_w(z)), x_0)$ (not a minimisation over $z$).
# * The prior is in the architecture and the optimisation: a natural image is fitted before the
#   same pixels shuffled and before noise, so the PSNR against the clean image rises, peaks and
#   falls; the discrepancy principle ($\ell \le \sigma^2$) stops near the peak without the clean
#   image.
# * Against a trained generator: the GAN wins where its training data is the right prior (a large
#   hole in a digit), the DIP where the image is outside the GAN's range.
# * CS-DIP recovers digits from few Gaussian measurements better than the Lasso, with no training
#   data, and much of its advantage comes from its TV term.

# %%
LECTURE.finish()  # prints and records the lecture's wall time
