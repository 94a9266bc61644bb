"""Inverse problems with generative priors: compressed sensing, inpainting, super-resolution.

An unknown image x* ∈ ℝⁿ (flattened) is observed through m < n measurements

    y = A x* + η,    A ∈ ℝ^{m×n}  (batches of row vectors: y = x* Aᵀ + η, shape (batch, m)).

* Gaussian measurements: A with i.i.d. N(0, 1/m) entries, so that E‖A v‖² = ‖v‖² for every v.
  Masks (inpainting) and block averages (super-resolution) are explicit matrices too.
* Lasso (Tibshirani, 1996): x̂ = Φ ĉ with ĉ = argmin_c ½‖y − AΦc‖² + α‖c‖₁, where Φ = I (sparsity
  in the pixel basis) or the orthonormal 2-D DCT (sparsity in frequency).
* CSGM (Bora, Jalal, Price & Dimakis, 2017): ẑ = argmin_z ‖y − A G(z)‖² + λ‖z‖² by Adam on z
  from random restarts, keeping the restart with the lowest loss; x̂ = G(ẑ).
* S-REC(S, γ, δ): ‖A(x₁ − x₂)‖ ≥ γ‖x₁ − x₂‖ − δ for all x₁, x₂ ∈ S; estimated on S = range(G)
  by minimising (‖A(x₁ − x₂)‖ + δ)/‖x₁ − x₂‖ over pairs of latent codes.
* Inpainting with a GAN (Yeh et al., 2017): contextual loss ‖M ⊙ (G(z) − y)‖₁ plus a perceptual
  loss λ log(1 − D(G(z))), from a nearest-neighbour initialisation; for video, warm starts from
  the previous frame and a group-consistency loss Σₜ ‖G(zₜ) − G(zₜ₋₁)‖² over a window.

A generator ``G`` is any differentiable map from latent codes (batch, k) to flattened images
(batch, n); an operator ``A`` is an (m, n) tensor or any differentiable map (batch, n) → (batch, m).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from gencourse.runtime import progress

Generator = Callable[[torch.Tensor], torch.Tensor]
Operator = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
LatentLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BASES = ("pixel", "dct")


# --------------------------------------------------------------------------------------------
# Measurement operators


def gaussian_matrix(m: int, n: int, seed: int = 0) -> torch.Tensor:
    """An (m, n) matrix with i.i.d. N(0, 1/m) entries, drawn on the CPU from ``seed``.

    With this scaling E‖Av‖² = Σᵢ E(aᵢᵀv)² = m · ‖v‖²/m = ‖v‖²: A preserves norms on average.
    """
    if m < 1 or n < 1:
        raise ValueError(f"m and n must be positive, got m={m}, n={n}")
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=gen) / math.sqrt(m)


def apply_operator(A: Operator, x: torch.Tensor) -> torch.Tensor:
    """A x for a batch of flattened images x (batch, n): x Aᵀ for a matrix, A(x) for a map."""
    if callable(A) and not isinstance(A, torch.Tensor):
        return A(x)
    if A.dim() != 2 or x.dim() != 2 or A.shape[1] != x.shape[1]:
        raise ValueError(f"expected A (m, n) and x (batch, n), got {tuple(A.shape)} and {tuple(x.shape)}")
    return x @ A.T.to(x.dtype)


def measure(A: Operator, x: torch.Tensor, noise_std: float = 0.0, seed: int = 0) -> torch.Tensor:
    """y = A x + η with η ~ N(0, noise_std² I) drawn from ``seed``; x is flattened to (batch, n).

    Bora et al.'s MNIST noise, E‖η‖² = 0.01, is ``noise_std = 0.1 / √m``.
    """
    if noise_std < 0:
        raise ValueError(f"noise_std must be non-negative, got {noise_std}")
    y = apply_operator(A, x.flatten(1))
    gen = torch.Generator().manual_seed(seed)
    return y + noise_std * torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)


def box_mask(
    height: int = 28, width: int = 28, hole: int = 10, top: int | None = None, left: int | None = None
):
    """A boolean (height, width) mask, True where a pixel is observed, with a square hole of
    side ``hole`` (centred unless ``top``/``left`` are given)."""
    top = (height - hole) // 2 if top is None else top
    left = (width - hole) // 2 if left is None else left
    if hole < 0 or top < 0 or left < 0 or top + hole > height or left + hole > width:
        raise ValueError(f"a {hole}×{hole} hole at ({top}, {left}) does not fit in {height}×{width}")
    mask = torch.ones(height, width, dtype=torch.bool)
    mask[top : top + hole, left : left + hole] = False
    return mask


def mask_matrix(mask: torch.Tensor) -> torch.Tensor:
    """The (m, n) selection matrix of a boolean mask (any shape, n entries, m of them True): row
    r is the unit vector e_i of the r-th observed pixel i, so that A x = x[mask]."""
    flat = mask.flatten()
    if flat.dtype != torch.bool:
        raise ValueError(f"mask must be boolean, got {flat.dtype}")
    return torch.eye(len(flat))[flat]


def downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Super-resolution's forward operator on images (..., H, W): the mean over each
    factor × factor block, (..., H/factor, W/factor)."""
    if factor < 1 or images.shape[-1] % factor or images.shape[-2] % factor:
        raise ValueError(f"image size {tuple(images.shape[-2:])} is not a multiple of factor {factor}")
    shape = images.shape
    out = F.avg_pool2d(images.reshape(-1, 1, *shape[-2:]), factor)
    return out.reshape(*shape[:-2], *out.shape[-2:])


