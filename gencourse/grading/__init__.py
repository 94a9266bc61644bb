"""Autograded assignments: student versions made with otter-grader, graded by a sandboxed grader.

Two commands (see ``assignments/README.md``)::

    python -m gencourse.grading generate                      # every assignments/NN_name
    python -m gencourse.grading grade assignments/01_vae SUBMISSIONS --out RESULTS

**Why not otter's own grading.** ``otter run`` executes the student's notebook and then the
tests in the same Python process, so the tests judge objects that the student's code made and
can tamper with: an answer whose ``__eq__`` always returns ``True`` passes ``assert answer == 16``,
and a notebook can patch ``numpy.allclose`` or write its own results. Here the tests never run
where student code ran:

1. the grader (this process) reads each notebook as JSON, draws *probes* (inputs for the
   student's functions, fixed public ones and hidden random ones from a fresh seed), and runs the
   notebook in a separate process inside an operating-system sandbox
   (:mod:`~gencourse.grading.isolation`: new user, mount, PID and network namespaces and a root
   file system without the solutions, the hidden tests, the answer modules and the grader's
   files; :mod:`~gencourse.grading.harness`, :mod:`~gencourse.grading.sandbox`) with time and
   memory limits;
2. that process calls the student's functions on the probes and converts what they return to
   *plain data* (numbers, nested lists, strings) by explicit rules (:mod:`~gencourse.grading.plain`);
3. the grader validates that data strictly and compares it with the references it computes
   itself, from the course package, on the same inputs (:mod:`~gencourse.grading.grader`).

A submission can at most claim answers; forging the results file gains nothing, because the
claims must match the references on hidden inputs that were drawn after the submission was
written.
"""

from gencourse.grading.grader import grade
from gencourse.grading.sandbox import Limits
from gencourse.grading.spec import Check, Probe, close, equal, load_assignment

__all__ = ["Check", "Limits", "Probe", "close", "equal", "grade", "load_assignment"]
