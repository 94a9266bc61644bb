"""The grader's operating-system sandbox (gencourse.grading.isolation), probed from inside.

Each test runs a fresh interpreter (without site-packages: no torch, a fraction of a second)
that isolates itself as a submission's process does and reports what it can see and do. They
skip, saying why, where the machine does not allow the sandbox (the grader then refuses to
grade without ``--unsafe-no-sandbox``).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gencourse.grading import isolation

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gencourse"
MODULE = Path(isolation.__file__).resolve()

PROBE = r"""
import ctypes, errno, importlib.util, json, os, socket, sys

spec = importlib.util.spec_from_file_location("isolation", sys.argv[1])
iso = sys.modules["isolation"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(iso)
roots, masks, port = json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
aliases = tuple(json.loads(sys.argv[6]))
seconds = iso.enter(iso.make_view(tuple(roots), tuple(masks), 2**20, 32, aliases).to_json(), {"nb.ipynb": b"{}"})


def error(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))


def connect():
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def fill():
    with open("big", "wb") as f:
        f.write(b"x" * 2**21)


def many_files():
    for i in range(100):
        open(f"f{i}", "w").close()


libc = ctypes.CDLL(None, use_errno=True)
umount = libc.umount2(masks[0].encode(), 2)
status = open("/proc/self/status").read()
report = {
    "seconds": seconds,
    "pid": os.getpid(),
    "cwd": os.getcwd(),
    "files": sorted(os.listdir(".")),
    "root": sorted(os.listdir("/")),
    "exists": {p: os.path.exists(p) for p in json.loads(sys.argv[5])},
    "mask_size": os.path.getsize(masks[0]),
    "answers_listing": os.listdir(masks[-1]),
    "write_package": error(lambda: open(os.path.join(os.path.dirname(masks[0]), "planted"), "w")),
    "write_root": error(lambda: open("/planted", "w")),
    "umount_mask": "allowed" if umount == 0 else errno.errorcode[ctypes.get_errno()],
    "connect_host": error(connect),
    "fill_scratch": error(fill),
    "many_files": error(many_files),
    "processes": sorted(p for p in os.listdir("/proc") if p.isdigit()),
    "cap_eff": [line.split()[1] for line in status.splitlines() if line.startswith("CapEff")][0],
    "no_new_privs": [line.split()[1] for line in status.splitlines() if line.startswith("NoNewPrivs")][0],
}
print(json.dumps(report), flush=True)
os._exit(0)
"""


@pytest.fixture(scope="module")
def inside(tmp_path_factory):
    """What an isolated process reports, with a listener on the host that it must not reach.
    Besides the grader's view it sees a folder under /tmp holding an answer package (masked as
    a whole) and a visible module."""
    reason = isolation.unavailable()
    if reason:
        if os.environ.get("GENCOURSE_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"GENCOURSE_REQUIRE_SANDBOX=1 but the grader's OS sandbox cannot run here: {reason}")
        pytest.skip(f"the grader's OS sandbox cannot run here: {reason}")
    from gencourse.grading.sandbox import interpreter_paths, module_files, read_roots

    extra = tmp_path_factory.mktemp("extra").resolve()
    (extra / "answers").mkdir()
    (extra / "answers" / "__init__.py").write_text("SECRET = 1\n")
    (extra / "visible.py").write_text("VISIBLE = 1\n")
    masks = [*module_files(("gencourse.vae", "gencourse.divergences")), str(extra / "answers")]
    secret = [
        str(ROOT / "assignments" / "01_vae" / "hidden_tests.py"),
        str(ROOT / "assignments"),
        "/etc/passwd",
        "/var",
        "/home",
        str(PACKAGE / "grading" / "harness.py"),
        str(Path(sys.prefix) / "lib"),
        str(extra / "visible.py"),
        str(extra / "answers" / "__init__.py"),
    ]
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    view_roots = [*read_roots(), str(extra)]
    view = isolation.make_view(tuple(view_roots), masks, 1, 1, interpreter_paths())
    done = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, str(MODULE), json.dumps(view_roots), json.dumps(masks), str(port)]
        + [json.dumps(secret), json.dumps(interpreter_paths())],
        capture_output=True,
        timeout=60,
        cwd="/",
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )
    try:
        accepted = listener.accept()
    except OSError:
        accepted = None
    listener.close()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    tops = {p.split("/")[1] for p in [*view.binds, *view.links]}
    return {
        "report": json.loads(done.stdout),
        "accepted": accepted,
        "secret": secret,
        "masks": masks,
        "tops": tops,
    }


def test_the_process_sees_only_its_view(inside):
    report = inside["report"]
    assert report["pid"] == 1 and report["processes"] == ["1"]
    assert report["cwd"] == isolation.SCRATCH and report["files"] == ["nb.ipynb"]
    assert set(report["root"]) == inside["tops"] | {"dev", "proc", "submission", ".empty"}
    exists = report["exists"]
    visible = {
        str(PACKAGE / "grading" / "harness.py"),
        str(Path(sys.prefix) / "lib"),
        str(extra_file(inside)),
    }
    assert {p for p, seen in exists.items() if seen} == visible  # no assignment, /etc, /var, /home
    assert report["answers_listing"] == []  # the masked package is an empty folder


def extra_file(inside) -> str:
    return next(p for p in inside["secret"] if p.endswith("visible.py"))


def test_answer_modules_are_empty_and_cannot_be_unmasked(inside):
    report = inside["report"]
    assert inside["masks"] and report["mask_size"] == 0
    assert report["umount_mask"] in ("EINVAL", "EPERM")  # locked by the second user namespace


def test_nothing_outside_the_scratch_folder_is_writable(inside):
    report = inside["report"]
    assert report["write_package"] in ("EROFS", "EACCES")
    assert report["write_root"] in ("EROFS", "EACCES")


def test_the_scratch_folder_is_limited_in_bytes_and_files(inside):
    assert inside["report"]["fill_scratch"] == "ENOSPC"  # 1 MB here
    assert inside["report"]["many_files"] == "ENOSPC"  # 32 inodes here


def test_no_network_and_no_privileges(inside):
    report = inside["report"]
    assert report["connect_host"] in ("ENETUNREACH", "ECONNREFUSED", "EADDRNOTAVAIL")
    assert inside["accepted"] is None
    assert report["cap_eff"] == "0000000000000000" and report["no_new_privs"] == "1"
    assert report["seconds"] < 1.0


def test_unavailable_gives_a_reason_or_none():
    reason = isolation.unavailable()
    assert reason is None or "namespaces" in reason or "Linux" in reason
