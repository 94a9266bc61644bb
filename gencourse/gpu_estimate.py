"""How long a lecture takes on a free Colab T4, estimated from what a CPU can measure.

The `gpu` budget is sized for a Colab session: every lecture should finish within 30 minutes on
a free T4. Where the course is built there is no GPU, so the time is estimated from counts made
on the CPU while the lecture runs at `ci`, and a model of the T4.

**What is counted.** With ``GENCOURSE_FLOPS=<dir>`` set, :func:`watch` (called by
:func:`gencourse.runtime.progress`, which every training loop of the package iterates with)
counts, for each step of the loop but the first (which allocates the optimiser's state), every
ATen operation the step dispatches (a ``TorchDispatchMode``): its floating-point operations from
the formulas of :mod:`torch.utils.flop_counter` (the ones ``FlopCounterMode`` uses: matrix
products, convolutions, attention, forward and backward), the bytes of its tensor inputs and
outputs, and whether it would launch a kernel on a GPU (views, ``detach`` and allocations do
not) or wait for the GPU (``.item()``, ``float(t)``, ``nonzero``). Each loop writes one record
(the lecture, its code cell, the loop's description, its length at this budget, and the counts
per step) to ``<dir>/<lecture>.jsonl``. :func:`run_notebook` runs a whole notebook that way and
also counts the work outside the loops, cell by cell ("other": evaluation, sampling, plots'
inputs), with the CPU time each cell spends outside torch's operators (Python, NumPy, plotting).

**The model of the T4** (:class:`Device`, :data:`T4`). A kernel that does F floating-point
operations and moves B bytes takes

    t_kernel = max(t_launch, F / (P · η) + B / (W · η_mem)),

with P = 8.1 TFLOP/s (the T4's FP32 peak), η = 0.25 (the fraction of peak that the small matrix
products and convolutions of the course reach), W = 320 GB/s (its memory bandwidth), η_mem = 0.5,
and t_launch = 20 µs: the floor of one eager PyTorch operation, which on Colab's 2-vCPU host is
the CPU's cost of dispatching and launching it (small networks never wait for the GPU). A step
that launches kernels k and waits n_sync times takes

    t_step = Σ_k t_kernel(k) + n_sync · t_sync,   t_sync = 50 µs.

Summing the per-kernel maxima over-estimates a pipelined GPU (whose step takes about
max(Σ CPU time, Σ GPU time)), which is the conservative side. CPU-side work that is not a torch
operator (Python, NumPy, plotting) is taken at the time measured here × ``cpu_factor`` = 1.5
(Colab's host CPU is no faster than this machine's core).

**From `ci` to `gpu`.** A loop of S_ci steps at `ci` runs S_gpu steps at `gpu`: S_gpu is read
from the lecture's ``budget(...)`` calls (:func:`lecture_knobs`) whose `ci` value is S_ci, the
largest `gpu` value where several match (conservative); see :func:`estimate_lecture` for the
repetitions (seeds, settings), the widths and the work outside the loops.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode

ENV = "GENCOURSE_FLOPS"
LECTURE_ENV = "GENCOURSE_FLOPS_LECTURE"
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# the model of the GPU


@dataclass(frozen=True)
class Device:
    """A GPU's throughput for the cost model (see the module docstring for the formula)."""

    name: str
    peak_flops: float  # FP32 FLOP/s
    bandwidth: float  # bytes/s
    flop_efficiency: float  # fraction of the peak reached by the course's small layers
    bandwidth_efficiency: float
    launch_s: float  # the floor of one eager operation (dispatch + launch)
    sync_s: float  # one wait of the host for the device (.item(), float(t))
    cpu_factor: float  # the host's CPU time for non-torch work, relative to this machine's


T4 = Device(
    name="NVIDIA T4 (free Colab)",
    peak_flops=8.1e12,
    bandwidth=320e9,
    flop_efficiency=0.25,
    bandwidth_efficiency=0.5,
    launch_s=20e-6,
    sync_s=50e-6,
    cpu_factor=1.5,
)


def kernel_seconds(flops: float, nbytes: float, device: Device = T4) -> float:
    """t_kernel = max(t_launch, F / (P·η) + B / (W·η_mem)): one kernel's time on ``device``."""
    compute = flops / (device.peak_flops * device.flop_efficiency)
    memory = nbytes / (device.bandwidth * device.bandwidth_efficiency)
    return max(device.launch_s, compute + memory)


def tally_seconds(
    ops: list[list], syncs: float, device: Device = T4, scale: float = 1.0, byte_scale: float | None = None
) -> float:
    """Σ_k count_k · t_kernel(scale · F_k, byte_scale · B_k) + n_sync · t_sync for a tally of
    ``[name, flops, bytes, count]`` rows (``scale`` multiplies the FLOPs of every kernel and
    ``byte_scale``, default ``scale``, its bytes; not their number: a wider layer is a bigger
    kernel, not more kernels)."""
    bscale = scale if byte_scale is None else byte_scale
    kernels = sum(count * kernel_seconds(scale * f, bscale * b, device) for _, f, b, count in ops)
    return kernels + syncs * device.sync_s


def tally_totals(ops: list[list]) -> dict[str, float]:
    """The number of kernels, the FLOPs and the bytes of a tally."""
    return {
        "kernels": sum(c for *_, c in ops),
        "flops": sum(f * c for _, f, _, c in ops),
        "bytes": sum(b * c for _, _, b, c in ops),
    }


# --------------------------------------------------------------------------------------------
# counting on the CPU

aten = torch.ops.aten
# operations that launch no kernel on a GPU (besides views, recognised by their schema)
_FREE = frozenset(
    "detach empty empty_strided empty_like new_empty new_empty_strided lift_fresh alias "
    "_unsafe_view set_ resize_ _reshape_alias as_strided _has_compatible_shallow_copy_type "
    "is_same_size sym_size sym_stride sym_numel sym_storage_offset".split()
)
# operations that read only the rows they gather, not their whole first argument
_GATHER = frozenset("index index_select gather embedding take".split())
# operations after which the host waits for the device
_SYNC = frozenset(
    "_local_scalar_dense nonzero masked_select _unique2 unique_dim unique_consecutive equal is_nonzero".split()
)


