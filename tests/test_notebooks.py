"""Every lecture is a jupytext pair in sync, committed without outputs, listed in the book."""

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import tomllib
import yaml

import gencourse

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "lectures").glob("*.py"))
INSTALL_MARK = 'if "google.colab" in sys.modules:'


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_lectures():
    assert SOURCES, "no lecture found under lectures/"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_pair_exists_and_is_in_sync(source):
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{source.name} has no paired {notebook.name}: run jupytext --set-formats"
    assert "formats: ipynb,py:percent" in source.read_text()
    assert _cells(jupytext.read(source)) == _cells(jupytext.read(notebook)), (
        f"{source.name} and {notebook.name} differ: run `make sync`"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_notebook_has_no_outputs(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit notebooks without outputs"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_lecture_opens_with_title_gpu_note_and_colab_install_cell(source):
    nb = jupytext.read(source)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# Lecture")
    assert "GPU" in nb.cells[0].source, "the opening cell should say how to use a GPU on Colab"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert INSTALL_MARK in first_code.source and "pip" in first_code.source


NOTEBOOK_SOURCES = SOURCES + sorted((ROOT / "assignments").glob("[0-9][0-9]_*/[0-9][0-9]_*.py"))


@pytest.mark.parametrize("source", NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_colab_install_is_pinned_to_the_package_release(source):
    """Colab installs the release whose version is in pyproject.toml (tag v<version>), so that a
    notebook and the package it runs against stay in step; a branch name would drift."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert gencourse.__version__ == version
    refs = re.findall(r"git\+https://github\.com/gencourse/gencourse@([\w.\-]+)", source.read_text())
    assert refs and set(refs) == {f"v{version}"}, refs


def test_launch_buttons_open_the_release_that_the_install_cells_install():
    """The book's Colab buttons open the notebooks at the same tag as the package they install."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["branch"] == f"v{version}"


def _toc_files(entries):
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        for key in ("chapters", "sections", "parts"):
            yield from _toc_files(entry.get(key, []))


def test_every_lecture_is_in_the_table_of_contents_and_the_readme():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = set(_toc_files(toc.get("parts", []))) | {toc["root"]}
    readme = (ROOT / "README.md").read_text()
    for source in SOURCES:
        stem = f"lectures/{source.stem}"
        assert stem in files, f"{stem} is missing from _toc.yml"
        assert stem in readme, f"{stem} is missing from the README's table of lectures"
    for name in files:
        assert (ROOT / f"{name}.md").exists() or (ROOT / f"{name}.ipynb").exists(), (
            f"{name} in _toc.yml does not exist"
        )


def _install_cell(source: Path) -> str:
    """The first code cell of a notebook source: the Colab install cell."""
    cells = [c for c in source.read_text().split("# %%")[1:] if not c.startswith(" [markdown]")]
    cell = next(c for c in cells if "google.colab" in c)
    return cell


INSTALL_SOURCES = sorted(ROOT.glob("lectures/[0-9]*.py")) + sorted(ROOT.glob("assignments/*/[0-9]*.py"))


@pytest.mark.parametrize("source", INSTALL_SOURCES, ids=lambda p: p.stem)
def test_colab_install_cell_shows_pip_errors_and_enables_widgets(source, monkeypatch):
    """Run each install cell as Colab would (a fake ``google.colab`` module, pip replaced): a
    failed install raises with pip's own message; a good one enables Colab's custom widget
    manager (ipywidgets 8, which the package installs, needs it)."""
    import subprocess
    import types

    import gencourse.grading.assign as assign

    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("widgets"))
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(assign, "fetch_for_colab", lambda name: calls.append(f"fetch {name}"))
    cell = _install_cell(source)

    def failing_pip(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, stdout="", stderr="ERROR: No matching distribution found")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(RuntimeError, match="No matching distribution found"):
        exec(cell, {})
    assert calls == []
    monkeypatch.setattr(
        subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout="", stderr="")
    )
    exec(cell, {})
    assert calls[0] == "widgets"
    if "assignments" in source.parts:
        assert calls[1] == f"fetch {source.stem}"
