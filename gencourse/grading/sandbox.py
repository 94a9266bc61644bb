"""The grader's side of running one submission: a fresh folder, a separate process, time and
resource limits, clean-up, and strict reading of what the process reports.

Each submission runs in a process of its own, forked by a :class:`ForkServer`: a helper process
that imports torch and NumPy once (the seconds of ``import torch`` are not paid per submission)
and forks a fresh copy of itself for each submission. The server never runs student code, so
each copy starts clean; it begins by doing what a ``preexec_fn`` would (a new session, resource
limits, output files, closing descriptors: see :func:`gencourse.grading.harness.run_child`). The
grader waits for it with a wall-clock time limit and then kills its whole process group, whether
it finished or not, so nothing it started survives. Its stdout and stderr go to files whose size
the process limits itself (``RLIMIT_FSIZE``), and the grader reads only an excerpt of them.
"""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
import os
import queue
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencourse.grading.plain import PlainError, validate

PRELOAD = (  # imported once by the fork server: what notebooks and probes use, and torch's lazy imports
    "numpy",
    "scipy.special",
    "torch",
    "torch._dynamo",  # imported by the first torch.optim optimizer: 5 s otherwise
    "matplotlib.pyplot",
    "sklearn.linear_model",
    "gencourse.runtime",
    "gencourse.data",
    "gencourse.nets",
    "gencourse.grading.plain",
    "gencourse.grading.probes",
    "gencourse.grading.isolation",
)
MAX_RESULTS_BYTES = 32 * 2**20
EXCERPT_CHARS = 3_000
MAX_CELLS = 10_000


@dataclass(frozen=True)
class Limits:
    """Limits for one submission: wall-clock seconds for the whole run, for one cell and for one
    probe; bytes of memory (address space beyond the interpreter's) and of any one file; files it
    may create; CPU threads."""

    timeout: float = 180.0
    cell_timeout: float = 60.0
    probe_timeout: float = 20.0
    memory: int = 4 * 2**30
    file_size: int = 16 * 2**20
    max_files: int = 500
    threads: int = 1
    processes: int = 64
    scratch_bytes: int = 256 * 2**20

    def to_json(self) -> dict[str, Any]:
        return {
            "memory": self.memory,
            "cpu": int(self.timeout) + 10,
            "file_size": self.file_size,
            "max_files": self.max_files,
            "cell_timeout": self.cell_timeout,
            "probe_timeout": self.probe_timeout,
            "processes": self.processes,
        }


@dataclass
class Outcome:
    """What one run produced: the validated ``results`` (or ``None``) and the ``problems`` met
    reading them, whether it ran out of time, its exit code and excerpts of its output, the
    run's wall-clock seconds (from the request, including a first start of the fork server) and
    the process's own (from its fork to its exit)."""

    results: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    timed_out: bool = False
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    process_seconds: float | None = None  # from the fork to the exit, as the server saw them


def _real(path: str | Path) -> str:
    return os.path.realpath(str(path))


def read_roots() -> tuple[str, ...]:
    """What a submission may read besides its folder: the Python installation (standard library
    and site-packages), the course package, and /dev/null and /dev/urandom."""
    import gencourse

    paths = sysconfig.get_paths()
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots |= {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.add(str(Path(gencourse.__file__).parent))
    roots |= {"/dev/null", "/dev/urandom", "/dev/random"}
    return tuple(sorted({_real(r) for r in roots if r and _real(r) != "/"}))


def interpreter_paths() -> tuple[str, ...]:
    """The paths by which the interpreter knows its installation and the course package (not
    resolved: a virtual environment may be reached through a symbolic link)."""
    import gencourse

    paths = sysconfig.get_paths()
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(gencourse.__file__).parent)}
    found |= {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    found |= {p for p in sys.path if p.startswith("/")}
    return tuple(sorted(p for p in found if p and p != "/"))


def module_files(modules: tuple[str, ...]) -> tuple[str, ...]:
    """The source and bytecode files of ``modules`` (so that they cannot be read and executed),
    and the folder of a module that is a package."""
    files = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        files += [_real(p) for p in spec.submodule_search_locations or ()]
        files.append(_real(spec.origin))
        if spec.origin.endswith(".py"):
            files.append(_real(importlib.util.cache_from_source(spec.origin)))
            pycache = Path(spec.origin).parent / "__pycache__"
            files += [_real(p) for p in pycache.glob(f"{Path(spec.origin).stem}.*.pyc")]
    return tuple(files)


SERVER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}
# the only variables of the grader's environment that the server (and so any submission) sees:
# no tokens or credentials that CI or the instructor's shell may hold
PASSED_ENV = (
    "HOME",
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "LD_LIBRARY_PATH",
)


