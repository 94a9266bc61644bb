"""gencourse.lecture: the one-line set-up and the closing timing of a lecture notebook."""

import ast
import json
import time
from pathlib import Path

import jupytext
import pytest
import torch

from gencourse.lecture import Lecture, start

LECTURES = sorted((Path(__file__).resolve().parents[1] / "lectures").glob("[0-9][0-9]_*.py"))


def test_start_prints_level_and_device_and_starts_the_clock(monkeypatch, capsys):
    monkeypatch.setenv("GENCOURSE_BUDGET", "ci")
    monkeypatch.delenv("GENCOURSE_STRICT_DEVICE", raising=False)
    before = time.perf_counter()
    lecture = start("05_compressed_sensing_gm")
    assert lecture.name == "05_compressed_sensing_gm" and lecture.level == "ci"
    assert isinstance(lecture.device, torch.device)
    assert before <= lecture.t0 <= time.perf_counter()
    assert capsys.readouterr().out == f"budget level: ci, device: {lecture.device}\n"


def test_finish_records_the_wall_time_for_the_timing_page(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GENCOURSE_BUDGET", "ci")
    monkeypatch.setenv("GENCOURSE_RESULTS", str(tmp_path))
    lecture = Lecture("13_diffusion", "ci", torch.device("cpu"), t0=time.perf_counter() - 2.5)
    assert lecture.finish() is None  # a notebook's last cell shows no stray value
    saved = json.loads((tmp_path / "timing" / "13_diffusion.json").read_text())
    seconds = saved["ours"]
    assert 2.5 <= seconds < 60 and saved["unit"] == "s"
    assert saved["budget"] == "ci" and saved["lecture"] == "13_diffusion"
    assert capsys.readouterr().out.endswith(f"lecture run time at budget 'ci': {seconds:.0f} s\n")


@pytest.mark.parametrize("bad", ["__main__", "lecture5", "5_cs", "05-cs", "", None])
def test_a_name_that_is_not_a_notebook_name_is_refused(bad):
    with pytest.raises(ValueError, match="notebook's file name"):
        start(bad)


def test_every_lecture_starts_and_finishes_under_its_own_name():
    """Each lecture calls start("its file name") once and LECTURE.finish() once, in that order."""
    assert len(LECTURES) >= 14
    for path in LECTURES:
        text = path.read_text()
        assert text.count(f'start("{path.stem}")') == 1, path.name
        assert text.count("LECTURE.finish()") == 1, path.name
        assert text.index(f'start("{path.stem}")') < text.index("LECTURE.finish()"), path.name
        assert "record_timing" not in text and "T0 = " not in text, f"{path.name}: old timing code"


def _imports_outside_functions(node: ast.AST) -> list[ast.stmt]:
    """The import statements that run when ``node`` runs: every Import/ImportFrom under it except
    those in the body of a function (which run only when it is called)."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            found.append(child)
        else:
            found.extend(_imports_outside_functions(child))
    return found


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.stem)
def test_imports_sit_in_one_hidden_cell_after_the_colab_install_cell(path):
    """Code cells: 1. the Colab install cell (visible); 2. every import of the lecture, tagged
    "hide-input" (the book shows its output, not the import list), nothing else; 3. the visible
    set-up ``LECTURE = start(...)``. No later cell imports anything (outside function bodies)."""
    code = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
    install, imports, setup = code[:3]
    assert 'if "google.colab" in sys.modules:' in install.source and "pip" in install.source
    assert "hide-input" not in install.metadata.get("tags", []), "the Colab install cell stays visible"
    assert "hide-input" in imports.metadata.get("tags", []), f"{path.name}: import cell not hidden"
    body = ast.parse(imports.source).body
    assert body and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body), path.name
    assert "hide-input" not in setup.metadata.get("tags", [])
    assert setup.source.count(f'LECTURE = start("{path.stem}")') == 1, path.name
    for number, cell in enumerate(code[2:], start=3):
        stray = _imports_outside_functions(ast.parse(cell.source))
        assert not stray, f"{path.name}, code cell {number}: import outside the import cell: " + ", ".join(
            ast.unparse(n) for n in stray
        )
    # the last cell records the wall time (finish() returns None: no stray value under it)
    last = ast.parse(code[-1].source).body[-1]
    assert isinstance(last, ast.Expr) and ast.unparse(last.value) == "LECTURE.finish()", path.name
    notebook = [c for c in jupytext.read(path.with_suffix(".ipynb")).cells if c.cell_type == "code"]
    assert "hide-input" in notebook[1].metadata.get("tags", []), f"{path.name}: run jupytext --sync"


def test_the_import_check_sees_an_import_in_a_later_cell_but_not_in_a_function():
    tree = ast.parse("x = 1\nif x:\n    import os\ndef f():\n    import json\nclass C:\n    import re\n")
    assert [ast.unparse(n) for n in _imports_outside_functions(tree)] == ["import os", "import re"]
