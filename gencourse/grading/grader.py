"""Batch grading: every submission of a folder, judged by the grader's own references.

For each submission :func:`grade` reads the notebook as JSON (never executing anything in this
process), draws the hidden probes from a fresh random generator, runs the notebook and the probes
in a sandboxed process (:func:`gencourse.grading.sandbox.run_notebook`), and judges each plain
result against the reference that it computes here, on the same inputs. A question scores its
points when all its probes pass and zero otherwise, with a message saying why. The batch writes
``scores.csv`` (one row per student, one column per question) and ``feedback/<student>.txt``.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencourse.grading.plain import raised, to_plain
from gencourse.grading.probes import build, evaluate
from gencourse.grading.sandbox import ForkServer, Limits, Outcome, read_regular_file, run_notebook
from gencourse.grading.spec import Assignment, Probe, load_assignment

MAX_NOTEBOOK_BYTES = 50 * 2**20
FEEDBACK_OUTPUT_CHARS = 1_500
GRADING_ENV = {
    "GENCOURSE_BUDGET": "ci",
    "GENCOURSE_OFFLINE": "1",
    "GENCOURSE_QUIET": "1",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


@dataclass
class QuestionResult:
    """The score of one question and the messages that explain it."""

    name: str
    points: float
    score: float | None  # None for questions graded by hand
    messages: list[str] = field(default_factory=list)


@dataclass
class SubmissionResult:
    """The grading of one submission."""

    student: str
    path: Path
    status: str
    questions: list[QuestionResult]
    outcome: Outcome | None = None
    notes: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(q.score or 0.0 for q in self.questions)

    @property
    def possible(self) -> float:
        return sum(q.points for q in self.questions if q.score is not None)

    def score(self, question: str) -> float | None:
        return next(q.score for q in self.questions if q.name == question)


# --------------------------------------------------------------------------------------------
# reading submissions (as data only)


def safe_name(name: str) -> str:
    """A student's name as it may appear in the CSV and in a feedback file's name: letters,
    digits, ``._-`` only, no leading dot or dash (no hidden files, no spreadsheet formulas), at
    most 80 characters."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80].lstrip(".-")
    return safe or "student"


def find_submissions(folder: str | Path) -> list[tuple[str, Path]]:
    """The submissions in ``folder``: each entry named ``*.ipynb`` (the student is its stem) and
    each real sub-folder holding exactly one entry named ``*.ipynb`` (the student is the
    folder's name), with names made safe (:func:`safe_name`) and unique. Nothing is followed or
    opened here: an entry that is not a regular file (a symbolic link, a FIFO, a device) is
    listed and then refused by :func:`read_submission`, so that its student sees why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions")
    found: list[tuple[str, Path]] = []
    for entry in sorted(folder.iterdir()):
        mode = entry.lstat().st_mode
        if entry.name.endswith(".ipynb") and not stat.S_ISDIR(mode):
            found.append((entry.name[: -len(".ipynb")], entry))
        elif stat.S_ISDIR(mode) and not entry.name.startswith("."):
            notebooks = sorted(p for p in entry.iterdir() if p.name.endswith(".ipynb"))
            if len(notebooks) == 1:
                found.append((entry.name, notebooks[0]))
    ids, unique = set(), []
    for student, path in found:
        safe = safe_name(student)
        while safe in ids:
            safe += "_"
        ids.add(safe)
        unique.append((safe, path))
    return unique


def read_submission(path: Path) -> tuple[bytes | None, str | None]:
    """The bytes of a submission, or ``None`` and why it cannot be read: only a regular file
    (never through a symbolic link, never a FIFO or a device, which could block the batch) of at
    most ``MAX_NOTEBOOK_BYTES``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "the submission is a symbolic link (hand in the notebook itself)"
        return None, f"the file could not be read ({exc.strerror})"
    data, problem = read_regular_file(fd, MAX_NOTEBOOK_BYTES)
    if problem == "not regular":
        return None, "the submission is not a regular file"
    if problem == "too large":
        return None, f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
    return data, None


def _text(source: Any) -> str | None:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    return None


