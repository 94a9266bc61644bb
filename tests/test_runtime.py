import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from gencourse.runtime import adam, budget, budget_level, fit, get_device, progress, seed_everything


@pytest.mark.parametrize("level", ["ci", "cpu", "gpu"])
def test_budget_picks_the_level_named_by_the_environment(monkeypatch, level):
    monkeypatch.setenv("GENCOURSE_BUDGET", level)
    assert budget_level() == level
    assert budget(ci=1, cpu=2, gpu=3) == {"ci": 1, "cpu": 2, "gpu": 3}[level]


def test_budget_accepts_case_and_spaces(monkeypatch):
    monkeypatch.setenv("GENCOURSE_BUDGET", " CPU ")
    assert budget(ci="a", cpu="b", gpu="c") == "b"


@pytest.mark.parametrize("bad", ["fast", "gpu2", "0"])
def test_budget_rejects_unknown_levels_naming_the_allowed_ones(monkeypatch, bad):
    monkeypatch.setenv("GENCOURSE_BUDGET", bad)
    with pytest.raises(ValueError, match="'ci', 'cpu', 'gpu'"):
        budget(ci=1, cpu=2, gpu=3)


def test_paper_level_is_opt_in_and_falls_back_to_gpu(monkeypatch):
    monkeypatch.setenv("GENCOURSE_BUDGET", "paper")
    assert budget(ci=1, cpu=2, gpu=3, paper=400_000) == 400_000
    assert budget(ci=1, cpu=2, gpu=3) == 3  # no paper= value: the gpu one
    monkeypatch.delenv("GENCOURSE_BUDGET")
    for cuda in (False, True):  # never a default, GPU or not
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert budget_level() != "paper"


def test_budget_default_depends_on_cuda(monkeypatch):
    monkeypatch.delenv("GENCOURSE_BUDGET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert budget_level() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert budget_level() == "gpu"


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        gen = seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item()

    assert draw() == draw()
    seed_everything(124)
    assert random.random() != draw()[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError):
        seed_everything(bad)


def test_progress_yields_every_item():
    assert list(progress(range(5), desc="x")) == [0, 1, 2, 3, 4]


def test_fit_minimises_a_quadratic_and_repeats_with_the_seed():
    target = torch.linspace(-1, 1, 50)[:, None]

    def run(seed):
        model = nn.Linear(1, 1)
        torch.manual_seed(0)
        nn.init.zeros_(model.weight)
        nn.init.zeros_(model.bias)

        def loss_fn(idx, gen):
            x = target[idx]
            return {"loss": ((model(x) - (3 * x + 1)) ** 2).mean()}

        history = fit(model, len(target), loss_fn, steps=300, batch_size=10, lr=0.05, seed=seed)
        return model, history

    model, history = run(0)
    assert history["step"] == list(range(300))
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    assert abs(model.weight.item() - 3) < 0.05 and abs(model.bias.item() - 1) < 0.05
    assert run(0)[1]["loss"] == history["loss"]
    assert run(1)[1]["loss"] != history["loss"]


def test_fit_rejects_bad_sizes():
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError):
        fit(model, 5, lambda i, g: {"loss": model.weight.sum()}, steps=1, batch_size=6)
    with pytest.raises(ValueError):
        fit(model, 5, lambda i, g: {"loss": model.weight.sum()}, steps=-1, batch_size=2)


def test_fit_cosine_schedule_follows_the_formula_and_ends_at_zero():
    """lr_t = lr · ½ (1 + cos(π t / T)): record the rate that each step uses."""
    model = nn.Linear(1, 1)
    seen = []

    def loss_fn(idx, gen):
        return {"loss": model.weight.sum() ** 2}

    opt_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return opt_step(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        fit(model, 4, loss_fn, steps=8, batch_size=2, lr=0.1, schedule="cosine")
        fit(model, 4, loss_fn, steps=3, batch_size=2, lr=0.1)
    finally:
        torch.optim.Adam.step = opt_step
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * t / 8)) for t in range(8)]
    assert seen[:8] == pytest.approx(expected) and seen[0] == pytest.approx(0.1)
    assert seen[7] < 0.005 and seen[8:] == [0.1] * 3
    with pytest.raises(ValueError, match="cosine"):
        fit(model, 4, loss_fn, steps=1, batch_size=2, schedule="linear")


def test_adam_is_fused_on_the_cpu_and_agrees_with_the_textbook_update():
    """Three steps of the fused Adam equal the update written out, to rounding."""
    torch.manual_seed(0)
    w0 = torch.randn(50, dtype=torch.float64)
    w = nn.Parameter(w0.clone())
    opt = adam([w], lr=0.1, betas=(0.5, 0.9))
    assert opt.defaults["fused"] is True
    grads = [torch.randn(50, dtype=torch.float64) for _ in range(3)]
    m, v, ref = torch.zeros(50, dtype=torch.float64), torch.zeros(50, dtype=torch.float64), w0.clone()
    for t, g in enumerate(grads, start=1):
        w.grad = g.clone()
        opt.step()
        m, v = 0.5 * m + 0.5 * g, 0.9 * v + 0.1 * g**2
        ref = ref - 0.1 * (m / (1 - 0.5**t)) / ((v / (1 - 0.9**t)).sqrt() + 1e-8)
    assert torch.allclose(w.detach(), ref, rtol=0, atol=1e-12)
    assert not torch.allclose(w.detach(), w0)
