"""The scoreboard's record and its verdict rule: one JSON file per headline result.

A lecture records each headline result where it computes it::

    from gencourse.report import record
    record("vae/test_nll", ours=float(nll), paper=None, unit="nats", lecture="01_vae",
           description="VAE test negative log-likelihood (importance sampling, K = 1000)",
           baseline={"mean image": float(nll_mean)}, higher_is_better=False)

``record`` writes ``$GENCOURSE_RESULTS/<name>.json`` and does nothing else when that variable is
unset (so notebooks run unchanged everywhere); each lecture's last cell calls
:func:`record_timing` (through :meth:`gencourse.lecture.Lecture.finish`). :func:`verdict` reads a row by one stated rule (:data:`VERDICT_RULE`);
:func:`check` lists the rows that cannot be read as evidence. Nothing here trains or plots.
"""

from __future__ import annotations

import json
import math
import os
import re
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


def _split(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Separate the results from the ``timing/<lecture>`` entries (lecture wall times)."""
    results = [e for e in entries if not e["name"].startswith("timing/")]
    timings = {e["lecture"]: float(e["ours"]) for e in entries if e["name"].startswith("timing/")}
    return results, timings


def record_timing(lecture: str, seconds: float) -> dict[str, Any]:
    """Record a lecture's total wall time (its last cell calls this through ``LECTURE.finish()``)."""
    return record(f"timing/{lecture}", seconds, lecture=lecture, description="lecture wall time", unit="s")


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
