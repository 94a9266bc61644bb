"""Device lint: tensor factories in cells that use the course's device must say where they go.

The strict-device run of ``make test`` (gencourse.strict_device) executes every lecture at
``ci`` on an emulated GPU, so a mixed CPU/device operation on a line that runs at ``ci`` fails
there. Branches that run only at ``cpu``/``gpu`` (``if LEVEL != "ci":``, ``if LEVEL == "cpu":``)
never run in that test, yet they run on a student's GPU (``gpu``) or on an Apple laptop's MPS
device (``cpu``). This test reads them instead: it parses every cell of every lecture and
assignment source with :mod:`ast`, and in each cell that names the device (the name bound to
``get_device()``) it checks every tensor factory call (``torch.zeros``, ``torch.randn``,
``torch.arange``, ``torch.tensor``, ...; the ``*_like`` factories inherit their input's device
and are not checked).

A factory call passes when

* it has a ``device=`` keyword;
* its result is moved or brought to the host in the same expression: ``torch.randn(...).to(DEVICE)``,
  ``.cuda()``, ``.cpu()``, ``.numpy()``, ``.tolist()``, ``.item()`` (possibly after views:
  ``torch.linspace(...).view(-1, 1).to(DEVICE)``);
* it is assigned to a name that the same cell moves (``x = torch.randn(...)`` then ``x.to(DEVICE)``);
* CUDA accepts it as a CPU tensor: a 0-dim tensor (``torch.tensor(2.0)``), or an index
  (``x_dev[torch.arange(4)]``);
* or it is in :data:`ALLOWED` (values that are deliberately CPU-only, with the reason).

Every other call is a finding. Findings inside branches that do not run at ``ci`` are the ones
the strict run cannot see (:func:`test_branches_that_skip_ci_are_device_clean`); findings on
lines that run at ``ci`` are covered by the strict run and are listed here only where they are
deliberately CPU-only (:func:`test_every_factory_in_a_device_cell_is_placed`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted(ROOT.glob("lectures/[0-9]*.py"))
ASSIGNMENTS = sorted(ROOT.glob("assignments/*/[0-9]*.py"))
SOURCES = LECTURES + ASSIGNMENTS

# torch factories that make a new tensor on the CPU unless given device= (the *_like ones and
# Tensor.new_* inherit their input's device and are not listed)
FACTORIES = frozenset(
    "zeros ones empty full eye rand randn randint randperm arange linspace logspace tensor "
    "as_tensor normal bernoulli_ from_numpy".split()
)
MOVES = frozenset({"to", "cuda", "cpu", "numpy", "tolist", "item"})
VIEWS = frozenset(
    {"view", "reshape", "unsqueeze", "squeeze", "flatten", "float", "long", "int", "double", "t", "T"}
    | {"expand", "repeat", "flip", "permute", "transpose", "contiguous", "clone", "mul", "add", "div"}
)

# Deliberately CPU-only values in cells that use the device: (source file, the call's source
# text) -> why it may stay on the CPU. Each of these lines runs at `ci`, so the strict run of
# `make test` also executes it on the emulated device: an entry here that mixed devices would
# fail there. A new factory in a device cell needs device= (or a move), or an entry with its reason.
DATA = (
    "CPU data (images, noise, a mask) moved to the device where it is used: later in the cell or "
    "by the gencourse function it is passed to"
)
HOST = "computes with values on the host (a CPU baseline, a metric or a helper applied to CPU tensors)"
INDEX = "an index or a permutation of CPU data (CUDA accepts CPU index tensors)"
GRID = "a grid of values for a plot or a sweep, moved by the line or the gencourse function that uses it"
F64 = "float64 on a CPU copy on purpose (Apple's MPS has no float64), moved to the device as float32"
MODULE = "a module's parameter, moved with the module (.to(DEVICE))"
TARGETS = "target classes: passed to fgsm, which moves them, and compared with probabilities on the host"
ALLOWED: dict[tuple[str, str], str] = {
    ("lectures/01_vae.py", "torch.linspace(lo[0], hi[0], 12)"): GRID,
    ("lectures/01_vae.py", "torch.linspace(hi[1], lo[1], 12)"): GRID,
    ("lectures/02_gan.py", "torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(4))"): DATA,
    (
        "lectures/03_gan_losses.py",
        "torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(4))",
    ): DATA,
    ("lectures/04_mode_collapse_pacgan.py", "torch.randint(len(images), (n, 3), generator=gen)"): INDEX,
    ("lectures/04_mode_collapse_pacgan.py", "torch.tensor([100, 10, 1])"): HOST,
    ("lectures/05_compressed_sensing_gm.py", "torch.arange(frames)"): HOST,
    ("lectures/05_compressed_sensing_gm.py", "torch.zeros(frames, 2, 3)"): HOST,
    ("lectures/06_deep_image_prior.py", "torch.from_numpy(skdata.camera().astype(np.float32) / 255)"): DATA,
    (
        "lectures/06_deep_image_prior.py",
        "torch.from_numpy(skdata.astronaut().astype(np.float32) / 255)",
    ): DATA,
    (
        "lectures/06_deep_image_prior.py",
        "torch.rand(SIZE, SIZE, generator=torch.Generator().manual_seed(2))",
    ): DATA,
    ("lectures/06_deep_image_prior.py", "torch.from_numpy(biharmonic)"): HOST,
    (
        "lectures/06_deep_image_prior.py",
        "torch.from_numpy(skdata.camera()[100:212:4, 200:312:4].astype(np.float32) / 255)",
    ): DATA,
    (
        "lectures/07_interpretability_adversarial.py",
        "torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))",
    ): F64,
    (
        "lectures/07_interpretability_adversarial.py",
        "torch.randint(0, 2, g.shape, generator=torch.Generator().manual_seed(0))",
    ): HOST,
    (
        "lectures/07_interpretability_adversarial.py",
        "torch.randint(0, 2, (N_SIGNS, g20.shape[1]), generator=gen_signs)",
    ): HOST,
    (
        "lectures/07_interpretability_adversarial.py",
        "torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(2))",
    ): DATA,
    ("lectures/07_interpretability_adversarial.py", "torch.arange(10)"): TARGETS,
    (
        "lectures/07_interpretability_adversarial.py",
        "torch.tensor([int(rng.choice(np.flatnonzero(y_pool != y_src[i]))) for i in range(N_AE)])",
    ): INDEX,
    (
        "lectures/07_interpretability_adversarial.py",
        "torch.randint(0, 2, x_hold[right].shape, generator=torch.Generator().manual_seed(4))",
    ): DATA,
    ("lectures/08_restoration_segmentation.py", "torch.full((1, 1, 32, 32), 0.3)"): DATA,
    ("lectures/08_restoration_segmentation.py", "torch.linspace(0.05, 0.95, 19)"): GRID,
    ("lectures/08_restoration_segmentation.py", "torch.linspace(0.0, 3.0, 31)"): GRID,
    (
        "lectures/09_evaluation.py",
        "torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))",
    ): INDEX,
    ("lectures/09_evaluation.py", "torch.randperm(len(low_digits), generator=gen)"): INDEX,
    (
        "lectures/10_conditional_disentangled.py",
        "torch.randn(LATENT, LATENT, generator=gen, dtype=torch.float64)",
    ): F64,
    ("lectures/10_conditional_disentangled.py", "torch.randn(len(images), 2, generator=NOISE_GEN)"): HOST,
    (
        "lectures/10_conditional_disentangled.py",
        "torch.randn(SIZE * SIZE, 2, generator=torch.Generator().manual_seed(0))",
    ): HOST,
    ("lectures/10_conditional_disentangled.py", "torch.linspace(-1, 1, 9)"): GRID,
    (
        "lectures/11_image_to_image_and_beyond.py",
        "torch.randperm(len(iou), generator=torch.Generator().manual_seed(8))",
    ): INDEX,
    (
        "lectures/11_image_to_image_and_beyond.py",
        "torch.randperm(N_DISSECT, generator=torch.Generator().manual_seed(9))",
    ): INDEX,
    (
        "lectures/11_image_to_image_and_beyond.py",
        "torch.randn(noisy_data.shape, generator=torch.Generator().manual_seed(11))",
    ): DATA,
    ("lectures/12_normalizing_flows.py", "torch.zeros(x.shape[1], levels, dtype=torch.float64)"): HOST,
    ("lectures/12_normalizing_flows.py", "torch.ones(x.T.shape, dtype=torch.float64)"): HOST,
    ("lectures/12_normalizing_flows.py", "torch.eye(v.shape[1], dtype=torch.float64)"): HOST,
    (
        "lectures/13_diffusion.py",
        "torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))",
    ): INDEX,
}

# Defects found by this lint that the lectures' owners fix (a branch that does not run at
# `ci` would mix devices on a GPU): (source file, the call's source text). Empty it as they
# are fixed; the test fails when an entry is no longer found (so the list cannot go stale).
KNOWN_DEFECTS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Finding:
    """A factory call without a placement, in a cell that uses the device."""

    path: str  # relative to the repository
    line: int  # in the source file
    call: str  # the call's source text
    dark: bool  # inside a branch that does not run at `ci`

    def key(self) -> tuple[str, str]:
        return self.path, self.call

    def __str__(self) -> str:
        where = "a branch that skips ci" if self.dark else "a line that runs at ci"
        return f"{self.path}:{self.line}: {self.call} (in {where}): add device=DEVICE or move it"


def cells(text: str) -> list[tuple[int, str]]:
    """The code cells of a jupytext py:percent source: (first line number, source), 1-based."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("# %%")]
    out = []
    for k, start in enumerate(starts):
        if "[markdown]" in lines[start] or "[raw]" in lines[start]:
            continue
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        out.append((start + 2, "\n".join(lines[start + 1 : end])))
    return out


