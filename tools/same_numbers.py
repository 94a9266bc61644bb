"""Do two builds of the book give the same numbers? Compare two ``book/scoreboard.json`` files.

    python tools/same_numbers.py BEFORE.json AFTER.json [--ignore KEY ...]

Results are matched by their ``name``; inside each, every field is compared recursively (numbers
exactly, NaN equal to NaN; strings, booleans and nulls as they are). Timings are not results:
``wall_time_s`` in each result and the file's ``timings_s``, ``date`` and ``machine`` are left out
(``--ignore`` adds more keys). Prints "same numbers: N results identical" and exits 0, or lists
every difference (result, field path, before, after, relative change) and every result present in
one file only, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

IGNORED = ("wall_time_s",)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def differences(
    a: Any, b: Any, path: str = "", ignore: Sequence[str] = IGNORED
) -> Iterator[tuple[str, Any, Any]]:
    """Every (path, before, after) where the JSON values ``a`` and ``b`` differ, recursively
    (dict keys present on one side only give a missing value as ``"<absent>"``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key in ignore:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                yield sub, a.get(key, "<absent>"), b.get(key, "<absent>")
            else:
                yield from differences(a[key], b[key], sub, ignore)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from differences(x, y, f"{path}[{i}]", ignore)
    elif not _same(a, b):
        yield path, a, b


def _relative(a: Any, b: Any) -> str:
    if _is_number(a) and _is_number(b) and a != 0 and math.isfinite(a) and math.isfinite(b):
        return f"{(b - a) / abs(a):+.2%}"
    return ""


def compare(before: dict, after: dict, ignore: Sequence[str] = IGNORED) -> list[str]:
    """The lines that describe how ``after``'s results differ from ``before``'s (empty: none)."""
    lines = []
    if before.get("budget") != after.get("budget"):
        lines.append(f"budget: {before.get('budget')!r} → {after.get('budget')!r}")
    old = {r["name"]: r for r in before.get("results", [])}
    new = {r["name"]: r for r in after.get("results", [])}
    for name in old:
        if name not in new:
            lines.append(f"{name}: only in the first file")
            continue
        for path, x, y in differences(old[name], new[name], ignore=ignore):
            lines.append(f"{name}: {path}: {x!r} → {y!r} {_relative(x, y)}".rstrip())
    lines += [f"{name}: only in the second file" for name in new if name not in old]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore", action="append", default=[], help="a field to leave out (repeatable)")
    args = parser.parse_args(argv)
    before, after = (json.loads(p.read_text()) for p in (args.before, args.after))
    lines = compare(before, after, ignore=(*IGNORED, *args.ignore))
    if not lines:
        print(f"same numbers: {len(before.get('results', []))} results identical")
        return 0
    print(f"{len(lines)} difference(s):")
    print("\n".join(lines))
    return 1


if __name__ == "__main__":
    sys.exit(main())