def downsampling_matrix(height: int, width: int, factor: int) -> torch.Tensor:
    """The (hw/factor², hw) matrix of :func:`downsample` on flattened (row-major) images: each row
    holds 1/factor² on the pixels of one block."""
    eye = torch.eye(height * width).reshape(height * width, height, width)
    return downsample(eye, factor).flatten(1).T.contiguous()


def dct_matrix(height: int = 28, width: int = 28) -> torch.Tensor:
    """The orthonormal 2-D DCT synthesis matrix Φ (n, n), n = height·width: column j is the
    inverse DCT-II (``scipy.fft.idctn(..., norm="ortho")``) of the j-th unit coefficient, so that
    x = Φc and c = Φᵀx = dctn(x, norm="ortho") for flattened row-major images."""
    from scipy.fft import idctn

    n = height * width
    basis = idctn(np.eye(n).reshape(n, height, width), axes=(1, 2), norm="ortho")
    return torch.from_numpy(basis.reshape(n, n).T.astype(np.float32))


# --------------------------------------------------------------------------------------------
# The sparsity baseline


def lasso(
    A: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    basis: str = "pixel",
    shape: Sequence[int] = (28, 28),
    clip: tuple[float, float] | None = None,
    max_iter: int = 5_000,
    tol: float = 1e-4,
) -> torch.Tensor:
    """Lasso recovery x̂ = Φ ĉ, ĉ = argmin_c ½‖y − AΦc‖² + α‖c‖₁, for each row of y (batch, m).

    ``basis`` is ``"pixel"`` (Φ = I) or ``"dct"`` (Φ = :func:`dct_matrix` of images of ``shape``).
    Solved by scikit-learn's coordinate descent without an intercept; its objective
    (1/2m)‖y − Bc‖² + α'‖c‖₁ is the one above divided by m, so α' = α/m. Bora et al. call
    ``Lasso(alpha=0.1)`` on N(0, 1) matrices, which is α = 0.1 here. ``clip=(0, 1)`` clips x̂ to
    the pixel range (as they do).
    """
    from sklearn.linear_model import Lasso

    if basis not in BASES:
        raise ValueError(f"unknown basis {basis!r}; known bases: " + ", ".join(map(repr, BASES)))
    if A.dim() != 2 or y.dim() != 2 or y.shape[1] != A.shape[0]:
        raise ValueError(f"expected A (m, n) and y (batch, m), got {tuple(A.shape)} and {tuple(y.shape)}")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    m, n = A.shape
    a = A.detach().cpu().double()
    phi = None
    if basis == "dct":
        if math.prod(shape) != n:
            raise ValueError(f"shape {tuple(shape)} does not have n = {n} pixels")
        phi = dct_matrix(*shape).double()
        a = a @ phi
    solver = Lasso(alpha=alpha / m, fit_intercept=False, max_iter=max_iter, tol=tol)
    solver.fit(a.numpy(), y.detach().cpu().double().numpy().T)
    coef = torch.from_numpy(np.atleast_2d(solver.coef_)).reshape(len(y), n)
    x_hat = coef @ phi.T if phi is not None else coef
    if clip is not None:
        x_hat = x_hat.clamp(*clip)
    return x_hat.to(torch.float32).to(y.device)


