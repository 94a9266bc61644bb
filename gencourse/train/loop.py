"""The one training loop of the course: :func:`fit` for one model, :func:`adversarial_fit` for a
game of several players (a discriminator D and a generator G, and any helper such as InfoGAN-CR's
pair classifier).

Each iteration t = 0, …, T − 1 of :func:`adversarial_fit` is Goodfellow et al.'s Algorithm 1:

    repeat k times:  θ_D ← θ_D − η_D ∇ L_D          (D's step; k = ``d.repeat``, WGAN's n_critic)
    for every extra player P:  θ_P ← θ_P − η_P ∇ L_P
    θ_G ← θ_G − η_G ∇ L_G                               (G's step, the other players frozen)

where each player's loss comes from its *step function*, written in the module of its paper
(``gencourse.gan``, ``pacgan``, ``disentangle``, ``translation``), and each arrow is one update of
the player's optimiser. :func:`fit` is the same loop with one player whose loss is evaluated on a
random mini-batch of indices.

The loop owns what every paper's algorithm leaves out: seeding, the progress bar (with the running
losses), the history (one entry per iteration for every logged number), the learning-rate schedule,
evaluation callbacks (in eval mode, without gradients), snapshots of the weights, switching the
modules between training and evaluation mode, and the device the step functions should use.

A step function takes a :class:`Step` and returns either a dict of tensors whose ``"loss"`` entry
is minimised (every entry is logged), or a pair ``(objective, logs)``: the tensor to minimise
(``None``: the player sits this iteration out) and a dict of the numbers to log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gencourse.runtime import progress, seed_everything

SCHEDULES = ("constant", "cosine")  # the named schedules of fit
Logs = dict[str, Any]
StepResult = Mapping[str, Any] | tuple[torch.Tensor | None, Mapping[str, Any]]
Schedule = Callable[[float, int, int], float]


def adam(
    params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """Adam (m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², w ← w − lr · m̂ / (√v̂ + ε), with the bias
    corrections m̂ = m / (1−β₁ᵗ), v̂ = v / (1−β₂ᵗ)), in PyTorch's fused implementation when every
    parameter allows it: one kernel per step instead of a pass per operation (the saving was
    measured for the MLP VAE in commit 273eabf). Each update differs from the unfused one in
    the last bit of some weights only (rounding)."""
    params = list(params)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


def require_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` if it is an integer (not a bool) ≥ ``minimum``; else ``ValueError`` naming it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer ≥ {minimum}")
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def cosine(base: float, step: int, steps: int) -> float:
    """The cosine schedule lr_t = lr · ½ (1 + cos(π t / T)): lr at t = 0, decaying to 0 at t = T."""
    return base * 0.5 * (1 + math.cos(math.pi * step / steps))


def linear_decay(end_factor: float) -> Schedule:
    """The schedule lr_t = lr · (1 + (f − 1) · t / max(T − 1, 1)), from lr at the first step to
    f·lr = ``end_factor``·lr at the last one."""
    if end_factor <= 0:
        raise ValueError(f"end_factor must be positive, got {end_factor}")

    def schedule(base: float, step: int, steps: int) -> float:
        return base * (1 + (end_factor - 1) * step / max(steps - 1, 1))

    return schedule


def _schedule(schedule: str | Schedule | None) -> Schedule | None:
    if schedule is None or schedule == "constant":
        return None
    if schedule == "cosine":
        return cosine
    if callable(schedule):
        return schedule
    raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)} or a function")


@dataclass
class Step:
    """What a step function sees: the iteration ``index`` t of ``steps`` T, the seeded random
    generator ``rng`` (draw every batch and every noise from it), the ``device`` of the trained
    modules, and ``shared``, a dict that the players' steps of one iteration share (emptied
    before each iteration: e.g. D's step leaves the generated batch there for G's step)."""

    index: int
    steps: int
    rng: torch.Generator
    device: torch.device
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class Player:
    """One side of the game: the ``modules`` it trains, its ``step`` function, its ``optimizer``
    (``None``: the step is still run, without gradients, and logged, but nothing is updated),
    how many updates it makes per iteration (``repeat``, e.g. WGAN's n_critic = 5 for the
    critic), and ``after_update``, run after each update (e.g. WGAN's weight clipping)."""

    modules: Sequence[nn.Module]
    step: Callable[[Step], StepResult]
    optimizer: torch.optim.Optimizer | None
    repeat: int = 1
    after_update: Callable[[], None] | None = None


def _split(result: StepResult) -> tuple[torch.Tensor | None, Mapping[str, Any]]:
    """(objective, logs) from a step's result: a pair as it is, or a dict whose "loss" is the
    objective and which is logged whole."""
    if isinstance(result, tuple):
        if len(result) != 2:
            raise TypeError("a step function returns a dict or a pair (objective, logs)")
        return result
    if not isinstance(result, Mapping) or "loss" not in result:
        raise TypeError("a step function returns a dict with a 'loss' entry or a pair (objective, logs)")
    return result["loss"], result


def _number(value: Any) -> Any:
    """A logged value as a Python number (a list for a tensor of several entries; nan for None)."""
    if value is None:
        return math.nan
    if torch.is_tensor(value):
        value = value.detach()
        return float(value) if value.numel() == 1 else value.cpu().tolist()
    return value if isinstance(value, (list, tuple, dict)) else float(value)


def _update(player: Player, t: Step) -> Mapping[str, Any]:
    """One update of ``player``: its loss from its step function, then (if it has an optimiser
    and the loss is not None) zero the gradients, back-propagate, step, and ``after_update``."""
    with torch.set_grad_enabled(player.optimizer is not None):
        objective, logs = _split(player.step(t))
    if player.optimizer is not None and objective is not None:
        player.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        player.optimizer.step()
        if player.after_update is not None:
            player.after_update()
    return logs


def _trainable(players: Iterable[Player]) -> list[torch.nn.Parameter]:
    return [p for player in players for m in player.modules for p in m.parameters() if p.requires_grad]


def _device(players: Sequence[Player]) -> torch.device:
    for player in players:
        for module in player.modules:
            for tensor in (*module.parameters(), *module.buffers()):
                return tensor.device
    return torch.device("cpu")


def _state_copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _postfix(history: Mapping[str, list], logs: Mapping[str, Any]) -> dict[str, str]:
    """The progress bar's running losses: the last value of (at most) four logged numbers."""
    last = {k: history[k][-1] for k in logs}
    return {k: f"{v:.3g}" for k, v in list(last.items())[:4] if isinstance(v, float)}


def _set_mode(players: Sequence[Player], training: bool) -> None:
    for player in players:
        for module in player.modules:
            module.train(training)


def _run(
    players: Sequence[Player],
    steps: int,
    *,
    seed: int,
    rng: torch.Generator | None,
    schedule: str | Schedule | None,
    callback: Callable[[int, Logs], bool | None] | None,
    evaluate: Callable[[], Mapping[str, Any]] | None,
    eval_every: int,
    snapshots: Collection[int],
    snapshot_modules: Mapping[str, nn.Module] | None,
    keys: Sequence[str],
    eval_mode_after: bool,
    desc: str,
) -> dict[str, Any]:
    """The loop behind :func:`fit` and :func:`adversarial_fit`: every player but the last
    updates ``repeat`` times, then the last one updates with the others frozen."""
    require_int("steps", steps, 0)
    require_int("eval_every", eval_every, 0)
    lr_at = _schedule(schedule)
    if rng is None:
        rng = seed_everything(seed)
    device = _device(players)
    optimizers = [p.optimizer for p in players if p.optimizer is not None]
    base_lrs = [[group["lr"] for group in opt.param_groups] for opt in optimizers]
    history: dict[str, Any] = {"step": [], **{k: [] for k in keys}}
    kept = set(snapshots)
    modules_to_keep = snapshot_modules or {
        f"{i}.{j}": m for i, p in enumerate(players) for j, m in enumerate(p.modules)
    }
    if kept:
        history["snapshots"] = {}

    evaluated_keys: set[str] = set()

    def log(values: Mapping[str, Any], n_before: int) -> None:
        """Append this iteration's numbers; a key first seen now gets nan for the earlier
        iterations, a key not logged now gets nan: every column has one entry per iteration."""
        for key, value in values.items():
            history.setdefault(key, [math.nan] * n_before).append(_number(value))
        for key, column in history.items():
            if (
                key not in values
                and key not in evaluated_keys
                and key not in ("step", "eval_step", "snapshots")
            ):
                column.append(math.nan)

    def run_evaluation(at: int) -> None:
        _set_mode(players, False)
        with torch.no_grad():
            results = evaluate()
        _set_mode(players, True)
        history.setdefault("eval_step", []).append(at)
        for key, value in results.items():
            evaluated_keys.add(key)
            history.setdefault(key, []).append(value)

    *leaders, last = players
    others = _trainable(leaders)
    bar = progress(range(steps), desc=desc)
    shown = time.monotonic()
    _set_mode(players, True)
    for step in bar:
        t = Step(step, steps, rng, device)
        if lr_at is not None:
            for opt, bases in zip(optimizers, base_lrs, strict=True):
                for group, base in zip(opt.param_groups, bases, strict=True):
                    group["lr"] = lr_at(base, step, steps)
        logs: Logs = {}
        for player in leaders:
            for _ in range(player.repeat):
                logs.update(_update(player, t))
        for p in others:  # the last player's step needs no gradient for the others' weights
            p.requires_grad_(False)
        try:
            for _ in range(last.repeat):
                logs.update(_update(last, t))
        finally:
            for p in others:
                p.requires_grad_(True)
        history["step"].append(step)
        log(logs, step)
        if kept and step + 1 in kept:
            history["snapshots"][step + 1] = {name: _state_copy(m) for name, m in modules_to_keep.items()}
        stop = callback(step, {k: history[k][-1] for k in logs}) if callback is not None else None
        if not getattr(bar, "disable", True) and (
            stop or step + 1 == steps or time.monotonic() - shown > 0.5
        ):
            shown = time.monotonic()  # the running losses, about twice a second, and the last ones
            bar.set_postfix(_postfix(history, logs), refresh=False)
        if evaluate is not None and eval_every > 0 and (step + 1) % eval_every == 0 and step + 1 < steps:
            run_evaluation(step + 1)
        if stop:
            break
    if hasattr(bar, "close"):
        bar.close()  # stays on screen, with the last losses
    if evaluate is not None:
        run_evaluation(len(history["step"]))
    if eval_mode_after:
        _set_mode(players, False)
    return history


def fit(
    model: nn.Module,
    n_items: int | None,
    loss_fn: Callable[[torch.Tensor | None, torch.Generator], StepResult],
    steps: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    desc: str = "training",
    schedule: str | Schedule = "constant",
    *,
    optimizer: torch.optim.Optimizer | None = None,
    callback: Callable[[int, Logs], bool | None] | None = None,
    evaluate: Callable[[], Mapping[str, Any]] | None = None,
    eval_every: int = 0,
    snapshots: Collection[int] = (),
    rng: torch.Generator | None = None,
    eval_mode_after: bool = True,
) -> dict[str, Any]:
    """Minimise ``loss_fn(idx, rng)`` over ``steps`` random mini-batches: at each step t,
    ``idx`` holds ``batch_size`` indices drawn uniformly from {0, …, ``n_items`` − 1} (``None``
    if ``n_items`` is None: a loss without a data set, e.g. the deep image prior's), and the
    optimiser (default :func:`~gencourse.runtime.adam` with rate ``lr``) takes one step on the
    returned loss (a dict whose ``"loss"`` is minimised and every entry logged, or a pair
    (objective, logs)).

    ``schedule`` sets the learning rate at step t of T: ``"constant"``, ``"cosine"``
    (lr_t = lr · ½ (1 + cos(π t / T)), see :func:`cosine`), or any function (lr, t, T) → lr_t
    such as :func:`linear_decay`. ``rng`` (default: a generator seeded with ``seed``, after
    :func:`~gencourse.runtime.seed_everything`) draws the batches and is handed to the loss for
    its own randomness. ``callback(t, logs)`` runs after each step and stops the training by
    returning True; ``evaluate()`` runs every ``eval_every`` steps and after the last, in eval
    mode and without gradients, its dict logged under its keys beside ``"eval_step"``; the
    model's weights after each step in ``snapshots`` are kept in ``history["snapshots"]``
    (a dict step → ``{"model": state_dict}``, on the CPU). The model is in training mode while it
    trains and in eval mode after (unless ``eval_mode_after`` is False).

    Returns the history ``{"step": [...], key: [...], ...}``, one entry per step for each key.
    """
    if n_items is not None and not 1 <= batch_size <= n_items:
        raise ValueError(f"batch_size must be in [1, {n_items}], got {batch_size}")
    _schedule(schedule)  # unknown names fail before any work

    def step(t: Step) -> StepResult:
        idx = None if n_items is None else torch.randint(n_items, (batch_size,), generator=t.rng)
        return loss_fn(idx, t.rng)

    if optimizer is None:
        optimizer = adam(model.parameters(), lr=lr)
    return _run(
        [Player([model], step, optimizer)], steps, seed=seed, rng=rng, schedule=schedule,
        callback=callback, evaluate=evaluate, eval_every=eval_every, snapshots=snapshots,
        snapshot_modules={"model": model}, keys=(), eval_mode_after=eval_mode_after, desc=desc,
    )  # fmt: skip


def adversarial_fit(
    d: Player | None,
    g: Player,
    steps: int,
    *,
    extra: Sequence[Player] = (),
    seed: int = 0,
    rng: torch.Generator | None = None,
    schedule: str | Schedule = "constant",
    callback: Callable[[int, Logs], bool | None] | None = None,
    evaluate: Callable[[], Mapping[str, Any]] | None = None,
    eval_every: int = 0,
    snapshots: Collection[int] = (),
    snapshot_modules: Mapping[str, nn.Module] | None = None,
    keys: Sequence[str] = (),
    desc: str = "GAN",
) -> dict[str, Any]:
    """Train a game for ``steps`` iterations: in each, the discriminator ``d`` makes ``d.repeat``
    updates, every ``extra`` player one update (``repeat`` of them), and the generator ``g`` one
    update while the other players' weights are frozen (no gradient is computed for them).
    With ``d = None`` the generator is trained alone.

    A player's step function returns its loss and the numbers to log (see :class:`Player` and
    the module's docstring); the history keeps, per iteration, the numbers of each player's last
    update: ``{"step": [...], key: [...]}`` with the ``keys`` first (in that order, present even
    for ``steps`` = 0), a key not logged at an iteration holding nan there. ``snapshots`` are the
    iteration counts after which the state dicts of ``snapshot_modules`` (default: every
    player's modules) are copied into ``history["snapshots"][count]``. ``seed``, ``rng``,
    ``schedule`` (applied to every player's optimiser, from its initial rates), ``callback``,
    ``evaluate`` and ``eval_every`` are as in :func:`fit`. All the players' modules are in
    training mode while they train and in eval mode after.
    """
    for player in (d, *extra, g):
        if player is not None:
            require_int("repeat", player.repeat)
    players = [*(() if d is None else (d,)), *extra, g]
    return _run(
        players, steps, seed=seed, rng=rng, schedule=schedule, callback=callback, evaluate=evaluate,
        eval_every=eval_every, snapshots=snapshots, snapshot_modules=snapshot_modules, keys=keys,
        eval_mode_after=True, desc=desc,
    )  # fmt: skip
