"""The timing page (``book/timing.md``): seconds per lecture at each budget, the estimated
minutes on a Colab T4, and the reference workload that tells how fast the machine was."""

from __future__ import annotations

from typing import Any

ESTIMATE_LEVELS = ("gpu", "paper")  # the estimated columns of the timing page, in minutes


def render_timing(
    by_budget: dict[str, dict[str, float]],
    machine: str,
    date: str,
    note: str = "",
    reference: dict[str, float] | None = None,
    estimates: dict[str, Any] | None = None,
) -> str:
    """The timing report: seconds per lecture at each budget, and the totals; ``note`` (how the
    numbers were measured) is printed under the table, then the :func:`reference_workload`
    seconds timed at the start of each budget's run, if given. ``estimates`` (the JSON of
    :func:`gencourse.gpu_estimate.estimate_all`) adds the estimated minutes on a Colab T4 at
    `gpu` and, for the lectures with a ``paper=`` knob, at `paper`, with the method stated."""
    budgets = sorted(by_budget)
    est = (estimates or {}).get("lectures", {})
    levels = [lv for lv in ESTIMATE_LEVELS if any(e.get(lv) is not None for e in est.values())]
    lectures = sorted({lec for t in by_budget.values() for lec in t} | set(est))
    lines = [
        "# How long the lectures take",
        "",
        "How long each lecture notebook takes to run from top to bottom, in seconds, at each",
        "budget (the budgets are explained in {doc}`how_to_run`): `ci` is the quick check that",
        "the test suite runs, `cpu` is what this site was built with. Use it to plan your time:",
        "on a laptop, a lecture at `cpu` takes about as long as the column says.",
        "",
        f"- measured on: {machine}",
        f"- date: {date}",
        "",
        "Times move with the machine and with what else it runs (up to 2× from one day to the",
        "next on the same machine); the reference workload at the bottom of the page tells how",
        "fast the machine was that day. The development history (what each change saved) is in",
        "the repository's `CHANGELOG.md`.",
        "",
        "| lecture | "
        + " | ".join([f"`{b}` (s)" for b in budgets] + [f"`{lv}` on a T4, estimated (min)" for lv in levels])
        + " |",
        "| --- | " + " | ".join("---" for _ in [*budgets, *levels]) + " |",
    ]
    for lec in lectures:
        cells = [f"{by_budget[b][lec]:.0f}" if lec in by_budget[b] else "–" for b in budgets]
        cells += [_minutes(est.get(lec, {}).get(lv)) for lv in levels]
        lines.append(f"| {lec} | " + " | ".join(cells) + " |")
    totals = [f"{sum(by_budget[b].values()):.0f}" for b in budgets]
    totals += [_minutes(sum(e[lv] for e in est.values() if e.get(lv) is not None)) for lv in levels]
    lines.append("| **total** | " + " | ".join(totals) + " |")
    halves = [f"{sum(by_budget[b].values()) / 120:.0f}" for b in budgets] + ["–" for _ in levels]
    lines.append("| two at a time on 2 cores (min, estimated) | " + " | ".join(halves) + " |")
    if levels:
        lines += ["", _estimate_method(estimates)]
    if note:
        lines += ["", note]
    if reference:
        timed = ", ".join(f"{v:.1f} s before the `{b}` run" for b, v in sorted(reference.items()))
        lines += [
            "",
            "Machine speed: the reference workload (100 training steps of the course's DCGAN on one",
            f"thread, `gencourse.report.benchmark.reference_workload`) took {timed}. Time it on your",
            "machine (`python -m gencourse.report --budget cpu --reference`) and scale the",
            "table by the ratio to estimate your own times.",
        ]
    return "\n".join(lines) + "\n"


def _minutes(seconds: float | None) -> str:
    """Seconds as whole minutes for the estimated columns (at least "< 1"); "–" for None."""
    if seconds is None:
        return "–"
    return "< 1" if seconds < 30 else f"{seconds / 60:.0f}"


def _estimate_method(estimates: dict[str, Any]) -> str:
    """How the estimated columns were made, with the model's constants (from the estimates file)."""
    d = estimates["device"]
    return "\n".join(
        [
            "The `gpu` and `paper` columns are **estimates**, not measurements (`make gpu-estimate`; "
            "`make gpu-check` measures the `gpu` column where a GPU is at hand). They are meant to "
            "err on the long side. How they are made:",
            "",
            "- **Counted on the CPU.** Each lecture ran at `ci` with every operation counted "
            "(`gencourse.gpu_estimate`): in its training loops, per step (the first step, which "
            "allocates the optimiser's state, left out), and outside them, cell by cell: the "
            "floating-point operations by the formulas of PyTorch's `FlopCounterMode`, the bytes "
            "read and written, the kernels a GPU would launch and the waits for the device "
            "(`.item()`, `float(t)`).",
            f"- **Priced on a model of the {d['name']}.** Each kernel takes max(t_launch, F / (P·η) "
            f"+ B / (W·η_mem)), with P = {d['peak_flops'] / 1e12:g} TFLOP/s (the FP32 peak), "
            f"η = {d['flop_efficiency']:g} (what small layers reach), W = {d['bandwidth'] / 1e9:g} GB/s, "
            f"η_mem = {d['bandwidth_efficiency']:g}, t_launch = {d['launch_s'] * 1e6:g} µs (the floor "
            "of one eager PyTorch operation on Colab's host); each wait for the device costs "
            f"{d['sync_s'] * 1e6:g} µs; CPU work outside torch takes {d['cpu_factor']:g}× the time "
            "measured here. Kernels are summed, as if the host and the GPU never overlapped.",
            "- **Scaled from `ci` to `gpu` and `paper`.** A loop's length at the level is read from "
            "the lecture's `budget(...)` calls (the larger where two calls have the same `ci` "
            "value). " + estimates.get("rules", ""),
            "- The `paper` column is shown for the lectures with a `paper=` knob (the opt-in level "
            "`GENCOURSE_BUDGET=paper`); elsewhere `paper` is `gpu`.",
        ]
    )
