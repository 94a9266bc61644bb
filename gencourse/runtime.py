"""Where code runs and how much work it does: devices, seeds, budgets, progress bars.

Every notebook of the course runs unchanged on three machines. The *budget level* says which:

* ``ci``  -- the 2-core CPU of continuous integration: seconds per lecture;
* ``cpu`` -- a laptop or the book build: minutes per lecture, enough for the headline results;
* ``gpu`` -- Colab with a GPU (a free T4): each lecture within about 30 minutes;
* ``paper`` -- opt-in only, never a default: the papers' full protocols (hours on a GPU).

The level is read from the environment variable ``GENCOURSE_BUDGET``; without it, it is
``gpu`` when CUDA is available and ``cpu`` otherwise. No knob is smaller at ``gpu`` than at
``cpu`` (tests/test_budgets.py reads every ``budget(...)`` call of the lectures and assignments).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch

BUDGET_ENV = "GENCOURSE_BUDGET"
LEVELS = ("ci", "cpu", "gpu", "paper")

T = TypeVar("T")


def get_device() -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then the CPU.

    With ``GENCOURSE_STRICT_DEVICE=1`` (or ``mps``) it returns the logical ``cuda`` (``mps``)
    device of :mod:`gencourse.strict_device` and switches that mode on: the arithmetic runs on
    the CPU, and whatever the real device would refuse (CPU tensors mixed in, ``.numpy()``,
    float64 on MPS) raises.
    """
    from gencourse import strict_device

    kind = strict_device.mode_from_env()
    if kind is not None:
        return strict_device.enable(kind)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and CUDA) with ``seed``.

    Returns a fresh ``torch.Generator`` seeded with the same value, for code that prefers an
    explicit generator to the global one.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def budget_level() -> str:
    """The budget level: ``GENCOURSE_BUDGET`` if set, else ``gpu`` with CUDA, else ``cpu``.

    Raises ``ValueError`` naming the allowed levels if the variable holds anything else.
    """
    raw = os.environ.get(BUDGET_ENV)
    if raw is None or raw.strip() == "":
        return "gpu" if torch.cuda.is_available() else "cpu"
    level = raw.strip().lower()
    if level not in LEVELS:
        raise ValueError(
            f"{BUDGET_ENV}={raw!r} is not a budget level; allowed levels are "
            + ", ".join(repr(x) for x in LEVELS)
        )
    return level


def budget(*, ci: T, cpu: T, gpu: T, paper: T | None = None) -> T:
    """Return the value for the current budget level, e.g. ``budget(ci=200, cpu=3_000, gpu=30_000)``.

    ``paper`` is the value at the opt-in level ``paper`` (a paper's full protocol); where it is
    not given, that level uses the ``gpu`` value."""
    if budget_level() == "paper":
        return gpu if paper is None else paper
    return {"ci": ci, "cpu": cpu, "gpu": gpu}[budget_level()]


def progress(iterable: Iterable[T], desc: str | None = None, total: int | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm progress bar, silent at the ``ci`` budget or when
    ``GENCOURSE_QUIET=1`` (with ``GENCOURSE_FLOPS`` set, :func:`gencourse.gpu_estimate.watch`
    counts the work of its steps)."""
    from tqdm.auto import tqdm

    from gencourse.gpu_estimate import watch

    iterable = watch(iterable, desc)  # counts each step's work when GENCOURSE_FLOPS is set (GPU estimate)
    quiet = os.environ.get("GENCOURSE_QUIET") == "1" or budget_level() == "ci"
    return iter(tqdm(iterable, desc=desc, total=total, disable=quiet, leave=False))


SCHEDULES = ("constant", "cosine")


def adam(
    params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """Adam (m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², w ← w − lr · m̂ / (√v̂ + ε), with the bias
    corrections m̂ = m / (1−β₁ᵗ), v̂ = v / (1−β₂ᵗ)), in PyTorch's fused implementation when every
    parameter allows it: one kernel per step instead of a pass per operation. For the MLP VAE
    (1.6 million weights) on a CPU core the update takes 1.0 instead of 5.1 ms, of a training
    step of about 14 ms. Each update differs from the unfused one in the last bit of some
    weights only (rounding)."""
    params = list(params)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


def fit(
    model: torch.nn.Module,
    n_items: int,
    loss_fn: Callable[[torch.Tensor, torch.Generator], dict[str, torch.Tensor]],
    steps: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    desc: str = "training",
    schedule: str = "constant",
) -> dict[str, list[float]]:
    """Minimise ``loss_fn(idx, gen)["loss"]`` by Adam over ``steps`` random mini-batches of
    indices ``idx`` into a data set of ``n_items`` items, with a progress bar.

    ``schedule`` sets the learning rate at step t of T: ``"constant"`` (lr throughout) or
    ``"cosine"``, lr_t = lr · ½ (1 + cos(π t / T)), which decays to 0 at the last step and
    reaches a given accuracy in fewer steps than a constant rate.

    ``gen`` is the seeded generator that also draws the batches, for the loss's own
    randomness. Every entry of the returned dict is logged: the history is
    ``{"step": [...], key: [...], ...}``.
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if not 1 <= batch_size <= n_items:
        raise ValueError(f"batch_size must be in [1, {n_items}], got {batch_size}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    gen = seed_everything(seed)
    opt = adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {"step": []}
    model.train()
    for step in progress(range(steps), desc=desc):
        idx = torch.randint(n_items, (batch_size,), generator=gen)
        logs = loss_fn(idx, gen)
        opt.zero_grad()
        logs["loss"].backward()
        if schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.step()
        history["step"].append(step)
        for key, value in logs.items():
            history.setdefault(key, []).append(
                float(value.detach()) if torch.is_tensor(value) else float(value)
            )
    model.eval()
    return history