class ForkServer:
    """A fork server (see the module's docstring): ``run(request, timeout)`` runs
    :func:`gencourse.grading.harness.run_child` in a fresh forked process and returns its exit
    code, or ``None`` if it was killed at the time limit. The server process starts at the first
    run. Thread-safe; use it as a context manager (closing it stops the server and everything it
    started)."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD, start_timeout: float = 600.0) -> None:
        self.preload, self.start_timeout = preload, start_timeout
        self._process: subprocess.Popen | None = None
        self._cwd: str | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._waiting: dict[int, queue.Queue] = {-1: queue.Queue()}

    def _start(self) -> subprocess.Popen:
        """Start the server process (once) and wait until it has imported ``preload``."""
        if self._process is not None:
            return self._process
        self._cwd = tempfile.mkdtemp(prefix="gencourse-forkserver-")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gencourse.grading.harness", "--serve", *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=self._cwd,
            env={**{k: v for k, v in os.environ.items() if k in PASSED_ENV}, **SERVER_ENV},
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self._process,), daemon=True).start()
        if not self._get(-1, self.start_timeout).get("ready"):
            raise RuntimeError("the grading fork server did not start")
        return self._process

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            message = json.loads(line)
            self._waiting.get(message.get("id", -1), self._waiting[-1]).put(message)
        for q in list(self._waiting.values()):
            q.put({"dead": True})

    def _get(self, key: int, timeout: float) -> dict[str, Any]:
        try:
            return self._waiting[key].get(timeout=timeout)
        except queue.Empty:
            return {"timeout": True}

    def run(
        self, request: dict[str, Any], timeout: float, timing: dict[str, float] | None = None
    ) -> int | None:
        """Run one request; return the exit code, or ``None`` if it ran out of time. ``timing``
        receives the monotonic times at which the process was forked and was reaped."""
        timing = {} if timing is None else timing
        key = next(self._ids)
        self._waiting[key] = queue.Queue()
        try:
            with self._lock:
                process = self._start()
                process.stdin.write((json.dumps({"id": key, "request": request}) + "\n").encode())
                process.stdin.flush()
            started = self._get(key, 120.0)
            if "pid" not in started:
                raise RuntimeError("the grading fork server stopped")
            pid = started["pid"]
            timing["forked"] = time.monotonic()
            try:
                ended = self._get(key, timeout)
                if "timeout" in ended:
                    _kill_group(pid)
                    self._get(key, 30.0)
                    return None
                if "dead" in ended:
                    raise RuntimeError("the grading fork server stopped")
                timing["ended"] = time.monotonic()
                return ended["exit"]
            finally:
                _kill_group(pid)  # whatever the submission left running
        finally:
            self._waiting.pop(key, None)

    def close(self) -> None:
        """Stop the server (it kills its remaining children when its stdin closes)."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(self._cwd, ignore_errors=True)

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill_group(pid: int | None) -> None:
    """SIGKILL the process group that the submission's process leads (it called setsid), with
    everything still in it; nothing happens if there is no such group."""
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _excerpt(path: Path, chars: int = EXCERPT_CHARS) -> str:
    """The start and the end of a (possibly huge) output file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if size <= 2 * chars:
                return f.read().decode("utf-8", "replace")
            head = f.read(chars).decode("utf-8", "replace")
            f.seek(size - chars)
            tail = f.read(chars).decode("utf-8", "replace")
        return f"{head}\n[... {size - 2 * chars:,} bytes not shown ...]\n{tail}"
    except OSError:
        return ""


def read_regular_file(fd: int, limit: int) -> tuple[bytes | None, str | None]:
    """The bytes behind the open descriptor ``fd``, or ``None`` and why not: ``"not regular"``
    for anything but a regular file (a FIFO or a device could block the batch), ``"too large"``
    beyond ``limit`` bytes (checked before and while reading, as the file may grow). Closes ``fd``."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "not regular"
        if info.st_size > limit:
            return None, "too large"
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                return None, "too large"
        return b"".join(chunks), None
    finally:
        os.close(fd)