def device_names(tree: ast.Module) -> set[str]:
    """Names bound to ``get_device()`` (``DEVICE = get_device()``, ``LEVEL, DEVICE = ..., get_device()``)
    or to the device of a lecture started by ``gencourse.lecture.start`` (``LECTURE = start(...)``,
    then ``LEVEL, DEVICE = LECTURE.level, LECTURE.device``), and names bound to those (``device = DEVICE``)."""
    lectures = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", "") == "start"
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        pairs = (
            list(zip(target.elts, value.elts, strict=False))
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
            else [(target, value)]
        )
        for t, v in pairs:
            is_device = (
                (isinstance(v, ast.Call) and getattr(v.func, "id", "") == "get_device")
                or (isinstance(v, ast.Name) and v.id in names)
                or (
                    isinstance(v, ast.Attribute)
                    and v.attr == "device"
                    and isinstance(v.value, ast.Name)
                    and v.value.id in lectures
                )
            )
            if is_device and isinstance(t, ast.Name):
                names.add(t.id)
    return names


def _skips_ci(test: ast.expr) -> bool | None:
    """Whether an ``if`` on the budget level is False at ``ci`` (True: the body skips ci; False:
    the ``else`` does); None if the test does not read the level."""
    names = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
    if "LEVEL" not in names:
        return None
    try:
        value = eval(compile(ast.Expression(test), "<level>", "eval"), {"__builtins__": {}}, {"LEVEL": "ci"})  # noqa: S307
    except Exception:
        return None
    return not value


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _dark_nodes(tree: ast.AST) -> set[ast.AST]:
    """Every node inside a branch that does not run at ``ci``."""
    dark: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.IfExp):
            skips = _skips_ci(node.test)
            if skips is None:
                continue
            branch = node.body if skips else node.orelse
            for part in branch if isinstance(branch, list) else [branch]:
                dark.update(ast.walk(part))
    return dark


