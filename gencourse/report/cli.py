"""The scoreboard's command line (``python -m gencourse.report``, or the old name
``python -m gencourse.scoreboard``): execute the lectures at a budget, write the pages.

``--budget cpu`` writes ``book/scoreboard.md`` (a page of the book, one short table per lecture),
its figure ``book/scoreboard.png`` (ours against the paper's number, with the trivial baselines)
and ``book/scoreboard.json``: for each result the paper's number, ours, the trivial baselines, the
verdict, the budget, the seeds and the wall time, with the date and machine they came from;
``--run`` executes the lectures first; ``--check`` fails when a result has no trivial baseline,
no direction or a verdict other than the rule's (:func:`~gencourse.report.record.check`);
``--timing DIR ...`` writes the timing report; ``--reference`` times the reference workload.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from gencourse.report import benchmark
from gencourse.report.record import REFERENCE_FILE, RESULTS_ENV, check, collect
from gencourse.report.render import machine_description, write_scoreboard
from gencourse.report.timing import render_timing


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


def main(argv: list[str] | None = None) -> int:
    """Command line: (optionally) execute the lectures at a budget, then write the pages."""
    parser = argparse.ArgumentParser(prog="python -m gencourse.report", description=__doc__.split("\n\n")[0])
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
        seconds = benchmark.reference_workload()
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
