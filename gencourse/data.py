"""Data sets of the course: MNIST (downloaded where a network exists, bundled otherwise).

``load_mnist(split)`` returns a :class:`TensorImages` data set of ``(image, label)`` pairs with
images float32 in [0, 1] of shape (1, 28, 28).

* With a network (Colab), torchvision downloads the real 60,000/10,000 train/test splits.
* Without one, the package uses its bundled copy of the 10,000-image MNIST *test* split
  (CC BY-SA 3.0, see ``_bundled/mnist/README.md``), checks its SHA-256, and splits it
  deterministically into 9,000 training and 1,000 test images, with a warning that says so.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

MNIST_FILES = {
    "images": "t10k-images-idx3-ubyte.gz",
    "labels": "t10k-labels-idx1-ubyte.gz",
}
BUNDLED_TRAIN_SIZE = 9_000
SPLIT_SEED = 20_260_101


class BundledDataError(RuntimeError):
    """The bundled data is missing or corrupted."""


class TensorImages(Dataset):
    """Images and labels held as two tensors; ``ds[i] == (images[i], labels[i])``.

    ``source`` says where the data came from (``"torchvision"`` or ``"bundled"``).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, source: str) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:])
        return f"TensorImages(n={len(self)}, shape={shape}, source={self.source!r})"


def data_root() -> Path:
    """Where downloads are cached: ``$GENCOURSE_DATA`` or ``~/.cache/gencourse``."""
    return Path(os.environ.get("GENCOURSE_DATA", Path.home() / ".cache" / "gencourse"))


def bundled_dir() -> Path:
    """The folder of the bundled MNIST files inside the installed package."""
    return Path(str(resources.files("gencourse") / "_bundled" / "mnist"))


