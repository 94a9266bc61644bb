"""One release for notebook and package: the version is named the same everywhere, the pinned
version's public API is recorded, every notebook imports only names of that record, and
``tools/release.py`` bumps every place that names the version."""

import ast
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import release  # noqa: E402

SOURCES = sorted(ROOT.glob("lectures/[0-9]*.py")) + sorted(ROOT.glob("assignments/*/[0-9]*.py"))


def _record() -> dict:
    path = release.API_DIR / f"{release.current_version()}.json"
    assert path.exists(), f"no API record for {path.stem}: run `python tools/release.py --api`"
    return json.loads(path.read_text())


def imported_names(source: Path) -> set[tuple[str, str]]:
    """(module, name) for every ``from gencourse.X import name`` and every ``X.name`` where ``X``
    was imported as a gencourse module, in a notebook's source."""
    tree = ast.parse(source.read_text())
    names, modules = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gencourse":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if any(m.name == full for m in _package_modules()):
                    modules[alias.asname or alias.name] = full
                else:
                    names.add((node.module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gencourse.") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            names.add((modules[node.value.id], node.attr))
    return names


def _package_modules():
    import pkgutil

    import gencourse

    return list(pkgutil.walk_packages(gencourse.__path__, "gencourse."))


def test_the_pinned_version_has_an_api_record_that_matches_the_package():
    record = _record()
    current = release.public_api()
    if record["released"]:  # a released API is frozen: the package may add names, never drop them
        dropped = {m: sorted(set(n) - set(current.get(m, []))) for m, n in record["modules"].items()}
        assert not any(dropped.values()), f"names of a released API were removed: {dropped}"
    else:
        assert record["modules"] == current, "the API changed: run `python tools/release.py --api`"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebooks_call_only_what_their_release_has(source):
    modules = _record()["modules"]
    missing = sorted(f"{m}.{n}" for m, n in imported_names(source) if n not in modules.get(m, []))
    assert not missing, f"{source.name} uses names that v{release.current_version()} lacks: {missing}"


def test_the_checks_see_a_missing_name(tmp_path):
    fake = tmp_path / "99_x.py"
    fake.write_text(
        "from gencourse.vae import not_a_function\nfrom gencourse import divergences\ndivergences.kl_new(1)\n"
    )
    names = imported_names(fake)
    assert ("gencourse.vae", "not_a_function") in names and ("gencourse.divergences", "kl_new") in names


def test_release_bumps_every_place_that_names_the_version(tmp_path, monkeypatch):
    for rel in (
        "pyproject.toml",
        "gencourse/__init__.py",
        "_config.yml",
        "lectures/01_vae.py",
        "assignments/01_vae/01_vae.py",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    monkeypatch.setattr(release, "ROOT", tmp_path)
    old = release.current_version()
    changed = release.bump(old, "9.8.7")
    assert len(changed) == 5
    assert release.current_version() == "9.8.7"
    assert '__version__ = "9.8.7"' in (tmp_path / "gencourse/__init__.py").read_text()
    assert "branch: v9.8.7" in (tmp_path / "_config.yml").read_text()
    for rel in ("lectures/01_vae.py", "assignments/01_vae/01_vae.py"):
        text = (tmp_path / rel).read_text()
        assert "gencourse@v9.8.7" in text and f"gencourse@v{old}" not in text
    with pytest.raises(SystemExit):
        release.main(["1.2"])  # not x.y.z
