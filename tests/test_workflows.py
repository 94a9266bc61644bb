"""The GitHub Actions workflows, checked by two linters that install from PyPI as wheels:
``check-jsonschema`` (the workflow schema) and ``zizmor`` (security findings, offline, with the
project's ``zizmor.yml``). A broken or unsafe workflow fails the tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed (it is in the `test` extra of pyproject.toml)"
    return found


def _schema(*paths: Path) -> subprocess.CompletedProcess:
    cmd = [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _zizmor(folder: Path) -> subprocess.CompletedProcess:
    cmd = [_tool("zizmor"), "--offline", "--config", str(ROOT / "zizmor.yml"), str(folder)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_workflows_match_the_schema():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "book.yml"}
    result = _schema(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_have_no_security_findings():
    result = _zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linters_catch_a_broken_and_an_unsafe_workflow(tmp_path):
    broken = tmp_path / "broken" / "w.yml"
    broken.parent.mkdir()
    broken.write_text("name: x\non: push\njobs:\n  a:\n    steps:\n      - run: echo\n")  # no runs-on
    assert _schema(broken).returncode != 0
    unsafe = tmp_path / "unsafe" / "w.yml"
    unsafe.parent.mkdir()
    unsafe.write_text(
        "name: x\non: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo '${{ github.event.pull_request.title }}'\n"
    )
    assert _zizmor(unsafe.parent).returncode != 0


@pytest.mark.parametrize("name", ["ci.yml", "book.yml"])
def test_least_privilege_limits_and_exact_versions(name):
    flow = _load(name)
    assert flow["permissions"] == {"contents": "read"}
    assert "concurrency" in flow
    for job in flow["jobs"].values():
        assert job.get("timeout-minutes"), "every job has a time limit"
        for step in job["steps"]:
            uses = step.get("uses")
            if uses:
                ref = uses.split("@", 1)[1]
                assert ref.startswith("v") and ref.count(".") == 2, f"{uses}: pin an exact release vX.Y.Z"


def test_ci_runs_the_readme_command_and_the_book_publishes_on_tags():
    ci = _load("ci.yml")
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert ".ci/run" in runs
    book = _load("book.yml")
    on = book[True] if True in book else book["on"]  # PyYAML reads the key `on` as True
    assert on["push"]["tags"] == ["v*"] and "pull_request" in on
    assert book["jobs"]["release"]["if"] == "github.ref_type == 'tag'"
    assert book["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    release_uses = [s.get("uses", "") for s in book["jobs"]["release"]["steps"]]
    assert not any("actions/cache" in u for u in release_uses), "a release is built without caches"
    assert any("upload-pages-artifact" in u for u in release_uses)
    assert any(s.get("run") == "make book" for s in book["jobs"]["build"]["steps"])
