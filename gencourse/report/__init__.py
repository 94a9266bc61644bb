"""The reproduction scoreboard: the course's headline numbers next to the papers'.

A lecture records each headline result where it computes it (:func:`record`); the book build
turns the records into pages. One module per job:

* :mod:`~gencourse.report.record` -- ``record``, ``record_timing``, the verdict rule
  (``VERDICT_RULE``, ``verdict``), ``collect`` and ``check``; what notebooks import;
* :mod:`~gencourse.report.render` -- the scoreboard page (``book/scoreboard.md`` and ``.json``);
* :mod:`~gencourse.report.figure` -- its figure (ours against the paper's number);
* :mod:`~gencourse.report.timing` -- the timing page (``book/timing.md``);
* :mod:`~gencourse.report.benchmark` -- the reference workload (it trains; imported on demand);
* :mod:`~gencourse.report.cli` -- the command line, ``python -m gencourse.report`` (the old
  ``python -m gencourse.scoreboard`` runs the same).

Importing this package imports neither the models nor matplotlib.
"""

from gencourse.report.record import (
    REFERENCE_FILE,
    RELATIVE_TOLERANCE,
    RESULTS_ENV,
    VERDICT_RULE,
    beats_baselines,
    check,
    collect,
    paper_range,
    record,
    record_timing,
    verdict,
)

__all__ = [
    "REFERENCE_FILE",
    "RELATIVE_TOLERANCE",
    "RESULTS_ENV",
    "VERDICT_RULE",
    "beats_baselines",
    "check",
    "collect",
    "paper_range",
    "record",
    "record_timing",
    "verdict",
]
