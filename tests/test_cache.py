"""The cache of trained networks: off by default, transparent when on."""

import numpy as np
import pytest
import torch
from torch import nn

from gencourse.cache import CACHE_ENV, cached_training, fingerprint
from gencourse.gan import trained_dcgan
from gencourse.nets import trained_mnist_classifier
from gencourse.runtime import seed_everything
from gencourse.vae import trained_mnist_vae


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))


def _trainer(net: nn.Module, calls: list, steps: int = 20):
    def train() -> list[float]:
        calls.append(1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        losses = []
        for _ in range(steps):
            loss = net(torch.randn(8, 3)).pow(2).mean()  # draws from the global generator
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        net.eval()
        return losses

    return train


def test_without_a_cache_directory_it_just_trains(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    calls = []
    for _ in range(2):
        net = _net(0)
        cached_training("toy", {"steps": 20}, {"net": net}, _trainer(net, calls))
    assert len(calls) == 2 and not list(tmp_path.iterdir())


def test_a_second_identical_run_loads_weights_result_and_random_state(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls = []
    seed_everything(3)
    first = _net(0)
    torch.manual_seed(5)
    result = cached_training("toy", {"steps": 20}, {"net": first}, _trainer(first, calls))
    after = (torch.rand(3), np.random.rand(), torch.get_rng_state())

    second = _net(0)
    torch.manual_seed(5)
    np.random.seed(3)
    loaded = cached_training("toy", {"steps": 20}, {"net": second}, _trainer(second, calls))
    assert len(calls) == 1 and loaded == result
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not second.training and not second[1].training  # modes restored too
    assert torch.equal(torch.rand(3), after[0]) and np.random.rand() == after[1]


def test_another_key_or_other_initial_weights_train_anew(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls = []
    for seed, steps in [(0, 20), (0, 21), (1, 20), (0, 20)]:
        net = _net(seed)
        cached_training("toy", {"steps": steps}, {"net": net}, _trainer(net, calls, steps))
    assert len(calls) == 3  # the last run repeats the first
    assert len(list(tmp_path.glob("toy-*.pt"))) == 3


def test_fingerprint_reads_tensor_contents_and_refuses_opaque_values():
    a = torch.zeros(3)
    assert fingerprint("x", {"data": a}) == fingerprint("x", {"data": torch.zeros(3)})
    assert fingerprint("x", {"data": a}) != fingerprint("x", {"data": torch.tensor([0.0, 0.0, 1e-7])})
    assert fingerprint("x", {"data": a}) != fingerprint("y", {"data": a})
    with pytest.raises(TypeError, match="cannot fingerprint"):
        fingerprint("x", {"data": lambda: 0})


def test_cached_helpers_give_the_weights_of_a_fresh_training(monkeypatch, tmp_path, capsys):
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(64) % 10
    monkeypatch.delenv(CACHE_ENV, raising=False)
    plain = trained_mnist_classifier(images, labels, steps=3, batch_size=16, seed=2)
    g_plain, _, h_plain = trained_dcgan(images, latent_dim=8, steps=2, seed=1)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    for _ in range(2):
        clf = trained_mnist_classifier(images, labels, steps=3, batch_size=16, seed=2)
        g, d, history = trained_dcgan(images, latent_dim=8, steps=2, seed=1)
        for a, b in zip(plain.state_dict().values(), clf.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        for a, b in zip(g_plain.state_dict().values(), g.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        assert not clf.training and not g.training and not d.training
        assert {k: v for k, v in history.items() if k != "generators"} == {
            k: v for k, v in h_plain.items() if k != "generators"
        }
        assert history["generators"].keys() == h_plain["generators"].keys() == {2}
        for a, b in zip(h_plain["generators"][2].values(), history["generators"][2].values(), strict=True):
            assert torch.equal(a, b)
    out = capsys.readouterr().out
    assert "mnist-classifier: loaded from the cache" in out and "dcgan: loaded from the cache" in out


def test_cached_vae_gives_the_weights_and_history_of_a_fresh_training(monkeypatch, tmp_path, capsys):
    images = torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    plain, h_plain = trained_mnist_vae(images, steps=3, latent_dim=4, seed=1)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    for _ in range(2):
        vae, history = trained_mnist_vae(images, steps=3, latent_dim=4, seed=1)
        for a, b in zip(plain.state_dict().values(), vae.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        assert history == h_plain and len(history["loss"]) == 3 and not vae.training
    assert "mnist-vae: loaded from the cache" in capsys.readouterr().out
