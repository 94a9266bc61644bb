"""Generating what students get: ``otter assign``, made reproducible, and checked for leaks.

:func:`generate` runs ``otter assign`` on an assignment's source notebook and keeps two things:

* the student notebook, ``assignments/NN_name/student/NN_name.ipynb``, with no solution and no
  hidden test; its public tests travel in its metadata, so that ``grader.check("q1")`` works in
  it. It is post-processed to be byte-identical when regenerated from unchanged sources: otter
  gives new cells random ids, which are replaced by ids derived from each cell's content, and
  the jupytext pairing metadata (meaningless to students) is dropped;
* otter's autograder folder (the solution notebook and otter's own zip, renamed from its
  timestamped name and rewritten with fixed dates), under ``_build/assignments/NN_name/``. The
  course's grader (:mod:`gencourse.grading.grader`) does not use it: it is there for instructors
  who also want otter's tools.

:func:`find_leaks` checks a student notebook against its source: every solution line, every
hidden test and every otter marker must be absent. :func:`generate` refuses to write a notebook
that leaks, and the test suite runs the same scan on the committed notebooks.

On Colab the notebook file is not on disk and otter needs its tests as files:
:func:`fetch_for_colab` downloads the published student notebook and writes its public tests to
``tests/``, which is what the first cell of every assignment calls on Colab.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from gencourse import __version__

MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "# SOLUTION",
    "#SOLUTION",
    "BEGIN TESTS",
    "END TESTS",
    "BEGIN TEST CONFIG",
    "END TEST CONFIG",
    "hidden: true",
    "ASSIGNMENT CONFIG",
)
MIN_LEAK_CHARS = 10
# the public tests are fetched from the release that the notebooks install (see gencourse.__version__)
REPOSITORY_RAW = f"https://raw.githubusercontent.com/gencourse/gencourse/v{__version__}"
FIXED_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


# --------------------------------------------------------------------------------------------
# leak scan


def _blocks(cells: list[dict[str, Any]]):
    """Yield (cell, in_solution_block, in_tests_block) for the source notebook's cells."""
    solution = tests = False
    for cell in cells:
        text = _source(cell)
        if cell.get("cell_type") == "raw":
            head = text.strip().splitlines()[0] if text.strip() else ""
            if re.match(r"#\s+BEGIN\s+SOLUTION", head, re.I):
                solution = True
            elif re.match(r"#\s+END\s+SOLUTION", head, re.I):
                solution = False
            elif re.match(r"#\s+BEGIN\s+TESTS", head, re.I):
                tests = True
            elif re.match(r"#\s+END\s+TESTS", head, re.I):
                tests = False
            continue
        yield cell, solution, tests


def secret_lines(source_nb: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(solution lines, hidden-test lines) of an otter source notebook, stripped.

    Solution lines: in code cells, the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
    comments and the right-hand side of ``... # SOLUTION`` lines; all lines of markdown cells
    inside solution blocks. Hidden-test lines: the code of test cells whose configuration says
    ``hidden: true``.
    """
    solutions, hidden = set(), set()
    for cell, in_solution, in_tests in _blocks(source_nb["cells"]):
        lines = _source(cell).splitlines()
        if in_tests and cell.get("cell_type") == "code" and re.search(r"hidden:\s*true", _source(cell)):
            hidden |= {line.strip() for line in lines if "TEST CONFIG" not in line and "hidden:" not in line}
            continue
        if not in_solution:
            continue
        if cell.get("cell_type") == "markdown":
            solutions |= {line.strip() for line in lines}
            continue
        inside = False
        for line in lines:
            if re.search(r"#\s*BEGIN SOLUTION", line):
                inside = True
            elif re.search(r"#\s*END SOLUTION", line):
                inside = False
            elif inside:
                solutions.add(line.strip())
            elif re.search(r"# ?SOLUTION\s*$", line):
                code = re.sub(r"# ?SOLUTION\s*$", "", line).strip()
                solutions.add(code.split("=", 1)[1].strip() if "=" in code else code)
    return solutions, hidden


def _public_lines(source_nb: dict[str, Any]) -> set[str]:
    """Stripped lines of the source that students are meant to see (prompts, given code)."""
    seen = set()
    for cell, in_solution, _ in _blocks(source_nb["cells"]):
        if in_solution:
            text = re.sub(r"#\s*BEGIN SOLUTION.*?#\s*END SOLUTION", "", _source(cell), flags=re.S)
        else:
            text = _source(cell)
        if cell.get("cell_type") == "markdown" and in_solution:
            continue
        seen |= {line.strip() for line in text.splitlines()}
    return seen


def find_leaks(source_nb: dict[str, Any], student_text: str, hidden_tests_text: str = "") -> list[str]:
    """What the student notebook (its whole JSON text) gives away: otter markers, solution lines,
    hidden-test lines, and lines of the hidden tests module. Lines shorter than
    ``MIN_LEAK_CHARS`` or also present in the public parts of the source are not counted."""
    public = _public_lines(source_nb)
    student_lines = set()
    for line in student_text.splitlines():
        student_lines.add(line.strip())
    for cell in json.loads(student_text)["cells"]:
        student_lines |= {line.strip() for line in _source(cell).splitlines()}
    leaks = [f"otter marker {m!r}" for m in MARKERS if m in student_text]
    solutions, hidden = secret_lines(source_nb)
    module_lines = {
        line.strip()
        for line in hidden_tests_text.splitlines()
        if line.strip() and not line.strip().startswith(("#", '"""', "import ", "from "))
    }
    for kind, lines in (("solution", solutions), ("hidden test", hidden), ("hidden_tests.py", module_lines)):
        for line in sorted(lines):
            if len(line) < MIN_LEAK_CHARS or line in public:
                continue
            if line in student_lines or json.dumps(line)[1:-1] in student_text:
                leaks.append(f"{kind} line {line[:80]!r}")
    return leaks