def _read_bounded(path: Path) -> tuple[bytes | None, str | None]:
    """The bytes of a file that the submission's process wrote: no symlinks, no FIFOs, no more
    than ``MAX_RESULTS_BYTES``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, "no results were written"
    except OSError as exc:
        return None, f"the results file could not be opened ({exc.strerror})"
    data, problem = read_regular_file(fd, MAX_RESULTS_BYTES)
    if problem == "not regular":
        return None, "the results file is not a regular file"
    if problem == "too large":
        return None, f"the results file is larger than {MAX_RESULTS_BYTES:,} bytes"
    return data, None


def read_results_log(data: bytes) -> tuple[Any, list[str]]:
    """Fold the harness's results log (one JSON object per line: ``{"token"}`` first, then
    ``{"cell", "error"}``, ``{"probe", "value"}``, ``{"public", "passed", "failed"}``,
    ``{"seconds"}``, ``{"done"}``; a later line for the same cell, probe or question replaces an
    earlier one) into the object that :func:`check_results` validates. Lines that are not JSON
    (a run killed mid-line) are skipped and counted."""
    obj: dict[str, Any] = {"token": None, "cells": [], "probes": {}, "public": {}, "done": False}
    cells: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    skipped = 0
    for index, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        try:
            event = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError, UnicodeDecodeError):
            skipped += 1
            continue
        if type(event) is not dict:
            skipped += 1
            continue
        if index == 0:
            obj["token"] = event.get("token")
        elif "cell" in event:
            if len(cells) < MAX_CELLS or event["cell"] in cells:
                cells[event["cell"] if type(event["cell"]) is int else -1] = event
        elif "probe" in event and type(event["probe"]) is str:
            obj["probes"][event["probe"]] = event.get("value")
        elif "public" in event and type(event["public"]) is str:
            obj["public"][event["public"]] = event
        elif "seconds" in event:
            obj["seconds"] = event["seconds"]
        elif event.get("done") is True:
            obj["done"] = True
        else:
            skipped += 1
    obj["cells"] = list(cells.values())
    if skipped:
        problems.append(f"{skipped} malformed line(s) of the results were ignored")
    return obj, problems


def check_results(
    obj: Any, token: str, probe_ids: set[str], questions: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """Validate a results object field by field; keep what is well formed, report the rest.

    Only the probes and questions that the grader asked for are kept, each probe value must be
    a valid plain value (:func:`gencourse.grading.plain.validate`), and the file must carry this
    run's random token.
    """
    if type(obj) is not dict:
        return {}, ["the results are not a JSON object"]
    if obj.get("token") != token:
        return {}, [
            "the results do not carry this run's token (they were not written by the grader's harness)"
        ]
    problems: list[str] = []
    clean: dict[str, Any] = {"cells": [], "probes": {}, "public": {}, "done": obj.get("done") is True}
    seconds = obj.get("seconds")
    if type(seconds) is dict and all(type(k) is str and type(v) in (int, float) for k, v in seconds.items()):
        clean["seconds"] = {k[:20]: float(v) for k, v in list(seconds.items())[:10]}
    cells = obj.get("cells")
    if type(cells) is list and len(cells) <= MAX_CELLS:
        for entry in cells:
            if (
                type(entry) is dict
                and type(entry.get("cell")) is int
                and (entry.get("error") is None or type(entry.get("error")) is str)
            ):
                error = entry["error"][:2000] if entry["error"] else None
                clean["cells"].append({"cell": entry["cell"], "error": error})
            else:
                problems.append("a malformed cell entry was ignored")
                break
    probes = obj.get("probes")
    if type(probes) is dict:
        for key, value in probes.items():
            if key not in probe_ids:
                problems.append(f"an unexpected result {str(key)[:40]!r} was ignored")
                continue
            try:
                clean["probes"][key] = validate(value)
            except PlainError as exc:
                clean["probes"][key] = {"kind": "error", "message": f"malformed result ({exc})"}
    public = obj.get("public")
    if type(public) is dict:
        for question, value in public.items():
            if (
                question in questions
                and type(value) is dict
                and type(value.get("passed")) is int
                and type(value.get("failed")) is list
                and all(type(f) is str for f in value["failed"])
            ):
                clean["public"][question] = {
                    "passed": value["passed"],
                    "failed": [f[:300] for f in value["failed"][:20]],
                }
    return clean, problems


def remove_tree(path: Path) -> None:
    """Delete a run's folder, whatever the submission left in it."""

    def retry(func, target, exc_info):
        try:
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


