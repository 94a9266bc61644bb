"""The scoreboard's figure: ours against the paper's number, one panel per row, with the
band where ours counts as reproduced and the trivial baselines."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from gencourse.report.record import RELATIVE_TOLERANCE, _number, paper_range, verdict

_VERDICT_COLOUR = {
    "reproduced": "tab:green",
    "ordering held": "tab:olive",
    "no paper number": "tab:blue",
    "not reproduced": "tab:orange",
    "below baseline": "tab:red",
}


def figure_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the figure shows: our number a single finite number, the paper's a number or a range."""
    rows = []
    for e in results:
        ours = _number(e["ours"])
        paper_numeric = _number(e.get("paper")) is not None or paper_range(e.get("paper")) is not None
        if ours is not None and math.isfinite(ours) and paper_numeric:
            rows.append(e)
    return rows


def _tolerance(entry: dict[str, Any]) -> tuple[float, float]:
    """The interval in which our number counts as reproducing the paper's (by :data:`VERDICT_RULE`)."""
    span = paper_range(entry.get("paper"))
    if span is not None:
        return span
    paper = _number(entry["paper"])
    spread = _number(entry.get("paper_spread"))
    half = 2 * spread if spread is not None else RELATIVE_TOLERANCE * abs(paper)
    return paper - half, paper + half


def _baseline_points(entry: dict[str, Any]) -> list[tuple[str, float]]:
    """The finite numeric baselines of a row with a single number, as ``(name, value)``."""
    points = []
    for name, value in (entry.get("baseline") or {}).items():
        number = _number(value)
        if number is not None and math.isfinite(number):
            points.append((str(name), number))
    return points


def _panel(ax: Any, entry: dict[str, Any]) -> None:
    """One row of the figure: the paper's number (its ± or range as a bar, the band where ours
    counts as reproduced shaded), ours with ± its spread over seeds, and the trivial baselines."""
    colour = _VERDICT_COLOUR.get(verdict(entry), "black")
    lo, hi = _tolerance(entry)
    ax.axvspan(lo, hi, color="tab:green", alpha=0.12, lw=0)
    span = paper_range(entry["paper"])
    if span is not None:
        ax.plot(span, [0, 0], color="black", lw=4, solid_capstyle="butt")
    else:
        spread = _number(entry.get("paper_spread"))
        ax.errorbar([_number(entry["paper"])], [0], xerr=spread, fmt="s", color="black", capsize=3)
    ax.errorbar(
        [_number(entry["ours"])], [1], xerr=_number(entry.get("spread")), fmt="o", color=colour, capsize=3
    )
    baselines = _baseline_points(entry)
    for i, (_, value) in enumerate(baselines):
        ax.plot([value], [2 + i], "x", color="dimgrey", ms=7, mew=2)
    labels = ["paper", "ours"] + [name if len(name) <= 18 else name[:17] + "…" for name, _ in baselines]
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.tick_params(axis="x", labelsize=8)
    ax.margins(x=0.15)
    ax.set_xlabel(entry.get("unit") or "", fontsize=8, labelpad=1)
    number = re.match(r"^(\d+)_", entry["lecture"])
    where = f"L{int(number.group(1))} · " if number else ""
    ax.set_title(f"{where}{entry['name']}\n{verdict(entry)}", fontsize=8.5, color=colour, loc="left")
    ax.grid(axis="x", alpha=0.3)


def plot_scoreboard(results: list[dict[str, Any]], path: Path, ncols: int = 2) -> int:
    """Draw the scoreboard's figure into ``path`` (one panel per row of :func:`figure_rows`, each on
    its own scale, every lecture starting a new line of panels); returns the number of panels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = figure_rows(results)
    slots: list[dict[str, Any] | None] = []
    lecture = None
    for e in rows:
        if lecture is not None and e["lecture"] != lecture:
            slots += [None] * (-len(slots) % ncols)
        slots.append(e)
        lecture = e["lecture"]
    nrows = max(1, math.ceil(len(slots) / ncols))
    heights = [
        max(2, *(2 + len(_baseline_points(e)) for e in slots[r * ncols : (r + 1) * ncols] if e))
        if any(slots[r * ncols : (r + 1) * ncols])
        else 2
        for r in range(nrows)
    ]
    fig = Figure(figsize=(7.2, sum(0.3 * h + 1.0 for h in heights)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(nrows, ncols, height_ratios=[0.3 * h + 1.0 for h in heights])
    for k, e in enumerate(slots):
        if e is not None:
            _panel(fig.add_subplot(grid[k // ncols, k % ncols]), e)
    if not rows:
        fig.text(0.5, 0.5, "no row has a single number from the paper", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return len(rows)
