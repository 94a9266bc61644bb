"""The reproduction scoreboard: the course's headline numbers next to the papers'.

A lecture records each headline result where it computes it::

    from gencourse.scoreboard import record
    record("vae/test_nll", ours=float(nll), paper=None, unit="nats", lecture="01_vae",
           description="VAE test negative log-likelihood (importance sampling, K = 1000)")

``record`` writes one JSON file per result into the folder named by ``GENCOURSE_RESULTS``
and does nothing else when that variable is unset (so notebooks run unchanged everywhere);
each lecture's last cell calls ``record_timing``. The book build and the test run set the
variable (``_build/results-cpu``, ``_build/results-ci``), so the numbers come from the very
runs that build the book. ``python -m gencourse.scoreboard --budget cpu`` then writes
``book/scoreboard.md`` (a page of the book, one short table per lecture), its figure
``book/scoreboard.png`` (ours against the paper's number, with the trivial baselines) and
``book/scoreboard.json``: for each result the paper's number, ours, the trivial baselines, the
verdict, the budget, the seeds and the wall time, with the date and machine they came from;
``--run`` executes the lectures first; ``--check`` fails when a result has no trivial baseline,
no direction or a verdict other than the rule's (:func:`check`); ``--timing DIR ...`` writes the
timing report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from gencourse.runtime import budget_level

RESULTS_ENV = "GENCOURSE_RESULTS"
REFERENCE_FILE = "reference_workload.json"  # the machine-speed timing in a results folder
_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_.-]+)+$")


def _clean(value: Any) -> Any:
    """JSON-safe copy: floats rounded to 6 significant digits, non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    return value


def record(
    name: str,
    ours: Any,
    *,
    lecture: str,
    description: str,
    paper: Any = None,
    unit: str = "",
    seeds: list[int] | None = None,
    wall_time_s: float | None = None,
    note: str = "",
    baseline: dict[str, Any] | None = None,
    higher_is_better: bool | None = None,
    spread: float | None = None,
    paper_spread: float | None = None,
    ordering: bool | None = None,
    ordering_claim: str = "",
    invalid_reason: str = "",
) -> dict[str, Any]:
    """Record one headline result ``name`` (``"topic/what"``, lower case) with our value and
    the paper's (``None`` where the paper has no such number). Writes
    ``$GENCOURSE_RESULTS/<name>.json`` if that variable is set; returns the entry either way.

    The evidence that makes a row mean something, each computed by the notebook (never typed):

    - ``baseline``: trivial baselines on the same metric, ``{"uniform noise": 22.3, ...}``
      (a value per name, of the same shape as ``ours``);
    - ``higher_is_better``: the metric's direction (required with a numeric ``paper`` or
      ``baseline``);
    - ``spread``: our standard deviation over ``seeds``; ``paper_spread``: the paper's ± as
      the paper states it;
    - ``ordering``: where our protocol differs from the paper's, whether the comparison the
      paper makes (``ordering_claim``, in words) held in our numbers;
    - ``invalid_reason``: why the number cannot be read as the paper's (for example "high
      quality 2 % < 70 %"); empty when it can.

    :func:`verdict` turns these into the row's verdict by one stated rule (:data:`VERDICT_RULE`).
    """
    if not _NAME.match(name):
        raise ValueError(f"result name {name!r} must look like 'topic/what' (lower case, digits, _)")
    if isinstance(paper, list | tuple) and paper_range(_clean(paper)) is None:
        raise ValueError(f"{name}: a paper range is [lo, hi] with lo <= hi, not {paper!r}")
    numeric = _number(_clean(paper)) is not None or paper_range(_clean(paper)) is not None or bool(baseline)
    if numeric and higher_is_better is None and not name.startswith("timing/"):
        raise ValueError(
            f"{name}: say whether higher is better (higher_is_better=) for a paper or baseline number"
        )
    if ordering is not None and not ordering_claim:
        raise ValueError(f"{name}: an ordering needs the claim it checks (ordering_claim=)")
    entry = {
        "name": name,
        "lecture": lecture,
        "description": description,
        "ours": _clean(ours),
        "paper": _clean(paper),
        "unit": unit,
        "budget": budget_level(),
        "seeds": list(seeds) if seeds is not None else None,
        "wall_time_s": _clean(wall_time_s),
        "note": note,
        "baseline": _clean(dict(baseline)) if baseline else None,
        "higher_is_better": higher_is_better,
        "spread": _clean(spread),
        "paper_spread": _clean(paper_spread),
        "ordering": ordering,
        "ordering_claim": ordering_claim,
        "invalid_reason": invalid_reason,
    }
    entry["verdict"] = verdict(entry)
    folder = os.environ.get(RESULTS_ENV)
    if folder:
        path = Path(folder) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entry, indent=1, ensure_ascii=False))
    return entry


