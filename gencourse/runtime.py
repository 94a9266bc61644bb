"""Where code runs and how much work it does: devices, seeds, budgets, progress bars.

(Training lives in :mod:`gencourse.train`; ``adam`` and ``fit`` at the end of this module are
its deprecated aliases, kept so that old notebooks run.)

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

import os
import random
from collections.abc import Callable, Iterable
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


def progress(iterable: Iterable[T], desc: str | None = None, total: int | None = None) -> Iterable[T]:
    """``iterable`` wrapped in a tqdm progress bar that stays on screen when done (the training
    loop of :mod:`gencourse.train` shows its running losses on it with ``set_postfix``); silent
    at the ``ci`` budget or when ``GENCOURSE_QUIET=1``. With ``GENCOURSE_FLOPS`` set,
    :func:`gencourse.gpu_estimate.watch` counts the work of its steps."""
    from tqdm.auto import tqdm

    from gencourse.gpu_estimate import watch

    iterable = watch(iterable, desc)  # counts each step's work when GENCOURSE_FLOPS is set (GPU estimate)
    quiet = os.environ.get("GENCOURSE_QUIET") == "1" or budget_level() == "ci"
    return tqdm(iterable, desc=desc, total=total, disable=quiet, leave=True)


# Training moved to gencourse.train. The deprecated wrappers below keep old notebooks working;
# they import the training core when called (it imports this module), and SCHEDULES resolves
# from gencourse.train.loop on first use (see __getattr__).
_MOVED = ("SCHEDULES",)
__all__ = [
    *_MOVED,
    "BUDGET_ENV",
    "LEVELS",
    "adam",
    "budget",
    "budget_level",
    "fit",
    "get_device",
    "progress",
    "seed_everything",
]


def __getattr__(name: str) -> object:
    """Deprecated: ``runtime.SCHEDULES``, now :data:`gencourse.train.loop.SCHEDULES`."""
    if name in _MOVED:
        from gencourse.train import loop

        return loop.SCHEDULES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def adam(
    params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """Deprecated: :func:`gencourse.train.adam` (the same function), kept here for old code."""
    from gencourse import train

    return train.adam(params, lr, betas)


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
    """Deprecated: :func:`gencourse.train.fit`, which takes the same arguments (and more), kept
    here for old code. Minimises ``loss_fn(idx, gen)["loss"]`` by Adam over ``steps`` random
    mini-batches of indices into a data set of ``n_items`` items."""
    from gencourse import train

    return train.fit(model, n_items, loss_fn, steps, batch_size, lr, seed, desc, schedule)