def _nbytes(value: Any) -> int:
    """Bytes of the tensors in ``value`` (a tensor, or a list/tuple of them, at any depth)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    return 0


class Tally:
    """Counts of one piece of work: kernels by (name, FLOPs, bytes), host waits, and the CPU
    seconds spent inside torch's operators (and in this counter's own bookkeeping)."""

    def __init__(self, dims: bool = False) -> None:
        self.ops: dict[tuple[str, int, int], int] = {}
        self.syncs = 0
        self.op_seconds = 0.0
        self.overhead_seconds = 0.0
        self.dims: set[int] | None = set() if dims else None  # sizes of the outputs' dimensions

    @property
    def kernels(self) -> int:
        return sum(self.ops.values())

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to this tally."""
        for key, count in other.ops.items():
            self.ops[key] = self.ops.get(key, 0) + count
        self.syncs += other.syncs
        self.op_seconds += other.op_seconds
        self.overhead_seconds += other.overhead_seconds
        if self.dims is not None and other.dims is not None:
            self.dims |= other.dims

    def rows(self, per: int = 1) -> list[list]:
        """``[name, flops, bytes, count / per]`` rows."""
        return [[n, f, b, c / per] for (n, f, b), c in sorted(self.ops.items())]


class OpCounter(TorchDispatchMode):
    """A dispatch mode that adds every operation to the current :class:`Tally` (``bucket``;
    None: not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.bucket: Tally | None = None
        self._kinds: dict[Any, tuple[str, Any]] = {}

    def _kind(self, func: Any) -> tuple[str, Any]:
        """("free" | "kernel" | "sync", the FLOP formula or None) of an ATen operation."""
        from torch.utils.flop_counter import flop_registry

        kind = self._kinds.get(func)
        if kind is None:
            name = func.overloadpacket.__name__
            if getattr(func, "is_view", False) or name in _FREE:
                kind = ("free", None)
            else:
                kind = ("sync" if name in _SYNC else "kernel", flop_registry.get(func.overloadpacket))
            self._kinds[func] = kind
        return kind

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        bucket = self.bucket
        if bucket is None:
            return func(*args, **kwargs)
        t0 = time.perf_counter()
        out = func(*args, **kwargs)
        t1 = time.perf_counter()
        kind, formula = self._kind(func)
        if kind != "free":
            flops = int(formula(*args, **kwargs, out_val=out)) if formula is not None else 0
            name = func.overloadpacket.__name__
            if name in _GATHER:  # the indices, and the gathered rows read and written
                nbytes = _nbytes(args[1:]) + 2 * _nbytes(out)
            else:
                nbytes = _nbytes(args) + _nbytes(list(kwargs.values())) + _nbytes(out)
            key = (name, flops, nbytes)
            bucket.ops[key] = bucket.ops.get(key, 0) + 1
            bucket.syncs += kind == "sync"
            if bucket.dims is not None and isinstance(out, torch.Tensor):
                bucket.dims.update(out.shape)
        bucket.op_seconds += t1 - t0
        bucket.overhead_seconds += time.perf_counter() - t1
        return out


class _State:
    """The process's counter and what it is counting: the lecture, the code cell, the work
    outside loops of the current cell, and where the records go."""

    counter: OpCounter | None = None
    lecture = ""
    cell = -1
    cell_start = 0.0
    other: Tally | None = None
    loops_seconds = 0.0  # wall time of the current cell's loops
    folder: Path | None = None


def _counter() -> OpCounter:
    """The process's counter, entered once and left on (every operation passes through it;
    outside a loop or a counted cell it only forwards)."""
    if _State.counter is None:
        _State.counter = OpCounter()
        _State.counter.__enter__()
    return _State.counter


def _write(record: dict[str, Any]) -> None:
    folder = _State.folder or Path(os.environ[ENV])
    folder.mkdir(parents=True, exist_ok=True)
    lecture = record["lecture"] or "unknown"
    with open(folder / f"{lecture}.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def watch(iterable: Iterable[T], desc: str | None = None) -> Iterable[T]:
    """``iterable`` itself, or, with ``GENCOURSE_FLOPS`` set, the same items while the work of
    every step but the first is counted and a record of the loop written when it ends (see the
    module docstring). The one call of :func:`gencourse.runtime.progress` into this module."""
    if not os.environ.get(ENV):
        return iterable
    return _Counted(iterable, desc or "")


class _Counted:
    """``iterable`` with the counting of :func:`watch`; sized like it (progress bars keep their total)."""

    def __init__(self, iterable: Iterable[T], desc: str) -> None:
        self.iterable, self.desc = iterable, desc

    def __len__(self) -> int:
        return len(self.iterable)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[T]:
        return _counted(self.iterable, self.desc)


def _counted(iterable: Iterable[T], desc: str) -> Iterator[T]:
    """The items of ``iterable``; each step's work (but the first's) is tallied, the steps are
    grouped by their number of kernels (the regular step, and the occasional heavier one that
    also evaluates or logs), and the loop's record is written when it ends."""
    counter = _counter()
    outer = counter.bucket
    steps = len(iterable) if hasattr(iterable, "__len__") else None
    groups: dict[int, tuple[Tally, list[int]]] = {}  # kernels per step -> (their sum, [steps])
    done, start, first, line = 0, time.perf_counter(), None, _cell_line()
    try:
        for item in iterable:
            step = Tally(dims=True)
            counter.bucket = step
            done += 1
            yield item
            counter.bucket = None
            if done == 1:  # the first step allocates the optimiser's state: not counted ...
                first = step
                continue
            total, n = groups.setdefault(step.kernels, (Tally(dims=True), [0]))
            total.add(step)
            n[0] += 1
    finally:
        counter.bucket = outer
        if not groups and first is not None:  # ... unless it is the only one
            groups[first.kernels] = (first, [1])
        wall = time.perf_counter() - start
        _State.loops_seconds += wall
        _write(_loop_record(desc, steps if steps is not None else done, done, wall, groups) | {"line": line})


_CELL_FILE = re.compile(r"ipykernel_\d+[/\\]\d+\.py$|^<ipython-input-")  # IPython's names for cells


def _cell_line() -> int | None:
    """The line of the code cell (as :func:`run_notebook` numbers them: without its first,
    added, line) that is running, from the outermost frame of the cell's code; None outside
    such a run."""
    import sys

    if _State.cell < 0:
        return None
    frame, line = sys._getframe(1), None
    while frame is not None:
        if _CELL_FILE.search(frame.f_code.co_filename):
            line = frame.f_lineno - 1
        frame = frame.f_back
    return line


