"""Every headline a lecture records stands beside a trivial baseline that the lecture computes.

Reads each lecture source (``lectures/*.py``) with :mod:`ast` and checks every ``record(...)``
call (not ``record_timing``): it must pass ``baseline=`` (directly, or inside a ``**common``
dict bound in the module), and no value of the baseline may be typed: a number written as a
literal (``22.3``, ``1 / 3``, ``float(0.5)``) or a name bound to one (``U = 22.3``). Numbers that
parametrise a computation on data (a blur's width, a seed, a slice) are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LECTURES = sorted((Path(__file__).resolve().parents[1] / "lectures").glob("[0-9][0-9]_*.py"))


def _is_record(call: ast.Call) -> bool:
    """``record(...)`` or ``<module>.record(...)`` (``record_timing`` is another name)."""
    func = call.func
    return (isinstance(func, ast.Name) and func.id == "record") or (
        isinstance(func, ast.Attribute) and func.attr == "record"
    )


def _assignments(tree: ast.AST) -> dict[str, list[ast.expr]]:
    """The values assigned to each plain name in the module (``a = ...``, ``a: T = ...``)."""
    values: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            values.setdefault(node.target.id, []).append(node.value)
    return values


def _is_number(node: ast.expr) -> bool:
    """A numeric literal, ``2.5`` or ``-2.5`` (not ``True``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float | complex)
        and not isinstance(node.value, bool)
    )


def _value_positions(expr: ast.expr) -> list[ast.expr]:
    """The sub-expressions of ``expr`` that are the baseline's values: ``expr`` itself, or the
    values of a dict (at any depth) or of a dict comprehension."""
    if isinstance(expr, ast.Dict):
        return [v for value in expr.values for v in _value_positions(value)]
    if isinstance(expr, ast.DictComp):
        return _value_positions(expr.value)
    return [expr]


def _typed(node: ast.expr) -> bool:
    """Whether ``node`` types a number instead of computing it: an expression made of numeric
    literals only (``22.3``, ``-0.5``, ``1 / 3``), or a call whose arguments are all typed
    (``float(22.3)``). A literal that parametrises a computation on data (``blur(x, 1.0)``,
    ``x[..., 14:]``, ``round(v, 4)``, a seed) does not type the result."""
    if _is_number(node):
        return True
    if isinstance(node, ast.BinOp):
        return _typed(node.left) and _typed(node.right)
    if isinstance(node, ast.UnaryOp):
        return _typed(node.operand)
    if isinstance(node, ast.Call):
        args = [*node.args, *(k.value for k in node.keywords)]
        return bool(args) and all(_typed(a) for a in args)
    return False


def numeric_literals(expr: ast.expr, assigned: dict[str, list[ast.expr]], follow: bool = True) -> list[str]:
    """The typed numbers among a baseline's values (see :func:`_typed`), and values that are names
    the module binds to a typed number. Where ``expr`` is a name (and ``follow``), the values the
    module assigns to it are checked the same way."""
    found: list[str] = []
    for value in _value_positions(expr):
        if _typed(value):
            found.append(ast.unparse(value))
        elif isinstance(value, ast.Name) and any(_typed(v) for v in assigned.get(value.id, [])):
            found.append(f"{value.id} (bound to a literal)")
    if follow and isinstance(expr, ast.Name):
        for value in assigned.get(expr.id, []):
            found += numeric_literals(value, assigned, follow=False)
    return found


def _spread_baselines(expr: ast.expr, assigned: dict[str, list[ast.expr]]) -> list[ast.keyword]:
    """``baseline=`` entries of a ``**common`` argument: the ``dict(baseline=...)`` calls or
    ``{"baseline": ...}`` displays that the module binds to that name."""
    values = assigned.get(expr.id, []) if isinstance(expr, ast.Name) else [expr]
    found = []
    for value in values:
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "dict":
            found += [k for k in value.keywords if k.arg == "baseline"]
        elif isinstance(value, ast.Dict):
            found += [
                ast.keyword(arg="baseline", value=v)
                for k, v in zip(value.keys, value.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "baseline"
            ]
    return found


def record_problems(source: str) -> list[str]:
    """One line per ``record(...)`` call of ``source`` without a computed ``baseline=``."""
    tree = ast.parse(source)
    assigned = _assignments(tree)
    problems = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _is_record(node)):
            continue
        name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
        where = f"line {node.lineno}, record({name!r})"
        keyword = next((k for k in node.keywords if k.arg == "baseline"), None)
        if keyword is None:  # passed through **common, a dict(...) or {...} bound in the module?
            keyword = next(
                (kw for k in node.keywords if k.arg is None for kw in _spread_baselines(k.value, assigned)),
                None,
            )
        if keyword is None:
            problems.append(f"{where}: no baseline= keyword")
        elif isinstance(keyword.value, ast.Constant) and keyword.value.value is None:
            problems.append(f"{where}: baseline=None")
        else:
            literals = numeric_literals(keyword.value, assigned)
            if literals:
                problems.append(f"{where}: the baseline holds typed numbers {', '.join(literals)}")
    return problems


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_record_call_has_a_computed_baseline(path):
    problems = record_problems(path.read_text())
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_checker_flags_typed_and_missing_baselines():
    assert LECTURES, "no lecture sources found"
    ok = (
        "noisy = x + 1\n"
        "tv = denoise(noisy)\n"
        "record('dip/a', 3.0, baseline={'noisy input': psnr(noisy[..., 14:], x[0]), 'tv': round(tv, 4)})\n"
        "record_timing('06', 12.0)\n"
    )
    assert record_problems(ok) == []
    assert record_problems("record('a/b', 1.0)") == ["line 1, record('a/b'): no baseline= keyword"]
    assert record_problems("record('a/b', 1.0, baseline=None)") == ["line 1, record('a/b'): baseline=None"]
    assert "typed numbers 0.5" in record_problems("record('a/b', 1.0, baseline={'u': 0.5})")[0]
    assert (
        "typed numbers f(22.3)"
        in record_problems("scoreboard.record('a/b', 1.0, baseline={'u': f(22.3)})")[0]
    )
    # through a name assigned in the module, and through **kwargs (not visible: missing)
    assert "typed numbers 2" in record_problems("b = {'u': 2}\nrecord('a/b', 1.0, baseline=b)")[0]
    assert record_problems("record('a/b', 1.0, baseline={'u': {0: v[-1]}})") == []  # keys, subscripts
    assert "U (bound to a literal)" in record_problems("U = -2.5\nrecord('a/b', 1.0, baseline={'u': U})")[0]
    assert (
        record_problems("kw = dict(baseline={'u': x})\nrecord('a/b', 1.0, **kw)") == []
    )  # read through **kw
    assert "typed numbers 3" in record_problems("kw = dict(baseline={'u': 3})\nrecord('a/b', 1.0, **kw)")[0]
    assert "no baseline=" in record_problems("kw = dict(note='n')\nrecord('a/b', 1.0, **kw)")[0]
    # numbers that parametrise a computation are not typed results
    assert (
        record_problems(
            "record('a/b', 1.0, baseline={'blur': f(blur(x, 1.0), torch.Generator().manual_seed(4))})"
        )
        == []
    )
    assert record_problems("record('a/b', 1.0, baseline={f'b{s}': f(x, s) for s in (1.0, 2.0)})") == []
    assert "typed numbers 1 / 3" in record_problems("record('a/b', 1.0, baseline={'u': 1 / 3})")[0]
