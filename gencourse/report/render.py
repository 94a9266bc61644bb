"""The scoreboard page: one short table per lecture, the verdict counts, the figure, the JSON.

:func:`render` turns recorded entries (:mod:`gencourse.report.record`) into the MyST page
``book/scoreboard.md``; :func:`write_scoreboard` writes it with its figure
(:mod:`gencourse.report.figure`) and ``book/scoreboard.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from gencourse.report.figure import figure_rows, plot_scoreboard
from gencourse.report.record import VERDICT_RULE, _clean, _number, _split, collect, paper_range, verdict


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


FIGURE_FILE = "scoreboard.png"  # written next to the page by write_scoreboard
TABLE_CLASS = "scoreboard-table"  # the class of each lecture's table (styled by book/_css/scoreboard.css)
VERDICTS = ("reproduced", "ordering held", "no paper number", "not reproduced", "below baseline")


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
        f"(`gencourse.report.record`) {produced}; `make scoreboard` refreshes this page.",
        f"Budget `{budget}`; {date}; {machine}.",
        "",
        "Where our protocol departs from the paper's (to fit a CPU), the lecture says how and",
        "measures the effect; a difference from the paper's number is reported, not hidden.",
        "",
        "## Verdicts",
        "",
        "Each row's verdict is computed from its numbers (`gencourse.report.verdict`). "
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
