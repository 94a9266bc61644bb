import shutil
import warnings

import pytest
import torch

from gencourse.data import (
    BundledDataError,
    binarize,
    bundled_dir,
    grid_mixture,
    load_mnist,
    mnist,
    read_idx_mnist,
    ring_mixture,
)


@pytest.fixture(scope="module")
def splits():
    return load_mnist("train", download=False), load_mnist("test", download=False)


def test_bundled_mnist_shapes_range_and_types(splits):
    train, test = splits
    assert len(train) == 9_000 and len(test) == 1_000
    image, label = train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert isinstance(label.item(), int) and 0 <= label.item() <= 9
    for ds in splits:
        assert ds.images.min() >= 0 and ds.images.max() <= 1
        assert ds.source == "bundled"


def test_bundled_split_is_deterministic_disjoint_and_complete(splits):
    train, test = splits
    images, labels = read_idx_mnist(bundled_dir())
    assert images.shape == (10_000, 28, 28)
    # class counts of the MNIST test split, as documented with the data
    assert labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    both = torch.cat([train.labels, test.labels]).bincount()
    assert both.tolist() == labels.bincount().tolist()
    again = load_mnist("test", download=False)
    assert torch.equal(again.images, test.images)
    # no test image also appears in the training split
    train_keys = {hash(x.numpy().tobytes()) for x in train.images[:, 0]}
    test_keys = {hash(x.numpy().tobytes()) for x in test.images[:, 0]}
    assert len(train_keys & test_keys) <= 5  # MNIST holds a few exact duplicates


def test_offline_download_falls_back_with_one_warning(monkeypatch):
    monkeypatch.delenv("GENCOURSE_OFFLINE", raising=False)
    mnist._download_split.cache_clear()
    mnist._warn_bundled.cache_clear()
    monkeypatch.setattr(mnist, "_download_split", lambda split, root: RuntimeError("no network"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds1 = load_mnist("train")
        ds2 = load_mnist("test")
    messages = [str(w.message) for w in caught if "bundled" in str(w.message)]
    assert len(messages) == 1 and "9,000" in messages[0]
    assert ds1.source == ds2.source == "bundled"
    with pytest.raises(RuntimeError, match="download failed"):
        load_mnist("train", download=True)


def test_download_is_used_when_it_works(monkeypatch):
    fake = (torch.zeros(3, 28, 28, dtype=torch.uint8) + 255, torch.tensor([1, 2, 3]))
    monkeypatch.setattr(mnist, "_download_split", lambda split, root: fake)
    ds = load_mnist("train", download=True)
    assert ds.source == "torchvision" and len(ds) == 3 and ds.images.max() == 1.0


def test_bad_split_is_rejected():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist("validation")


def test_corrupted_or_missing_bundled_file_gives_a_clear_error(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(bundled_dir(), folder)
    target = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(BundledDataError, match="corrupted"):
        read_idx_mnist(folder)
    target.unlink()
    with pytest.raises(BundledDataError, match="missing"):
        read_idx_mnist(folder)


def test_licence_is_shipped_with_the_data():
    text = (bundled_dir() / "README.md").read_text()
    assert "CC BY-SA 3.0" in text


def test_binarize_is_seeded_and_matches_grey_levels():
    x = torch.full((200, 1, 28, 28), 0.3)
    b1, b2 = binarize(x, seed=3), binarize(x, seed=3)
    assert torch.equal(b1, b2) and set(b1.unique().tolist()) <= {0.0, 1.0}
    assert abs(b1.mean().item() - 0.3) < 0.01
    with pytest.raises(ValueError):
        binarize(x + 1)


def test_mixtures_match_pacgan_setup():
    grid, ring = grid_mixture(), ring_mixture()
    assert grid.centers.shape == (25, 2) and grid.std == 0.05
    assert set(grid.centers[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert ring.centers.shape == (8, 2) and ring.std == 0.01
    assert torch.allclose(ring.centers.norm(dim=1), torch.ones(8))
    x = grid.sample(20_000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(x, grid.centers).argmin(1)
    assert nearest.bincount(minlength=25).min() > 600  # every mode is used, about 800 each
    offsets = x - grid.centers[nearest]
    assert abs(offsets.std().item() - 0.05) < 0.003
    # the density integrates to about one over a fine grid around one mode, times 25 modes
    axis = torch.linspace(-0.3, 0.3, 301)
    pts = torch.cartesian_prod(axis, axis)
    mass = grid.log_density(pts).exp().sum() * (axis[1] - axis[0]) ** 2
    assert abs(mass.item() - 1 / 25) < 1e-3