def _is_factory(node: ast.AST) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    return (
        isinstance(func, ast.Attribute)
        and func.attr in FACTORIES
        and isinstance(func.value, ast.Name)
        and func.value.id == "torch"
    )


def _placed(call: ast.Call, parents: dict, moved_names: set[str]) -> bool:
    """Whether the factory's result gets a device (see the module docstring)."""
    if any(kw.arg == "device" for kw in call.keywords):
        return True
    name = call.func.attr
    if name == "tensor" and call.args and isinstance(call.args[0], ast.Constant | ast.UnaryOp):
        return True  # a 0-dim tensor: CUDA treats it as a scalar
    node = call
    while True:
        parent = parents.get(node)
        if isinstance(parent, ast.Subscript) and parent.slice is node:
            return True  # a CPU index tensor
        if isinstance(parent, ast.Attribute) and parent.value is node:
            if parent.attr in MOVES:
                return True
            if parent.attr in VIEWS:
                grand = parents.get(parent)
                node = grand if isinstance(grand, ast.Call) and grand.func is parent else parent
                continue
        if isinstance(parent, ast.Assign) and len(parent.targets) == 1:
            target = parent.targets[0]
            return isinstance(target, ast.Name) and target.id in moved_names
        return False


def _moved_names(tree: ast.AST) -> set[str]:
    """Names whose value the cell moves: ``x.to(...)``, ``x.cuda()``, ``x.cpu()``, ``x.numpy()``."""
    return {
        node.func.value.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in MOVES
        and isinstance(node.func.value, ast.Name)
    }


