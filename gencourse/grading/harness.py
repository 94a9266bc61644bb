"""The submission's side of grading: runs one notebook in a sandboxed process and probes it.

:func:`run_child` is the entry point of the process that :mod:`gencourse.grading.sandbox` starts
for one submission. Before any student code runs it

1. becomes the leader of a new session (so the grader can kill it with everything it started),
   sends stdout and stderr to files, takes the results file as descriptor 3, and closes every
   other descriptor;
2. enters the operating system's sandbox (:func:`gencourse.grading.isolation.enter`: new
   namespaces, a root file system holding only the Python installation, the course package
   without the answer modules and its scratch folder), unless the instructor asked for
   ``--unsafe-no-sandbox``;
3. sets resource limits (address space, CPU time, file size, open files, processes; hard =
   soft, so they cannot be raised), moves into its scratch folder, keeps only a few environment
   variables, and points ``HOME``, ``TMPDIR`` and the caches there;
4. installs an *audit hook* (:pep:`578`) as a second layer, which refuses opening files outside
   the view, writing outside the scratch folder, links, starting processes, signals, sockets,
   ``ctypes``, building code objects, the garbage collector's object lists, trace functions,
   new audit hooks, raising limits and importing the answers' modules. CPython's documentation
   says that audit hooks are no sandbox, and the test suite has notebooks that defeat this one
   (torch's C++ file I/O, ``dir_fd``, memory writes through NumPy's array interface): the
   boundary is the operating system's sandbox; the hook only gives clearer messages and makes
   the common attempts fail early.

It then executes the notebook's code cells, each in ``try/except BaseException`` with a time limit
(``sys.exit`` or an exception ends one cell, not the run), calls the student's functions on the
grader's probe inputs (:func:`gencourse.grading.probes.evaluate`, each with a time limit), and
writes each plain result as a line to descriptor 3 as soon as it has it. The grader trusts none of
it: it validates the file and judges the values itself.
"""

from __future__ import annotations

import builtins
import doctest
import io
import json
import os
import resource
import select
import signal
import sys
import time
import types
from typing import Any

STUB_OTTER = '''
"""Stand-in for otter inside the grading sandbox: grader.check does nothing here."""


class Notebook:
    def __init__(self, *args, **kwargs):
        pass

    def check(self, *args, **kwargs):
        return None

    def check_all(self, *args, **kwargs):
        return None

    def export(self, *args, **kwargs):
        return None

    def to_pdf(self, *args, **kwargs):
        return None
'''

REFUSED_EVENTS = (
    "os.system",
    "os.exec",
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.spawn",
    "os.startfile",
    "subprocess.Popen",
    "pty.spawn",
    "os.kill",
    "os.killpg",
    "signal.pthread_kill",
    "os.chmod",
    "os.lchmod",
    "os.chown",
    "os.lchown",
    "os.chflags",
    "os.lchflags",
    "os.utime",
    "os.link",
    "os.symlink",
    "os.setxattr",
    "os.removexattr",
    "sys.settrace",
    "sys.setprofile",
    "sys._current_frames",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "code.__new__",
    "resource.setrlimit",
    "resource.prlimit",
    "sqlite3.connect",
    "sqlite3.connect/handle",
    "sqlite3.enable_load_extension",
    "sqlite3.load_extension",
)
REFUSED_PREFIXES = (
    "ctypes.",
    "socket.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "imaplib.",
    "poplib.",
    "nntplib.",
    "telnetlib.",
    "webbrowser.",
    "_winapi.",
    "winreg.",
    "msvcrt.",
)
REFUSED_IMPORTS = ("_posixsubprocess", "_ctypes", "ctypes")


RESULTS_FD = 3
ENDED_IN_CELL = "the process ended while this cell ran (os._exit, a signal, a crash or the time limit)"


class _Timeout(BaseException):
    """Raised by the alarm when a cell or a probe exceeds its time limit."""


# --------------------------------------------------------------------------------------------
# the audit hook