def _loop_record(desc: str, steps: int, done: int, wall: float, groups: dict) -> dict[str, Any]:
    """The record of one loop: its length, the counts per step over all counted steps, and the
    steps grouped by their number of kernels (most frequent first)."""
    counted = sum(n[0] for _, n in groups.values())
    everything = Tally(dims=True)
    for total, _ in groups.values():
        everything.add(total)
    per = max(counted, 1)
    return {
        "kind": "loop",
        "lecture": _State.lecture or os.environ.get(LECTURE_ENV, ""),
        "cell": _State.cell,
        "desc": desc,
        "steps": steps,
        "done": done,
        "counted": counted,
        "wall_s": wall,
        "op_s_per_step": everything.op_seconds / per,
        "overhead_s_per_step": everything.overhead_seconds / per,
        "syncs_per_step": everything.syncs / per,
        "ops_per_step": everything.rows(per=per),
        "groups": [
            {
                "kernels": k,
                "steps": n[0],
                "syncs": total.syncs,
                "ops": total.rows(),
                "dims": sorted(total.dims or ())[:500],
            }
            for k, (total, n) in sorted(groups.items(), key=lambda kv: -kv[1][1][0])
        ],
        "dims": sorted(everything.dims or ())[:500],
    }


# --------------------------------------------------------------------------------------------
# a whole notebook, cell by cell


def start(lecture: str) -> None:
    """Count the work of ``lecture`` outside its loops too, cell by cell (the first cell that
    :func:`run_notebook` adds calls this)."""
    _State.lecture = lecture
    _State.folder = Path(os.environ[ENV])
    _counter()


def cell(index: int) -> None:
    """Close the previous code cell's record and start counting cell ``index`` (the line that
    :func:`run_notebook` puts at the top of every code cell)."""
    _flush_cell()
    _State.cell, _State.cell_start, _State.loops_seconds = index, time.perf_counter(), 0.0
    _State.other = Tally()
    _counter().bucket = _State.other


def finish() -> None:
    """Close the last cell's record (the last cell that :func:`run_notebook` adds)."""
    _flush_cell()
    _State.cell, _State.other = -1, None
    _counter().bucket = None


def _flush_cell() -> None:
    other = _State.other
    if other is None:
        return
    _counter().bucket = None
    wall = time.perf_counter() - _State.cell_start
    outside = wall - _State.loops_seconds  # the cell's time outside its loops
    _write(
        {
            "kind": "other",
            "lecture": _State.lecture,
            "cell": _State.cell,
            "wall_s": wall,
            "loops_s": _State.loops_seconds,
            # CPU time outside torch's operators and outside loops: Python, NumPy, plotting
            "host_s": max(outside - other.op_seconds - other.overhead_seconds, 0.0),
            "op_s": other.op_seconds,
            "syncs": other.syncs,
            "ops": other.rows(),
        }
    )
    _State.other = None


def run_notebook(notebook: Path, out: Path, level: str = "ci", timeout: int = 3600) -> float:
    """Execute ``notebook`` at budget ``level`` in a fresh kernel with the counting on, every
    code cell announced to :func:`cell`, into ``out/<stem>.jsonl`` (replaced); networks are
    trained afresh (an empty model cache, as on Colab). Returns the wall time; raises if a
    cell fails."""
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    notebook, out = Path(notebook).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{notebook.stem}.jsonl").unlink(missing_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    head = f"from gencourse import gpu_estimate as _gpu_estimate\n_gpu_estimate.start({notebook.stem!r})"
    cells, index = [nbformat.v4.new_code_cell(head)], 0
    for c in nb.cells:
        if c.cell_type == "code":
            c.source = f"_gpu_estimate.cell({index})\n{c.source}"
            index += 1
        cells.append(c)
    nb.cells = [*cells, nbformat.v4.new_code_cell("_gpu_estimate.finish()")]
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="gpu-estimate-") as tmp:
        os.environ.update(
            {
                "GENCOURSE_BUDGET": level,
                ENV: str(out),
                "GENCOURSE_CACHE": str(Path(tmp) / "cache"),
                "GENCOURSE_RESULTS": str(Path(tmp) / "results"),
                "MPLBACKEND": "Agg",
                # the bundled MNIST, as in the tests
                "GENCOURSE_OFFLINE": os.environ.get("GENCOURSE_OFFLINE", "1"),
            }
        )
        os.environ.pop("GENCOURSE_STRICT_DEVICE", None)
        try:
            begin = time.perf_counter()
            NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(notebook.parent)}},
            ).execute()
            return time.perf_counter() - begin
        finally:
            os.environ.clear()
            os.environ.update(saved)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one lecture's ``.jsonl`` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# the lecture's budget(...) calls, and which of them a cell can see

LEVELS = ("ci", "cpu", "gpu", "paper")
_SAFE = {f.__name__: f for f in (dict, list, tuple, range, int, float, min, max, round, len, sum, abs)}


@dataclass(frozen=True)
class Knob:
    """One value of a ``budget(...)`` call: ``values[level]`` at every level (``paper`` is the
    ``gpu`` value where the call gives none), the code cell and line of the call, and its
    ``label``: the keyword it is passed as (``steps=budget(...)``), the dict key it sits under
    (``budget(ci={"steps": 40, ...})``), or the names it is assigned to."""

    cell: int
    line: int
    label: str
    values: dict[str, Any]
    paper: bool = False  # the call gives a `paper=` value

    def ratio(self, level: str) -> float:
        """How many times larger the value is at ``level`` than at ``ci``: integers directly,
        lists of integers by their length and their largest value (the larger ratio), 1 for
        anything else (rates, names)."""
        ci, hi = self.values["ci"], self.values[level]
        if _is_int(ci) and _is_int(hi):
            return hi / ci if ci > 0 else 1.0
        if _int_list(ci) and _int_list(hi):
            by_len = len(hi) / len(ci)
            by_max = max(hi) / max(ci) if max(ci) > 0 else 1.0
            return max(by_len, by_max, 1.0)
        return 1.0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_list(v: Any) -> bool:
    return isinstance(v, list | tuple) and bool(v) and all(_is_int(x) for x in v)


