"""Operating-system isolation of one submission's process (Linux namespaces and mounts).

The fork server (:mod:`gencourse.grading.harness`) forks a child per submission; the child calls
:func:`enter` before it runs any student code. ``enter`` does with system calls what bubblewrap
does (``bwrap --unshare-all --die-with-parent`` with read-only binds), without an ``exec``, so
that the modules the server imported (torch: seconds) stay imported:

1. ``unshare`` of new user, mount, PID, network, IPC and UTS namespaces (the user namespace maps
   its root to the grader's own user and nothing else; the network namespace has only a
   loopback interface that is down, so nothing is reachable and nothing listening inside is
   reachable from the host);
2. forks the process that will run the notebook: PID 1 of the new PID namespace (when it ends,
   the kernel kills everything the notebook started), with ``PR_SET_PDEATHSIG`` so that it dies
   with its parent;
3. builds a new root on a small tmpfs holding only: ``/usr`` (and the ``/bin``, ``/lib``
   links), the Python installation (and the links by which the interpreter reaches it), the
   course package with the answer modules' files replaced by an empty file, ``/dev/null``,
   ``/dev/zero``, ``/dev/urandom``, ``/dev/random``, ``/dev/full``, a fresh ``/proc``, and the
   submission's scratch folder ``/submission`` (a tmpfs limited in bytes and files: the only
   writable place); every bind is read-only, with the flags of its source kept;
4. ``pivot_root`` into it and detaches the old root (nothing of the host's file system is left
   in the process's view: not the assignment folder, the hidden tests, the submissions, the
   results, the grader's files), remounts the root read-only, then enters a second user and
   mount namespace, which locks every mount (a root user inside cannot unmount a mask or
   remount a bind read-write), sets ``PR_SET_NO_NEW_PRIVS`` and drops every capability.

:func:`unavailable` says why this cannot run on the machine (not Linux, no user namespaces),
by trying it in a throw-away process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SCRATCH = "/submission"
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/full")
# statvfs flags that a bind's remount must keep (the kernel refuses to clear locked ones)
_KEEP = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (getattr(os, "ST_NOATIME", 1024), MS_NOATIME),
    (getattr(os, "ST_NODIRATIME", 2048), MS_NODIRATIME),
    (getattr(os, "ST_RELATIME", 4096), MS_RELATIME),
)


class IsolationError(RuntimeError):
    """The isolation could not be set up (the submission must not run)."""


@dataclass
class View:
    """What the submission's process sees: ``binds`` (host paths shown read-only at the same
    path), ``links`` (top-level symbolic links to recreate, e.g. ``/lib -> usr/lib``), ``masks``
    (files inside the binds replaced by an empty file, folders by an empty folder), and the scratch tmpfs's limits."""

    binds: list[str]
    links: dict[str, str] = field(default_factory=dict)
    masks: list[str] = field(default_factory=list)
    scratch_bytes: int = 256 * 2**20
    scratch_files: int = 600

    def to_json(self) -> dict[str, Any]:
        return {
            "binds": list(self.binds),
            "links": dict(self.links),
            "masks": list(self.masks),
            "scratch_bytes": int(self.scratch_bytes),
            "scratch_files": int(self.scratch_files),
        }


def _minimal(paths: list[str]) -> list[str]:
    """The paths that are not inside another one of them (sorted)."""
    out: list[str] = []
    for p in sorted(set(paths)):
        if not any(p == q or p.startswith(q + "/") for q in out):
            out.append(p)
    return out


def _links_on(path: str) -> dict[str, str]:
    """The symbolic links met along ``path`` (each prefix that is a link, and its target),
    followed as the kernel follows them."""
    links: dict[str, str] = {}
    pending, current, hops = [p for p in path.split("/") if p], "", 0
    while pending and hops < 40:
        candidate = current + "/" + pending.pop(0)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            links[candidate] = target
            hops += 1
            pending = [p for p in target.split("/") if p] + pending
            current = "" if target.startswith("/") else current
            continue
        current = candidate
    return links


def make_view(
    read_roots: tuple[str, ...],
    masks: tuple[str, ...],
    scratch_bytes: int,
    scratch_files: int,
    aliases: tuple[str, ...] = (),
) -> View:
    """The view for these read roots (real paths; devices are added separately): ``/usr`` and
    each root not already inside it, the top-level links into ``/usr``, and the links along
    ``aliases`` (paths as the interpreter knows them, e.g. a virtual environment reached
    through a link), so that they resolve inside the view as outside."""
    links = {}
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", *aliases):
        links.update(_links_on(name))
    roots = [r for r in read_roots if r not in DEVICES and os.path.isdir(r)]
    binds = _minimal(["/usr", *roots])
    links = {k: v for k, v in links.items() if not any(k == b or k.startswith(b + "/") for b in binds)}
    masks = tuple(m for m in masks if any(m.startswith(b + "/") for b in binds) and os.path.exists(m))
    return View(binds, links, sorted(set(masks)), scratch_bytes, scratch_files)


# --------------------------------------------------------------------------------------------
# system calls


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise IsolationError(f"{what}: {errno.errorcode.get(code, code)} ({os.strerror(code)})")


def _enc(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    _check(
        libc.mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data)),
        f"mount {source} on {target}",
    )


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _map_ids(uid: int, gid: int) -> None:
    """Map the namespace's root to the (outer) ``uid``/``gid``; no supplementary groups."""
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1\n")
    _write("/proc/self/gid_map", f"0 {gid} 1\n")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities(libc) -> None:
    """Empty the bounding, effective, permitted and inheritable capability sets."""
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability the kernel knows
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


