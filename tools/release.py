"""Releases: one version for the notebooks and the package they install.

A notebook opened from the book (its Colab button) and the package its first cell installs must
come from the same release, tag ``v<version>``. This script keeps the version in every place
that names it, records the package's public API for that version, and regenerates the notebooks:

    python tools/release.py 0.2.0     # make release VERSION=0.2.0: bump, record the API, regenerate
    python tools/release.py --api     # refresh the API record of the current, unreleased version

The API record ``gencourse/_api/<version>.json`` lists the public names of every module; the
tests fail when a notebook imports a name that the pinned version's record lacks (a notebook on
main must not call what its release does not have), and when the package drops a name of a
released record (deprecate, don't break).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "gencourse" / "_api"
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
PIN = re.compile(r"(git\+https://github\.com/gencourse/gencourse@v)(\d+\.\d+\.\d+)")


def current_version() -> str:
    """The version in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def public_api() -> dict[str, list[str]]:
    """Every module of ``gencourse`` (private ones and ``__main__`` scripts left out) mapped to its
    public names: functions and classes of the package, and constants (not imported helpers from
    typing, torch or numpy)."""
    import gencourse

    api = {}
    names = ["gencourse"] + [
        m.name
        for m in pkgutil.walk_packages(gencourse.__path__, "gencourse.")
        if not any(part.startswith("_") for part in m.name.split("."))
    ]
    for name in sorted(names):
        module = importlib.import_module(name)
        public = []
        # a module's own names, and the names its __all__ resolves on first use (a moved name's
        # deprecated alias, served by the module's __getattr__)
        lazy = {
            attr: getattr(module, attr) for attr in getattr(module, "__all__", ()) if attr not in vars(module)
        }
        for attr, value in {**vars(module), **lazy}.items():
            if attr.startswith("_") or inspect.ismodule(value) or isinstance(value, TypeVar):
                continue
            origin = (
                getattr(value, "__module__", None)
                if (inspect.isroutine(value) or inspect.isclass(value))
                else None
            )
            if origin is not None and not origin.startswith("gencourse"):
                continue  # imported from another library
            if origin is None and attr != attr.upper() and not attr.isupper():
                continue  # a value that is not a named constant
            public.append(attr)
        api[name] = sorted(public)
    return api


def write_api(version: str, released: bool) -> Path:
    """Write the API record of ``version``."""
    API_DIR.mkdir(exist_ok=True)
    path = API_DIR / f"{version}.json"
    payload = {"version": version, "released": released, "modules": public_api()}
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def bump(old: str, new: str) -> list[Path]:
    """Replace the version ``old`` by ``new`` everywhere it is named; returns the files changed."""
    edits = {
        ROOT / "pyproject.toml": [(f'version = "{old}"', f'version = "{new}"')],
        ROOT / "gencourse" / "__init__.py": [(f'__version__ = "{old}"', f'__version__ = "{new}"')],
        ROOT / "_config.yml": [(f"branch: v{old}", f"branch: v{new}")],
    }
    changed = []
    for path, pairs in edits.items():
        text = path.read_text()
        for before, after in pairs:
            if before not in text:
                raise SystemExit(f"{path.relative_to(ROOT)} does not name {before!r}")
            text = text.replace(before, after)
        path.write_text(text)
        changed.append(path)
    sources = sorted(ROOT.glob("lectures/[0-9]*.py")) + sorted(ROOT.glob("assignments/*/[0-9]*.py"))
    for path in sources:
        text = path.read_text()
        pinned = PIN.sub(lambda m: m.group(1) + new, text)
        if pinned != text:
            path.write_text(pinned)
            changed.append(path)
    return changed


def regenerate() -> None:
    """Pair every jupytext source with its notebook and rebuild the student notebooks."""
    sources = [
        str(p)
        for p in sorted(ROOT.glob("lectures/*.py")) + sorted(ROOT.glob("assignments/*/[0-9][0-9]_*.py"))
    ]
    jupytext = Path(sys.executable).with_name("jupytext")
    subprocess.run([str(jupytext), "--sync", *sources], check=True, cwd=ROOT, capture_output=True)
    subprocess.run([sys.executable, "-m", "gencourse.grading", "generate"], check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", help="the new version, x.y.z")
    parser.add_argument("--api", action="store_true", help="refresh the current version's API record")
    args = parser.parse_args(argv)
    old = current_version()
    if args.api:
        record = API_DIR / f"{old}.json"
        if record.exists() and json.loads(record.read_text())["released"]:
            raise SystemExit(f"{old} is released: its API record is frozen; bump the version first")
        print(f"wrote {write_api(old, released=False).relative_to(ROOT)}")
        return 0
    if not args.version or not SEMVER.match(args.version):
        raise SystemExit("give the new version as x.y.z, e.g. make release VERSION=0.2.0")
    if args.version == old:
        raise SystemExit(f"the version is already {old}")
    changed = bump(old, args.version)
    write_api(args.version, released=True)
    regenerate()
    print(f"version {old} -> {args.version}: {len(changed)} files, API record, notebooks regenerated.")
    print("Check `make test`, then:")
    print(
        f'  git commit -am "Release v{args.version}" && git tag v{args.version} && git push origin v{args.version}'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
