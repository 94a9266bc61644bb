"""What an assignment is made of: its questions (from the otter source) and its hidden tests.

An assignment is a folder ``assignments/NN_name/`` holding

* ``NN_name.py`` + ``NN_name.ipynb``: the jupytext pair of the otter-assign source notebook, with
  questions (``# BEGIN QUESTION`` raw cells giving ``name``, ``points`` and ``manual``), solutions
  and public tests;
* ``hidden_tests.py``: the grader's checks, never shown to students. It defines ``CHECKS``, a
  dict from each autograded question's name to a :class:`Check`, and optionally
  ``FORBIDDEN_MODULES`` (package modules that hold the answers, which a submission may not import)
  and ``PRELOAD`` (modules to import before the sandbox closes);
* ``student/NN_name.ipynb``: the generated student notebook (see :mod:`gencourse.grading.assign`).

A :class:`Check` draws the question's :class:`Probe`\\ s (fixed public ones and hidden ones drawn
from a fresh random generator at every grading run), names the reference implementation that the
grader calls on the same inputs, and the comparison that judges the student's plain result
against the reference's.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencourse.grading.plain import as_array, describe

Plain = dict[str, Any]
Comparison = Callable[[Plain, Plain, tuple], "str | None"]


@dataclass(frozen=True)
class Probe:
    """One call of the student's ``target`` on the inputs ``args``/``kwargs`` (input specs from
    :mod:`gencourse.grading.probes`), or with ``call=False`` one read of the variable ``target``.
    ``grad`` also checks the gradients; ``label`` is shown in the feedback; ``hidden`` probes are
    described without their inputs."""

    target: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    hidden: bool = False
    call: bool = True
    grad: bool = False

    def to_json(self, probe_id: str, question: str) -> dict[str, Any]:
        """The plain description sent to the submission's process."""
        return {
            "id": probe_id,
            "question": question,
            "target": self.target,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "call": self.call,
            "grad": self.grad,
        }


@dataclass(frozen=True)
class Check:
    """How one question is graded: ``probes(rng)`` yields its probes, ``reference`` is called like
    the student's function (or, for a variable, with the variable's name) to compute the expected
    value, and ``compare(expected, got, inputs)`` returns ``None`` when the student's plain
    result ``got`` is right and a short message otherwise. All probes must pass for the points."""

    probes: Callable[[np.random.Generator], Iterable[Probe]]
    reference: Callable[..., Any]
    compare: Comparison


# --------------------------------------------------------------------------------------------
# comparisons


def _shape_message(expected: np.ndarray, got: Plain, got_arr: np.ndarray | None) -> str | None:
    if got["kind"] == "none":
        return "returned None (not answered yet?)"
    if got["kind"] in ("raised", "error", "unsupported", "none", "str"):
        return (
            f"expected {'a number' if expected.ndim == 0 else f'shape {expected.shape}'}, got {describe(got)}"
        )
    if got_arr is None:
        return f"expected an array of shape {expected.shape}, got {describe(got)}"
    if got_arr.shape != expected.shape:
        return f"expected shape {expected.shape}, got shape {got_arr.shape}"
    if np.isnan(got_arr).any() and not np.isnan(expected).any():
        return "the result contains NaN"
    return None


def close(rtol: float = 1e-6, atol: float = 1e-9, mismatch: float = 0.0) -> Comparison:
    """Numbers or arrays equal to the reference within ``atol + rtol·|expected|`` entrywise
    (infinities must match exactly); ``mismatch`` is the fraction of entries allowed to differ.
    An expected exception must be raised with the same class name."""

    def compare(expected: Plain, got: Plain, inputs: tuple) -> str | None:
        if expected["kind"] == "raised":
            if got["kind"] == "raised" and got["type"] == expected["type"]:
                return None
            return f"expected {expected['type']} to be raised, got {describe(got)}"
        if expected["kind"] == "seq":
            n = len(expected["items"])
            if got["kind"] != "seq" or len(got["items"]) != n:
                return f"expected a sequence of {n} items, got {describe(got)}"
            for i, (e, g) in enumerate(zip(expected["items"], got["items"], strict=True)):
                problem = compare(e, g, inputs)
                if problem:
                    return f"item {i}: {problem}"
            return None
        exp = as_array(expected)
        if exp is None:
            raise ValueError(f"the reference returned {describe(expected)}: not comparable with close()")
        got_arr = as_array(got)
        problem = _shape_message(exp, got, got_arr)
        if problem:
            return problem
        with np.errstate(invalid="ignore"):
            both_inf = np.isinf(exp) & np.isinf(got_arr) & (np.sign(exp) == np.sign(got_arr))
            err = np.where(both_inf, 0.0, np.abs(got_arr - exp))
            bad = ~(err <= atol + rtol * np.abs(np.where(np.isinf(exp), 0.0, exp)))
        if bad.size and bad.mean() > mismatch:
            worst = float(np.nanmax(err[bad]))
            where = f"{int(bad.sum())} of {bad.size} entries differ" if bad.size > 1 else "the value differs"
            return f"{where} from the reference (largest error {worst:.3g}, tolerance {atol:g} + {rtol:g}·|expected|)"
        return None

    return compare