def _bind_read_only(libc, source: str, target: str) -> None:
    """Bind ``source`` (a path or /proc/self/fd/N) on ``target`` and make it read-only, keeping
    the source's nosuid/nodev/noexec/atime flags."""
    _mount(libc, source, target, None, MS_BIND)
    flags = os.statvfs(target).f_flag
    keep = sum(ms for st, ms in _KEEP if flags & st)
    _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | keep)


def _make_target(root: str, path: str, directory: bool) -> str:
    target = root + path
    if directory:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
    return target


def enter(view: dict[str, Any], files: dict[str, bytes]) -> float:
    """Isolate the calling process (see the module's docstring) and return the seconds it took.

    Called in a freshly forked, single-threaded child. It returns in a *grandchild*, PID 1 of
    the new PID namespace, with the working directory the scratch folder (holding ``files``);
    the child in between waits for it and exits with its status. Raises
    :class:`IsolationError` if any step fails (the caller must then not run student code).
    """
    t0 = time.monotonic()
    if sys.platform != "linux" or platform.machine() not in SYS_PIVOT_ROOT:
        raise IsolationError(f"needs Linux on {' or '.join(SYS_PIVOT_ROOT)}")
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    _check(libc.unshare(flags), "unshare (user namespaces may be disabled on this machine)")
    _map_ids(uid, gid)
    pid = os.fork()
    if pid:  # the child in between: wait for PID 1 of the new namespace and pass on its status
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except ChildProcessError:
                os._exit(1)
            except InterruptedError:
                continue
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    # the sources, held open before the new root's tmpfs is mounted on /tmp (a source under
    # /tmp would be hidden by it), and bound through /proc/self/fd
    sources = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in (*view["binds"], *DEVICES)}
    root = "/tmp"
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for path in view["binds"]:
        _bind_read_only(libc, f"/proc/self/fd/{sources[path]}", _make_target(root, path, True))
    for link, target in sorted(view["links"].items()):
        if not os.path.lexists(root + link):
            os.makedirs(os.path.dirname(root + link), mode=0o755, exist_ok=True)
            os.symlink(target, root + link)
    empty = _make_target(root, "/.empty", False)
    for path in view["masks"]:  # a file becomes empty, a folder (a package) an empty folder
        if os.path.isdir(root + path):
            _mount(libc, "tmpfs", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
        else:
            _bind_read_only(libc, empty, root + path)
    for path in DEVICES:
        _mount(libc, f"/proc/self/fd/{sources[path]}", _make_target(root, path, False), None, MS_BIND)
    for fd in sources.values():
        os.close(fd)
    scratch = _make_target(root, SCRATCH, True)
    _mount(
        libc,
        "tmpfs",
        scratch,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={view['scratch_bytes']},nr_inodes={view['scratch_files']},mode=0700",
    )
    for name, content in files.items():
        with open(os.path.join(scratch, os.path.basename(name)), "wb") as f:
            f.write(content)
    _mount(libc, "proc", _make_target(root, "/proc", True), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    _check(libc.syscall(SYS_PIVOT_ROOT[platform.machine()], b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir("/")
    _mount(libc, None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    # a second user and mount namespace: every mount above becomes locked
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare (second user namespace)")
    _map_ids(0, 0)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _drop_capabilities(libc)
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    os.chdir(SCRATCH)
    return time.monotonic() - t0


def _selftest(roots: list[str]) -> None:
    """Isolate this process with ``roots`` in view and check what it sees (exit code 0: works)."""
    view = make_view(tuple(roots), (), 2**20, 64).to_json()
    try:
        enter(view, {"x.txt": b"x"})
        with open("x.txt") as f:
            assert f.read() == "x" and os.getpid() == 1, "the scratch folder or the PID namespace"
        assert not os.path.exists("/etc") and not os.path.exists("/root/.bashrc"), "the view"
    except BaseException as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        os._exit(3)
    os._exit(0)


_UNAVAILABLE: list[str | None] = []


def unavailable() -> str | None:
    """``None`` if :func:`enter` works on this machine, else why not (tried once, in a fresh
    interpreter that isolates itself and checks what it sees)."""
    if _UNAVAILABLE:
        return _UNAVAILABLE[0]
    if sys.platform != "linux" or platform.machine() not in SYS_PIVOT_ROOT:
        reason = f"the grader's isolation needs Linux on {' or '.join(SYS_PIVOT_ROOT)}"
    else:
        roots = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin")}
        try:
            done = subprocess.run(
                [sys.executable, "-S", os.path.realpath(__file__), "--selftest", *roots],
                capture_output=True,
                timeout=60,
                env=env,
                cwd="/",
            )
            reason = None
            if done.returncode != 0:
                detail = done.stderr.decode(errors="replace").strip().splitlines()
                reason = (
                    "the grader could not isolate a test process "
                    f"({detail[-1] if detail else f'exit code {done.returncode}'}); user namespaces "
                    "may be disabled (sysctl kernel.unprivileged_userns_clone, "
                    "user.max_user_namespaces, or an AppArmor/seccomp policy)"
                )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"the isolation self-test could not run ({exc})"
    _UNAVAILABLE.append(reason)
    return reason


if __name__ == "__main__" and sys.argv[1:2] == ["--selftest"]:
    _selftest(sys.argv[2:])