# --------------------------------------------------------------------------------------------
# reproducible outputs


def normalise_student_notebook(nb: dict[str, Any]) -> str:
    """The student notebook as text that depends only on its content: cell ids derived from
    each cell's type and source, no jupytext metadata, no outputs, sorted keys."""
    nb = json.loads(json.dumps(nb))
    nb.get("metadata", {}).pop("jupytext", None)
    used: set[str] = set()
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("lines_to_next_cell", None)
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        digest = hashlib.sha256((cell["cell_type"] + "\0" + _source(cell)).encode()).hexdigest()[:12]
        cell_id, n = digest, 1
        while cell_id in used:
            n += 1
            cell_id = f"{digest}-{n}"
        used.add(cell_id)
        cell["id"] = cell_id
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def normalise_zip(src: Path, dst: Path) -> None:
    """Rewrite a zip with sorted entries and a fixed date, so that it depends only on content."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in sorted(zin.namelist()):
            info = zipfile.ZipInfo(name, FIXED_ZIP_DATE)
            info.external_attr = zin.getinfo(name).external_attr
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, zin.read(name))


def generate(
    folder: str | Path,
    autograder_root: str | Path | None = None,
    run_tests: bool = False,
    student_dir: str | Path | None = None,
) -> Path:
    """Run ``otter assign`` on the assignment in ``folder`` and write its student notebook
    (checked by :func:`find_leaks`) to ``student_dir`` (default ``folder/student``) and, if
    ``autograder_root`` is given, otter's autograder folder under it. ``run_tests`` makes otter
    run the public tests against the solutions (slow: it executes the whole notebook). Returns
    the student notebook's path."""
    from otter.assign import main as otter_assign

    folder = Path(folder).resolve()
    name = folder.name
    master = folder / f"{name}.ipynb"
    if not master.is_file():
        raise ValueError(f"{folder} has no source notebook {master.name}")
    with tempfile.TemporaryDirectory(prefix="gencourse-assign-") as tmp:
        result = Path(tmp) / "dist"
        otter_assign(str(master), str(result), no_pdfs=True, no_run_tests=not run_tests)
        student_nb = json.loads((result / "student" / master.name).read_text(encoding="utf-8"))
        text = normalise_student_notebook(student_nb)
        source_nb = json.loads(master.read_text(encoding="utf-8"))
        hidden = folder / "hidden_tests.py"
        leaks = find_leaks(source_nb, text, hidden.read_text(encoding="utf-8") if hidden.exists() else "")
        if leaks:
            raise RuntimeError(f"{master}: the student notebook would leak:\n  " + "\n  ".join(leaks))
        out = Path(student_dir or folder / "student") / master.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        if autograder_root is not None:
            target = Path(autograder_root) / name / "autograder"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for path in sorted((result / "autograder").iterdir()):
                if path.suffix == ".zip":
                    normalise_zip(path, target / f"{name}-autograder.zip")
                elif path.is_file():
                    shutil.copy(path, target / path.name)
                else:
                    shutil.copytree(path, target / path.name)
    return out


# --------------------------------------------------------------------------------------------
# Colab


def fetch_for_colab(name: str, base_url: str = REPOSITORY_RAW) -> Path:
    """Download the published student notebook of assignment ``name`` into the working folder
    (otter reads the notebook's file) and write its public tests to ``tests/<question>.py``
    (otter on Colab reads tests only from files). Returns the tests folder."""
    from urllib.request import urlopen

    url = f"{base_url.rstrip('/')}/assignments/{name}/student/{name}.ipynb"
    with urlopen(url, timeout=60) as response:
        text = response.read().decode("utf-8")
    nb = json.loads(text)
    notebook = Path(f"{name}.ipynb")
    if not notebook.exists():
        notebook.write_text(text, encoding="utf-8")
    tests = Path("tests")
    tests.mkdir(exist_ok=True)
    for question, test in nb["metadata"]["otter"]["tests"].items():
        if not re.fullmatch(r"[A-Za-z0-9_]+", question):
            raise ValueError(f"unexpected question name {question!r}")
        (tests / f"{question}.py").write_text(f"OK_FORMAT = True\n\ntest = {test!r}\n", encoding="utf-8")
    return tests