def make_audit_hook(
    sandbox: str,
    read_roots: tuple[str, ...],
    deny_roots: tuple[str, ...],
    forbidden_modules: tuple[str, ...],
    max_new_files: int,
):
    """Build the sandbox's audit hook (see the module's docstring for what it refuses).

    ``sandbox`` may be read and written; ``read_roots`` (the Python installation, the course
    package) may be read; ``deny_roots`` may not be read even inside ``read_roots``; at most
    ``max_new_files`` files may be created. All paths must be absolute and resolved.
    """
    import _stat
    import posix

    # Everything the hook uses is bound here, once: it looks up no global or builtin name later.
    _type, _str, _bytes, _int, _tuple, _len = type, str, bytes, int, tuple, len
    _OSError, _PermissionError, _RuntimeError = OSError, PermissionError, RuntimeError
    _lstat, _stat_path, _readlink, _getcwd = posix.lstat, posix.stat, posix.readlink, posix.getcwd
    _islnk, _isdir = _stat.S_ISLNK, _stat.S_ISDIR
    o_write = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    o_creat = os.O_CREAT
    refused_events = frozenset(REFUSED_EVENTS)
    refused_prefixes = _tuple(REFUSED_PREFIXES)
    refused_imports = frozenset(REFUSED_IMPORTS)
    forbidden = _tuple(forbidden_modules)
    created = [0]

    def resolve(path):
        """The absolute path with '.', '..' and symbolic links resolved; None if unusable."""
        if _type(path) is _bytes:
            path = path.decode("utf-8", "surrogateescape")
        if _type(path) is not _str or "\x00" in path:
            return None
        if not path.startswith("/"):
            path = _getcwd() + "/" + path
        pending = path.split("/")
        resolved = ""
        links = 0
        while pending:
            name = pending.pop(0)
            if name == "" or name == ".":
                continue
            if name == "..":
                resolved = resolved[: resolved.rfind("/")]
                continue
            candidate = resolved + "/" + name
            try:
                mode = _lstat(candidate).st_mode
            except _OSError:
                resolved = candidate
                continue
            if _islnk(mode):
                links += 1
                if links > 40:
                    return None
                target = _readlink(candidate)
                if target.startswith("/"):
                    resolved = ""
                pending = target.split("/") + pending
                continue
            resolved = candidate
        return resolved or "/"

    def within(path, roots):
        for root in roots:
            if path == root or path.startswith(root + "/"):
                return True
        return False

    def is_dir(path):
        try:
            return _isdir(_stat_path(path).st_mode)
        except _OSError:
            return False

    def exists(path):
        try:
            _lstat(path)
            return True
        except _OSError:
            return False

    def refuse(what):
        raise _PermissionError(f"grading sandbox: {what} is not allowed")

    def show(path):
        return path if _type(path) is _str else "a path that is not a str"

    def writable(path, what):
        p = resolve(path)
        if p == "/dev/null":
            return p
        if p is None or p == sandbox or not within(p, (sandbox,)):
            refuse(f"{what} {show(p or path)!r} (outside the submission's folder)")
        return p

    def no_dir_fd(*fds):
        for fd in fds:
            if fd is not None and fd != -1:
                refuse("a file operation relative to a directory descriptor")

    def hook(event, args):
        if event == "open":
            path, flags = args[0], args[2]
            if _type(path) is _int:
                return  # an already open descriptor
            if _type(flags) is not _int:
                refuse("opening a file with unknown flags")
            if flags & o_write:
                p = writable(path, "writing")
                if flags & o_creat and not exists(p):
                    created[0] += 1
                    if created[0] > max_new_files:
                        refuse(f"creating more than {max_new_files} files")
                return
            p = resolve(path)
            if p is None:
                refuse(f"opening {show(path)!r}")
            if within(p, (sandbox,)):
                return
            if within(p, deny_roots) or not within(p, read_roots):
                refuse(f"reading {p!r} (outside the submission's folder and the Python installation)")
            if is_dir(p):
                refuse(f"opening the directory {p!r}")
            return
        if event in ("os.remove", "os.rmdir"):
            no_dir_fd(args[1])
            writable(args[0], "deleting")
            return
        if event == "os.rename":
            no_dir_fd(args[2], args[3])
            writable(args[0], "renaming")
            writable(args[1], "renaming to")
            return
        if event == "os.mkdir":
            no_dir_fd(args[2])
            writable(args[0], "creating the directory")
            return
        if event == "shutil.rmtree":
            writable(args[0], "deleting the tree")
            return
        if event == "os.truncate":
            if _type(args[0]) is not _int:
                writable(args[0], "truncating")
            return
        if event == "os.chdir":
            if _type(args[0]) is not _int:
                p = resolve(args[0])
                if p is None or not within(p, (sandbox,)):
                    refuse(f"changing directory to {show(p or args[0])!r}")
            return
        if event == "import":
            name = args[0]
            if _type(name) is _str:
                if name in refused_imports:
                    refuse(f"importing {name}")
                for module in forbidden:
                    if name == module or name.startswith(module + "."):
                        refuse(f"importing {name} (it holds this assignment's answers: write your own)")
            return
        if event in ("object.__setattr__", "object.__delattr__"):
            if _len(args) > 1 and args[1] == "__code__":
                refuse("replacing a function's code")
            return
        if event == "sys.addaudithook":
            raise _RuntimeError("grading sandbox: adding an audit hook is not allowed")
        if event in refused_events or event.startswith(refused_prefixes):
            refuse(event)

    return hook