def equal() -> Comparison:
    """Exactly the reference's plain value (strings, booleans, integers)."""

    def compare(expected: Plain, got: Plain, inputs: tuple) -> str | None:
        return None if got == expected else f"expected {describe(expected)}, got {describe(got)}"

    return compare


# --------------------------------------------------------------------------------------------
# assignments


@dataclass(frozen=True)
class Question:
    """A question of the otter source: its name, points, and whether it is graded by hand."""

    name: str
    points: float
    manual: bool


@dataclass(frozen=True)
class Assignment:
    """An assignment folder, its questions and its hidden tests (see the module's docstring)."""

    name: str
    folder: Path
    questions: tuple[Question, ...]
    checks: Mapping[str, Check]
    forbidden_modules: tuple[str, ...]
    preload: tuple[str, ...]

    @property
    def source(self) -> Path:
        """The otter source notebook (the ``.ipynb`` of the jupytext pair)."""
        return self.folder / f"{self.name}.ipynb"

    @property
    def student_notebook(self) -> Path:
        """The generated student notebook."""
        return self.folder / "student" / f"{self.name}.ipynb"

    @property
    def autograded(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if not q.manual)


def _cell_text(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def read_questions(notebook: Path) -> tuple[Question, ...]:
    """The questions declared in an otter source notebook, in order: each raw cell starting with
    ``# BEGIN QUESTION`` followed by YAML with ``name``, ``points`` and optionally ``manual``."""
    import yaml

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    questions = []
    for cell in nb["cells"]:
        text = _cell_text(cell)
        if cell.get("cell_type") != "raw" or not re.match(r"#\s+BEGIN\s+QUESTION", text, flags=re.I):
            continue
        config = yaml.safe_load(text.split("\n", 1)[1]) if "\n" in text else None
        if not isinstance(config, dict) or "name" not in config:
            raise ValueError(f"{notebook}: a BEGIN QUESTION cell without a name: {text[:80]!r}")
        points = config.get("points", 1)
        if isinstance(points, list):
            points = sum(points)
        questions.append(Question(str(config["name"]), float(points), bool(config.get("manual", False))))
    names = [q.name for q in questions]
    if len(set(names)) != len(names):
        raise ValueError(f"{notebook}: duplicate question names in {names}")
    return tuple(questions)


def load_assignment(folder: str | Path) -> Assignment:
    """Load ``folder`` (``assignments/NN_name``): its questions and ``hidden_tests.py``.

    Raises ``ValueError`` if the folder is not an assignment, or if the autograded questions and
    the hidden tests' ``CHECKS`` do not name the same questions.
    """
    folder = Path(folder).resolve()
    name = folder.name
    source = folder / f"{name}.ipynb"
    hidden = folder / "hidden_tests.py"
    if not source.is_file() or not hidden.is_file():
        raise ValueError(f"{folder} is not an assignment: it needs {source.name} and hidden_tests.py")
    questions = read_questions(source)
    spec = importlib.util.spec_from_file_location(f"gencourse_hidden_tests_{name}", hidden)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checks = dict(module.CHECKS)
    auto = {q.name for q in questions if not q.manual}
    if set(checks) != auto:
        raise ValueError(
            f"{hidden}: CHECKS covers {sorted(checks)} but the autograded questions are {sorted(auto)}"
        )
    return Assignment(
        name=name,
        folder=folder,
        questions=questions,
        checks=checks,
        forbidden_modules=tuple(getattr(module, "FORBIDDEN_MODULES", ())),
        preload=tuple(getattr(module, "PRELOAD", ())),
    )


def find_assignments(root: str | Path) -> list[Path]:
    """The assignment folders under ``root`` (``NN_name`` folders with a ``hidden_tests.py``)."""
    return sorted(
        p
        for p in Path(root).iterdir()
        if p.is_dir() and re.match(r"\d\d_", p.name) and (p / "hidden_tests.py").is_file()
    )
