"""Image restoration and segmentation with encoder-decoders (lecture 8).

* Segmentation losses: the Dice coefficient D = 2|A ∩ B| / (|A| + |B|), its soft version on
  probabilities, its closed-form gradient, and pixel-wise cross-entropy.
* Image quality: PSNR = 10 log₁₀(R² / MSE) and SSIM (scikit-image's implementation).
* Learnable upsampling: transposed convolutions and resize-convolution, and a measure of the
  checkerboard pattern that uneven overlap leaves behind.
* :class:`EncoderDecoder`: a fully convolutional encoder-decoder with optional symmetric
  additive skips (RED-Net) and an optional residual output x − f(x) (DnCNN, RED-CNN).
* Low-dose CT: line integrals by the Radon transform, Poisson photon noise at I₀ incident
  photons per ray, and filtered back-projection (scikit-image's ``radon`` and ``iradon``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gencourse.train import fit

# --------------------------------------------------------------------------------------------
# Segmentation: Dice coefficient and losses


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() < 2:
        raise ValueError(f"expected a batch (N, ...) of at least 2 dimensions, got shape {tuple(a.shape)}")


def dice_coefficient(
    pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, reduction: str = "mean"
) -> torch.Tensor:
    """The (soft) Dice coefficient of each image of a batch, averaged over the batch:

        D = (2 Σᵢ pᵢ tᵢ + ε) / (Σᵢ pᵢ + Σᵢ tᵢ + ε),

    the sums running over all entries of one image (every dimension but the first). On binary
    masks this is 2|A ∩ B| / (|A| + |B|); on probabilities p ∈ [0, 1] it is the soft Dice. Two
    empty masks score 1. ``reduction="none"`` returns the per-image values, shape (N,).
    """
    _check_same_shape(pred, target, "pred and target")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    p = pred.flatten(1).to(torch.float64 if pred.dtype == torch.float64 else torch.float32)
    t = target.flatten(1).to(p.dtype)
    dice = (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)
    return dice.mean() if reduction == "mean" else dice


def dice_loss(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The soft Dice loss 1 − (1/N) Σₙ Dₙ of a batch of probabilities against binary targets."""
    return 1 - dice_coefficient(probs, target, eps)