RELATIVE_TOLERANCE = 0.10  # where a paper states no ±, "reproduced" means within 10 % of its number
VERDICT_RULE = (
    "One rule for every row. *Below baseline*: our number does not beat every trivial "
    "baseline on the same metric (so it shows nothing, whatever the paper says). *Not "
    "reproduced*: the number cannot be read as the paper's (the row says why, for example too "
    "few high-quality samples), or neither test below passes. *Reproduced*: our mean lies "
    "within two of the paper's stated ± of the paper's mean (within 10 % of it where the paper "
    "states no ±; inside the range, ends included, where the paper gives its number as a range "
    "lo–hi). *Ordering held*: our protocol differs from the paper's, and the comparison "
    "the paper makes (stated in the row) holds in our numbers. *No paper number*: the paper "
    "reports no such number; the baseline column then carries the evidence."
)


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a finite or infinite number (or its string form), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    return None


def paper_range(value: Any) -> tuple[float, float] | None:
    """``(lo, hi)`` where the paper's number is a range given as ``[lo, hi]`` (``lo <= hi``), else None."""
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = _number(value[0]), _number(value[1])
        if lo is not None and hi is not None and lo <= hi:
            return lo, hi
    return None


def beats_baselines(entry: dict[str, Any]) -> bool | None:
    """Whether ``ours`` beats every trivial baseline in the metric's direction (strictly);
    compared key by key where ``ours`` is a dict. None where there is no baseline to compare."""
    baseline, up = entry.get("baseline"), entry.get("higher_is_better")
    if not baseline or up is None:
        return None
    ours = entry["ours"]
    verdicts = []
    for value in baseline.values():
        pairs = (
            [(ours.get(k), v) for k, v in value.items() if k in ours]
            if isinstance(ours, dict) and isinstance(value, dict)
            else [(ours, value)]
        )
        for o, b in pairs:
            o, b = _number(o), _number(b)
            if o is None or b is None:
                return None
            verdicts.append(o > b if up else o < b)
    return all(verdicts) if verdicts else None


def verdict(entry: dict[str, Any]) -> str:
    """The row's verdict by :data:`VERDICT_RULE`: ``"below baseline"``, ``"not reproduced"``,
    ``"reproduced"``, ``"ordering held"`` or ``"no paper number"``."""
    if entry["name"].startswith("timing/"):
        return ""
    if beats_baselines(entry) is False:
        return "below baseline"
    if entry.get("invalid_reason"):
        return "not reproduced"
    ours, paper = _number(entry["ours"]), _number(entry.get("paper"))
    span = paper_range(entry.get("paper"))
    if ours is not None and span is not None and span[0] <= ours <= span[1]:
        return "reproduced"
    if ours is not None and paper is not None:
        spread = _number(entry.get("paper_spread"))
        tolerance = 2 * spread if spread is not None else RELATIVE_TOLERANCE * abs(paper)
        if abs(ours - paper) <= tolerance:
            return "reproduced"
    if entry.get("ordering") is True:
        return "ordering held"
    if entry.get("paper") is None and entry.get("ordering") is None:
        return "no paper number"
    return "not reproduced"