# --------------------------------------------------------------------------------------------
# process set-up


def _set_limits(limits: dict[str, Any], isolated: bool) -> None:
    """Resource limits with hard = soft (a process may lower, never raise, its hard limits)."""

    def cap(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    try:
        with open("/proc/self/status") as f:  # address space already mapped (torch maps a lot)
            vm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
        cap(resource.RLIMIT_AS, vm_kb * 1024 + limits["memory"])
    except (OSError, StopIteration, ValueError):
        pass
    cap(resource.RLIMIT_CPU, int(limits["cpu"]))
    cap(resource.RLIMIT_FSIZE, int(limits["file_size"]))
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, 256)
    # RLIMIT_NPROC counts processes and threads per user: in the isolated process it counts those
    # of its own user namespace, which even its root cannot exceed (the kernel checks
    # CAP_SYS_RESOURCE in the initial namespace); without isolation root ignores it
    if hasattr(resource, "RLIMIT_NPROC"):
        if isolated:
            cap(resource.RLIMIT_NPROC, int(limits["processes"]))
        elif os.getuid() != 0 and resource.getrlimit(resource.RLIMIT_NPROC)[0] == resource.RLIM_INFINITY:
            cap(resource.RLIMIT_NPROC, 4096)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail instead of killing


def _redirect_output(stdout_path: str, stderr_path: str, results_path: str) -> None:
    """Send fd 1 and 2 to the capture files, fd 0 to /dev/null, fd ``RESULTS_FD`` to the
    results file (all made by the grader for this run), and close every other fd."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW
    fds = [os.open(os.devnull, os.O_RDONLY)] + [
        os.open(p, flags) for p in (stdout_path, stderr_path, results_path)
    ]
    moved = [os.dup(fd) for fd in fds]  # above 0..3, so that dup2 below cannot clobber one
    for target, fd in enumerate(moved):
        os.dup2(fd, target)
    os.closerange(RESULTS_FD + 1, 1 << 16)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")  # noqa: SIM115


def _prepare_environment(sandbox: str, env: dict[str, str], read_roots: tuple[str, ...]) -> None:
    """Work in the sandbox, with only the grader's variables and the server's thread settings."""
    os.chdir(sandbox)
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ") if k in os.environ}
    os.environ.clear()
    os.environ.update({**keep, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **env})
    for name in ("HOME", "TMPDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TORCH_HOME"):
        os.environ[name] = sandbox
    import tempfile

    tempfile.tempdir = None
    sys.path[:] = [p for p in sys.path if p and any(p == r or p.startswith(r + "/") for r in read_roots)]


def _stub_modules(forbidden: tuple[str, ...]) -> None:
    """Install the otter stand-in, drop preloaded answer modules, and disarm the one way of
    starting a process that raises no audit event (``_posixsubprocess.fork_exec``)."""
    otter = types.ModuleType("otter")
    exec(compile(STUB_OTTER, "<otter stand-in>", "exec"), otter.__dict__)
    sys.modules["otter"] = otter
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in forbidden):
            del sys.modules[name]
    package = sys.modules.get("gencourse")
    for name in forbidden:
        parent, _, child = name.rpartition(".")
        if parent == "gencourse" and package is not None and hasattr(package, child):
            delattr(package, child)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("grading sandbox: starting a process is not allowed")

    import _posixsubprocess

    _posixsubprocess.fork_exec = refused


# --------------------------------------------------------------------------------------------
# running the notebook


def _alarm(seconds: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.0))


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _without_magics(source: str) -> str:
    """IPython line and cell magics (``%...``, ``!...``) become ``pass``: they are not Python
    (used only for cells that do not compile as they are)."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass  # (IPython magic skipped by the grader)"
        lines.append(line)
    return "\n".join(lines)