def _is_budget(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "budget"


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _safe_only(node: ast.AST) -> bool:
    """Whether ``node`` calls nothing but ``budget`` and the safe builtins (arithmetic on knobs)."""
    return all(
        _is_budget(n) or (isinstance(n.func, ast.Name) and n.func.id in _SAFE)
        for n in ast.walk(node)
        if isinstance(n, ast.Call)
    )


def _evaluate(node: ast.AST, names: dict[str, Any]) -> Any:
    code = compile(ast.Expression(node), "<budget>", "eval")
    return eval(code, {"__builtins__": _SAFE}, dict(names))  # noqa: S307 (the course's own sources)


def _labels(call: ast.Call, parents: dict[ast.AST, ast.AST]) -> str:
    """The keyword a budget call is passed as, or the names its statement assigns to."""
    parent = parents.get(call)
    if isinstance(parent, ast.keyword) and parent.arg:
        return parent.arg
    node = call
    while node in parents and not isinstance(node, ast.stmt):
        node = parents[node]
    if not isinstance(node, ast.Assign):
        return ""
    targets = []
    for target in node.targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            # A, B = x, budget(...): the name in the budget call's position
            target = next(
                (t for t, v in zip(target.elts, node.value.elts, strict=False) if call in set(ast.walk(v))),
                target,
            )
        targets += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return ",".join(targets)


@dataclass
class Lecture:
    """A lecture's knobs and, for each code cell, the knobs it can see (:func:`read_lecture`)."""

    knobs: list[Knob]
    reach: dict[int, set[int]]  # code cell -> indices into knobs
    names: dict[str, Any]  # module-level names bound to literals (BATCH = 100)
    # code cell -> its top-level statements: (first line, last line, the knobs it sees through
    # knob names and functions, and those it sees through any name it uses)
    statements: dict[int, list[tuple[int, int, set[int], set[int]]]] = field(default_factory=dict)
    loops: dict[int, list[tuple[int, int, set[int]]]] = field(default_factory=dict)  # for / comprehensions
    constants: dict[int, list[set[int]]] = field(default_factory=dict)  # per statement: int literals named

    def constants_at(self, cell: int, line: int | None) -> set[int]:
        """The integers bound to module-level names (``DEMO_STEPS = 400``) that the statement of
        ``cell`` holding ``line`` reads: lengths that are the same at every level."""
        for (first, last, *_), values in zip(
            self.statements.get(cell, []), self.constants.get(cell, []), strict=False
        ):
            if line is not None and first <= line <= last:
                return values
        return set()

    def iterated_at(self, cell: int, line: int | None) -> set[int]:
        """The knobs that a ``for`` loop (or a comprehension) of ``cell`` around ``line`` iterates
        over (``for seed in SEEDS:``, ``for m in M_LIST:``, ``for i in range(N):``)."""
        if line is None:
            return set()
        return {k for first, last, knobs in self.loops.get(cell, []) if first <= line <= last for k in knobs}

    def reach_at(self, cell: int, line: int | None, carried: bool = True) -> set[int]:
        """The knobs that the top-level statement of ``cell`` holding ``line`` sees, through any
        name (``carried``) or through knob names and functions only (the whole cell's where the
        line is unknown)."""
        for first, last, direct, through_data in self.statements.get(cell, []):
            if line is not None and first <= line <= last:
                return through_data if carried else direct
        return self.reach.get(cell, set())


def read_lecture(cells: list[str]) -> Lecture:
    """Every ``budget(...)`` call of a lecture's code cells, evaluated at every level, and what
    each cell can see: the calls in the cell itself, and those bound to a name it reads, through
    assignments made of knobs and arithmetic (``STEPS = budget(...)``, ``SEEDS =
    list(range(budget(...)))``, ``HALF = STEPS // 2``) and through the lecture's functions and
    classes it calls (their bodies, transitively). A name bound to the result of other code
    (``vae = train(steps=STEPS)``) does not carry the knobs of that code into what a cell sees;
    it does into what a top-level statement sees (``Lecture.statements``, used for the loops it
    runs: the network it trains was made with a width, its images with a size)."""
    knobs: list[Knob] = []
    names: dict[str, Any] = {}
    bound: dict[str, set[int]] = {}
    defs: dict[str, tuple[set[int], set[str]]] = {}
    inline: dict[int, set[int]] = {}
    loads: dict[int, set[str]] = {}
    spans: dict[int, list[tuple[int, int, set[int], set[int]]]] = {}
    carry: dict[str, set[int]] = {}  # every name: the knobs of the code that made its value
    constants: dict[int, list[set[int]]] = {}  # per statement: the integer literals it names
    fors: dict[int, list[tuple[int, int, ast.expr]]] = {}
    for index, source in enumerate(cells):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        inline[index], loads[index] = set(), _loads(tree)
        spans[index], fors[index], constants[index] = [], [], []
        for node in ast.walk(tree):
            if isinstance(node, ast.For | ast.AsyncFor):
                body = (node.body[0].lineno, max(n.end_lineno or n.lineno for n in node.body))
                fors[index].append((*body, node.iter))
            elif isinstance(node, ast.comprehension):
                holder = next(p for p in ast.walk(tree) if node in getattr(p, "generators", ()))
                fors[index].append((holder.lineno, holder.end_lineno or holder.lineno, node.iter))
        for stmt in tree.body:
            names.update(package_constants(stmt))
            mine = {}
            for node in ast.walk(stmt):
                if _is_budget(node):
                    mine[node] = _add_knobs(knobs, node, index, _labels(node, parents), names)
                    inline[index] |= set(mine[node])
            own = {k for ks in mine.values() for k in ks}
            # what the statement sees, data included: the network it trains carries its width
            used = _loads(stmt)
            direct, carried = own | _closure(used, bound, defs), own | _closure(used, carry, defs)
            spans[index].append((stmt.lineno, stmt.end_lineno or stmt.lineno, direct, carried))
            constants[index].append({names[n] for n in used if n in names and _is_int(names[n])})
            if isinstance(stmt, ast.FunctionDef | ast.ClassDef):
                defs[stmt.name] = ({k for ks in mine.values() for k in ks}, _loads(stmt))
            elif isinstance(stmt, ast.Assign):
                _bind(stmt, mine, bound, names)
                made = own | _closure(_loads(stmt.value), carry, defs)
                for target in stmt.targets:
                    for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if isinstance(t, ast.Name):
                            carry[t.id] = made
                        elif isinstance(t, ast.Subscript | ast.Attribute):  # RESULTS[key] = ...: a part
                            base = t
                            while isinstance(base, ast.Subscript | ast.Attribute):
                                base = base.value
                            if isinstance(base, ast.Name):
                                carry[base.id] = carry.get(base.id, set()) | made
    reach = {i: inline[i] | _closure(loads[i], bound, defs) for i in inline}
    statements = spans
    calls = {id(c): ks for c, ks in _budget_index(knobs, fors)}
    loops = {
        i: [(a, b, _iter_knobs(it, bound, calls)) for a, b, it in fors[i] if _iter_knobs(it, bound, calls)]
        for i in fors
    }
    return Lecture(knobs, reach, names, statements, loops, constants)


def _budget_index(knobs: list[Knob], fors: dict) -> list:
    """(budget call node, its knobs) for the budget calls written inside a for's iterable."""
    out = []
    for cell, entries in fors.items():
        for _, _, it in entries:
            for node in ast.walk(it):
                if _is_budget(node):
                    out.append(
                        (node, {i for i, k in enumerate(knobs) if (k.cell, k.line) == (cell, node.lineno)})
                    )
    return out


def _iter_knobs(it: ast.expr, bound: dict[str, set[int]], calls: dict[int, set[int]]) -> set[int]:
    """The knobs whose size a for's iterable is: budget calls and names bound to knobs in it
    (``SEEDS``, ``range(N)``, ``zip(M_LIST, ...)``), but not the items of a literal list or
    tuple nor names inside a lambda (``for make in [lambda: Net(WIDTH), ...]`` runs twice)."""
    found: set[int] = set()
    todo = [it]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict | ast.Lambda):
            continue
        found |= calls.get(id(node), set())
        if isinstance(node, ast.Name):
            found |= bound.get(node.id, set())
        todo.extend(ast.iter_child_nodes(node))
    return found