def read_notebook(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The notebook in ``raw`` as a dict, or ``None`` and the reason it is not a notebook."""
    try:
        nb = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"the file could not be read ({exc})"
    except (ValueError, RecursionError):
        return None, "the file is not valid JSON (is it a notebook saved by Jupyter?)"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, "the file is JSON but not a notebook (no list of cells)"
    return nb, None


def code_cells(nb: dict[str, Any]) -> tuple[list[str], str | None]:
    """The sources of the notebook's code cells, or a reason to give up."""
    cells = []
    for cell in nb["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            text = _text(cell.get("source", ""))
            if text is None:
                return [], "a code cell's source is neither a string nor a list of strings"
            cells.append(text)
    if not any(c.strip() for c in cells):
        return [], "the notebook has no code"
    return cells, None


def written_answers(nb: dict[str, Any], manual: list[str]) -> dict[str, str]:
    """The text between otter's ``<!-- BEGIN QUESTION -->`` and ``<!-- END QUESTION -->``
    markers, in order, for the manually graded questions (without the prompt cell)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for cell in nb["cells"]:
        text = _text(cell.get("source", "")) if isinstance(cell, dict) else None
        if text is None:
            continue
        if "<!-- BEGIN QUESTION -->" in text:
            current = []
            continue
        if "<!-- END QUESTION -->" in text and current is not None:
            blocks.append(current)
            current = None
            continue
        if current is not None:
            current.append(text.strip())
    return {name: "\n\n".join(b)[:5_000] for name, b in zip(manual, blocks, strict=False)}


def read_public_tests(student_notebook: Path) -> dict[str, list[str]]:
    """The public test cases of each question (doctest text, as otter stores them) from the
    student notebook's otter metadata."""
    nb = json.loads(student_notebook.read_text(encoding="utf-8"))
    tests = nb.get("metadata", {}).get("otter", {}).get("tests", {})
    return {
        name: [
            case["code"]
            for suite in test.get("suites", [])
            for case in suite.get("cases", [])
            if not case.get("hidden")
        ]
        for name, test in tests.items()
    }


# --------------------------------------------------------------------------------------------
# judging


def _expected(check, probe: Probe) -> dict[str, Any]:
    if not probe.call:
        try:
            return to_plain(check.reference(probe.target))
        except Exception as exc:
            return raised(exc)
    return evaluate(check.reference, probe.to_json("", ""))


def _label(probe: Probe, index: int, count: int) -> str:
    kind = "hidden check" if probe.hidden else "check"
    what = f" ({probe.label})" if probe.label and not probe.hidden else ""
    return f"{kind} {index + 1} of {count}{what} on `{probe.target}`"


def _problem(check, probe: Probe, got: dict[str, Any] | None) -> str | None:
    """Why the plain result ``got`` of ``probe`` is wrong, or ``None`` if it is right."""
    if got is None:
        return "not evaluated (the run ended before it)"
    if got["kind"] == "error":
        return got["message"]
    expected = _expected(check, probe)
    inputs = tuple(build(spec) for spec in probe.args)
    try:
        return check.compare(expected, got, inputs)
    except Exception as exc:  # a comparison that cannot handle this value: a wrong answer
        return f"the result could not be compared ({type(exc).__name__}: {exc})"


def judge_question(check, probes: list[tuple[str, Probe]], results: dict[str, Any] | None) -> list[str]:
    """Messages for the probes of one question that failed (empty: all passed); failures with
    the same message (a missing function, say) are reported once."""
    failures: dict[str, list[int]] = {}
    for index, (probe_id, probe) in enumerate(probes):
        got = None if results is None else results["probes"].get(probe_id)
        problem = _problem(check, probe, got)
        if problem:
            failures.setdefault(problem, []).append(index)
    messages = []
    for problem, indices in failures.items():
        if len(indices) == 1:
            label = _label(probes[indices[0]][1], indices[0], len(probes))
        else:
            label = f"{len(indices)} of {len(probes)} checks on `{probes[indices[0]][1].target}`"
        messages.append(f"{label}: {problem}")
    return messages


def _zero(assignment: Assignment, message: str) -> list[QuestionResult]:
    return [
        QuestionResult(q.name, q.points, None if q.manual else 0.0, [] if q.manual else [message])
        for q in assignment.questions
    ]


def grade_submission(
    assignment: Assignment,
    student: str,
    path: Path,
    seed: np.random.SeedSequence,
    limits: Limits,
    env: dict[str, str],
    public_tests: dict[str, list[str]],
    deny: tuple[Path, ...],
    server: ForkServer,
    isolated: bool = True,
) -> SubmissionResult:
    """Grade one submission (see the module's docstring)."""
    raw, problem = read_submission(path)
    nb = None
    if raw is not None:
        nb, problem = read_notebook(raw)
    cells: list[str] = []
    if nb is not None:
        cells, problem = code_cells(nb)
    manual = [q.name for q in assignment.questions if q.manual]
    if problem:
        result = SubmissionResult(student, path, "not gradable", _zero(assignment, problem))
        result.notes.append(problem)
        return result
    rng = np.random.default_rng(seed)
    probes: dict[str, list[tuple[str, Probe]]] = {}
    for q in assignment.autograded:
        drawn = list(assignment.checks[q.name].probes(rng))
        probes[q.name] = [(f"{q.name}:{i}", p) for i, p in enumerate(drawn)]
    plan = [p.to_json(pid, q) for q, items in probes.items() for pid, p in items]
    try:
        outcome = run_notebook(
            cells,
            plan,
            public_tests,
            server=server,
            limits=limits,
            env=env,
            forbidden_modules=assignment.forbidden_modules,
            preload=assignment.preload,
            deny=deny,
            questions={q.name for q in assignment.questions},
            files={f"{assignment.name}.ipynb": raw},
            isolated=isolated,
        )
    except RuntimeError as exc:  # the grader's own failure: say so, do not blame the student
        result = SubmissionResult(student, path, "grader error", _zero(assignment, f"grader error: {exc}"))
        result.notes.append(f"grader error ({exc}): grade this submission again")
        return result
    results = outcome.results
    questions = []
    for q in assignment.questions:
        if q.manual:
            questions.append(QuestionResult(q.name, q.points, None))
            continue
        messages = judge_question(assignment.checks[q.name], probes[q.name], results)
        questions.append(QuestionResult(q.name, q.points, 0.0 if messages else q.points, messages))
    status = "ok"
    if outcome.timed_out:
        status = "time limit"
    elif results is None:
        status = "no results"
    elif not results["done"]:
        status = "incomplete"
    result = SubmissionResult(student, path, status, questions, outcome, list(outcome.problems))
    if outcome.timed_out:
        result.notes.append(f"the run was stopped after the time limit of {limits.timeout:g} s")
    elif results is not None and not results["done"]:
        result.notes.append("the run ended before the grading finished (os._exit, a crash, or a signal)")
    result.answers = written_answers(nb, manual)
    return result


# --------------------------------------------------------------------------------------------
# reports


def _points(x: float) -> str:
    return f"{x:g}"


def feedback_text(assignment: Assignment, result: SubmissionResult) -> str:
    """The feedback for one student: scores, reasons, errors, public tests, written answers."""
    lines = [
        f"Assignment {assignment.name}: feedback for {result.student}",
        f"Autograded score: {_points(result.total)} / {_points(result.possible)}",
    ]
    manual = [q for q in result.questions if q.score is None]
    if manual:
        lines.append("Graded by hand: " + ", ".join(f"{q.name} ({_points(q.points)} pt)" for q in manual))
    lines += [f"Note: {note}" for note in result.notes]
    lines.append("")
    for q in result.questions:
        if q.score is None:
            continue
        lines.append(f"{q.name}: {_points(q.score)} / {_points(q.points)}")
        lines += [f"  - {m}" for m in q.messages[:5]]
        if len(q.messages) > 5:
            lines.append(f"  - ... and {len(q.messages) - 5} more")
    outcome = result.outcome
    if outcome is not None and outcome.results is not None:
        failed = [c for c in outcome.results["cells"] if c["error"]]
        if failed:
            lines += ["", f"Cells that raised an error ({len(failed)} of {len(outcome.results['cells'])}):"]
            lines += [f"  - cell {c['cell'] + 1}: {c['error'][:500]}" for c in failed[:20]]
        public = outcome.results["public"]
        if public:
            lines += ["", "Public tests (what grader.check runs; for information, not the score):"]
            for name, r in public.items():
                total = r["passed"] + len(r["failed"])
                lines.append(
                    f"  - {name}: {r['passed']} of {total} passed"
                    + "".join(f"; {f}" for f in r["failed"][:2])
                )
    if outcome is not None:
        for name, text in (("output", outcome.stdout), ("error output", outcome.stderr)):
            text = text.strip()
            if text:
                excerpt = text if len(text) <= FEEDBACK_OUTPUT_CHARS else "…" + text[-FEEDBACK_OUTPUT_CHARS:]
                lines += ["", f"Your notebook's {name} (the end of it):", excerpt]
    if result.answers:
        lines += ["", "Written answers (graded by hand):"]
        for name, text in result.answers.items():
            lines += [f"--- {name} ---", text or "(empty)"]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    """Write ``path`` afresh: whatever is there (a planted symbolic link, a FIFO) is removed,
    and the new file is created without following links."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def prepare_output(out: Path) -> Path:
    """Create ``out`` and ``out/feedback`` before the batch; a ``feedback`` that is not a real
    folder (a file or a link planted there) is moved aside. Returns the feedback folder."""
    out.mkdir(parents=True, exist_ok=True)
    feedback = out / "feedback"
    try:
        if not stat.S_ISDIR(feedback.lstat().st_mode):
            feedback.rename(out / f"feedback.not-a-folder-{int(time.time())}")
    except FileNotFoundError:
        pass
    feedback.mkdir(exist_ok=True)
    return feedback


def write_reports(assignment: Assignment, results: list[SubmissionResult], out: Path) -> None:
    """``scores.csv`` and ``feedback/<student>.txt`` in ``out``."""
    feedback = prepare_output(out)
    names = [q.name for q in assignment.questions]
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["student", *names, "total", "possible", "status"])
    for r in results:
        scores = ["" if r.score(n) is None else _points(r.score(n)) for n in names]
        writer.writerow([r.student, *scores, _points(r.total), _points(r.possible), r.status])
    _write_text(out / "scores.csv", table.getvalue())
    for r in results:
        _write_text(feedback / f"{safe_name(r.student)}.txt", feedback_text(assignment, r))


class SandboxUnavailable(RuntimeError):
    """The operating system's sandbox cannot run here, and grading without it was not asked for."""


class TamperingError(RuntimeError):
    """Files that grading must not change (the assignment folder, the course package) changed
    during the batch. ``results`` holds the batch's results (reported, but not to be trusted)."""

    def __init__(self, message: str, results: list[SubmissionResult]) -> None:
        super().__init__(message)
        self.results = results


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``folder`` (links and other entries by their kind and
    target), keyed by relative path; ``__pycache__`` folders are skipped."""
    hashes: dict[str, str] = {}
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in (*names, *[d for d in subdirs if os.path.islink(os.path.join(directory, d))]):
            path = os.path.join(directory, name)
            key = os.path.relpath(path, folder)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as f:
                    hashes[key] = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                hashes[key] = "link to " + os.readlink(path)
            else:
                hashes[key] = f"mode {info.st_mode:o}"
    return hashes


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths added, removed or changed between two :func:`tree_hashes`."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def batch_summary(results: list[SubmissionResult]) -> str:
    """One line on the isolation's cost: the set-up of each submission's sandbox (measured in
    the process) and the rest of the per-submission overhead (the process's life from its fork
    to its exit as the fork server saw it, minus the time from its start to the end of its work
    as it measured it: the fork, the exit and the teardown of its namespaces)."""
    setup, rest = [], []
    for r in results:
        seconds = (r.outcome.results or {}).get("seconds", {}) if r.outcome else {}
        if "isolation" in seconds and "public" in seconds and r.outcome.process_seconds is not None:
            setup.append(seconds["isolation"])
            rest.append(max(0.0, r.outcome.process_seconds - seconds["public"]))
    if not setup:
        return "isolation overhead: no complete run to measure"
    total = [a + b for a, b in zip(setup, rest, strict=True)]
    return (
        f"isolation overhead per submission over {len(setup)} complete runs: sandbox set-up "
        f"mean {np.mean(setup):.3f} s (max {np.max(setup):.3f} s); fork, exit and teardown "
        f"mean {np.mean(rest):.3f} s (max {np.max(rest):.3f} s); total mean {np.mean(total):.3f} s (max {np.max(total):.3f} s)"
    )


def grade(
    assignment_dir: str | Path,
    submissions_dir: str | Path,
    out_dir: str | Path,
    *,
    workers: int = 2,
    limits: Limits | None = None,
    seed: int | None = None,
    budget: str = "ci",
    server: ForkServer | None = None,
    unsafe_no_sandbox: bool = False,
) -> list[SubmissionResult]:
    """Grade every submission in ``submissions_dir`` against the assignment in
    ``assignment_dir``, ``workers`` at a time, and write the reports to ``out_dir``.

    ``seed`` fixes the hidden probes (for reproducing a grading run); by default they are drawn
    from fresh entropy, so that they differ at every run. ``budget`` is the
    ``GENCOURSE_BUDGET`` level at which notebooks run.

    Each submission runs in the operating system's sandbox (:mod:`gencourse.grading.isolation`);
    if it cannot run here, :class:`SandboxUnavailable` is raised before anything is graded,
    unless ``unsafe_no_sandbox`` (only for trusted work: then only the audit hook guards the
    machine). The hidden tests and references are loaded before any submission runs; the
    assignment folder and the course package are hashed before the batch and checked after it,
    and a change raises :class:`TamperingError` (after the reports are written).
    """
    if not unsafe_no_sandbox:
        from gencourse.grading.isolation import unavailable

        reason = unavailable()
        if reason:
            raise SandboxUnavailable(
                f"{reason}. The grader refuses to run untrusted submissions without its sandbox; "
                "pass --unsafe-no-sandbox (unsafe_no_sandbox=True) to grade trusted work without it."
            )
    assignment = load_assignment(assignment_dir)
    import gencourse

    guarded = {"assignment": assignment.folder, "package": Path(gencourse.__file__).resolve().parent}
    before = {name: tree_hashes(folder) for name, folder in guarded.items()}
    limits = limits or Limits()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    submissions = find_submissions(submissions_dir)
    public_tests = (
        read_public_tests(assignment.student_notebook) if assignment.student_notebook.exists() else {}
    )
    out = Path(out_dir)
    prepare_output(out)
    deny = (assignment.folder.parent, Path(submissions_dir).resolve(), out.resolve())
    env = {**GRADING_ENV, "GENCOURSE_BUDGET": budget}
    seeds = np.random.SeedSequence(seed).spawn(len(submissions))

    def run_all(server: ForkServer) -> list[SubmissionResult]:
        def one(item: tuple[int, tuple[str, Path]]) -> SubmissionResult:
            i, (student, path) = item
            return grade_submission(
                assignment,
                student,
                path,
                seeds[i],
                limits,
                env,
                public_tests,
                deny,
                server,
                isolated=not unsafe_no_sandbox,
            )

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, enumerate(submissions)))

    if server is None:
        with ForkServer() as own:
            results = run_all(own)
    else:
        results = run_all(server)
    write_reports(assignment, results, out)
    changed = {name: changed_files(before[name], tree_hashes(folder)) for name, folder in guarded.items()}
    if any(changed.values()):
        lines = [f"{guarded[name] / path}" for name, paths in changed.items() for path in paths]
        message = "TAMPERING: files changed during grading:\n" + "\n".join(lines[:50])
        _write_text(out / "TAMPERING.txt", message + "\n")
        raise TamperingError(message, results)
    return results
