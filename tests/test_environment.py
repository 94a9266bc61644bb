"""The conda environment and pyproject.toml name the same packages."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_name_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    from_pyproject = {_name(r) for r in project["dependencies"]}
    assert {"book", "test", "grading"} <= set(project["optional-dependencies"])
    for requirements in project["optional-dependencies"].values():
        from_pyproject |= {_name(r) for r in requirements}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_env = {_name(r) for r in pip_section if not r.startswith("-e")}
    assert from_pyproject == from_env


def test_runtime_dependencies_named_by_the_foundation_issue():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    required = {
        "torch",
        "torchvision",
        "numpy",
        "matplotlib",
        "ipywidgets",
        "tqdm",
        "scikit-learn",
        "scikit-image",
        "scipy",
    }
    assert required <= names
    extras = project["optional-dependencies"]
    assert {"jupyter-book", "jupytext"} <= {_name(r) for r in extras["book"]}
    assert {"pytest", "nbval", "pytest-xdist", "hypothesis"} <= {_name(r) for r in extras["test"]}