def _describe_exception(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # a student exception whose __str__ raises
        text = type(exc).__name__
    return text[:2000]


class _Results:
    """The results channel: one JSON line per event (a cell started or ended, a probe's value,
    a question's public tests, the timings, the end), appended to descriptor ``RESULTS_FD``, a
    file that the process opened before it entered its sandbox. Nothing is written in the
    submission's folder, so these writes never count against its limits (a notebook of 1,000
    cells writes 2,000 short lines to one file)."""

    def __init__(self, fd: int, token: str) -> None:
        self.fd, self.token, self.failed = fd, token, False
        self.emit({"token": token})

    def emit(self, event: dict[str, Any]) -> None:
        data = (json.dumps(event, allow_nan=False) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:  # the file reached its size limit: the grader reads what was written
            self.failed = True


def _run_cells(cells: list[str], ns: dict[str, Any], results: _Results, timeout: float) -> None:
    for index, source in enumerate(cells):
        results.emit({"cell": index, "error": ENDED_IN_CELL})
        entry: dict[str, Any] = {"cell": index, "error": None}
        try:
            try:
                code = compile(source, f"<cell {index + 1}>", "exec")
            except SyntaxError:
                code = compile(_without_magics(source), f"<cell {index + 1}>", "exec")
            _alarm(timeout)
            try:
                exec(code, ns)
            finally:
                _alarm(0)
        except _Timeout:
            entry["error"] = f"time limit: the cell ran for more than {timeout:g} s and was stopped"
        except BaseException as exc:  # SystemExit, KeyboardInterrupt, anything: one cell, not the run
            entry["error"] = _describe_exception(exc)
        results.emit(entry)
        _reset_streams()


def _reset_streams() -> None:
    """Undo a cell's replacement of sys.stdout/sys.stderr (the files stay size-limited)."""
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    if sys.stdout is not _STREAMS[0] or sys.stderr is not _STREAMS[1]:
        sys.stdout, sys.stderr = _STREAMS


_STREAMS: list[Any] = []


def _run_probes(
    probes: list[dict[str, Any]], ns: dict[str, Any], results: _Results, timeout: float
) -> set[str]:
    """Run the probes; return the questions in which a call ran out of time."""
    from gencourse.grading.plain import error, raised
    from gencourse.grading.probes import evaluate

    question = None
    slow: set[str] = set()
    stuck: set[str] = set()
    for probe in probes:
        question = probe["question"]
        target = probe["target"]
        if target not in ns:
            value = error(f"`{target}` is not defined in the notebook")
        elif target in slow:
            value = error(f"not run: an earlier call of `{target}` ran out of time")
        else:
            try:
                _alarm(timeout)
                try:
                    value = evaluate(ns[target], probe)
                finally:
                    _alarm(0)
            except _Timeout:
                slow.add(target)
                stuck.add(question)
                value = error(f"time limit: `{target}` ran for more than {timeout:g} s and was stopped")
            except BaseException as exc:
                try:
                    value = raised(exc)
                except BaseException:
                    value = error("raised an exception that cannot be described")
        results.emit({"probe": probe["id"], "value": value})
        _reset_streams()
    return stuck


def _doctest_failures(case: str, ns: dict[str, Any], name: str) -> list[str]:
    """Run one otter test case (doctest text) the way otter does, in a copy of the namespace:
    each example in "single" mode, its printed output compared with the expected one. Returns
    a description of the first failure (empty: passed). (doctest's own runner is not used: it
    sets a trace function, which the sandbox refuses.)"""
    env = dict(ns)
    for example in doctest.DocTestParser().get_examples(case, name):
        printed, saved = io.StringIO(), sys.stdout
        sys.stdout = printed
        try:
            exec(compile(example.source, f"<public test {name}>", "single"), env)
        except _Timeout:
            raise
        except BaseException as exc:
            return [f"{example.source.strip()[:120]} -> {_describe_exception(exc)[:200]}"]
        finally:
            sys.stdout = saved
        if printed.getvalue() != example.want:
            return [
                f"{example.source.strip()[:120]} -> printed {printed.getvalue()[:100]!r}, expected {example.want[:100]!r}"
            ]
    return []


def _run_public_tests(
    tests: dict[str, list[str]], ns: dict[str, Any], results: _Results, timeout: float, skip: set[str]
) -> None:
    """The public tests of each question (what ``grader.check`` runs, run the way otter runs
    them), for the feedback only; those of the questions in ``skip`` (whose functions ran out of
    time) are not run."""
    for question, cases in tests.items():
        if question in skip:
            results.emit({"public": question, "passed": 0, "failed": ["not run: a function ran out of time"]})
            continue
        failures = []
        for index, case in enumerate(cases):
            try:
                _alarm(timeout)
                try:
                    failures += _doctest_failures(case, ns, f"{question} {index}")
                finally:
                    _alarm(0)
            except _Timeout:
                failures.append("time limit")
            except BaseException as exc:
                failures.append(_describe_exception(exc)[:300])
        results.emit({"public": question, "passed": len(cases) - len(failures), "failed": failures})
        _reset_streams()


def run_child(request: dict[str, Any]) -> None:
    """Entry point of the submission's process (see the module's docstring); never returns."""
    t0 = time.monotonic()
    try:
        os.setsid()
    except OSError:
        pass
    try:
        _redirect_output(request["stdout"], request["stderr"], request["results"])
        _STREAMS[:] = [sys.stdout, sys.stderr]
        with open(request["plan"], encoding="utf-8") as f:
            plan = json.load(f)
        request.clear()  # the grader's paths are no business of the notebook
        view = plan.pop("view", None)
        isolation_seconds = 0.0
        if view is not None:
            import base64

            from gencourse.grading.isolation import enter

            files = {name: base64.b64decode(data) for name, data in plan.pop("files").items()}
            isolation_seconds = enter(view, files)  # from here on: PID 1 of a new namespace
            del files, view
        _set_limits(plan["limits"], isolated=bool(plan["isolated"]))
        sandbox = plan["sandbox"]
        read_roots = tuple(plan["read_roots"])
        _prepare_environment(sandbox, plan["env"], read_roots)
        for name in plan["preload"]:
            __import__(name)
        import matplotlib

        matplotlib.use("Agg")
        import torch

        torch.set_num_threads(max(1, int(plan["threads"])))
        import gencourse.grading.plain  # noqa: F401  (imported before the sandbox closes)
        import gencourse.grading.probes  # noqa: F401

        forbidden = tuple(plan["forbidden_modules"])
        _stub_modules(forbidden)
        results = _Results(RESULTS_FD, plan["token"])
        signal.signal(signal.SIGALRM, _on_alarm)
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        sys.addaudithook(
            make_audit_hook(
                sandbox, read_roots, tuple(plan["deny_roots"]), forbidden, int(plan["limits"]["max_files"])
            )
        )
        seconds = {"isolation": round(isolation_seconds, 4), "setup": round(time.monotonic() - t0, 3)}
        results.emit({"seconds": seconds})
        _run_cells(plan["cells"], main.__dict__, results, plan["limits"]["cell_timeout"])
        seconds["cells"] = round(time.monotonic() - t0, 3)
        stuck = _run_probes(plan["probes"], main.__dict__, results, plan["limits"]["probe_timeout"])
        seconds["probes"] = round(time.monotonic() - t0, 3)
        _run_public_tests(
            plan["public_tests"], main.__dict__, results, plan["limits"]["probe_timeout"], stuck
        )
        seconds["public"] = round(time.monotonic() - t0, 3)
        results.emit({"seconds": seconds})
        results.emit({"done": True})
    except BaseException as exc:
        try:
            os.write(2, f"\n[grader] the grading harness stopped: {_describe_exception(exc)}\n".encode())
        except BaseException:
            pass
    finally:
        os._exit(0)


# --------------------------------------------------------------------------------------------
# the fork server


def serve(preload: list[str]) -> None:
    """The fork server's loop: import ``preload`` once, then for each request line read from
    stdin (JSON ``{"id", "request"}``) fork a child that runs :func:`run_child`, and report
    ``{"id", "pid"}`` when it starts and ``{"id", "exit"}`` when it has ended. The server runs no
    student code and no torch operation itself (forking after either would not be safe); it
    stops, killing what it started, when its stdin closes."""
    for name in preload:
        __import__(name)

    def send(message: dict[str, Any]) -> None:
        os.write(1, (json.dumps(message) + "\n").encode())

    send({"ready": True})
    children: dict[int, Any] = {}
    buffer = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.05)
        if readable:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    run_child(message["request"])
                children[pid] = message["id"]
                send({"id": message["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            send({"id": children.pop(pid), "exit": os.waitstatus_to_exitcode(status)})
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2:])