def _add_knobs(knobs: list[Knob], call: ast.Call, cell: int, label: str, names: dict) -> list[int]:
    """Evaluate a budget call at every level; a dict value gives one knob per key."""
    values = {}
    for kw in call.keywords:
        try:
            values[kw.arg] = _evaluate(kw.value, names)
        except Exception:
            return []
    if not {"ci", "cpu", "gpu"} <= set(values):
        return []
    paper = values.get("paper") is not None
    if not paper:
        values["paper"] = values["gpu"]
    if all(isinstance(values[lv], dict) for lv in LEVELS):
        keys = [k for k in values["ci"] if all(k in values[lv] for lv in LEVELS)]
        new = [Knob(cell, call.lineno, str(k), {lv: values[lv][k] for lv in LEVELS}, paper) for k in keys]
    else:
        new = [Knob(cell, call.lineno, label, values, paper)]
    knobs.extend(new)
    return list(range(len(knobs) - len(new), len(knobs)))


def package_constants(stmt: ast.stmt) -> dict[str, Any]:
    """The plain-data constants (numbers, strings, and dicts, lists and tuples of them) that a
    top-level ``from gencourse.X import NAME`` brings into a lecture, by name: a protocol the
    package holds once (``pacgan.MIXTURE_CPU_PROTOCOL``) reads as if the lecture had written it."""
    if not (isinstance(stmt, ast.ImportFrom) and (stmt.module or "").split(".")[0] == "gencourse"):
        return {}
    import importlib

    module = importlib.import_module(stmt.module)
    found = {}
    for alias in stmt.names:
        value = getattr(module, alias.name, None)
        if _plain(value):
            found[alias.asname or alias.name] = value
    return found


def _plain(value: Any) -> bool:
    """Numbers, strings, booleans, None, and dicts, lists and tuples of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, list | tuple) and all(_plain(v) for v in value)


def _bind(stmt: ast.Assign, mine: dict, bound: dict[str, set[int]], names: dict[str, Any]) -> None:
    """Record the knobs a top-level assignment binds, and the literal values it defines."""
    value = stmt.value
    for target in stmt.targets:
        pairs = (
            list(zip(target.elts, value.elts, strict=False))
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
            else [(target, value)]
        )
        for t, v in pairs:
            targets = [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
            found = {k for node, ks in mine.items() for k in ks if any(node is n for n in ast.walk(v))}
            if _safe_only(v):
                found |= {k for n in _loads(v) for k in bound.get(n, ())}
            for name in targets:
                if found:
                    bound[name] = found
                else:
                    bound.pop(name, None)
            if isinstance(t, ast.Name) and _safe_only(v) and not any(_is_budget(n) for n in ast.walk(v)):
                try:
                    names[t.id] = _evaluate(v, names)
                except Exception:
                    names.pop(t.id, None)


def _closure(start: set[str], bound: dict[str, set[int]], defs: dict) -> set[int]:
    """The knobs seen through ``start``'s names: bound ones, and those of the functions called."""
    seen, todo, out = set(), list(start), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        out |= bound.get(name, set())
        if name in defs:
            out |= defs[name][0]
            todo.extend(defs[name][1])
    return out


