"""MNIST (downloaded where a network exists, bundled otherwise) and its fixed binarisation.

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
import os
import warnings
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