def dice_gradient(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The closed-form gradient of each image's soft Dice with respect to its probabilities:

        ∂D/∂pⱼ = (2 tⱼ − D) / (Σᵢ pᵢ + Σᵢ tᵢ + ε),

    same shape as ``probs`` (derived in lecture 8; checked there against autograd).
    """
    _check_same_shape(probs, target, "probs and target")
    d = dice_coefficient(probs, target, eps, reduction="none")
    s = probs.flatten(1).sum(1) + target.flatten(1).sum(1) + eps
    shape = (-1,) + (1,) * (probs.dim() - 1)
    return (2 * target - d.view(shape)) / s.view(shape)


# --------------------------------------------------------------------------------------------
# Image quality


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def psnr(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio 10 log₁₀(R² / MSE) in dB, MSE = mean (x − y)² over all
    entries, R = ``data_range``; +inf when x = y."""
    a, b = _as_numpy(x), _as_numpy(y)
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same shape, got {a.shape} and {b.shape}")
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def ssim(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity of two grey images (H, W) or (1, H, W) (Wang et al. 2004), by
    ``skimage.metrics.structural_similarity`` with its default 7×7 window."""
    from skimage.metrics import structural_similarity

    a, b = np.squeeze(_as_numpy(x)), np.squeeze(_as_numpy(y))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two grey images of the same shape, got {a.shape} and {b.shape}")
    return float(structural_similarity(a, b, data_range=data_range))


def image_quality(
    restored: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0
) -> dict[str, np.ndarray]:
    """Per-image PSNR and SSIM of a batch (N, 1, H, W) against its reference:
    ``{"psnr": (N,), "ssim": (N,)}``."""
    if restored.shape != reference.shape or restored.dim() != 4 or restored.shape[1] != 1:
        raise ValueError(
            f"expected two batches (N, 1, H, W) of the same shape, got {tuple(restored.shape)} "
            f"and {tuple(reference.shape)}"
        )
    pairs = list(zip(restored, reference, strict=True))
    return {
        "psnr": np.array([psnr(a, b, data_range) for a, b in pairs]),
        "ssim": np.array([ssim(a, b, data_range) for a, b in pairs]),
    }


# --------------------------------------------------------------------------------------------
# Learnable upsampling and the checkerboard pattern

UPSAMPLERS = ("deconv3", "deconv4", "resize")


def upsampler(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    """A learnable ×2 upsampling layer, (N, C, H, W) → (N, C', 2H, 2W):

    * ``"deconv3"``: transposed convolution, kernel 3, stride 2 (3 is not divisible by 2: the
      kernel footprints overlap unevenly, one or two taps per output row);
    * ``"deconv4"``: transposed convolution, kernel 4, stride 2 (even overlap, two taps);
    * ``"resize"``: nearest-neighbour ×2 then a 3×3 convolution (resize-convolution).
    """
    if kind == "deconv3":
        return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
    if kind == "deconv4":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
    if kind == "resize":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        )
    raise ValueError(f"unknown upsampler {kind!r}; known: {', '.join(UPSAMPLERS)}")


def checkerboard_index(images: torch.Tensor, period: int = 2, eps: float = 1e-12) -> torch.Tensor:
    """The fraction of an image's variance that is periodic with period P in both axes:

        c = (1/P²) Σ_{a,b} (m_{ab} − ȳ)² / Var(y),   m_{ab} = mean of y[a::P, b::P],

    i.e. the energy of the projection of y − ȳ onto the P-periodic images (the Fourier
    components at multiples of 1/P cycles per pixel), over the energy of y − ȳ. It lies in
    [0, 1]: 1 for a pure checkerboard, about P²/(HW) for white noise, near 0 for smooth images.
    ``images`` is (..., H, W) with H and W multiples of P; returns shape (...).
    """
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    h, w = images.shape[-2:]
    if h % period or w % period:
        raise ValueError(f"image size {h}×{w} is not a multiple of the period {period}")
    y = images.to(torch.float64)
    phases = y.unflatten(-2, (h // period, period)).unflatten(-1, (w // period, period))
    means = phases.mean(dim=(-4, -2))  # (..., P, P): the mean of each sub-lattice
    mean = y.mean(dim=(-2, -1))
    periodic = (means - mean[..., None, None]).pow(2).mean(dim=(-2, -1))
    return periodic / (y.var(dim=(-2, -1), unbiased=False) + eps)


# --------------------------------------------------------------------------------------------
# The encoder-decoder


class EncoderDecoder(nn.Module):
    """A fully convolutional encoder-decoder for images (N, C, H, W), H and W multiples of
    2^levels.

    Encoder: a 3×3 convolution to ``width`` channels, then ``levels`` times a stride-2 4×4
    convolution (halving the size) and a 3×3 convolution. Decoder, symmetric: ``levels`` times
    a ×2 ``upsampler`` and a 3×3 convolution, then a 3×3 convolution to ``out_channels``.
    ReLU after every layer but the last (LeakyReLU with slope ``negative_slope`` > 0, whose
    units cannot die: adversarial training needs it). With ``skips``, the encoder features of each size are
    added to the upsampled decoder features of the same size before the ReLU, hᵈ ← ReLU(U hᵈ⁺¹ +
    hₑ), as in RED-Net. With ``residual``, the network predicts the noise r and returns
    x − r(x); otherwise it returns its output directly.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        width: int = 32,
        levels: int = 2,
        skips: bool = True,
        residual: bool = False,
        upsample: str = "deconv4",
        negative_slope: float = 0.0,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if residual and out_channels != in_channels:
            raise ValueError(
                f"a residual output x − r(x) needs out_channels == in_channels, got {out_channels} "
                f"and {in_channels}"
            )
        if levels < 1 or width < 1:
            raise ValueError(f"levels and width must be positive, got levels={levels}, width={width}")
        if upsample not in UPSAMPLERS:
            raise ValueError(f"unknown upsampler {upsample!r}; known: {', '.join(UPSAMPLERS)}")
        self.levels, self.skips, self.residual = levels, skips, residual
        self.negative_slope = negative_slope
        self.head = nn.Conv2d(in_channels, width, 3, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(width, width, 4, stride=2, padding=1) for _ in range(levels))
        self.enc = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(levels))
        self.up = nn.ModuleList(upsampler(upsample, width, width) for _ in range(levels))
        self.dec = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(levels))
        self.tail = nn.Conv2d(width, out_channels, 3, padding=1)
        # channels-last weights (oneDNN's preferred layout): a CPU training step takes about 20%
        # less time; the function is the same
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = 2**self.levels
        if x.dim() != 4 or x.shape[-1] % size or x.shape[-2] % size:
            raise ValueError(
                f"expected images (N, C, H, W) with H, W multiples of {size}, got {tuple(x.shape)}"
            )
        act = self._activation
        h = act(self.head(x))
        features = [h]
        for down, enc in zip(self.down, self.enc, strict=True):
            h = act(enc(act(down(h))))
            features.append(h)
        features.pop()  # the deepest features are h itself
        for up, dec in zip(self.up, self.dec, strict=True):
            h = up(h)
            skip = features.pop()
            h = act(h + skip if self.skips else h)
            h = act(dec(h))
        out = self.tail(h)
        return x - out if self.residual else out

    def _activation(self, h: torch.Tensor) -> torch.Tensor:
        """ReLU, or LeakyReLU max(h, a·h) with a = ``negative_slope`` > 0."""
        return F.leaky_relu(h, self.negative_slope) if self.negative_slope else F.relu(h)


# --------------------------------------------------------------------------------------------
# Training


LOSSES = ("mse", "bce", "dice")


def pixel_loss(name: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training loss ``name`` of a network output against its target:

    * ``"mse"``: mean (output − target)² (restoration);
    * ``"bce"``: mean pixel-wise cross-entropy −[t log σ(z) + (1 − t) log(1 − σ(z))] of logits z;
    * ``"dice"``: the soft Dice loss 1 − mean D(σ(z), t) of logits z.
    """
    if name == "mse":
        return F.mse_loss(output, target)
    if name == "bce":
        return F.binary_cross_entropy_with_logits(output, target)
    if name == "dice":
        return dice_loss(torch.sigmoid(output), target)
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")


def _dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, k, dims=(-2, -1))
    return x.flip(-1) if flip else x


def train_pixelwise(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    loss: str = "mse",
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    augment: bool = False,
    desc: str = "training",
) -> dict[str, list[float]]:
    """Train an image-to-image ``model`` by Adam on random mini-batches of (input, target)
    pairs, minimising :func:`pixel_loss` ``loss``. With ``augment``, each batch is rotated by a
    random multiple of 90° and randomly mirrored (the same for inputs and targets). Returns the
    per-step history ``{"step", "loss"}``.
    """
    if inputs.dim() != 4 or targets.dim() != 4 or inputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected batches (N, C, H, W) of inputs and targets of the same length, got "
            f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    device = next(model.parameters()).device

    def loss_fn(idx: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x, y = inputs[idx].to(device), targets[idx].to(device)
        if augment:
            k, flip = (int(v) for v in torch.randint(4, (2,), generator=gen))
            x, y = _dihedral(x, k, flip % 2 == 1), _dihedral(y, k, flip % 2 == 1)
        return {"loss": pixel_loss(loss, model(x), y)}

    return fit(model, len(inputs), loss_fn, steps, batch_size, lr, seed, desc)


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """The model's outputs on ``inputs`` in evaluation mode, by batches, on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat(
        [model(inputs[i : i + batch_size].to(device)).cpu() for i in range(0, len(inputs), batch_size)]
    )


# --------------------------------------------------------------------------------------------
# A segmentation task with class imbalance


def discs_in_noise(
    n: int,
    size: int = 32,
    radius: tuple[float, float] = (1.5, 3.0),
    n_discs: tuple[int, int] = (1, 3),
    noise: float = 0.5,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of ``size``×``size`` pixels holding between ``n_discs[0]`` and ``n_discs[1]``
    discs of radius U[radius], fully inside the image: the mask is the union of the discs, the
    image is mask + N(0, noise²) pixel noise. Returns (images, masks), each (n, 1, size, size).
    """
    if n < 1 or noise < 0 or not 0 < radius[0] <= radius[1] < size / 2 or not 1 <= n_discs[0] <= n_discs[1]:
        raise ValueError(f"bad arguments: n={n}, noise={noise}, radius={radius}, n_discs={n_discs}")
    gen = torch.Generator().manual_seed(seed)
    axis = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        count = int(torch.randint(n_discs[0], n_discs[1] + 1, (1,), generator=gen))
        for _ in range(count):
            r = radius[0] + (radius[1] - radius[0]) * float(torch.rand(1, generator=gen))
            cx, cy = (r + (size - 2 * r) * torch.rand(2, generator=gen)).tolist()
            masks[i, 0] = torch.maximum(masks[i, 0], (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).float())
    images = masks + noise * torch.randn(masks.shape, generator=gen)
    return images, masks


# --------------------------------------------------------------------------------------------
# Low-dose CT


def projection_angles(angles: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """Projection angles in degrees: ``n`` equally spaced in [0°, 180°) for an integer, else the
    given 1-D sequence."""
    if isinstance(angles, (int, np.integer)):
        if angles < 1:
            raise ValueError(f"need at least one projection angle, got {angles}")
        return np.linspace(0.0, 180.0, int(angles), endpoint=False)
    theta = np.asarray(angles, dtype=np.float64)
    if theta.ndim != 1 or theta.size == 0:
        raise ValueError(f"angles must be an integer or a non-empty 1-D sequence, got shape {theta.shape}")
    return theta


def _square_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    img = np.squeeze(_as_numpy(image))
    if img.ndim != 2 or img.shape[0] != img.shape[1]:
        raise ValueError(f"expected a square grey image (H, H) or (1, H, H), got {np.shape(image)}")
    return img


def line_integrals(
    image: torch.Tensor | np.ndarray, angles: int | Sequence[float], attenuation: float = 16.0
) -> np.ndarray:
    """The sinogram p(s, θ) = ∫ μ dl of the attenuation map μ = attenuation · image, lengths
    measured in image widths (so a path across the whole image through intensity 1 has line
    integral ``attenuation``): ``skimage.transform.radon`` (pixel sums) × attenuation / H.
    The image must vanish outside its inscribed circle. Shape (H, number of angles)."""
    from skimage.transform import radon

    img = _square_image(image)
    return radon(img, projection_angles(angles), circle=True) * (attenuation / img.shape[0])


def noisy_line_integrals(p: np.ndarray, photons: float, rng: np.random.Generator | int = 0) -> np.ndarray:
    """Poisson photon noise at I₀ = ``photons`` incident photons per ray: counts
    N ~ Poisson(I₀ e^{−p}), clipped at N ≥ 1 (a ray that no photon crossed would give −log 0),
    then back to line integrals p̂ = −log(N / I₀). ``photons=inf`` returns p unchanged.
    For large I₀ e^{−p}, p̂ ≈ p + N(0, eᵖ / I₀)."""
    if not photons > 0:
        raise ValueError(f"photons must be positive, got {photons}")
    if math.isinf(photons):
        return np.array(p, dtype=np.float64)
    rng = np.random.default_rng(rng) if isinstance(rng, (int, np.integer)) else rng
    counts = np.maximum(rng.poisson(photons * np.exp(-np.asarray(p))), 1)
    return -np.log(counts / photons)


def fbp(
    p: np.ndarray, angles: int | Sequence[float], attenuation: float = 16.0, filter_name: str = "ramp"
) -> np.ndarray:
    """Filtered back-projection of a sinogram of line integrals (H, number of angles) back to
    image intensities: ``skimage.transform.iradon`` × H / attenuation (inverting
    :func:`line_integrals`)."""
    from skimage.transform import iradon

    size = p.shape[0]
    theta = projection_angles(angles)
    if p.ndim != 2 or p.shape[1] != theta.size:
        raise ValueError(f"sinogram shape {p.shape} does not match {theta.size} angles")
    return iradon(p, theta, output_size=size, filter_name=filter_name, circle=True) * (size / attenuation)


def low_dose_ct(
    image: torch.Tensor | np.ndarray,
    photons: float,
    angles: int | Sequence[float],
    attenuation: float = 16.0,
    seed: np.random.Generator | int = 0,
) -> np.ndarray:
    """Simulate a CT scan of ``image`` at I₀ = ``photons`` per ray and reconstruct it: the
    Radon transform (:func:`line_integrals`), Poisson photon noise (:func:`noisy_line_integrals`)
    and filtered back-projection (:func:`fbp`). Returns the (H, H) reconstruction."""
    p = line_integrals(image, angles, attenuation)
    return fbp(noisy_line_integrals(p, photons, seed), angles, attenuation)


def ct_reconstructions(
    phantoms: torch.Tensor,
    photons: Sequence[float],
    angles: int | Sequence[float],
    attenuation: float = 16.0,
    seed: int = 0,
) -> list[torch.Tensor]:
    """FBP reconstructions of a batch of phantoms (N, 1, H, H) at each dose in ``photons``
    (one Radon transform per phantom, independent noise per dose): a list of (N, 1, H, H)
    float32 tensors, one per dose."""
    if phantoms.dim() != 4 or phantoms.shape[1] != 1:
        raise ValueError(f"expected phantoms (N, 1, H, H), got {tuple(phantoms.shape)}")
    rng = np.random.default_rng(seed)
    out = [np.empty(phantoms.shape, dtype=np.float32) for _ in photons]
    for i, phantom in enumerate(phantoms):
        p = line_integrals(phantom, angles, attenuation)
        for k, i0 in enumerate(photons):
            out[k][i, 0] = fbp(noisy_line_integrals(p, i0, rng), angles, attenuation)
    return [torch.from_numpy(x) for x in out]