def _expected_sha256(folder: Path) -> dict[str, str]:
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise BundledDataError(f"bundled MNIST checksums missing: {sums} (reinstall gencourse)")
    pairs = (line.split() for line in sums.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def _read_verified(folder: Path, name: str, expected: dict[str, str]) -> bytes:
    """Read ``folder/name``, check its SHA-256 against ``expected`` and gunzip it."""
    path = folder / name
    if not path.is_file():
        raise BundledDataError(f"bundled MNIST file missing: {path} (reinstall gencourse)")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected.get(name):
        raise BundledDataError(
            f"bundled MNIST file {path} is corrupted: SHA-256 {digest} does not match "
            f"{expected.get(name)} (reinstall gencourse)"
        )
    return gzip.decompress(raw)


def read_idx_mnist(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the verified IDX files in ``folder``: uint8 images (N, 28, 28) and int64 labels (N,)."""
    expected = _expected_sha256(folder)
    img = _read_verified(folder, MNIST_FILES["images"], expected)
    lab = _read_verified(folder, MNIST_FILES["labels"], expected)
    n = int.from_bytes(img[4:8], "big")
    images = np.frombuffer(img, dtype=np.uint8, offset=16).reshape(n, 28, 28)
    labels = np.frombuffer(lab, dtype=np.uint8, offset=8)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


@functools.lru_cache(maxsize=4)
def _bundled_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx_mnist(bundled_dir())
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SPLIT_SEED))
    idx = order[:BUNDLED_TRAIN_SIZE] if split == "train" else order[BUNDLED_TRAIN_SIZE:]
    idx = idx.sort().values
    return images[idx], labels[idx]


@functools.lru_cache(maxsize=4)
def _download_split(split: str, root: str) -> tuple[torch.Tensor, torch.Tensor] | Exception:
    """The torchvision split, or the exception that the download raised (cached either way,
    so that an offline machine pays for the failed attempt once)."""
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(root, train=(split == "train"), download=True)
    except Exception as err:  # offline: torchvision raises RuntimeError or URLError
        return err
    return ds.data.clone(), ds.targets.clone().long()


@functools.lru_cache(maxsize=1)
def _warn_bundled(reason: str) -> None:
    """Say once per session that the bundled subset replaces the real splits."""
    warnings.warn(
        f"MNIST could not be downloaded ({reason}); using the 10,000 bundled MNIST test "
        f"images, split into {BUNDLED_TRAIN_SIZE:,} train and "
        f"{10_000 - BUNDLED_TRAIN_SIZE:,} test images",
        stacklevel=3,
    )


def _to_dataset(images: torch.Tensor, labels: torch.Tensor, source: str) -> TensorImages:
    x = images.to(torch.float32).div_(255.0).unsqueeze(1)
    return TensorImages(x, labels.to(torch.int64), source)


def load_mnist(split: str = "train", download: bool | None = None) -> TensorImages:
    """Load MNIST ``split`` (``"train"`` or ``"test"``) as images in [0, 1] of shape (1, 28, 28).

    ``download=None`` tries torchvision's download (cached under :func:`data_root`) unless
    ``GENCOURSE_OFFLINE=1``, and falls back to the bundled 10k subset; ``False`` uses the
    bundled subset directly; ``True`` insists on the download.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if download is None:
        download = os.environ.get("GENCOURSE_OFFLINE") != "1"
        strict = False
    else:
        strict = download
    if download:
        result = _download_split(split, str(data_root()))
        if not isinstance(result, Exception):
            return _to_dataset(*result, "torchvision")
        if strict:
            raise RuntimeError(f"MNIST download failed: {result}") from result
        _warn_bundled(type(result).__name__)
    return _to_dataset(*_bundled_split(split), "bundled")


def binarize(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Fixed stochastic binarisation: each pixel becomes 1 with probability equal to its grey
    level, x_b ~ Bernoulli(x), drawn once with ``seed`` so that the result repeats.

    On binary pixels the Bernoulli likelihood Π x̂^x (1 − x̂)^{1−x} is a proper probability mass
    function, so log-likelihoods in nats are meaningful (on grey levels they are not).
    """
    if images.min() < 0 or images.max() > 1:
        raise ValueError("images must lie in [0, 1] to be binarised")
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.cpu(), generator=gen).to(images.device)


@dataclass(frozen=True)
class Mixture2D:
    """An equal-weight mixture of isotropic Gaussians N(cᵢ, std² I) in the plane."""

    centers: torch.Tensor
    std: float

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points: a uniformly chosen center plus N(0, std² I) noise; shape (n, 2)."""
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        k = torch.randint(len(self.centers), (n,), generator=generator)
        return self.centers[k] + self.std * torch.randn(n, 2, generator=generator)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log (1/K) Σᵢ N(x; cᵢ, std² I), shape (n,)."""
        d2 = torch.cdist(x, self.centers).pow(2)
        log_comp = -d2 / (2 * self.std**2) - math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(log_comp, dim=1) - math.log(len(self.centers))


def grid_mixture(size: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture2D:
    """PacGAN's grid: size² modes at {−4, −2, 0, 2, 4}² (for the defaults), std 0.05."""
    axis = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) * spacing
    centers = torch.cartesian_prod(axis, axis)
    return Mixture2D(centers, std)


def ring_mixture(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture2D:
    """PacGAN's ring: n_modes modes evenly spaced on a circle of ``radius`` (1), std 0.01.
    (WGAN-GP's "8 Gaussians" is radius 2, std 0.02.)"""
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float32) / n_modes
    centers = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return Mixture2D(centers, std)


# ---------------------------------------------------------------------------------------------
# CT phantoms (lecture 8): scikit-image's Shepp–Logan head and random ellipse phantoms.


def _resize_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``×``factor`` blocks: an anti-aliased downsampling by ``factor``."""
    h, w = image.shape
    return image.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def shepp_logan(size: int = 64) -> torch.Tensor:
    """The modified Shepp–Logan head phantom bundled with scikit-image (400×400, values in
    [0, 1]), resized with anti-aliasing to ``size``×``size``; shape (1, size, size), float32."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    image = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    return torch.from_numpy(np.clip(image, 0.0, 1.0).astype(np.float32)).unsqueeze(0)


def _ellipse_mask(
    xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, a: float, b: float, angle: float
) -> np.ndarray:
    """Points (x, y) with ((x')/a)² + ((y')/b)² ≤ 1, (x', y') the point relative to (cx, cy)
    rotated by −angle."""
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def random_ellipse_phantom(size: int, rng: np.random.Generator, supersample: int = 2) -> np.ndarray:
    """One random head-like phantom on [−1, 1]², drawn inside the inscribed circle:

    a bright skull (intensity 1) around soft tissue of intensity t ~ U[0.15, 0.35], and 4 to 10
    inner ellipses (centres within radius 0.55, semi-axes U[0.03, 0.25], any rotation) that add
    U[−0.2, 0.4] each; clipped to [0, 1], rendered at ``supersample``× and block-averaged.
    """
    n = size * supersample
    axis = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    xx, yy = np.meshgrid(axis, -axis)
    a, b = rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.92)
    tilt = rng.uniform(-0.3, 0.3)
    thick = rng.uniform(0.03, 0.07)
    image = np.where(_ellipse_mask(xx, yy, 0.0, 0.0, a, b, tilt), 1.0, 0.0)
    inside = _ellipse_mask(xx, yy, 0.0, 0.0, a - thick, b - thick, tilt)
    image[inside] = rng.uniform(0.15, 0.35)
    for _ in range(int(rng.integers(4, 11))):
        r, phi = 0.55 * math.sqrt(rng.uniform()), rng.uniform(0.0, 2 * math.pi)
        mask = _ellipse_mask(
            xx,
            yy,
            r * math.cos(phi),
            r * math.sin(phi),
            rng.uniform(0.03, 0.25),
            rng.uniform(0.03, 0.25),
            rng.uniform(0.0, math.pi),
        )
        image[mask & inside] += rng.uniform(-0.2, 0.4)
    return _resize_mean(np.clip(image, 0.0, 1.0), supersample)


def random_ellipse_phantoms(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` random ellipse phantoms (see :func:`random_ellipse_phantom`), shape (n, 1, size,
    size), float32 in [0, 1]; the same ``seed`` gives the same phantoms."""
    if n < 1 or size < 8:
        raise ValueError(f"need n ≥ 1 and size ≥ 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    images = np.stack([random_ellipse_phantom(size, rng) for _ in range(n)])
    return torch.from_numpy(images.astype(np.float32)).unsqueeze(1)


# ---------------------------------------------------------------------------------------------
# A planted-factor data set (lecture 10): a disc placed by angle and radius around the centre.

DISC_ANGLE_RANGE = (0.0, 1.5 * math.pi)
DISC_RADIUS_RANGE = (0.25, 0.75)


def render_discs(
    angle: torch.Tensor, radius: torch.Tensor, size: int = 32, disc_radius: float = 0.12
) -> torch.Tensor:
    """Images (n, 1, size, size) of one bright disc each, centred at the point at polar
    coordinates (``radius``·size/2, ``angle``) around the canvas centre (angle measured
    anticlockwise from the x axis, image rows pointing down). Pixel (i, j) has centre
    p = (j + ½ − size/2, size/2 − i − ½) and value clamp(ρ − ‖p − m‖ + ½, 0, 1), ρ =
    ``disc_radius``·size: 1 inside the disc, 0 outside, a one-pixel linear ramp on the edge."""
    angle = torch.as_tensor(angle, dtype=torch.float32).reshape(-1)
    radius = torch.as_tensor(radius, dtype=torch.float32).reshape(-1)
    if angle.shape != radius.shape:
        raise ValueError(f"angle and radius must have the same length, got {len(angle)} and {len(radius)}")
    if size < 8 or not 0 < disc_radius < 0.5:
        raise ValueError(
            f"need size ≥ 8 and 0 < disc_radius < 0.5, got size={size}, disc_radius={disc_radius}"
        )
    half = size / 2
    axis = torch.arange(size, dtype=torch.float32) + 0.5 - half
    cx = (radius * half * torch.cos(angle))[:, None, None]
    cy = (radius * half * torch.sin(angle))[:, None, None]
    dist = torch.sqrt((axis[None, None, :] - cx) ** 2 + (-axis[None, :, None] - cy) ** 2)
    return (disc_radius * size - dist + 0.5).clamp(0.0, 1.0).unsqueeze(1)


def sample_disc_factors(
    n: int,
    generator: torch.Generator | None = None,
    angle_range: tuple[float, float] = DISC_ANGLE_RANGE,
    radius_range: tuple[float, float] = DISC_RADIUS_RANGE,
) -> torch.Tensor:
    """n independent factor pairs (angle, radius), angle ~ U[``angle_range``] (radians) and
    radius ~ U[``radius_range``] (a fraction of half the canvas); shape (n, 2)."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    (a0, a1), (r0, r1) = angle_range, radius_range
    if not (a0 < a1 and 0 <= r0 < r1 <= 1):
        raise ValueError(f"need angle_range a0 < a1 and 0 ≤ r0 < r1 ≤ 1, got {angle_range}, {radius_range}")
    u = torch.rand(n, 2, generator=generator)
    return torch.stack([a0 + (a1 - a0) * u[:, 0], r0 + (r1 - r0) * u[:, 1]], dim=1)


def planted_discs(
    n: int, size: int = 32, seed: int = 0, disc_radius: float = 0.12
) -> tuple[torch.Tensor, torch.Tensor]:
    """The planted two-factor data set of InfoGAN-CR (Lin et al., 2020), here on a
    ``size``×``size`` canvas (the paper's is 64×64): ``n`` images of a disc whose position is
    set by two independent factors, angle ~ U[0, 3π/2] and radius ~ U[0.25, 0.75] (a fraction
    of half the canvas) around the centre. Returns (images (n, 1, size, size) in [0, 1],
    factors (n, 2) = (angle, radius)); the same ``seed`` gives the same data."""
    factors = sample_disc_factors(n, torch.Generator().manual_seed(seed))
    return render_discs(factors[:, 0], factors[:, 1], size, disc_radius), factors


def disc_factors_from_images(images: torch.Tensor) -> torch.Tensor:
    """Read the factors (angle, radius) back from disc images (n, 1, size, size): the centre
    of mass m = Σ p·x_p / Σ x_p of the pixel centres p (x right, y up, origin at the canvas
    centre) in polar coordinates, angle = atan2(m_y, m_x) mod 2π and radius = ‖m‖/(size/2).
    Exact for :func:`render_discs` up to the pixel grid; shape (n, 2)."""
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"expected images (n, 1, size, size), got shape {tuple(images.shape)}")
    size = images.shape[-1]
    axis = torch.arange(size, dtype=torch.float32, device=images.device) + 0.5 - size / 2
    w = images[:, 0].float()
    mass = w.sum((1, 2)).clamp_min(1e-8)
    mx = (w * axis[None, None, :]).sum((1, 2)) / mass
    my = (w * -axis[None, :, None]).sum((1, 2)) / mass
    return torch.stack([torch.atan2(my, mx) % (2 * math.pi), torch.sqrt(mx**2 + my**2) / (size / 2)], dim=1)
