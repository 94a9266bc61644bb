"""The one-line set-up and the closing timing of a lecture notebook.

Every lecture begins with ``LECTURE = start("NN_topic")`` (after the Colab install cell) and
ends with ``LECTURE.finish()``. :func:`start` reads the budget level (``GENCOURSE_BUDGET``) and
the course's device, prints them, and starts the clock; :meth:`Lecture.finish` records the
wall time since then for the timing page (:func:`gencourse.report.record_timing`) and
prints it. The notebook's numbers do not depend on either: no random state is touched here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import torch

from gencourse.runtime import budget_level, get_device

_NAME = re.compile(r"^\d{2}_[a-z0-9_]+$")


@dataclass(frozen=True)
class Lecture:
    """A running lecture: its ``name`` (the notebook's file name without suffix, e.g.
    ``"05_compressed_sensing_gm"``), the budget ``level``, the ``device`` its tensors live on,
    and the ``t0`` of :func:`time.perf_counter` at its start."""

    name: str
    level: str
    device: torch.device
    t0: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since :func:`start`: perf_counter() − t0."""
        return time.perf_counter() - self.t0

    def finish(self) -> None:
        """Record and print the lecture's wall time (seconds since :func:`start`). Returns
        nothing, so that a notebook's last cell shows only the printed line."""
        from gencourse.report import record_timing

        seconds = self.elapsed()
        record_timing(self.name, seconds)
        print(f"lecture run time at budget '{self.level}': {seconds:.0f} s")


def start(name: str) -> Lecture:
    """Start lecture ``name``: print the budget level and the device, start the clock.

    ``name`` is the notebook's file name without its suffix (two digits, an underscore, the
    topic in lower case), the key of the lecture's row on the timing page."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"name must look like '05_compressed_sensing_gm' (the notebook's file name), got {name!r}"
        )
    lecture = Lecture(name=name, level=budget_level(), device=get_device())
    print(f"budget level: {lecture.level}, device: {lecture.device}")
    return lecture
