"""Budgets across the course: every ``budget(...)`` call of the lectures and assignments is read
from the source, and no knob is smaller at ``gpu`` than at ``cpu`` (a Colab reader never gets
less training than a laptop); the assignments keep their small budget on a GPU runtime; the
package's lower bounds are true."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
import torch

from gencourse.gpu_estimate import package_constants

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(ROOT.glob("lectures/[0-9]*.py")) + sorted(ROOT.glob("assignments/*/[0-9]*.py"))
ASSIGNMENTS = sorted(ROOT.glob("assignments/*/[0-9]*.py"))


SAFE_BUILTINS = {f.__name__: f for f in (dict, list, tuple, range, int, float, min, max, round, len)}


def _module_literals(tree: ast.Module) -> dict:
    """Module-level names bound to values that can be evaluated from literals and earlier names."""
    names: dict = {}
    for node in tree.body:
        names.update(package_constants(node))  # a protocol the package holds once, as if written here
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                names[node.targets[0].id] = _evaluate(node.value, names)
            except Exception:
                pass
    return names


def _evaluate(node: ast.AST, names: dict):
    """Evaluate an expression made of literals, names in ``names``, dict/list displays and arithmetic."""
    code = compile(ast.Expression(node), "<budget>", "eval")
    return eval(code, {"__builtins__": SAFE_BUILTINS}, dict(names))  # noqa: S307 (the course's own sources)


def budget_calls() -> list[tuple[str, int, dict]]:
    """Every ``budget(...)`` call: (file, line, {level: value})."""
    calls = []
    for source in SOURCES:
        tree = ast.parse(source.read_text())
        names = _module_literals(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) == "budget"
            ):
                values = {}
                for kw in node.keywords:
                    try:
                        values[kw.arg] = _evaluate(kw.value, names)
                    except Exception as error:
                        raise AssertionError(
                            f"{source.name}:{node.lineno}: cannot read budget {kw.arg}={ast.unparse(kw.value)}"
                        ) from error
                calls.append((source.relative_to(ROOT).as_posix(), node.lineno, values))
    return calls


def not_smaller(gpu, cpu, path: str = "") -> list[str]:
    """Where ``gpu`` is smaller than ``cpu``: integers (steps, sizes, seeds, widths) compared;
    lists of integer settings (measurement counts, checkpoints) must be as many and reach as far;
    dicts key by key; rates, betas and other floats are not sizes and are not compared."""
    if isinstance(cpu, bool) or isinstance(gpu, bool):
        return []
    if isinstance(cpu, int) and isinstance(gpu, int):
        return [] if gpu >= cpu else [f"{path or 'value'}: gpu {gpu} < cpu {cpu}"]
    if isinstance(cpu, dict) and isinstance(gpu, dict):
        return [
            p for key in cpu.keys() & gpu.keys() for p in not_smaller(gpu[key], cpu[key], f"{path}[{key!r}]")
        ]
    if isinstance(cpu, list | tuple) and isinstance(gpu, list | tuple):
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in [*cpu, *gpu])
        if not ints or not cpu:
            return []  # rates, betas, names: not sizes
        if len(gpu) < len(cpu) or max(gpu) < max(cpu):
            return [
                f"{path or 'settings'}: gpu {list(gpu)} has fewer or smaller settings than cpu {list(cpu)}"
            ]
    return []


def test_every_budget_call_is_read():
    calls = budget_calls()
    assert len(calls) > 100
    assert all({"ci", "cpu", "gpu"} <= set(values) for _, _, values in calls)


def test_no_knob_is_smaller_at_gpu_than_at_cpu():
    problems = [
        f"{name}:{line}: {p}"
        for name, line, values in budget_calls()
        for p in not_smaller(values["gpu"], values["cpu"])
        + (not_smaller(values["paper"], values["gpu"]) if values.get("paper") is not None else [])
    ]
    assert not problems, problems


def test_the_rule_catches_a_smaller_knob():
    assert not_smaller(100, 200) and not not_smaller(200, 200)
    assert not_smaller({"steps": 10, "lr": 1e-4}, {"steps": 20, "lr": 1e-3})
    assert not not_smaller({"steps": 20, "lr": 1e-4}, {"steps": 20, "lr": 1e-3})  # a rate is not a size
    assert not_smaller([25], [50, 100]) and not_smaller([25, 50], [50, 100])
    assert not not_smaller([25, 50, 100], [50, 100]) and not not_smaller((0.0, 0.9), (0.5, 0.9))


def _setup_program(source: Path) -> str:
    """An assignment's set-up, up to the cell that prints the budget level (without the install
    cell's ``if``)."""
    tree = ast.parse(source.read_text())
    end = next(i for i, n in enumerate(tree.body) if "budget_level()" in ast.unparse(n))
    return ast.unparse(
        ast.Module(body=[n for n in tree.body[: end + 1] if not isinstance(n, ast.If)], type_ignores=[])
    )


def test_assignments_keep_their_budget_on_a_gpu_runtime(tmp_path):
    """An assignment computes on the CPU, so on a Colab GPU runtime (CUDA available, no
    GENCOURSE_BUDGET) its set-up leaves the level at `cpu`; an explicit GENCOURSE_BUDGET wins.
    One process (torch imported once) runs each assignment's set-up with and without the variable."""
    for source in ASSIGNMENTS:
        shutil.copy(source.with_suffix(".ipynb"), tmp_path)  # otter.Notebook reads it; its log goes here
    probe = "\n".join(
        [
            "import os, torch",
            "torch.cuda.is_available = lambda: True",
            "from gencourse.runtime import budget_level",
            "for program in PROGRAMS:",
            "    for level in (None, 'gpu'):",
            "        os.environ.pop('GENCOURSE_BUDGET', None)",
            "        if level: os.environ['GENCOURSE_BUDGET'] = level",
            "        exec(program, {})",
            "        print('LEVEL', budget_level())",
        ]
    )
    programs = [_setup_program(source) for source in ASSIGNMENTS]
    env = {k: v for k, v in os.environ.items() if k != "GENCOURSE_BUDGET"}
    out = subprocess.run(
        [sys.executable, "-c", f"PROGRAMS = {programs!r}\n{probe}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    levels = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("LEVEL")]
    assert levels == ["cpu", "gpu"] * len(ASSIGNMENTS), out.stdout


def test_lower_bounds_in_pyproject_are_true():
    """Fused Adam on the CPU (gencourse.runtime.adam) needs torch >= 2.4: the lower bound says so,
    and the installed torch satisfies it."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if d.split(">=")[0].strip() == "torch")
    lower = tuple(int(x) for x in torch_req.split(">=")[1].split(",")[0].strip().split("."))
    assert lower >= (2, 4)
    installed = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    assert installed >= lower
    assert torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True).defaults["fused"]
