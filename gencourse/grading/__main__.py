"""Command line: ``python -m gencourse.grading generate|grade ...`` (see ``assignments/README.md``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gencourse.grading.sandbox import Limits


def _generate(args: argparse.Namespace) -> int:
    from gencourse.grading.assign import generate
    from gencourse.grading.spec import find_assignments

    folders = [Path(f) for f in args.folders] or find_assignments(args.root)
    if not folders:
        print(f"no assignment found under {args.root}", file=sys.stderr)
        return 1
    for folder in folders:
        out = generate(folder, args.autograder_dir, run_tests=args.run_tests)
        print(f"{folder}: wrote {out}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from gencourse.grading.grader import SandboxUnavailable, TamperingError, batch_summary, grade

    limits = Limits(
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        probe_timeout=args.probe_timeout,
        memory=int(args.memory_gb * 2**30),
    )
    if args.unsafe_no_sandbox:
        print(
            "WARNING: --unsafe-no-sandbox: submissions run WITHOUT the operating system's sandbox; "
            "only an audit hook (not a security boundary) guards this machine. Grade trusted work only.",
            file=sys.stderr,
        )
    tampered = None
    try:
        results = grade(
            args.assignment,
            args.submissions,
            args.out,
            workers=args.workers,
            limits=limits,
            seed=args.seed,
            budget=args.budget,
            unsafe_no_sandbox=args.unsafe_no_sandbox,
        )
    except SandboxUnavailable as exc:
        print(f"refusing to grade: {exc}", file=sys.stderr)
        return 2
    except TamperingError as exc:
        tampered, results = exc, exc.results
    width = max([len(r.student) for r in results] + [7])
    for r in results:
        print(f"{r.student:<{width}}  {r.total:g} / {r.possible:g}  {r.status}")
    print(
        f"{len(results)} submissions graded: {Path(args.out) / 'scores.csv'} and {Path(args.out) / 'feedback'}/"
    )
    print(batch_summary(results))
    if tampered is not None:
        print(f"{tampered}\n(the scores above are not to be trusted)", file=sys.stderr)
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GENCOURSE_QUIET", "1")  # no progress bars from the references
    parser = argparse.ArgumentParser(prog="python -m gencourse.grading", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser(
        "generate", help="make the student notebooks (and otter's autograder) with otter assign"
    )
    gen.add_argument("folders", nargs="*", help="assignment folders (default: every one under --root)")
    gen.add_argument(
        "--root", default="assignments", help="where to look for assignments (default: assignments)"
    )
    gen.add_argument(
        "--autograder-dir",
        default="_build/assignments",
        help="where otter's autograder goes (default: _build/assignments)",
    )
    gen.add_argument(
        "--run-tests", action="store_true", help="let otter run the public tests on the solutions (slow)"
    )
    gen.set_defaults(func=_generate)

    grd = commands.add_parser("grade", help="grade a folder of submissions")
    grd.add_argument("assignment", help="the assignment folder, e.g. assignments/01_vae")
    grd.add_argument(
        "submissions", help="a folder of NAME.ipynb files (or NAME/ folders with one notebook each)"
    )
    grd.add_argument("--out", required=True, help="where scores.csv and feedback/ are written")
    grd.add_argument("--workers", type=int, default=2, help="submissions graded at once (default: 2)")
    grd.add_argument("--timeout", type=float, default=180.0, help="seconds per submission (default: 180)")
    grd.add_argument(
        "--cell-timeout", type=float, default=60.0, help="seconds per notebook cell (default: 60)"
    )
    grd.add_argument(
        "--probe-timeout", type=float, default=20.0, help="seconds per function call (default: 20)"
    )
    grd.add_argument("--memory-gb", type=float, default=4.0, help="memory per submission in GB (default: 4)")
    grd.add_argument(
        "--seed", type=int, default=None, help="fix the hidden inputs (default: fresh at every run)"
    )
    grd.add_argument(
        "--budget", default="ci", choices=["ci", "cpu", "gpu"], help="GENCOURSE_BUDGET for notebooks"
    )
    grd.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="grade without the operating system's sandbox (trusted work only: see assignments/README.md)",
    )
    grd.set_defaults(func=_grade)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