# --------------------------------------------------------------------------------------------
# Search in latent space


def optimize_latent(
    G: Generator,
    loss_fn: LatentLoss,
    z0: torch.Tensor,
    steps: int,
    lr: float = 0.01,
    monitor: LatentLoss | None = None,
    desc: str = "latent search",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minimise Σᵢ ℓᵢ over the latent codes z (batch, k) by Adam from ``z0``, with
    ℓ = ``loss_fn(G(z), z)`` of shape (batch,); only z moves, never the weights of G.

    When ℓᵢ depends on zᵢ alone the items do not interact: the gradient of the sum with respect
    to zᵢ is ∇ℓᵢ, and Adam's update is coordinate-wise, so each item follows the path it would
    follow alone. Returns the final codes, their losses (batch,), and the trace (steps, batch)
    of the losses before every step (of ``monitor(G(z), z)`` instead, if given).
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    trace = []
    for _ in progress(range(steps), desc=desc):
        x = G(z)
        loss = loss_fn(x, z)
        trace.append((loss if monitor is None else monitor(x, z)).detach())
        (grad,) = torch.autograd.grad(loss.sum(), z)  # the weights of G get no gradient
        z.grad = grad
        opt.step()
    with torch.no_grad():
        final = loss_fn(G(z), z)
    history = torch.stack(trace) if trace else torch.empty(0, len(z0))
    return z.detach(), final.detach(), history.cpu()


def csgm_loss(G: Generator, A: Operator, y: torch.Tensor, z: torch.Tensor, lam: float) -> torch.Tensor:
    """The CSGM objective per item, ‖yᵢ − A G(zᵢ)‖² + λ‖zᵢ‖², shape (batch,)."""
    return (y - apply_operator(A, G(z))).pow(2).sum(1) + lam * z.pow(2).sum(1)


def csgm(
    G: Generator,
    A: Operator,
    y: torch.Tensor,
    latent_dim: int,
    steps: int = 1_000,
    restarts: int = 10,
    lam: float = 0.1,
    lr: float = 0.01,
    seed: int = 0,
    z_init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compressed sensing with a generative model: for each row yᵢ of y (batch, m),

        ẑᵢ = argmin_z ‖yᵢ − A G(z)‖² + λ‖z‖²,    x̂ᵢ = G(ẑᵢ),

    by ``steps`` Adam steps (learning rate ``lr``) on z only, from ``restarts`` starting points
    z ~ N(0, I) (drawn from ``seed``, or ``z_init`` of shape (restarts, batch, k)); for each item
    the restart with the lowest final loss is kept. All restarts run as one batch. Returns
    (x̂ (batch, n), ẑ (batch, k)).
    """
    if y.dim() != 2:
        raise ValueError(f"y must be (batch, m), got {tuple(y.shape)}")
    if restarts < 1:
        raise ValueError(f"restarts must be positive, got {restarts}")
    batch = len(y)
    if z_init is None:
        gen = torch.Generator().manual_seed(seed)
        z_init = torch.randn(restarts, batch, latent_dim, generator=gen)
    if z_init.shape != (restarts, batch, latent_dim):
        raise ValueError(f"z_init must be {(restarts, batch, latent_dim)}, got {tuple(z_init.shape)}")
    z0 = z_init.reshape(restarts * batch, latent_dim).to(y.device)
    y_rep = y.repeat(restarts, 1)

    def loss_fn(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (y_rep - apply_operator(A, x)).pow(2).sum(1) + lam * z.pow(2).sum(1)

    z, final, _ = optimize_latent(G, loss_fn, z0, steps, lr, desc="CSGM")
    best = final.view(restarts, batch).argmin(0)
    z_hat = z.view(restarts, batch, latent_dim)[best, torch.arange(batch)]
    with torch.no_grad():
        x_hat = G(z_hat)
    return x_hat, z_hat


def project(
    G: Generator,
    x: torch.Tensor,
    latent_dim: int,
    steps: int = 1_000,
    restarts: int = 10,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The closest point of the generator's range, G(ẑ) with ẑ ≈ argmin_z ‖G(z) − x‖²: CSGM with
    A = I and λ = 0. ‖x − G(ẑ)‖ estimates (from above) the representation error min_z ‖G(z) − x‖."""
    return csgm(G, lambda v: v, x.flatten(1), latent_dim, steps, restarts, 0.0, lr, seed)


# --------------------------------------------------------------------------------------------
# The S-REC constant


def srec_ratio(A: Operator, x1: torch.Tensor, x2: torch.Tensor, delta: float = 0.0) -> torch.Tensor:
    """(‖A(x₁ − x₂)‖ + δ) / ‖x₁ − x₂‖ for each pair of rows (flattened). S-REC(S, γ, δ) holds
    exactly when this ratio is at least γ for every pair of distinct points of S."""
    diff = (x1 - x2).flatten(1)
    return (apply_operator(A, diff).norm(dim=1) + delta) / diff.norm(dim=1)


def srec_search(
    G: Generator,
    A: Operator,
    latent_dim: int,
    pairs: int = 64,
    steps: int = 300,
    lr: float = 0.05,
    delta: float = 0.0,
    seed: int = 0,
) -> torch.Tensor:
    """Adversarial estimate of the S-REC constant of A on range(G),

        γ*(δ) = inf over z₁, z₂ of (‖A(G(z₁) − G(z₂))‖ + δ) / ‖G(z₁) − G(z₂)‖,

    by Adam on ``pairs`` pairs (z₁, z₂) drawn from N(0, I) with ``seed`` (on the device of A if
    A is a tensor, else on the CPU). Returns the final ratio of each pair, shape (pairs,): their
    minimum bounds γ*(δ) from above (a search finds pairs, it cannot certify that none is
    worse)."""
    gen = torch.Generator().manual_seed(seed)
    device = A.device if isinstance(A, torch.Tensor) else torch.device("cpu")
    z0 = torch.randn(pairs, 2 * latent_dim, generator=gen).to(device)

    def both(z: torch.Tensor) -> torch.Tensor:
        return torch.cat([G(z[:, :latent_dim]), G(z[:, latent_dim:])], dim=1)

    def loss_fn(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return srec_ratio(A, x1, x2, delta)

    _, ratios, _ = optimize_latent(both, loss_fn, z0, steps, lr, desc="S-REC search")
    return ratios


# --------------------------------------------------------------------------------------------
# Inpainting with a GAN


def _flat_mask(mask: torch.Tensor, n: int) -> torch.Tensor:
    flat = mask.flatten().to(torch.float32)
    if flat.numel() != n:
        raise ValueError(f"mask has {flat.numel()} entries but the images have {n} pixels")
    return flat


def context_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Yeh et al.'s contextual loss Σ_{i observed} |xᵢ − yᵢ| per item of flattened x, y (batch, n);
    ``mask`` (n entries, or an image) is True where a pixel is observed."""
    return ((x - y).abs() * _flat_mask(mask, x.shape[1]).to(x.device)).sum(1)


def perceptual_loss(D: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Yeh et al.'s perceptual loss log(1 − D(x)) per item, with D(x) = σ(d) for the raw score
    d = ``D(x)``: log(1 − σ(d)) = −softplus(d). Low when the discriminator finds x real."""
    return -F.softplus(D(x))


def nearest_latent(
    G: Generator, y: torch.Tensor, mask: torch.Tensor, latent_dim: int, pool: int = 1_000, seed: int = 0
) -> torch.Tensor:
    """Nearest-neighbour initialisation: draw ``pool`` codes z ~ N(0, I) (from ``seed``) and return,
    for each row of y, the code whose G(z) has the smallest :func:`context_loss` to it."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(pool, latent_dim, generator=gen).to(y.device)
    with torch.no_grad():
        samples = G(z)
        w = _flat_mask(mask, y.shape[1]).to(y.device)
        dist = torch.cdist(y * w, samples * w, p=1)  # Σ_observed |yᵢ − G(z)ᵢ|
    return z[dist.argmin(1)]


def inpainting_loss(
    y: torch.Tensor,
    mask: torch.Tensor,
    D: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lam: float = 0.0,
) -> LatentLoss:
    """The loss ℓ(x, z) = ‖M ⊙ (x − y)‖₁ + λ log(1 − D(x)) of semantic inpainting, per item."""
    if lam and D is None:
        raise ValueError("a perceptual weight lam > 0 needs a discriminator D")

    def loss_fn(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        loss = context_loss(x, y, mask)
        return loss + lam * perceptual_loss(D, x) if lam else loss

    return loss_fn


def blend(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """M ⊙ y + (1 − M) ⊙ x: the observed pixels of y, the generated ones elsewhere."""
    w = _flat_mask(mask, y.shape[1]).to(y.device)
    return w * y + (1 - w) * x


def inpaint(
    G: Generator,
    y: torch.Tensor,
    mask: torch.Tensor,
    z0: torch.Tensor,
    steps: int,
    lr: float = 0.01,
    D: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lam: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Semantic inpainting of the rows of y (batch, n): ẑ = argmin_z ‖M ⊙ (G(z) − y)‖₁ +
    λ log(1 − D(G(z))) by Adam from z0, then x̂ = M ⊙ y + (1 − M) ⊙ G(ẑ). Returns x̂, ẑ and the
    contextual loss before every step, (steps, batch)."""
    loss_fn = inpainting_loss(y, mask, D, lam)
    z, _, trace = optimize_latent(
        G, loss_fn, z0, steps, lr, monitor=lambda x, z: context_loss(x, y, mask), desc="inpainting"
    )
    with torch.no_grad():
        x_hat = blend(G(z), y, mask)
    return x_hat, z, trace


def steps_to_reach(trace: torch.Tensor, target: torch.Tensor | float) -> torch.Tensor:
    """For each column of a loss trace (steps, batch), the first step at which the loss is at most
    ``target`` (a number or one per column); ``steps`` if it never is."""
    hit = trace <= torch.as_tensor(target, dtype=trace.dtype)
    first = hit.float().argmax(0)
    return torch.where(hit.any(0), first, torch.full_like(first, len(trace)))


def flicker(
    frames: torch.Tensor, region: torch.Tensor | None = None, reference: torch.Tensor | None = None
) -> float:
    """Temporal flicker of a clip of flattened frames (T, n): the mean over t and over the pixels
    of ``region`` (all if None) of (xₜ − xₜ₋₁)². With a ``reference`` clip r, the mean of
    ((xₜ − xₜ₋₁) − (rₜ − rₜ₋₁))² instead: the error in the frame-to-frame change."""
    diff = frames[1:] - frames[:-1]
    if reference is not None:
        if reference.shape != frames.shape:
            raise ValueError(f"reference {tuple(reference.shape)} and frames {tuple(frames.shape)} differ")
        diff = diff - (reference[1:] - reference[:-1])
    diff = diff.pow(2)
    if region is not None:
        diff = diff[:, region.flatten().to(frames.device)]
    return float(diff.mean())


def inpaint_video(
    G: Generator,
    frames: torch.Tensor,
    mask: torch.Tensor,
    z0: torch.Tensor,
    steps: int,
    lr: float = 0.01,
    window: int = 1,
    consistency: float = 0.0,
    warm_start: bool = True,
    D: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lam: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inpaint a clip of flattened frames (T, n), observed where ``mask`` is True, in consecutive
    windows of ``window`` frames optimised jointly for ``steps`` Adam steps each. Frame t's loss is

        ‖M ⊙ (G(zₜ) − yₜ)‖₁ + λ log(1 − D(G(zₜ))) + μ ‖G(zₜ) − G(zₜ₋₁)‖²,

    μ = ``consistency`` (the group-consistency term; for the first frame of a window, G(zₜ₋₁) is
    the previous window's fixed result). The frames of a window start from z0 (T, k), or with
    ``warm_start`` (after the first window) from the last code of the previous window. Returns
    the blended frames (T, n), the codes (T, k) and the contextual loss before every step of
    each frame's window, (steps, T).

    Several clips of equal length, frames (C, T, n) and z0 (C, T, k), are inpainted at once, one
    batch per window: each frame's loss depends on its own clip only and Adam is coordinate-wise
    (see :func:`optimize_latent`), so each clip follows the path it would follow alone, at the
    cost of one pass of G per step for all clips. The results then have shapes (C, T, n),
    (C, T, k) and (steps, C, T).
    """
    single = frames.dim() == 2
    if single:
        frames, z0 = frames.unsqueeze(0), z0.unsqueeze(0)
    if frames.dim() != 3 or z0.dim() != 3 or z0.shape[:2] != frames.shape[:2]:
        raise ValueError(
            "expected frames (T, n) and z0 (T, k), or (C, T, n) and (C, T, k) for C clips, got "
            f"{tuple(frames.shape)}, {tuple(z0.shape)}"
        )
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    n_clips, n = frames.shape[0], frames.shape[2]
    codes, traces = [], []
    previous: torch.Tensor | None = None  # (C, 1, n): each clip's last result so far
    for start in range(0, frames.shape[1], window):
        y = frames[:, start : start + window]  # (C, w, n)
        w = y.shape[1]
        init = z0[:, start : start + window]
        if warm_start and codes:
            init = codes[-1][:, -1:].expand(-1, w, -1)
        y = y.reshape(n_clips * w, n)
        base = inpainting_loss(y, mask, D, lam)
        prev = previous

        def loss_fn(x: torch.Tensor, z: torch.Tensor, base=base, prev=prev, w=w) -> torch.Tensor:
            loss = base(x, z)
            if consistency:  # μ‖G(zₜ) − G(zₜ₋₁)‖², charged to frame t of each clip
                x = x.view(n_clips, w, n)
                before = x[:, :-1] if prev is None else torch.cat([prev, x[:, :-1]], dim=1)
                diff = (x[:, w - before.shape[1] :] - before).pow(2).sum(2)
                loss = loss + consistency * F.pad(diff, (w - diff.shape[1], 0)).flatten()
            return loss

        z, _, trace = optimize_latent(
            G,
            loss_fn,
            init.reshape(n_clips * w, -1),
            steps,
            lr,
            monitor=lambda x, z, y=y: context_loss(x, y, mask),
            desc="video",
        )
        codes.append(z.view(n_clips, w, -1))
        traces.append(trace.view(steps, n_clips, w))
        with torch.no_grad():
            previous = G(codes[-1][:, -1]).unsqueeze(1)
    z_all = torch.cat(codes, dim=1)
    with torch.no_grad():
        x_hat = blend(G(z_all.flatten(0, 1)), frames.flatten(0, 1), mask).view(frames.shape)
    trace_all = torch.cat(traces, dim=2)
    if single:
        return x_hat[0], z_all[0], trace_all[:, 0]
    return x_hat, z_all, trace_all