def collect(folder: Path) -> list[dict[str, Any]]:
    """All recorded entries under ``folder`` (not the reference workload's timing), sorted by
    lecture then name."""
    paths = [p for p in sorted(Path(folder).rglob("*.json")) if p.name != REFERENCE_FILE]
    entries = [json.loads(p.read_text()) for p in paths]
    return sorted(entries, key=lambda e: (e["lecture"], e["name"]))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def machine_description() -> str:
    """A one-line description of this machine: OS, CPU count, Python, torch and device."""
    import torch

    device = "CUDA " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {device}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def _split(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Separate the results from the ``timing/<lecture>`` entries (lecture wall times)."""
    results = [e for e in entries if not e["name"].startswith("timing/")]
    timings = {e["lecture"]: float(e["ours"]) for e in entries if e["name"].startswith("timing/")}
    return results, timings


def record_timing(lecture: str, seconds: float) -> dict[str, Any]:
    """Record a lecture's total wall time (its last cell calls this)."""
    return record(f"timing/{lecture}", seconds, lecture=lecture, description="lecture wall time", unit="s")


FIGURE_FILE = "scoreboard.png"  # written next to the page by write_scoreboard
TABLE_CLASS = "scoreboard-table"  # the class of each lecture's table (styled by book/_css/scoreboard.css)
VERDICTS = ("reproduced", "ordering held", "no paper number", "not reproduced", "below baseline")
_VERDICT_COLOUR = {
    "reproduced": "tab:green",
    "ordering held": "tab:olive",
    "no paper number": "tab:blue",
    "not reproduced": "tab:orange",
    "below baseline": "tab:red",
}


def _cell(text: str) -> str:
    """``text`` made safe for one cell of a markdown table (``|`` escaped, one line)."""
    return text.replace("|", r"\|").replace("\n", " ")


NOWRAP = 14  # a table line of up to this many characters is kept whole (no-break spaces)


def _line(text: str) -> str:
    """One line of a table cell that the browser should not break: short lines are kept whole,
    longer ones keep at least their last word (the value) with the word before it."""
    if len(text) <= NOWRAP:
        return text.replace(" ", "\u00a0")
    head, _, tail = text.rpartition(" ")
    return f"{head}\u00a0{tail}" if head else text


def _fmt_cell(value: Any) -> str:
    """A value for a table cell: a dict as one ``key: value`` per line (``<br>`` between)."""
    if isinstance(value, dict):
        return "<br>".join(
            _line(
                f"{k}: "
                + (", ".join(f"{kk} {_fmt(vv)}" for kk, vv in v.items()) if isinstance(v, dict) else _fmt(v))
            )
            for k, v in value.items()
        )
    return _fmt(value)


def fmt_paper(entry: dict[str, Any]) -> str:
    """The paper's number as the page shows it: ``85–100`` for a range, ``23.8 ± 0.7`` with a ±."""
    paper = entry.get("paper")
    span = paper_range(paper)
    if span is not None:
        return f"{_fmt(span[0])}–{_fmt(span[1])}"
    if _number(paper) is not None and entry.get("paper_spread") is not None:
        return f"{_fmt(paper)}\u00a0±\u00a0{_fmt(entry['paper_spread'])}"
    return _fmt_cell(paper)


def fmt_ours(entry: dict[str, Any]) -> str:
    """Our number, with ``± spread`` (the standard deviation over seeds) where recorded."""
    text = _fmt_cell(entry["ours"])
    return f"{text}\u00a0±\u00a0{_fmt(entry['spread'])}" if entry.get("spread") is not None else text


def fmt_baseline(entry: dict[str, Any]) -> str:
    """The trivial baselines, one per line; a baseline equal for every key of ``ours`` shows once."""
    baseline = entry.get("baseline")
    if not baseline:
        return "**none recorded**"
    parts = []
    for name, value in baseline.items():
        if isinstance(value, dict) and len({json.dumps(v) for v in value.values()}) == 1:
            value = next(iter(value.values()))
        parts.append(_line(f"{name}: {_fmt(value)}"))
    return "<br>".join(parts)


def _row_notes(entry: dict[str, Any]) -> str:
    """The details of a row that do not fit its table: name, unit, seeds, time, note, claims."""
    parts = [f"`{entry['name']}`"]
    if entry.get("unit"):
        parts.append(f"unit: {entry['unit']}")
    seeds = entry.get("seeds")
    if seeds:
        parts.append(f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({_fmt(seeds)})")
    if entry.get("wall_time_s") is not None:
        parts.append(f"wall time {_fmt(entry['wall_time_s'])} s")
    if entry.get("higher_is_better") is not None:
        parts.append("higher is better" if entry["higher_is_better"] else "lower is better")
    if entry.get("ordering") is not None:
        held = "held" if entry["ordering"] else "did not hold"
        parts.append(f"the paper's comparison, {entry.get('ordering_claim', '')!s}: {held} in our numbers")
    if entry.get("invalid_reason"):
        parts.append(f"not readable as the paper's number: {entry['invalid_reason']}")
    if entry.get("note"):
        parts.append(str(entry["note"]))
    return "; ".join(parts)


def lecture_title(lecture: str) -> str:
    """``"06_deep_image_prior"`` → ``"Lecture 6: deep image prior"`` (other names unchanged)."""
    match = re.match(r"^(\d+)_(.+)$", lecture)
    return f"Lecture {int(match.group(1))}: {match.group(2).replace('_', ' ')}" if match else lecture


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


def check(entries: list[dict[str, Any]]) -> list[str]:
    """Problems that make a recorded result (not a timing) unreadable as evidence, one line per
    problem naming the row: no trivial baseline with a number in it, no ``higher_is_better``
    where the rule needs it, or a recorded verdict that differs from :func:`verdict` recomputed."""
    problems = []
    for e in _split(entries)[0]:
        row = f"{e['name']} ({e['lecture']})"
        if not e.get("baseline") or not _has_number(e["baseline"]):
            problems.append(f"{row}: no trivial baseline (record(..., baseline={{name: value}}))")
        numeric = _number(e.get("paper")) is not None or paper_range(e.get("paper")) is not None
        if e.get("higher_is_better") is None and (numeric or e.get("baseline")):
            problems.append(f"{row}: no higher_is_better")
        if e.get("verdict") != verdict(e):
            problems.append(
                f"{row}: recorded verdict {e.get('verdict')!r} differs from the rule's {verdict(e)!r}"
            )
    return problems


def _has_number(value: Any) -> bool:
    """Whether ``value`` (a number, or a dict or list of them, at any depth) holds a number."""
    if isinstance(value, dict):
        return any(_has_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_number(v) for v in value)
    return _number(value) is not None


def _rule_as_list(rule: str) -> str:
    """:data:`VERDICT_RULE` with one bullet per verdict (each starts a sentence with ``*Name*``)."""
    head, *items = re.split(r"(?<=\.) (?=\*)", rule)
    return "\n".join([head, ""] + [f"- {item}" for item in items])


def render(
    entries: list[dict[str, Any]],
    budget: str,
    machine: str,
    date: str,
    figure: str | None = None,
    source: str = "",
) -> str:
    """The scoreboard page in MyST markdown: the verdict rule and the count of rows per verdict,
    the figure (``figure``, a file next to the page, if given), then one short table per lecture
    (result | paper | ours | trivial baselines | verdict) with the remaining details of its rows as
    a numbered list under it, and the time per lecture. ``source`` says how the results were
    produced, where that is not one ``make book``."""
    results, timings = _split(entries)
    verdicts = [verdict(e) for e in results]
    produced = source or f"while the book was built (`make book`, budget `{budget}`)"
    lines = [
        "# Reproduction scoreboard",
        "",
        "The course's headline results next to the papers' numbers and next to trivial baselines",
        "on the same metric. Every number below was recorded by the lecture that computes it",
        f"(`gencourse.scoreboard.record`) {produced}; `make scoreboard` refreshes this page.",
        f"Budget `{budget}`; {date}; {machine}.",
        "",
        "Where our protocol departs from the paper's (to fit a CPU), the lecture says how and",
        "measures the effect; a difference from the paper's number is reported, not hidden.",
        "",
        "## Verdicts",
        "",
        "Each row's verdict is computed from its numbers (`gencourse.scoreboard.verdict`). "
        + _rule_as_list(VERDICT_RULE),
        "",
        "| verdict | rows |",
        "| --- | --- |",
    ]
    lines += [f"| {v} | {verdicts.count(v)} |" for v in VERDICTS if v in verdicts]
    lines += [f"| {v} | {verdicts.count(v)} |" for v in sorted(set(verdicts) - set(VERDICTS))]
    lines.append(f"| **all** | {len(results)} |")
    if figure:
        shown = len(figure_rows(results))
        lines += [
            "",
            f"```{{figure}} {figure}",
            ":name: scoreboard-figure",
            ":width: 100%",
            "",
            f"Ours against the paper's number, for the {shown} of {len(results)} rows whose paper gives a",
            "single number or a range and whose result is a single number (the other rows are left",
            "out: their numbers are in the tables). Each panel has its own scale. Black: the paper's",
            "number with its stated ± (a bar for a range); shaded: where ours counts as reproduced;",
            "circle: ours ± its standard deviation over seeds, coloured by the verdict; grey crosses:",
            "the trivial baselines.",
            "```",
        ]
    by_lecture: dict[str, list[dict[str, Any]]] = {}
    for e in results:
        by_lecture.setdefault(e["lecture"], []).append(e)
    for lecture, rows in by_lecture.items():
        lines += [
            "",
            f"## {lecture_title(lecture)}",
            "",
            f"````{{container}} {TABLE_CLASS}",
            "| # | result | paper | ours | trivial baselines | verdict |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for i, e in enumerate(rows, 1):
            cells = [str(i), e["description"], fmt_paper(e), fmt_ours(e), fmt_baseline(e), verdict(e)]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines += ["````", "", "Notes, by row:", ""]
        lines += [f"{i}. {_row_notes(e)}" for i, e in enumerate(rows, 1)]
    if timings:
        lines += ["", "## Time per lecture", "", "| lecture | wall time (s) |", "| --- | --- |"]
        lines += [f"| {k} | {v:.0f} |" for k, v in sorted(timings.items())]
    return "\n".join(lines) + "\n"


def reference_workload(steps: int = 100) -> float:
    """Seconds for a fixed piece of work on one thread: ``steps`` steps of :func:`gencourse.gan.train_gan`
    on the course's DCGAN (batch 64, non-saturating loss) with seeded random images. Timed at the
    start of a build, it tells how fast the machine was, so that builds on different days can
    be compared."""
    import torch

    from gencourse.gan import data_sampler, train_gan
    from gencourse.nets import DCGANDiscriminator, DCGANGenerator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        g, d = DCGANGenerator(latent_dim=64), DCGANDiscriminator()
        images = torch.rand(512, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        train_gan(g, d, data_sampler(images), 64, steps=steps, seed=0)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


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
            f"thread, `gencourse.scoreboard.reference_workload`) took {timed}. Time it on your",
            "machine (`python -m gencourse.scoreboard --budget cpu --reference`) and scale the",
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


def run_lecture(notebook: Path, budget: str, results: Path, timeout: int) -> float:
    """Execute ``notebook`` in a fresh kernel at ``budget`` with results recorded into
    ``results``; returns the wall time in seconds. Raises if a cell fails."""
    import nbformat
    from nbclient import NotebookClient

    env_backup = dict(os.environ)
    os.environ.update({"GENCOURSE_BUDGET": budget, RESULTS_ENV: str(results.resolve()), "MPLBACKEND": "Agg"})
    try:
        nb = nbformat.read(notebook, as_version=4)
        start = time.perf_counter()
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
        ).execute()
        return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(env_backup)


def write_scoreboard(results_dir: Path, out: Path, budget: str, source: str = "") -> int:
    """Render ``out/scoreboard.md``, its figure ``out/scoreboard.png`` (:func:`plot_scoreboard`) and
    ``out/scoreboard.json`` from the recorded results; returns the number of results."""
    entries = [e for e in collect(results_dir) if e["budget"] == budget]
    if not entries:
        raise RuntimeError(f"no results recorded at budget {budget!r} under {results_dir}")
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = machine_description()
    out.mkdir(parents=True, exist_ok=True)
    results, timings = _split(entries)
    plot_scoreboard(results, out / FIGURE_FILE)
    (out / "scoreboard.md").write_text(
        render(entries, budget, machine, date, figure=FIGURE_FILE, source=source)
    )
    payload = {"budget": budget, "date": date, "machine": machine, "timings_s": timings, "results": results}
    (out / "scoreboard.json").write_text(json.dumps(_clean(payload), indent=1, ensure_ascii=False) + "\n")
    return len(results)


def main(argv: list[str] | None = None) -> int:
    """Command line: (optionally) execute the lectures at a budget, then write the pages."""
    parser = argparse.ArgumentParser(
        prog="python -m gencourse.scoreboard", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--budget", choices=["ci", "cpu", "gpu", "paper"], required=True)
    parser.add_argument(
        "--run", action="store_true", help="execute the lectures first (else use recorded results)"
    )
    parser.add_argument(
        "--lectures", nargs="*", default=None, help="notebooks to run (default: lectures/*.ipynb)"
    )
    parser.add_argument("--out", type=Path, default=Path("book"), help="folder for scoreboard.md and .json")
    parser.add_argument(
        "--results", type=Path, default=None, help="recorded results (default: _build/results-BUDGET)"
    )
    parser.add_argument(
        "--timing", nargs="*", type=Path, default=None, help="results folders to tabulate as timing.md"
    )
    parser.add_argument(
        "--estimates",
        type=Path,
        default=Path("book") / "gpu_estimate.json",
        help="the estimated T4 times for the timing page (python -m gencourse.gpu_estimate estimate)",
    )
    parser.add_argument("--timeout", type=int, default=7200, help="per-cell timeout in seconds")
    parser.add_argument(
        "--note", default="", help="how the timings or results were produced (printed on the page)"
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="time the reference workload into the results folder and stop",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail if a result lacks a trivial baseline or higher_is_better, or its verdict is not the rule's",
    )
    args = parser.parse_args(argv)
    results = args.results or Path("_build") / f"results-{args.budget}"
    if args.reference:
        seconds = reference_workload()
        results.mkdir(parents=True, exist_ok=True)
        (results / REFERENCE_FILE).write_text(json.dumps({"budget": args.budget, "seconds": seconds}) + "\n")
        print(f"reference workload: {seconds:.1f} s")
        return 0
    if args.run:
        notebooks = (
            [Path(p) for p in args.lectures] if args.lectures else sorted(Path("lectures").glob("*.ipynb"))
        )
        for old in results.rglob("*.json") if results.exists() else []:
            old.unlink()
        for nb in notebooks:
            print(f"running {nb} at budget {args.budget} ...", flush=True)
            print(f"  {run_lecture(nb, args.budget, results, args.timeout):.0f} s", flush=True)
    if args.timing is not None:
        by_budget: dict[str, dict[str, float]] = {}
        reference: dict[str, float] = {}
        for folder in args.timing:
            if (folder / REFERENCE_FILE).exists():
                ref = json.loads((folder / REFERENCE_FILE).read_text())
                reference[ref["budget"]] = float(ref["seconds"])
            for e in collect(folder):
                if e["name"].startswith("timing/"):
                    by_budget.setdefault(e["budget"], {})[e["lecture"]] = float(e["ours"])
        date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        estimates = json.loads(args.estimates.read_text()) if args.estimates.exists() else None
        (args.out / "timing.md").write_text(
            render_timing(by_budget, machine_description(), date, args.note, reference, estimates)
        )
        print(f"wrote {args.out / 'timing.md'}")
        return 0
    n = write_scoreboard(results, args.out, args.budget, source=args.note)
    print(f"wrote {args.out / 'scoreboard.md'} with {n} results")
    if args.check:
        problems = check([e for e in collect(results) if e["budget"] == args.budget])
        if problems:
            print(f"scoreboard check failed ({len(problems)} problems):", file=sys.stderr)
            print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
            return 1
        print("scoreboard check passed: every result has a trivial baseline and the rule's verdict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