def run_notebook(
    cells: list[str],
    probes: list[dict[str, Any]],
    public_tests: dict[str, list[str]],
    *,
    server: ForkServer,
    limits: Limits,
    env: dict[str, str],
    forbidden_modules: tuple[str, ...] = (),
    preload: tuple[str, ...] = (),
    deny: tuple[str | Path, ...] = (),
    questions: set[str] = frozenset(),
    files: dict[str, bytes] | None = None,
    isolated: bool = True,
) -> Outcome:
    """Run a notebook's code ``cells`` in a fresh process (whose folder holds ``files``, a copy
    of the submission), then its ``probes`` and ``public_tests``, and return the validated
    :class:`Outcome`.

    ``isolated`` (the default) runs it in the operating system's sandbox of
    :mod:`gencourse.grading.isolation`: its plan names only what it can see (its scratch folder,
    the Python installation, the course package with the answer modules emptied). Without it
    (``--unsafe-no-sandbox``) only the audit hook stands between the notebook and the machine,
    and ``deny`` lists the paths it is told to refuse.
    """
    run_root = Path(tempfile.mkdtemp(prefix="gencourse-grade-")).resolve()
    try:
        token = secrets.token_hex(16)
        roots = read_roots()
        masks = module_files(forbidden_modules)
        for name in ("stdout.txt", "stderr.txt", "results.jsonl"):
            _new_file(run_root / name)
        plan: dict[str, Any] = {
            "isolated": isolated,
            "forbidden_modules": list(forbidden_modules),
            "preload": list(preload),
            "env": env,
            "threads": limits.threads,
            "limits": limits.to_json(),
            "token": token,
            "cells": cells,
            "probes": probes,
            "public_tests": public_tests,
        }
        if isolated:
            from gencourse.grading.isolation import DEVICES, SCRATCH, make_view

            view = make_view(roots, masks, limits.scratch_bytes, limits.max_files + 16, interpreter_paths())
            plan["view"] = view.to_json()
            plan["files"] = {
                Path(name).name: base64.b64encode(content).decode() for name, content in (files or {}).items()
            }
            plan["sandbox"] = SCRATCH
            plan["read_roots"] = sorted({*view.binds, *view.links, *DEVICES})
            plan["deny_roots"] = list(view.masks)
        else:
            sandbox = run_root / "sandbox"
            sandbox.mkdir()
            for name, content in (files or {}).items():
                (sandbox / Path(name).name).write_bytes(content)
            plan["sandbox"] = str(sandbox)
            plan["read_roots"] = list(roots)
            plan["deny_roots"] = [_real(d) for d in (*deny, run_root)] + list(masks)
        plan_path = run_root / "plan.json"
        plan_path.write_text(json.dumps(plan), encoding="utf-8")
        request = {
            "plan": str(plan_path),
            "stdout": str(run_root / "stdout.txt"),
            "stderr": str(run_root / "stderr.txt"),
            "results": str(run_root / "results.jsonl"),
        }
        started = time.monotonic()
        timing: dict[str, float] = {}
        exit_code = server.run(request, limits.timeout, timing=timing)
        outcome = Outcome(results=None, timed_out=exit_code is None, exit_code=exit_code)
        outcome.seconds = time.monotonic() - started
        if "forked" in timing and "ended" in timing:
            outcome.process_seconds = timing["ended"] - timing["forked"]
        outcome.stdout = _excerpt(run_root / "stdout.txt")
        outcome.stderr = _excerpt(run_root / "stderr.txt")
        data, problem = _read_bounded(run_root / "results.jsonl")
        if problem or not data:
            outcome.problems.append(problem or "no results were written")
        else:
            raw, problems = read_results_log(data)
            ids = {p["id"] for p in probes}
            outcome.results, more = check_results(raw, token, ids, questions)
            outcome.problems += problems + more
            if not outcome.results:
                outcome.results = None
        return outcome
    finally:
        remove_tree(run_root)
