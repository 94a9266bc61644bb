"""Tests of gencourse.train: the one training loop (fit, adversarial_fit) and the ensemble."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gencourse.runtime import progress
from gencourse.train import (
    EnsembleLinear,
    Player,
    Step,
    adversarial_fit,
    cosine,
    fit,
    linear_decay,
    require_int,
)

# ---------------------------------------------------------------------------------------------
# fit


def _line_fit(seed: int = 0, steps: int = 200, **kwargs):
    """y = 3x + 1 fitted by a linear model on 50 points."""
    x = torch.linspace(-1, 1, 50)[:, None]
    torch.manual_seed(0)
    model = nn.Linear(1, 1)

    def loss_fn(idx, gen):
        return {"loss": ((model(x[idx]) - (3 * x[idx] + 1)) ** 2).mean(), "w": model.weight[0, 0]}

    history = fit(model, len(x), loss_fn, steps, batch_size=10, lr=0.05, seed=seed, **kwargs)
    return model, history


def test_fit_minimises_logs_every_entry_and_repeats_with_the_seed():
    model, history = _line_fit()
    assert list(history) == ["step", "loss", "w"] and history["step"] == list(range(200))
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    assert abs(model.weight.item() - 3) < 0.05 and not model.training
    assert _line_fit()[1] == history and _line_fit(seed=1)[1]["loss"] != history["loss"]


def test_fit_accepts_a_pair_and_a_loss_without_data():
    """n_items=None: the loss gets idx=None; a pair (objective, logs) logs only the logs."""
    w = nn.Parameter(torch.tensor([2.0]))
    model = nn.Module()
    model.w = w
    seen = []

    def loss_fn(idx, gen):
        seen.append(idx)
        return (w - 5).pow(2).sum(), {"distance": (w - 5).abs().sum()}

    history = fit(model, None, loss_fn, 300, lr=0.1)
    assert set(seen) == {None} and list(history) == ["step", "distance"]
    assert history["distance"][-1] < 0.05


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", lambda t: 0.1),
        ("cosine", lambda t: 0.1 * 0.5 * (1 + math.cos(math.pi * t / 8))),
        (linear_decay(0.01), lambda t: 0.1 * (1 + (0.01 - 1) * t / 7)),
    ],
)
def test_fit_schedules_set_the_rate_of_every_step(schedule, expected):
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    fit(
        model, 4, lambda i, g: {"loss": model.weight.sum() ** 2}, 8, batch_size=2, schedule=schedule,
        optimizer=opt, callback=lambda step, logs: seen.append(opt.param_groups[0]["lr"]),
    )  # fmt: skip
    assert seen == pytest.approx([expected(t) for t in range(8)])
    assert cosine(0.1, 8, 8) == pytest.approx(0) and linear_decay(0.01)(0.1, 7, 8) == pytest.approx(0.001)


def test_fit_callback_stops_and_sees_numbers():
    seen = []

    def stop_at_five(step, logs):
        seen.append(logs)
        return step == 4

    _, history = _line_fit(callback=stop_at_five)
    assert history["step"] == [0, 1, 2, 3, 4] and len(history["loss"]) == 5
    assert all(isinstance(logs["loss"], float) for logs in seen)


def test_fit_evaluates_in_eval_mode_without_gradients_and_keeps_snapshots():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    x = torch.randn(40, 2)
    modes = []

    def evaluate():
        modes.append((model.training, torch.is_grad_enabled()))
        return {"norm": float(model[0].weight.norm())}

    def loss_fn(idx, gen):
        modes.append((model.training, torch.is_grad_enabled()))
        return {"loss": model(x[idx]).pow(2).mean()}

    history = fit(model, 40, loss_fn, 7, batch_size=8, evaluate=evaluate, eval_every=3, snapshots=[2, 7])
    assert history["eval_step"] == [3, 6, 7] and len(history["norm"]) == 3
    assert history["norm"][-1] == pytest.approx(float(model[0].weight.detach().norm()))
    assert modes.count((False, False)) == 3 and modes.count((True, True)) == 7
    assert not model.training
    snaps = history["snapshots"]
    assert sorted(snaps) == [2, 7] and not torch.equal(
        snaps[2]["model"]["0.weight"], snaps[7]["model"]["0.weight"]
    )
    assert torch.equal(snaps[7]["model"]["0.weight"], model[0].weight.detach())


def test_fit_rejects_bad_input():
    model = nn.Linear(1, 1)
    loss = lambda i, g: {"loss": model.weight.sum()}  # noqa: E731
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, 5, loss, 1, batch_size=6)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="steps"):
            fit(model, 5, loss, bad, batch_size=2)
    with pytest.raises(ValueError, match="cosine"):
        fit(model, 5, loss, 1, batch_size=2, schedule="linear")
    with pytest.raises(TypeError, match="'loss'"):
        fit(model, 5, lambda i, g: {"l": model.weight.sum()}, 1, batch_size=2)
    with pytest.raises(ValueError, match="end_factor"):
        linear_decay(0.0)
    with pytest.raises(ValueError, match="n_critic must be a positive integer, got 0"):
        require_int("n_critic", 0)
    assert require_int("steps", 0, 0) == 0


def test_progress_bar_stays_and_shows_the_running_losses(monkeypatch, capsys):
    monkeypatch.setenv("GENCOURSE_BUDGET", "cpu")
    monkeypatch.delenv("GENCOURSE_QUIET", raising=False)
    bar = progress(range(3), desc="x")
    assert bar.leave and not bar.disable and list(bar) == [0, 1, 2]
    _line_fit(steps=20)
    err = capsys.readouterr().err
    assert "training" in err and "loss=" in err and "20/20" in err
    monkeypatch.setenv("GENCOURSE_QUIET", "1")
    _line_fit(steps=20)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("GENCOURSE_QUIET", "0")
    monkeypatch.setenv("GENCOURSE_BUDGET", "ci")
    assert progress(range(3)).disable


# ---------------------------------------------------------------------------------------------
# adversarial_fit


def _game(record: list, *, repeat: int = 2, g_optimizer: bool = True, extra: bool = False):
    d_net, g_net, h_net = nn.Linear(1, 1), nn.Linear(1, 1), nn.Linear(1, 1)

    def d_step(t: Step):
        record.append(("D", t.index, d_net.weight.requires_grad, g_net.weight.requires_grad))
        t.shared.setdefault("d_calls", 0)
        t.shared["d_calls"] += 1
        return (d_net.weight - 1).pow(2).sum(), {"d_loss": d_net.weight.sum(), "calls": t.shared["d_calls"]}

    def h_step(t: Step):
        record.append(("H", t.index, h_net.weight.requires_grad, g_net.weight.requires_grad))
        if t.index % 2:
            return None, {}  # sits odd iterations out
        return (h_net.weight + 1).pow(2).sum(), {"h_loss": h_net.weight.sum()}

    def g_step(t: Step):
        record.append(
            ("G", t.index, d_net.weight.requires_grad, h_net.weight.requires_grad, torch.is_grad_enabled())
        )
        return (g_net.weight * d_net.weight).pow(2).sum(), {"g_loss": g_net.weight.sum()}

    d = Player([d_net], d_step, torch.optim.SGD(d_net.parameters(), lr=0.1), repeat=repeat)
    g = Player([g_net], g_step, torch.optim.SGD(g_net.parameters(), lr=0.1) if g_optimizer else None)
    more = [Player([h_net], h_step, torch.optim.SGD(h_net.parameters(), lr=0.1))] if extra else []
    return d, g, more, (d_net, g_net, h_net)


def test_adversarial_fit_runs_algorithm_one_in_order_with_the_others_frozen():
    record: list = []
    d, g, extra, (d_net, g_net, h_net) = _game(record, extra=True)
    h_before = h_net.weight.item()
    history = adversarial_fit(d, g, 3, extra=extra, keys=("g_loss", "d_loss"))
    kinds = [r[0] for r in record]
    assert kinds == ["D", "D", "H", "G"] * 3
    assert all(r[2] for r in record if r[0] in "DH")  # D and H train with gradients
    assert all(r[2:] == (False, False, True) for r in record if r[0] == "G")  # frozen while G steps
    assert d_net.weight.requires_grad and h_net.weight.requires_grad  # and restored
    assert list(history)[:3] == ["step", "g_loss", "d_loss"]
    assert history["calls"] == [2, 2, 2]  # the shared dict is emptied before each iteration
    assert math.isnan(history["h_loss"][1]) and not math.isnan(history["h_loss"][2])
    assert h_net.weight.item() != h_before and not d_net.training


def test_adversarial_fit_without_g_optimizer_or_d_and_with_no_steps():
    record: list = []
    d, g, _, (d_net, g_net, _) = _game(record, g_optimizer=False)
    before = g_net.weight.item()
    adversarial_fit(d, g, 2)
    assert g_net.weight.item() == before  # not updated, and its step ran without gradients
    assert all(r[-1] is False for r in record if r[0] == "G")
    record.clear()
    adversarial_fit(None, _game(record)[1], 2)
    assert [r[0] for r in record] == ["G", "G"]
    history = adversarial_fit(d, g, 0, keys=("d_loss", "g_loss"))
    assert history == {"step": [], "d_loss": [], "g_loss": []}


def test_adversarial_fit_after_update_clips_after_each_discriminator_update():
    calls = []
    record: list = []
    d, g, _, (d_net, _, _) = _game(record, repeat=3)
    d.after_update = lambda: calls.append(float(d_net.weight.detach()))
    adversarial_fit(d, g, 2)
    assert len(calls) == 6


def test_adversarial_fit_is_seeded_and_uses_the_device_of_the_modules():
    def run(seed):
        torch.manual_seed(0)
        d_net, g_net = nn.Linear(2, 1), nn.Linear(2, 2)
        devices = []

        def d_step(t):
            devices.append(t.device)
            x = torch.randn(8, 2, generator=t.rng)
            return nn.functional.softplus(-d_net(x)).mean() + nn.functional.softplus(
                d_net(g_net(x).detach())
            ).mean(), {}

        def g_step(t):
            return nn.functional.softplus(-d_net(g_net(torch.randn(8, 2, generator=t.rng)))).mean(), {}

        adversarial_fit(
            Player([d_net], d_step, torch.optim.Adam(d_net.parameters())),
            Player([g_net], g_step, torch.optim.Adam(g_net.parameters())),
            5,
            seed=seed,
        )
        return [p.detach().clone() for p in (*d_net.parameters(), *g_net.parameters())], devices

    a, devices = run(0)
    assert all(torch.equal(x, y) for x, y in zip(a, run(0)[0], strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, run(1)[0], strict=True))
    assert set(devices) == {torch.device("cpu")}


def test_adversarial_fit_rejects_bad_input():
    record: list = []
    d, g, _, _ = _game(record, repeat=0)
    with pytest.raises(ValueError, match="repeat"):
        adversarial_fit(d, g, 1)
    d.repeat = 1
    with pytest.raises(ValueError, match="steps"):
        adversarial_fit(d, g, -1)
    d.step = lambda t: (torch.zeros(()), {}, "third")
    with pytest.raises(TypeError, match="pair"):
        adversarial_fit(d, g, 1)


# ---------------------------------------------------------------------------------------------
# stacked layers


def test_ensemble_linear_stack_is_its_layers_side_by_side_and_keeps_the_random_stream():
    torch.manual_seed(3)
    layers = [nn.Linear(4, 3) for _ in range(2)]
    state = torch.get_rng_state()
    lin = EnsembleLinear.stack(layers)
    assert torch.equal(torch.get_rng_state(), state)  # no draw consumed
    x = torch.randn(2, 5, 4)
    y = lin(x)
    for s in range(2):
        torch.testing.assert_close(y[s], layers[s](x[s]))
    with pytest.raises(ValueError, match="same shape"):
        EnsembleLinear.stack([nn.Linear(4, 3), nn.Linear(3, 3)])
