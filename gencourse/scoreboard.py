"""Deprecated home of the reproduction scoreboard, kept so that old imports and the command
``python -m gencourse.scoreboard`` keep working: the code now lives in :mod:`gencourse.report`
(``record``: the record and the verdict rule; ``render``: the page; ``figure``; ``timing``: the
timing page; ``benchmark``: the reference workload; ``cli``: the command line). Every name below
is the same object as in its new home.
"""

import sys

from gencourse.report import *  # noqa: F403 (record, record_timing, verdict, VERDICT_RULE, collect, check, ...)
from gencourse.report import __all__ as _RECORD_NAMES
from gencourse.report.benchmark import reference_workload
from gencourse.report.cli import main, run_lecture
from gencourse.report.figure import figure_rows, plot_scoreboard
from gencourse.report.render import (
    FIGURE_FILE,
    NOWRAP,
    TABLE_CLASS,
    VERDICTS,
    fmt_baseline,
    fmt_ours,
    fmt_paper,
    lecture_title,
    machine_description,
    render,
    write_scoreboard,
)
from gencourse.report.timing import ESTIMATE_LEVELS, render_timing
from gencourse.runtime import budget_level

__all__ = [
    *_RECORD_NAMES,
    "ESTIMATE_LEVELS",
    "FIGURE_FILE",
    "NOWRAP",
    "TABLE_CLASS",
    "VERDICTS",
    "budget_level",
    "figure_rows",
    "fmt_baseline",
    "fmt_ours",
    "fmt_paper",
    "lecture_title",
    "machine_description",
    "main",
    "plot_scoreboard",
    "reference_workload",
    "render",
    "render_timing",
    "run_lecture",
    "write_scoreboard",
]

if __name__ == "__main__":
    sys.exit(main())