def notebook_cells(notebook: Path) -> list[str]:
    """The sources of a notebook's code cells, in order (the cells :func:`run_notebook` numbers)."""
    import nbformat

    nb = nbformat.read(Path(notebook), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


# --------------------------------------------------------------------------------------------
# lecture 4 at `paper`, one setting, on a real GPU (make gpu-check)

PACGAN_NOTEBOOK = Path(__file__).resolve().parents[1] / "lectures" / "04_mode_collapse_pacgan.ipynb"
PACGAN_SETTINGS = 11  # Table 1: GAN and PacGAN2-4 on the ring and the grid, unrolled GAN, two controls


def paper_protocol(notebook: Path = PACGAN_NOTEBOOK) -> dict[str, Any]:
    """Lecture 4's ``PROTOCOL`` at the `paper` level, its number of runs per setting and its
    batch and maxout pieces, read from the lecture's own ``budget(...)`` calls and constants."""
    lecture = read_lecture(notebook_cells(notebook))
    steps = next(k for k in lecture.knobs if k.label == "steps" and "g_hidden" in _call_labels(lecture, k))
    protocol = {
        k.label: k.values["paper"] for k in lecture.knobs if (k.cell, k.line) == (steps.cell, steps.line)
    }
    runs = next(k for k in lecture.knobs if k.label == "SEEDS").values["paper"]
    return {
        **protocol,
        "runs": runs,
        "batch": lecture.names["BATCH"],
        "pieces": lecture.names["PIECES"],
        "table1": lecture.names.get("PAPER_TABLE1", {}),
    }


def _call_labels(lecture: Lecture, knob: Knob) -> set[str]:
    return {k.label for k in lecture.knobs if (k.cell, k.line) == (knob.cell, knob.line)}


class _Cap(Exception):
    """Raised by :func:`paper_probe`'s evaluation to end the run at its time cap (the training
    loop has no stop hook)."""


def paper_probe(
    seconds: float,
    eval_every: int = 1000,
    notebook: Path = PACGAN_NOTEBOOK,
    data_name: str = "grid",
    pack: int = 1,
    max_updates: int | None = None,
) -> dict[str, Any]:
    """Train one setting of lecture 4's Table 1 (``data_name`` "grid" or "ring", packing degree
    ``pack``: 1 the GAN, m PacGANm; all its runs as one ensemble, as the lecture does) at the
    `paper` protocol on the course's device, as one run of ``train_pacgan``, and stop it at the
    first evaluation (every ``eval_every`` updates) after ``seconds``. Returns the paper's metrics
    at each evaluation reached (mean and sd, ddof 1, over the runs, as the lecture: a run without
    high-quality samples has no reverse KL and is left out of its mean), beside the paper's row of
    Table 1, the measured seconds per update (between the first and the last evaluation: the
    first window allocates and warms up) and its extrapolation to the protocol's updates: one
    setting, and the lecture's :data:`PACGAN_SETTINGS` settings (a lower bound: the unrolled GAN
    and the 4× batch cost more per update). ``max_updates`` stops the run there (a test, or a
    shorter look). Raises if a generated point is not finite."""
    import numpy as np

    from gencourse.data import grid_mixture, ring_mixture
    from gencourse.pacgan import MaxoutDiscriminator, PacGANGenerator, mode_stats, train_pacgan
    from gencourse.runtime import get_device

    if data_name not in ("grid", "ring") or not 1 <= pack <= 4:
        raise ValueError(f"a setting of Table 1 is grid or ring with pack 1 to 4, got {data_name!r}, {pack}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be a positive number of updates, got {eval_every}")
    p, device = paper_protocol(notebook), get_device()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    mix = grid_mixture() if data_name == "grid" else ring_mixture()
    torch.manual_seed(0)
    g = PacGANGenerator(
        2,
        p["g_hidden"],
        p["g_depth"],
        2,
        members=p["runs"],
        batch_norm=p["g_batch_norm"],
        init_std=p["init_std"],
    ).to(device)
    d = MaxoutDiscriminator(
        2 * pack, p["d_hidden"], p["pieces"], 3, members=p["runs"], init_std=p["init_std"]
    ).to(device)
    data = mix.sample(100_000, torch.Generator().manual_seed(1))
    total = p["steps"] if max_updates is None else min(max_updates, p["steps"])
    keys = ("modes", "high_quality", "reverse_kl")
    evaluations: list[dict[str, Any]] = []
    member: list[dict] = []
    clock = [(0, 0.0)]  # (updates, seconds) at the start and at every evaluation

    def evaluate(points: torch.Tensor) -> dict:
        """The metrics of one run; after the last run of an evaluation, its summary and the cap."""
        if not torch.isfinite(points).all():
            raise RuntimeError(f"a generated point is not finite after {clock[-1][0]} updates or more")
        stats = mode_stats(points, mix.centers, mix.std)
        member.append(stats)
        if len(member) == p["runs"]:
            sync()
            step = min((len(evaluations) + 1) * eval_every, total)
            clock.append((step, time.perf_counter() - begin))
            row = {"updates": step, "seconds": clock[-1][1]}
            for key, scale in zip(keys, (1, 100, 1), strict=True):
                values = scale * np.array([m[key] for m in member], dtype=float)
                values = values[~np.isnan(values)]  # as the lecture: runs without the number dropped
                mean = float(values.mean()) if len(values) else math.nan
                row[key] = [mean, float(values.std(ddof=1)) if len(values) > 1 else math.nan]
            row["runs_with_high_quality"] = sum(m["high_quality"] > 0 for m in member)
            evaluations.append(row)
            member.clear()
            if clock[-1][1] >= seconds and step < total:
                raise _Cap
        return stats

    begin = time.perf_counter()
    try:
        train_pacgan(
            g, d, data, total, pack=pack, batch_size=p["batch"], lr=p["lr"], lr_d=p["lr_d"],
            betas=p["betas"], lr_end=p["lr_end"], seed=0, eval_every=eval_every, evaluate=evaluate,
            n_eval=2_500, desc=f"lecture 4 at paper, {data_name} m={pack}",
        )  # fmt: skip
    except _Cap:
        pass
    (s0, t0), (s1, t1) = clock[1 if len(clock) > 2 else 0], clock[-1]
    per_update = (t1 - t0) / (s1 - s0)
    name = "GAN" if pack == 1 else f"PacGAN{pack}"
    paper_row = p.get("table1", {}).get(name, {}).get(data_name)  # modes, high-quality %, reverse KL
    return {
        "setting": f"{name} on the {data_name} (Table 1), all runs as one ensemble",
        "device": str(device),
        "protocol": {k: v for k, v in p.items() if k != "table1"},
        "updates_run": clock[-1][0],
        "completed": clock[-1][0] == p["steps"],
        "seconds": time.perf_counter() - begin,
        "seconds_per_update": per_update,
        "one_setting_min": per_update * p["steps"] / 60,
        "table_min_lower_bound": per_update * p["steps"] * PACGAN_SETTINGS / 60,
        "evaluations": evaluations,  # mean and sd over the runs
        "paper": None if paper_row is None else dict(zip(keys, paper_row.values(), strict=True)),
    }


# --------------------------------------------------------------------------------------------
# from the counts at `ci` to the time at `gpu` (or `paper`)

# How a knob that a loop's cell can see, other than its steps, changes the loop's work, by its
# label (the name or keyword of the budget call):
STEPS = re.compile(r"step|update|iter", re.I)  # the length of a loop: never a repetition of another
WIDTH = re.compile(r"width|hidden|channel|latent|dim", re.I)  # each kernel: FLOPs × r², bytes × r
SPATIAL = re.compile(r"size|side|resolution|pixel", re.I)  # an image's side: FLOPs and bytes × r²
REPEAT = re.compile(r"layer|depth", re.I)  # the network's kernels per step, r times
REPEAT_CALL = re.compile(r"unroll|epoch|critic", re.I)  # the same, when the training call is given it
EVALUATIONS = re.compile(r"curve|eval|every|log|plot|show", re.I)  # numbers of evaluations: not a batch
RULES = (
    "A knob that the statement which ran a loop can see (its top-level statement in the cell, "
    "directly or through the names, data and the lecture's functions it uses) scales the loop "
    "by its ratio r = value at the level / value at `ci`. A knob that a `for` around the loop "
    "iterates (`for seed in SEEDS`, `for m in M_LIST`) runs the loop r times, as does one whose "
    "label says it repeats the step's kernels (layer, depth; unroll, critic, epoch where the "
    "statement names it). A channel width (a label with width, hidden, channel, latent or dim) "
    "makes every kernel r² times the FLOPs (in × out) and r times the bytes (activations), the "
    "largest r where there are several (each network has its own width); an image's side (size, "
    "side) r² times both (pixels); a batch (by its label, or a count whose `ci` value is a "
    "dimension of the regular steps' tensors: seeds stacked into one ensemble, images fitted "
    "side by side; below 3, where a dimension says nothing, any count but one whose label says "
    "it counts evaluations: curve, eval, every, log, plot, show) r times both. Any other count "
    "(evaluation sizes, numbers of evaluations) scales only the work that some steps do besides "
    "the regular step (evaluations, logging), which grows by the largest ratio the statement "
    "sees. A knob that is a loop's length is never a repetition of another loop; a loop whose "
    "length matches no knob (a length derived from one, as steps // n_critic) is scaled by the "
    "largest ratio of the loop lengths its statement sees, one that is a module constant the "
    "statement names (DEMO_STEPS = 400) stays as it is. The work outside the loops, cell by "
    "cell: its kernels by the product of the ratios of the knobs its cell can see (other than "
    "loop lengths), its CPU time outside torch (Python, NumPy, plots; measured here, × "
    "cpu_factor for Colab's host) by the largest of them."
)


def _level_value(knob: Knob, steps: int, level: str) -> int | None:
    """The loop length at ``level`` that ``knob`` gives a loop of ``steps`` steps at `ci`, or None
    if the knob's `ci` value is not ``steps`` (a list of settings: its largest value at ``level``)."""
    ci, hi = knob.values["ci"], knob.values[level]
    if _is_int(ci) and _is_int(hi) and ci == steps:
        return hi
    if _int_list(ci) and _int_list(hi) and steps in ci:
        return max(hi)
    return None


def match_steps(
    steps: int, cell: int, lecture: Lecture, level: str, line: int | None = None
) -> tuple[int | None, set[int]]:
    """The loop's length at ``level`` from the knobs whose `ci` value is ``steps``: among those
    the statement that ran the loop sees first (cell ``cell``, ``line``), then those its cell
    sees, else among all of the lecture's; the largest where several match (conservative).
    Returns (length or None, the matched knobs)."""
    pools = (
        lecture.reach_at(cell, line, carried=False),
        lecture.reach_at(cell, line),
        lecture.reach.get(cell, set()),
        set(range(len(lecture.knobs))),
    )
    for pool in pools:
        found = {i: _level_value(lecture.knobs[i], steps, level) for i in pool}
        found = {i: v for i, v in found.items() if v is not None}
        if found:
            return max(found.values()), set(found)
    return None, set()


def knob_effect(
    knob: Knob, level: str, iterated: bool, dims: set[int], direct: bool = True
) -> tuple[str, float]:
    """("repeat" | "width" | "spatial" | "batch" | "occasional", r) for a knob that the
    statement running a loop sees (``direct``: through knob names and functions, not only
    through the data it uses), by :data:`RULES`: a ``for`` around the loop iterates it, or its
    label says it repeats the step's kernels (layers, depth; and, given to the call directly,
    unroll, critic steps, epochs): repeat; a batch (by its label); a channel width; an image's
    side; a count whose `ci` value is a dimension of the regular steps' tensors (``dims``; a
    value below 3 says nothing: a batch unless its label says it counts evaluations): a batch,
    each kernel bigger; any other count (evaluation sizes, numbers of evaluations): the
    occasional work only."""
    r = knob.ratio(level)
    if iterated or REPEAT.search(knob.label) or (direct and REPEAT_CALL.search(knob.label)):
        return "repeat", r
    if REPEAT_CALL.search(knob.label):  # given to another call, seen here through its results
        return "occasional", r
    if "batch" in knob.label.lower():
        return "batch", r
    if WIDTH.search(knob.label):
        return "width", r
    if SPATIAL.search(knob.label):
        return "spatial", r
    ci = knob.values["ci"]
    value = len(ci) if _int_list(ci) else ci
    if (value >= 3 and value in dims) or (value < 3 and not EVALUATIONS.search(knob.label)):
        return "batch", r
    return "occasional", r


def _group_seconds(group: dict, device: Device, scale: tuple[float, float]) -> float:
    return tally_seconds(group["ops"], group["syncs"], device, *scale)


def step_knobs(records: list[dict], lecture: Lecture, level: str) -> set[int]:
    """The knobs that are loop lengths: matched by a loop's length, or labelled as steps."""
    matched = {
        i
        for r in records
        if r["kind"] == "loop"
        for i in match_steps(r["steps"], r["cell"], lecture, level, r.get("line"))[1]
    }
    return matched | {i for i, k in enumerate(lecture.knobs) if STEPS.search(k.label)}


def loop_seconds(
    records: list[dict], lecture: Lecture, level: str, device: Device = T4, lengths: set[int] = frozenset()
) -> dict[str, Any]:
    """The estimated time at ``level`` of one loop (all its runs at `ci`: ``records`` share the
    cell, description and length): n_ci runs × repetitions × (S_level × t_step + occasional work ×
    the largest other ratio), t_step being the time of the most frequent kind of step (by its
    number of kernels) with every kernel's work scaled by the widths and batches."""
    first = records[0]
    steps, cell, line = first["steps"], first["cell"], first.get("line")
    seen = lecture.reach_at(cell, line)
    length, matched = match_steps(steps, cell, lecture, level, line)
    if length is None and steps in lecture.constants_at(cell, line):  # DEMO_STEPS = 400: a constant
        length = steps
    if length is None:  # a length derived from a knob (steps // n_critic): the largest step knob seen
        ratio = max((lecture.knobs[i].ratio(level) for i in seen & lengths), default=None)
        if ratio is None:
            ratio = max((lecture.knobs[i].ratio(level) for i in lengths), default=1.0)
        length = round(steps * ratio)
    iterated, direct = lecture.iterated_at(cell, line), lecture.reach_at(cell, line, carried=False)
    others = [i for i in seen - matched - lengths if lecture.knobs[i].ratio(level) > 1]
    dims = {d for r in records for g in (r.get("groups") or [])[:1] for d in g.get("dims", [])}
    sizes = [
        k
        for i in others
        if knob_effect(k := lecture.knobs[i], level, False, set())[0] in ("width", "spatial")
    ]
    dims -= {k.values["ci"] for k in sizes if _is_int(k.values["ci"])}  # a width is not a batch
    effects = [
        (lecture.knobs[i].label, *knob_effect(lecture.knobs[i], level, i in iterated, dims, i in direct))
        for i in others
    ]
    widest = max((r for _, kind, r in effects if kind == "width"), default=1.0)
    pixels = max((r for _, kind, r in effects if kind == "spatial"), default=1.0) ** 2
    batch = math.prod(r for _, kind, r in effects if kind == "batch") * pixels
    work = (widest**2 * batch, widest * batch)  # FLOPs (in × out × batch), bytes (batch × width)
    repeat = math.prod(r for _, kind, r in effects if kind == "repeat")
    largest = max((r for *_, r in effects), default=1.0)
    regular, occasional = 0.0, 0.0
    for rec in records:
        groups = rec.get("groups") or []
        if not groups:
            continue
        main = groups[0]
        t_step = _group_seconds(main, device, work) / main["steps"]
        regular += t_step / len(records)
        occasional += sum(max(_group_seconds(g, device, work) - g["steps"] * t_step, 0.0) for g in groups[1:])
    seconds = repeat * (len(records) * length * regular + occasional * largest)
    return {
        "cell": cell,
        "line": line,
        "desc": first["desc"],
        "runs_ci": len(records),
        "steps_ci": steps,
        "steps": length,
        "matched": sorted(f"{lecture.knobs[i].label} (cell {lecture.knobs[i].cell})" for i in matched),
        "effects": [[label, kind, round(r, 3)] for label, kind, r in effects],
        "repeat": repeat,
        "flop_scale": work[0],
        "byte_scale": work[1],
        "step_s": regular,
        "seconds": seconds,
    }


def other_seconds(
    record: dict, lecture: Lecture, level: str, loop_knobs: set[int], device: Device = T4
) -> dict:
    """The estimated time at ``level`` of a cell's work outside its loops: its kernels on the
    GPU times the product of the ratios of the knobs the cell sees (other than loop lengths:
    nested loops over images and samples multiply), plus its host time (Python, NumPy, plots)
    × cpu_factor times the largest of those ratios (the arrays grow; the Python around each
    kernel is already in its launch floor)."""
    cell = record["cell"]
    ratios = [max(lecture.knobs[i].ratio(level), 1.0) for i in lecture.reach.get(cell, set()) - loop_knobs]
    factor, largest = math.prod(ratios), max(ratios, default=1.0)
    gpu = tally_seconds(record["ops"], record["syncs"], device)
    host = record["host_s"] * device.cpu_factor
    return {
        "cell": cell,
        "factor": factor,
        "ci_s": gpu + host,
        "seconds": gpu * factor + host * largest,
    }


def estimate_lecture(
    records: list[dict], lecture: Lecture, level: str, device: Device = T4
) -> dict[str, Any]:
    """The estimated seconds of a lecture at ``level`` from its `ci` records: every loop by
    :func:`loop_seconds` (grouped by cell, description and length), plus the work outside the
    loops by :func:`other_seconds`."""
    loops: dict[tuple, list[dict]] = {}
    for rec in records:
        if rec["kind"] == "loop":
            loops.setdefault((rec["cell"], rec.get("line"), rec["desc"], rec["steps"]), []).append(rec)
    lengths = step_knobs(records, lecture, level)
    loop_rows = [loop_seconds(group, lecture, level, device, lengths) for group in loops.values()]
    other_rows = [other_seconds(r, lecture, level, lengths, device) for r in records if r["kind"] == "other"]
    return {
        "seconds": sum(r["seconds"] for r in loop_rows) + sum(r["seconds"] for r in other_rows),
        "loops_s": sum(r["seconds"] for r in loop_rows),
        "other_s": sum(r["seconds"] for r in other_rows),
        "loops": sorted(loop_rows, key=lambda r: -r["seconds"]),
        "other": sorted(other_rows, key=lambda r: -r["seconds"])[:10],
    }


def estimate_all(records_dir: Path, lectures_dir: Path, device: Device = T4) -> dict[str, Any]:
    """The estimates of every lecture with records in ``records_dir`` (``<lecture>.jsonl``): at
    `gpu`, and at `paper` for the lectures with a ``paper=`` knob, with the model's constants."""
    from dataclasses import asdict

    out: dict[str, Any] = {"device": asdict(device), "rules": RULES, "lectures": {}}
    for path in sorted(Path(records_dir).glob("*.jsonl")):
        lecture = read_lecture(notebook_cells(Path(lectures_dir) / f"{path.stem}.ipynb"))
        records = read_records(path)
        entry: dict[str, Any] = {}
        for level in ("gpu", "paper"):
            if level == "paper" and not any(k.paper for k in lecture.knobs):
                entry["paper"] = None
                continue
            detail = estimate_lecture(records, lecture, level, device)
            entry[level] = detail["seconds"]
            entry[f"{level}_detail"] = detail
        entry["ci_wall_s"] = sum(r["wall_s"] for r in records if r["kind"] == "other")
        out["lectures"][path.stem] = entry
    return out


def _rounded(value: Any) -> Any:
    """``value`` with every float rounded to 4 significant digits (a readable estimates file)."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return float(f"{value:.4g}") if isinstance(value, float) else value


def main(argv: list[str] | None = None) -> int:
    """Command line: ``run`` notebooks with the counting on, ``estimate`` from the records, or
    time lecture 4's ``paper`` protocol on a GPU (``paper-probe``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gencourse.gpu_estimate", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks at `ci` with the counting on, one at a time")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--out", type=Path, default=Path("_build") / "flops-ci")
    est = sub.add_parser("estimate", help="the estimated times from the records")
    est.add_argument("--records", type=Path, default=Path("_build") / "flops-ci")
    est.add_argument("--lectures", type=Path, default=Path("lectures"))
    est.add_argument("--out", type=Path, default=Path("book") / "gpu_estimate.json")
    probe = sub.add_parser("paper-probe", help="lecture 4's `paper` protocol, one setting, time-capped")
    probe.add_argument("--seconds", type=float, default=1800, help="stop at the first evaluation after this")
    probe.add_argument("--data", choices=("grid", "ring"), default="grid", help="the setting's data set")
    probe.add_argument("--pack", type=int, default=1, help="packing degree: 1 the GAN, 2-4 PacGAN2-4")
    probe.add_argument("--eval-every", type=int, default=1000, help="updates between evaluations")
    probe.add_argument("--out", type=Path, default=Path("_build") / "paper-probe.json")
    args = parser.parse_args(argv)
    if args.command == "run":
        for notebook in args.notebooks:
            print(f"{notebook}: {run_notebook(notebook, args.out):.0f} s with the counting on", flush=True)
    elif args.command == "estimate":
        result = _rounded(estimate_all(args.records, args.lectures))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        for name, e in result["lectures"].items():
            paper = "" if e["paper"] is None else f", paper {e['paper'] / 60:.0f} min"
            print(f"{name}: gpu {e['gpu'] / 60:.1f} min{paper}")
    else:
        result = paper_probe(args.seconds, args.eval_every, data_name=args.data, pack=args.pack)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(
            f"lecture 4 at `paper`, {result['setting']}: {result['updates_run']} updates in "
            f"{result['seconds']:.0f} s, {result['seconds_per_update'] * 1e3:.2f} ms per update: "
            f"{result['one_setting_min']:.0f} min for one setting's {result['protocol']['steps']} updates, "
            f"at least {result['table_min_lower_bound']:.0f} min for the {PACGAN_SETTINGS} settings"
        )
        last, paper = result["evaluations"][-1], result["paper"] or {}
        for key in ("modes", "high_quality", "reverse_kl"):
            print(
                f"  {key} after {last['updates']} updates: {last[key][0]:.2f} ± {last[key][1]:.2f} over "
                f"{result['protocol']['runs']} runs (paper, after {result['protocol']['steps']}: {paper.get(key)})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
