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
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencourse.grading.plain import raised, to_plain
from gencourse.grading.probes import build, evaluate
from gencourse.grading.sandbox import ForkServer, Limits, Outcome, run_notebook
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


def find_submissions(folder: str | Path) -> list[tuple[str, Path]]:
    """The submissions in ``folder``: each ``*.ipynb`` file (the student is its stem) and each
    sub-folder holding exactly one ``*.ipynb`` (the student is the folder's name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions")
    found: list[tuple[str, Path]] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append((entry.stem, entry))
        elif entry.is_dir() and not entry.name.startswith("."):
            notebooks = sorted(entry.glob("*.ipynb"))
            if len(notebooks) == 1:
                found.append((entry.name, notebooks[0]))
    ids, unique = set(), []
    for student, path in found:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", student) or "student"
        while safe in ids:
            safe += "_"
        ids.add(safe)
        unique.append((safe, path))
    return unique


def _text(source: Any) -> str | None:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    return None


def read_notebook(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The notebook at ``path`` as a dict, or ``None`` and the reason it is not a notebook."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None, f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
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
) -> SubmissionResult:
    """Grade one submission (see the module's docstring)."""
    nb, problem = read_notebook(path)
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
            files={f"{assignment.name}.ipynb": path.read_bytes()},
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


def write_reports(assignment: Assignment, results: list[SubmissionResult], out: Path) -> None:
    """``scores.csv`` and ``feedback/<student>.txt`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    names = [q.name for q in assignment.questions]
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *names, "total", "possible", "status"])
        for r in results:
            scores = ["" if r.score(n) is None else _points(r.score(n)) for n in names]
            writer.writerow([r.student, *scores, _points(r.total), _points(r.possible), r.status])
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for r in results:
        (feedback / f"{r.student}.txt").write_text(feedback_text(assignment, r), encoding="utf-8")


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
) -> list[SubmissionResult]:
    """Grade every submission in ``submissions_dir`` against the assignment in
    ``assignment_dir``, ``workers`` at a time, and write the reports to ``out_dir``.

    ``seed`` fixes the hidden probes (for reproducing a grading run); by default they are drawn
    from fresh entropy, so that they differ at every run. ``budget`` is the
    ``GENCOURSE_BUDGET`` level at which notebooks run.
    """
    assignment = load_assignment(assignment_dir)
    limits = limits or Limits()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    submissions = find_submissions(submissions_dir)
    public_tests = (
        read_public_tests(assignment.student_notebook) if assignment.student_notebook.exists() else {}
    )
    out = Path(out_dir)
    deny = (assignment.folder.parent, Path(submissions_dir).resolve(), out.resolve())
    env = {**GRADING_ENV, "GENCOURSE_BUDGET": budget}
    seeds = np.random.SeedSequence(seed).spawn(len(submissions))

    def run_all(server: ForkServer) -> list[SubmissionResult]:
        def one(item: tuple[int, tuple[str, Path]]) -> SubmissionResult:
            i, (student, path) = item
            return grade_submission(
                assignment, student, path, seeds[i], limits, env, public_tests, deny, server
            )

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, enumerate(submissions)))

    if server is None:
        with ForkServer() as own:
            results = run_all(own)
    else:
        results = run_all(server)
    write_reports(assignment, results, out)
    return results