def findings_in(text: str, rel: str) -> list[Finding]:
    """As :func:`findings`, for a source given as text."""
    devices = device_names(ast.parse(text))
    out = []
    for first, source in cells(text):
        tree = ast.parse(source)
        dark = _dark_nodes(tree)
        uses_device = bool(devices & {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
        if not uses_device and not dark:
            continue
        parents, moved = _parents(tree), _moved_names(tree)
        for node in ast.walk(tree):
            # in a branch that skips ci every cell counts: on a GPU any tensor may be on the device
            if _is_factory(node) and (uses_device or node in dark) and not _placed(node, parents, moved):
                out.append(Finding(rel, first + node.lineno - 1, ast.unparse(node), node in dark))
    return sorted(out, key=lambda f: f.line)


def findings(path: Path) -> list[Finding]:
    """Unplaced factory calls of ``path``: in its cells that use the device, and in every branch
    that skips ``ci``."""
    return findings_in(path.read_text(), path.relative_to(ROOT).as_posix())


ALL = [f for path in SOURCES for f in findings(path)]


def test_branches_that_skip_ci_are_device_clean():
    """What the strict run cannot see: every factory in an ``if LEVEL ...`` branch that does not
    run at ``ci`` (in any cell) gets its device. Known defects are listed for their owners."""
    dark = [f for f in ALL if f.dark and f.key() not in ALLOWED]
    new = [str(f) for f in dark if f.key() not in KNOWN_DEFECTS]
    assert not new, "\n".join(new)
    stale = KNOWN_DEFECTS - {f.key() for f in dark}
    assert not stale, f"fixed or moved, remove from KNOWN_DEFECTS: {sorted(stale)}"


def test_every_factory_in_a_device_cell_is_placed():
    """Everywhere in a cell that uses the device: device=, a move, a CPU index or scalar, or an
    ALLOWED entry with its reason; ALLOWED holds no entry that is no longer found."""
    unplaced = [str(f) for f in ALL if f.key() not in ALLOWED and f.key() not in KNOWN_DEFECTS]
    assert not unplaced, "\n".join(unplaced)
    stale = set(ALLOWED) - {f.key() for f in ALL}
    assert not stale, f"no longer found, remove from ALLOWED: {sorted(stale)}"


def test_assignments_compute_on_the_cpu():
    """The assignments never ask for the device, so their solutions run on the CPU everywhere
    (the grader's runs in tests/test_grading.py need no strict mode); an assignment that starts
    using get_device() must be added to the strict run."""
    for path in ASSIGNMENTS:
        assert not device_names(ast.parse(path.read_text())), f"{path.name} uses the device"
        assert "get_device" not in path.read_text() and "DEVICE" not in path.read_text()


def test_the_device_of_a_started_lecture_is_the_device():
    started = 'LECTURE = start("00_x")\nLEVEL, DEVICE = LECTURE.level, LECTURE.device\nd = DEVICE\n'
    assert device_names(ast.parse(started)) == {"DEVICE", "d"}
    assert device_names(ast.parse("LECTURE = object()\nDEVICE = LECTURE.device\n")) == set()


def test_every_source_is_read():
    assert len(LECTURES) >= 12 and len(ASSIGNMENTS) >= 4
    for path in LECTURES:
        assert device_names(ast.parse(path.read_text())) == {"DEVICE"}, path.name


PLANTED = """# %%
LEVEL, DEVICE = budget_level(), get_device()

# %% [markdown]
# torch.zeros(3) in a markdown cell is prose

# %%
v, mu = torch.randn(4, device=DEVICE), torch.randn(6, 4).to(DEVICE)
if LEVEL != "ci":
    steps_v = torch.linspace(-1.5, 1.5, 7)  # issue 23's lecture 1 line: CPU steps times v on the device
    walk = mu[0] + steps_v[:, None] * v
if LEVEL == "ci":
    pass
else:
    noise = torch.randn(6, 4)  # the else of a ci test
grid = torch.linspace(-1, 1, 5, device=DEVICE)
moved = torch.randn(6, 4).view(3, 8).to(DEVICE)
later = torch.rand(6, 4)
later = later.to(DEVICE)
picked = mu[torch.arange(3)] * torch.tensor(2.0)
host = torch.ones(3).numpy()
cpu_only = torch.zeros(2, 2)

# %%
x = torch.zeros(3)  # no device in this cell: not checked
if LEVEL != "ci":
    y = torch.ones(3)  # but a branch that skips ci is checked in every cell
"""


def test_the_lint_finds_planted_defects():
    got = {(f.line, f.call, f.dark) for f in findings_in(PLANTED, "planted.py")}
    assert got == {
        (10, "torch.linspace(-1.5, 1.5, 7)", True),
        (15, "torch.randn(6, 4)", True),
        (22, "torch.zeros(2, 2)", False),
        (27, "torch.ones(3)", True),
    }, got
    fixed = PLANTED.replace("torch.linspace(-1.5, 1.5, 7)", "torch.linspace(-1.5, 1.5, 7, device=DEVICE)")
    assert 10 not in {f.line for f in findings_in(fixed, "planted.py")}
