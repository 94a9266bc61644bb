"""The autograder: generation of the student notebooks and sandboxed batch grading.

The slow part runs once per module: every fixture submission of ``tests/grading_submissions/``
(deliberately wrong and hostile notebooks) and each assignment's solution and untouched student
notebook are graded in four batches by one fork server. The tests then read the scores, the
feedback and the state of the machine after grading.
"""

import csv
import dis
import fcntl
import hashlib
import json
import math
import os
import shutil
import socket
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gencourse.grading.assign import fetch_for_colab, find_leaks, generate, normalise_student_notebook
from gencourse.grading.grader import (
    SandboxUnavailable,
    TamperingError,
    batch_summary,
    find_submissions,
    grade,
    read_public_tests,
    safe_name,
    tree_hashes,
    written_answers,
)
from gencourse.grading.harness import make_audit_hook
from gencourse.grading.isolation import unavailable
from gencourse.grading.plain import PlainError, as_array, to_plain, validate
from gencourse.grading.probes import build, evaluate, mlp, tensor
from gencourse.grading.sandbox import ForkServer, Limits, check_results, read_results_log
from gencourse.grading.spec import close, find_assignments, load_assignment

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "grading_submissions"
ASSIGNMENTS = [p.name for p in find_assignments(ROOT / "assignments")]
CANARY = Path("/tmp/gencourse-grading-canary/canary.txt")
LIMITS = Limits(timeout=30, cell_timeout=15, probe_timeout=3, memory=2**30, file_size=4 * 2**20)
SEED = 20260101

# exact scores per question of every fixture (None: graded by hand)
VAE = {
    "solution": [2, 1, 2, 1, 2, None],
    "student": [0, 0, 0, 0, 0, None],
    "wrong": [0, 1, 2, 0, 0, None],
    "raises": [0, 1, 2, 1, 2, None],
    "sys_exit": [2, 1, 0, 1, 2, None],
    "os_exit": [0, 0, 0, 0, 0, None],
    "forever_cell": [2, 1, 2, 1, 2, None],
    "forever_function": [2, 1, 0, 1, 2, None],
    "unkillable": [0, 0, 0, 0, 0, None],
    "prints_megabytes": [2, 1, 2, 1, 2, None],
    "nan_and_types": [0, 1, 0, 0, 0, None],
    "deletes_files": [2, 1, 2, 1, 2, None],
    "leaves_process": [2, 1, 2, 1, 2, None],
    "not_json": [0, 0, 0, 0, 0, None],
    "empty": [0, 0, 0, 0, 0, None],
    "reads_secrets": [0, 1, 0, 1, 0, None],
    "tampers": [0, 0, 0, 0, 0, None],
    "forges_results": [0, 1, 0, 0, 0, None],
    "memory_hog": [2, 1, 2, 1, 2, None],
    # issue 24: the breaks of the audit-hook sandbox (honest work: q2 only, or everything)
    "torch_reads_answers": [0, 1, 0, 0, 0, None],
    "dir_fd_answers": [0, 1, 0, 0, 0, None],
    "plants_files": [2, 1, 2, 1, 2, None],
    "tcp_store": [2, 1, 2, 1, 2, None],
    "memory_access": [2, 1, 2, 1, 2, None],
    "resets_counter": [2, 1, 2, 1, 2, None],
    "symlinked": [0, 0, 0, 0, 0, None],
    "fifo": [0, 0, 0, 0, 0, None],
    "thousand_cells": [2, 1, 2, 1, 2, None],
}
OTHERS = {
    "02_gan": {"solution": [2, 2, 2, 1, None], "student": [0, 0, 0, 0, None], "wrong": [0, 2, 0, 1, None]},
    "03_inverse": {"solution": [1, 3, 2, None], "student": [0, 0, 0, None], "wrong": [1, 0, 0, None]},
    "04_adversarial": {
        "solution": [2, 2, 2, 1, None],
        "student": [0, 0, 0, 0, None],
        "wrong": [0, 2, 0, 0, None],
    },
    "05_diffusion": {
        "solution": [1, 2, 2, 2, None],
        "student": [0, 0, 0, 0, None],
        "wrong": [1, 0, 0, 0, None],
        "wrong_conventions": [0, 0, 0, 0, None],
        "wrong_noise": [1, 2, 0, 0, None],
    },
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _processes_with(marker: str) -> list[str]:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to list processes")
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "pytest" not in cmdline:
            found.append(cmdline)
    return found


def _submissions(tmp: Path, name: str, fixtures: list[Path]) -> Path:
    folder = tmp / name
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "assignments" / name / f"{name}.ipynb", folder / "solution.ipynb")
    shutil.copy(ROOT / "assignments" / name / "student" / f"{name}.ipynb", folder / "student.ipynb")
    for path in fixtures:
        if path.is_symlink():  # break 8: a link to the solution notebook, as handed in
            (folder / path.name).symlink_to(path.resolve())
        else:
            shutil.copy(path, folder / path.name)
    if name == "01_vae":
        os.mkfifo(folder / "fifo.ipynb")  # break 9: would block a reader forever
    return folder


def _isolation_or_skip() -> None:
    """Skip, saying why, where the OS sandbox cannot run; fail instead under
    GENCOURSE_REQUIRE_SANDBOX=1 (as ``make test`` sets it where it installs bubblewrap)."""
    reason = unavailable()
    if reason:
        if os.environ.get("GENCOURSE_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"GENCOURSE_REQUIRE_SANDBOX=1 but the grader's OS sandbox cannot run here: {reason}")
        pytest.skip(f"the grader's OS sandbox cannot run here: {reason}")


class _Ports:
    """Break 5's witnesses: a listener on the host's port 29518 (which a submission must not
    reach) and a thread knocking on port 29517 (where a submission listens) during the batch."""

    def __init__(self) -> None:
        self.accepted, self.reached, self.stop = [], [], threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 29518))
        self.listener.settimeout(0.2)
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._accept, self._knock)]
        for t in self.threads:
            t.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.accepted.append(self.listener.accept()[1])
            except OSError:
                pass

    def _knock(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", 29517), timeout=0.2):
                    self.reached.append(time.time())
            except OSError:
                pass
            time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        self.listener.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade everything once: {assignment: {student: SubmissionResult}}, the output folders,
    and the grader's own file's hash before grading.

    The canary lives at a fixed path (the hostile fixtures name it), so two test runs on one
    machine would rewrite it under each other: the fixture holds an exclusive lock beside it
    until the module's tests are done."""
    _isolation_or_skip()
    tmp = tmp_path_factory.mktemp("grading")
    CANARY.parent.mkdir(exist_ok=True)
    with open(CANARY.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield _grade_all(tmp)


def _grade_all(tmp: Path) -> dict:
    """Write the canary, then grade every fixture submission of every assignment."""
    CANARY.write_text("canary\n")
    os.chmod(CANARY, 0o644)
    harness = ROOT / "gencourse" / "grading" / "harness.py"
    guarded = [ROOT / "assignments", ROOT / "gencourse"]
    before = {"harness": _sha(harness), "canary": CANARY.stat(), "trees": [tree_hashes(f) for f in guarded]}
    results, outs, folders = {}, {}, {}
    ports = _Ports()
    started = time.monotonic()
    try:
        with pytest.MonkeyPatch.context() as patch, ForkServer() as server:
            patch.setenv("GENCOURSE_TEST_SECRET", "a variable of the grader's environment")
            for name in ASSIGNMENTS:
                folders[name] = _submissions(tmp, name, sorted((FIXTURES / name).glob("*.ipynb")))
                outs[name] = tmp / f"out_{name}"
                batch = grade(
                    ROOT / "assignments" / name,
                    folders[name],
                    outs[name],
                    limits=LIMITS,
                    seed=SEED,
                    server=server,
                )
                results[name] = {r.student: r for r in batch}
            # the escape hatch grades trusted work (the solution, a wrong answer) the same way
            trusted = _submissions(tmp / "trusted", "01_vae", [FIXTURES / "01_vae" / "wrong.ipynb"])
            batch = grade(
                ROOT / "assignments" / "01_vae",
                trusted,
                tmp / "out_trusted",
                limits=LIMITS,
                seed=SEED,
                server=server,
                unsafe_no_sandbox=True,
            )
            results["unsafe"] = {r.student: r for r in batch}
    finally:
        ports.close()
    return {
        "results": results,
        "outs": outs,
        "folders": folders,
        "tmp": tmp,
        "before": before,
        "after": [tree_hashes(f) for f in guarded],
        "harness": harness,
        "ports": ports,
        "seconds": time.monotonic() - started,
    }


def _scores(result):
    return [q.score for q in result.questions]


# --------------------------------------------------------------------------------------------
# whole submissions


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_scores_full_marks_and_passes_its_public_tests(graded, name):
    result = graded["results"][name]["solution"]
    assert result.status == "ok", result.notes
    assert result.total == result.possible > 0, [q.messages for q in result.questions]
    public = result.outcome.results["public"]
    assert public and all(not r["failed"] and r["passed"] > 0 for r in public.values()), public
    assert not [c for c in result.outcome.results["cells"] if c["error"]]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_untouched_student_notebook_scores_zero_without_grader_errors(graded, name):
    result = graded["results"][name]["student"]
    assert result.status == "ok" and not result.notes
    assert result.total == 0
    for q in result.questions:
        assert q.score is None or (q.score == 0 and q.messages), q


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_submission_gets_exactly_its_expected_marks(graded, name):
    expected = VAE if name == "01_vae" else OTHERS[name]
    results = graded["results"][name]
    assert set(results) == set(expected)
    for student, scores in expected.items():
        assert _scores(results[student]) == scores, (
            student,
            [q.messages for q in results[student].questions],
        )


def test_scores_csv_and_feedback_files(graded):
    out = graded["outs"]["01_vae"]
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["student"] for r in rows] == sorted(VAE)
    assert list(rows[0]) == ["student", "q1", "q2", "q3", "q4", "q5", "q6", "total", "possible", "status"]
    for row in rows:
        scores = VAE[row["student"]]
        assert [row[f"q{i}"] for i in range(1, 7)] == ["" if s is None else f"{s:g}" for s in scores]
        assert float(row["total"]) == sum(s or 0 for s in scores) and row["possible"] == "8"
        feedback = (out / "feedback" / f"{row['student']}.txt").read_text()
        assert f"Autograded score: {row['total']} / 8" in feedback
        assert len(feedback) < 20_000


def _vae(graded, student):
    return graded["results"]["01_vae"][student]


def _messages(result):
    return " | ".join(m for q in result.questions for m in q.messages)


def _cell_errors(result):
    return [c["error"] for c in result.outcome.results["cells"] if c["error"]]


# --------------------------------------------------------------------------------------------
# hostile submissions, one behaviour each


def test_exceptions_cost_only_their_question(graded):
    result = _vae(graded, "raises")
    assert "RuntimeError: not finished" in _messages(result)
    assert "ValueError: a cell that fails" in _cell_errors(result)


def test_sys_exit_ends_a_cell_not_the_run(graded):
    result = _vae(graded, "sys_exit")
    assert result.status == "ok"
    assert sum("SystemExit" in e for e in _cell_errors(result)) == 2
    assert "SystemExit" in " ".join(result.questions[2].messages)


def test_os_exit_ends_the_run_with_a_clear_message(graded):
    result = _vae(graded, "os_exit")
    assert result.status == "incomplete"
    assert any("os._exit" in n for n in result.notes)
    assert all("not evaluated" in m for q in result.questions for m in q.messages)


def test_infinite_loops_are_stopped(graded):
    assert any("time limit" in e for e in _cell_errors(_vae(graded, "forever_cell")))
    assert "time limit" in " ".join(_vae(graded, "forever_function").questions[2].messages)
    result = _vae(graded, "unkillable")
    assert result.status == "time limit" and result.total == 0
    assert result.outcome.seconds < LIMITS.timeout + 15


def test_megabytes_of_output_are_capped(graded):
    result = _vae(graded, "prints_megabytes")
    assert any("File too large" in e for e in _cell_errors(result))
    assert len(result.outcome.stdout) < 10_000


def test_nan_wrong_shapes_and_types_are_zero_with_a_message(graded):
    messages = _messages(_vae(graded, "nan_and_types"))
    for text in ("got '0.5'", "contains NaN", "not a torch tensor", "expected shape (6,), got shape (6, 10)"):
        assert text in messages


def test_files_outside_the_sandbox_cannot_be_deleted_or_edited(graded):
    result = _vae(graded, "deletes_files")
    assert "NOT REFUSED" not in result.outcome.stdout
    assert result.outcome.stdout.count("refused:") == result.outcome.stdout.count("grading sandbox") == 14
    assert CANARY.read_text() == "canary\n"
    after, before = CANARY.stat(), graded["before"]["canary"]
    assert (after.st_mode, after.st_mtime_ns, after.st_nlink) == (before.st_mode, before.st_mtime_ns, 1)
    assert _sha(graded["harness"]) == graded["before"]["harness"]


def test_no_process_can_be_started_or_left_running(graded):
    result = _vae(graded, "leaves_process")
    assert "NOT REFUSED" not in result.outcome.stdout
    assert result.outcome.stdout.count("refused:") == result.outcome.stdout.count("grading sandbox") == 7
    assert _processes_with("1234.") == []


def test_invalid_and_empty_notebooks_are_not_gradable(graded):
    for student, text in (("not_json", "not valid JSON"), ("empty", "has no code")):
        result = _vae(graded, student)
        assert result.status == "not gradable" and result.outcome is None
        assert all(text in m for q in result.questions for m in q.messages)


def test_solutions_hidden_tests_and_answer_modules_cannot_be_read(graded):
    result = _vae(graded, "reads_secrets")
    errors = _cell_errors(result)
    assert any("importing gencourse.divergences" in e for e in errors)
    assert any("reading" in e and "01_vae.py" in e for e in errors)
    assert any("reading" in e and "vae.py" in e for e in errors)
    assert "NOT REFUSED" not in result.outcome.stdout
    assert result.outcome.stdout.count("refused:") == 6
    assert result.outcome.stdout.count("grading sandbox") == 5  # and a KeyError: the variable is not there


def test_tampering_fools_in_process_tests_but_not_the_grader(graded):
    result = _vae(graded, "tampers")
    assert result.total == 0
    assert "AlwaysEqual" in " ".join(result.questions[1].messages)
    assert "FloatEqual" in " ".join(result.questions[1].messages)
    # otter-style public tests run next to the student's code pass on patched comparisons
    assert result.outcome.results["public"]["q3"]["failed"] == []


def test_a_forged_results_file_gains_nothing_beyond_true_values(graded):
    result = _vae(graded, "forges_results")
    assert result.total == 1  # q2 holds two numbers that anyone may compute by hand
    assert any("unexpected result" in n for n in result.notes)
    assert "malformed result" in _messages(result)


def test_memory_beyond_the_limit_cannot_be_allocated(graded):
    assert _vae(graded, "memory_hog").total == 8


def test_written_answers_reach_the_feedback(graded):
    feedback = (graded["outs"]["01_vae"] / "feedback" / "student.txt").read_text()
    assert "--- q6 ---" in feedback and "Type your answer here" in feedback


# --------------------------------------------------------------------------------------------
# issue 24: the breaks of the audit-hook sandbox, closed by the operating system's sandbox


def _planted(graded) -> list[Path]:
    roots = [graded["tmp"], ROOT / "assignments", ROOT / "gencourse", CANARY.parent]
    return [p for root in roots for p in root.rglob("planted-by-student*")]


def test_every_guarded_file_is_intact_and_nothing_was_planted(graded):
    assert graded["after"] == graded["before"]["trees"]  # the assignments and the package
    assert _planted(graded) == []
    assert CANARY.read_text() == "canary\n"
    assert "GENCOURSE_INJECTED" not in os.environ


def test_break_1_torch_reads_nothing_secret_and_writes_nowhere(graded):
    result = _vae(graded, "torch_reads_answers")
    assert result.total == 1 and result.status == "ok"  # q2, computed honestly
    assert "STOLEN" not in result.outcome.stdout and "PLANTED" not in result.outcome.stdout
    assert "OVERWROTE" not in result.outcome.stdout and "canary not reached" in result.outcome.stdout
    out = result.outcome.stdout
    assert "torch read without an audit event:" in out  # the hook is bypassed: the OS holds
    assert out.count("not read:") >= 2 and out.count("nothing in") >= 2  # absent; masked modules


def test_breaks_2_and_3_dir_fd_reads_nothing_and_injects_nothing(graded):
    result = _vae(graded, "dir_fd_answers")
    assert result.total == 1 and result.status == "ok"
    assert "STOLEN" not in result.outcome.stdout and "INJECTED" not in result.outcome.stdout
    assert "hidden tests not reached" in result.outcome.stdout
    assert "dir_fd passed the hook:" in result.outcome.stdout  # the hook is bypassed: the OS holds
    assert graded["after"] == graded["before"]["trees"]  # hidden_tests.py unchanged


def test_break_4_planted_files_and_a_feedback_file_break_nothing(graded):
    result = _vae(graded, "plants_files")
    assert result.total == 8 and "PLANTED" not in result.outcome.stdout
    out = graded["outs"]["01_vae"]
    assert stat.S_ISDIR((out / "feedback").lstat().st_mode)
    assert sorted(p.name for p in (out / "feedback").iterdir()) == sorted(f"{s}.txt" for s in VAE)
    assert sorted(p.name for p in out.iterdir()) == ["feedback", "scores.csv"]


def test_break_5_no_network_either_way(graded):
    result = _vae(graded, "tcp_store")
    assert result.total == 8
    assert "CONNECTED" not in result.outcome.stdout and "no connection to the host" in result.outcome.stdout
    ports = graded["ports"]
    assert ports.accepted == [] and ports.reached == []  # nothing reached the host, nor came in


def test_break_6_memory_writes_and_ctypes_reach_nothing_outside(graded):
    result = _vae(graded, "memory_access")
    out = result.outcome.stdout
    assert result.total == 8
    assert "refused prefixes now: ()" in out  # the hook WAS defeated: the OS sandbox held
    assert "LIBC READ" not in out and "LIBC OVERWROTE" not in out and "LIBC CONNECTED" not in out
    assert graded["ports"].accepted == []


def test_break_7_a_reset_file_counter_meets_the_kernels_limit(graded):
    result = _vae(graded, "resets_counter")
    assert result.total == 8
    created = int(result.outcome.stdout.split("CREATED ")[1].split()[0])
    assert LIMITS.max_files - 20 <= created <= LIMITS.max_files + 16  # the scratch tmpfs's inodes


def test_breaks_8_and_9_links_and_fifos_are_refused_without_blocking(graded):
    for student, reason in (("symlinked", "symbolic link"), ("fifo", "not a regular file")):
        result = _vae(graded, student)
        assert result.status == "not gradable" and result.total == 0 and result.outcome is None
        assert any(reason in n for n in result.notes), result.notes


def test_break_10_a_correct_notebook_of_1000_cells_scores_full_marks(graded):
    result = _vae(graded, "thousand_cells")
    assert result.status == "ok" and result.total == 8, _messages(result)
    assert len(result.outcome.results["cells"]) == 1000


def test_the_sandbox_is_timed_and_cheap(graded):
    runs = [r for r in graded["results"]["01_vae"].values() if r.outcome and r.outcome.results]
    setup = [
        r.outcome.results["seconds"]["isolation"] for r in runs if "isolation" in r.outcome.results["seconds"]
    ]
    assert len(setup) >= 15 and max(setup) < 1.0, setup
    summary = batch_summary(runs)
    assert "isolation overhead per submission" in summary
    print(summary, f"(module batch: {graded['seconds']:.0f} s)")


def test_unsafe_no_sandbox_grades_trusted_work_alike(graded):
    unsafe = graded["results"]["unsafe"]
    for student in ("solution", "student", "wrong"):
        assert _scores(unsafe[student]) == VAE[student]
        assert "isolation" in unsafe[student].outcome.results["seconds"]
        assert unsafe[student].outcome.results["seconds"]["isolation"] == 0.0


def test_no_sandbox_no_grading_unless_asked(tmp_path, monkeypatch):
    from gencourse.grading import __main__ as cli
    from gencourse.grading import isolation

    monkeypatch.setattr(isolation, "_UNAVAILABLE", ["user namespaces are disabled (a test)"])
    (tmp_path / "subs").mkdir()
    with pytest.raises(SandboxUnavailable, match="--unsafe-no-sandbox"):
        grade(ROOT / "assignments" / "01_vae", tmp_path / "subs", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert (
        cli.main(
            [
                "grade",
                str(ROOT / "assignments" / "01_vae"),
                str(tmp_path / "subs"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )


class _TamperingServer:
    """A stand-in fork server whose 'submission' changes the assignment folder."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def run(self, request, timeout, timing=None):
        with open(self.target, "a") as f:
            f.write("\n# changed during grading\n")
        return 0


def test_a_changed_assignment_folder_is_reported_as_tampering(tmp_path):
    assignment = tmp_path / "01_vae"
    shutil.copytree(ROOT / "assignments" / "01_vae", assignment)
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(FIXTURES / "01_vae" / "wrong.ipynb", subs / "a.ipynb")
    server = _TamperingServer(assignment / "hidden_tests.py")
    with pytest.raises(TamperingError, match="hidden_tests.py") as info:
        grade(assignment, subs, tmp_path / "out", server=server, unsafe_no_sandbox=True)
    assert [r.student for r in info.value.results] == ["a"]
    assert "hidden_tests.py" in (tmp_path / "out" / "TAMPERING.txt").read_text()


def test_names_are_made_safe():
    assert safe_name("=HYPERLINK(x)") == "_HYPERLINK_x_"
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name("...") == "student" and len(safe_name("a" * 500)) == 80


def test_results_log_folds_events_and_skips_broken_lines():
    log = b"\n".join(
        [
            b'{"token": "t"}',
            b'{"cell": 0, "error": "ended"}',
            b'{"cell": 0, "error": null}',
            b'{"probe": "q1:0", "value": {"kind": "number", "value": 1}}',
            b'{"public": "q1", "passed": 1, "failed": []}',
            b'{"done": true}',
            b'{"probe": "q1:1", "val',
        ]
    )
    obj, problems = read_results_log(log)
    assert obj["cells"] == [{"cell": 0, "error": None}] and obj["done"] and obj["token"] == "t"
    assert problems == ["1 malformed line(s) of the results were ignored"]
    clean, more = check_results(obj, "t", {"q1:0"}, {"q1"})
    assert clean["probes"]["q1:0"] == {"kind": "number", "value": 1} and clean["public"]["q1"]["passed"] == 1


def test_a_batch_of_30_on_two_workers_gets_every_expected_score(tmp_path):
    _isolation_or_skip()
    kinds = {
        "solution": (ROOT / "assignments" / "01_vae" / "01_vae.ipynb", VAE["solution"]),
        "student": (ROOT / "assignments" / "01_vae" / "student" / "01_vae.ipynb", VAE["student"]),
        "wrong": (FIXTURES / "01_vae" / "wrong.ipynb", VAE["wrong"]),
        "raises": (FIXTURES / "01_vae" / "raises.ipynb", VAE["raises"]),
        "tampers": (FIXTURES / "01_vae" / "tampers.ipynb", VAE["tampers"]),
        "dir_fd_answers": (FIXTURES / "01_vae" / "dir_fd_answers.ipynb", VAE["dir_fd_answers"]),
    }
    subs, expected = tmp_path / "subs", {}
    subs.mkdir()
    for i in range(30):
        kind = list(kinds)[i % len(kinds)]
        shutil.copy(kinds[kind][0], subs / f"s{i:02d}_{kind}.ipynb")
        expected[f"s{i:02d}_{kind}"] = kinds[kind][1]
    out = tmp_path / "out"
    out.mkdir()
    (out / "feedback").write_text("a file where the feedback folder goes")
    started = time.monotonic()
    results = grade(ROOT / "assignments" / "01_vae", subs, out, workers=2, limits=LIMITS, seed=SEED)
    seconds = time.monotonic() - started
    assert {r.student: _scores(r) for r in results} == expected
    assert len(list((out / "feedback").iterdir())) == 30
    print(f"30 submissions on 2 workers: {seconds:.1f} s; {batch_summary(results)}")


# --------------------------------------------------------------------------------------------
# student notebooks: no leaks, public tests present, reproducible


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_student_notebooks_leak_no_solution_and_no_hidden_test(name):
    folder = ROOT / "assignments" / name
    source = json.loads((folder / f"{name}.ipynb").read_text())
    text = (folder / "student" / f"{name}.ipynb").read_text()
    assert find_leaks(source, text, (folder / "hidden_tests.py").read_text()) == []
    assert [p.name for p in (folder / "student").iterdir()] == [f"{name}.ipynb"]


def test_the_leak_scan_finds_a_leak():
    folder = ROOT / "assignments" / "01_vae"
    source = json.loads((folder / "01_vae.ipynb").read_text())
    student = json.loads((folder / "student" / "01_vae.ipynb").read_text())
    cell = next(c for c in student["cells"] if "def kl_gaussian" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace(
        "...", "return 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar).sum(dim=-1)"
    )
    leaks = find_leaks(source, json.dumps(student, indent=1))
    assert len(leaks) == 1 and "solution line" in leaks[0]
    assert find_leaks(source, json.dumps({"cells": [], "x": "# BEGIN SOLUTION"})) == [
        "otter marker 'BEGIN SOLUTION'"
    ]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_assignment_sources_are_paired_and_committed_without_outputs(name):
    import jupytext

    folder = ROOT / "assignments" / name
    py, ipynb = jupytext.read(folder / f"{name}.py"), jupytext.read(folder / f"{name}.ipynb")
    assert [(c.cell_type, c.source.strip()) for c in py.cells] == [
        (c.cell_type, c.source.strip()) for c in ipynb.cells
    ]
    for notebook in (folder / f"{name}.ipynb", folder / "student" / f"{name}.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        assert all(c.get("outputs", []) == [] for c in cells if c["cell_type"] == "code"), notebook


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_public_tests_travel_in_the_student_notebook(name):
    assignment = load_assignment(ROOT / "assignments" / name)
    tests = read_public_tests(assignment.student_notebook)
    assert set(tests) == {q.name for q in assignment.autograded}
    assert all(cases and all(case.startswith(">>> ") for case in cases) for cases in tests.values())


def test_regenerated_student_notebooks_are_byte_identical(tmp_path):
    for name in ASSIGNMENTS:
        out = generate(ROOT / "assignments" / name, student_dir=tmp_path / name)
        assert out.read_bytes() == (ROOT / "assignments" / name / "student" / f"{name}.ipynb").read_bytes(), (
            name
        )


def test_colab_setup_fetches_the_public_tests_that_otter_checks(tmp_path, monkeypatch):
    import otter

    monkeypatch.chdir(tmp_path)
    tests = fetch_for_colab("01_vae", base_url=ROOT.as_uri())
    assert sorted(p.stem for p in tests.iterdir()) == ["q1", "q2", "q3", "q4", "q5"]
    grader = otter.Notebook("01_vae.ipynb")

    def kl_discrete(p, q):
        support = p > 0
        return (
            math.inf
            if np.any(q[support] == 0)
            else float(np.sum(p[support] * np.log(p[support] / q[support])))
        )

    assert grader.check("q1", {"np": np, "math": math, "kl_discrete": kl_discrete}).passed_all
    assert not grader.check("q1", {"np": np, "math": math, "kl_discrete": lambda p, q: 0.0}).passed_all


def test_normalisation_gives_content_ids():
    nb = {
        "cells": [{"cell_type": "code", "id": "random", "metadata": {"lines_to_next_cell": 1}, "source": "x"}]
    }
    nb["cells"].append(dict(nb["cells"][0], id="other"))
    nb["metadata"] = {"jupytext": {"formats": "ipynb,py"}}
    out = json.loads(normalise_student_notebook(nb))
    ids = [c["id"] for c in out["cells"]]
    assert ids[0] != "random" and ids[1] == ids[0] + "-2"
    assert out["metadata"] == {} and out["cells"][0]["metadata"] == {} and out["cells"][0]["outputs"] == []


# --------------------------------------------------------------------------------------------
# the pieces, in this process


def test_to_plain_converts_exact_types_only():
    assert to_plain(torch.tensor([1.0, float("nan")]))["data"] == [1.0, "nan"]
    assert to_plain(np.float32(0.5)) == {"kind": "number", "value": 0.5}
    assert to_plain((1, "a", None))["items"][1] == {"kind": "str", "value": "a"}

    class Sneaky(float):
        pass

    assert to_plain(Sneaky(1.0))["kind"] == "unsupported"
    assert to_plain(torch.zeros(2).as_subclass(type("T", (torch.Tensor,), {})))["kind"] == "unsupported"
    assert to_plain(torch.zeros(3, dtype=torch.bfloat16))["dtype"] == "float"


def test_validate_rejects_malformed_plain_data():
    good = {"kind": "array", "dtype": "float", "shape": [2], "data": [1.0, "inf"]}
    assert as_array(validate(good)).tolist() == [1.0, float("inf")]
    bad = [
        {"kind": "array", "dtype": "float", "shape": [3], "data": [1.0, 2.0]},
        {"kind": "array", "dtype": "float", "shape": [1], "data": [float("nan")]},
        {"kind": "array", "dtype": "int", "shape": [1], "data": [True]},
        {"kind": "number", "value": 1.0, "extra": 1},
        {"kind": "seq", "items": [{"kind": "eval"}]},
        {"kind": "number", "value": "1e3"},
        [1, 2],
    ]
    for value in bad:
        with pytest.raises(PlainError):
            validate(value)


def test_check_results_keeps_only_what_was_asked_for():
    obj = {
        "token": "t",
        "cells": [{"cell": 0, "error": None}],
        "probes": {"q1:0": {"kind": "number", "value": 1}, "q9:0": {"kind": "number", "value": 1}},
        "public": {"q1": {"passed": 1, "failed": []}, "q7": {"passed": 1, "failed": []}},
        "done": True,
    }
    clean, problems = check_results(obj, "t", {"q1:0"}, {"q1"})
    assert set(clean["probes"]) == {"q1:0"} and set(clean["public"]) == {"q1"}
    assert problems == ["an unexpected result 'q9:0' was ignored"]
    assert check_results(obj, "other", {"q1:0"}, {"q1"})[0] == {}


def test_close_judges_values_shapes_and_exceptions():
    compare = close(rtol=1e-6, atol=0.0)
    number = to_plain(1.0)
    assert compare(number, to_plain(1.0 + 1e-9), ()) is None
    assert "differs" in compare(number, to_plain(1.1), ())
    assert compare(to_plain(float("inf")), to_plain(float("inf")), ()) is None
    assert "shape" in compare(to_plain(np.zeros(3)), to_plain(np.zeros(4)), ())
    assert "NaN" in compare(to_plain(np.zeros(2)), to_plain(np.array([0.0, np.nan])), ())
    raised = {"kind": "raised", "type": "ValueError", "message": ""}
    assert compare(raised, dict(raised, message="x"), ()) is None
    assert "ValueError" in compare(raised, number, ())
    assert (
        close(atol=0.0, mismatch=0.5)(to_plain(np.zeros(4)), to_plain(np.array([0, 0, 0, 1.0])), ()) is None
    )


def test_probes_build_the_same_inputs_on_both_sides():
    spec = mlp(np.random.default_rng(0), [3, 4, 1], "tanh", squeeze=True, grad=True)
    a, b = build(spec), build(spec)
    x = torch.randn(5, 3, dtype=torch.float64)
    assert torch.equal(a(x), b(x)) and a(x).shape == (5,)
    probe = {"call": True, "args": [spec, tensor(np.ones((2, 3)), grad=True)], "kwargs": {}, "grad": True}
    value = evaluate(lambda net, x: net(x), probe)
    assert value["kind"] == "seq" and len(value["items"][1]["items"]) == 5  # d/dx and 4 parameters


def test_audit_hook_refuses_what_it_must(tmp_path):
    sandbox = str(tmp_path.resolve())
    hook = make_audit_hook(sandbox, ("/usr/lib",), (), ("gencourse.vae",), 2)
    hook("open", (f"{sandbox}/notes.txt", "w", os.O_WRONLY | os.O_CREAT))
    hook("open", ("/usr/lib/os-release", "r", os.O_RDONLY))
    hook("import", ("json", None, None, None, None))
    refused = [
        ("open", ("/etc/passwd", "r", os.O_RDONLY)),
        ("open", ("/usr/lib/x", "w", os.O_WRONLY)),
        ("open", (f"{sandbox}/../escape", "w", os.O_WRONLY)),
        ("open", ("/usr/lib", "r", os.O_RDONLY)),
        ("os.remove", ("/usr/lib/x", -1)),
        ("os.rename", (f"{sandbox}/a", "/tmp/b", -1, -1)),
        ("os.remove", ("x", 3)),
        ("subprocess.Popen", ("sleep", ["sleep"], None, None)),
        ("os.system", (b"true",)),
        ("os.fork", ()),
        ("os.kill", (1, 9)),
        ("ctypes.dlopen", ("libc.so.6",)),
        ("socket.__new__", (None, 2, 1, 0)),
        ("import", ("gencourse.vae", None, None, None, None)),
        ("import", ("_posixsubprocess", "x.so", None, None, None)),
        ("object.__setattr__", (hook, "__code__", None)),
        ("gc.get_objects", (-1,)),
        ("sys.settrace", ()),
    ]
    for event, args in refused:
        with pytest.raises(PermissionError):
            hook(event, args)
    with pytest.raises(RuntimeError):
        hook("sys.addaudithook", ())
    hook("open", (f"{sandbox}/second.txt", "w", os.O_WRONLY | os.O_CREAT))
    with pytest.raises(PermissionError, match="more than 2 files"):
        hook("open", (f"{sandbox}/third.txt", "w", os.O_WRONLY | os.O_CREAT))


def test_audit_hook_looks_up_no_global_name():
    """Patching builtins or modules cannot change the hook: it and its helpers use closure
    variables only."""
    hook = make_audit_hook("/tmp/x", (), (), (), 1)
    functions, seen = [hook], set()
    while functions:
        f = functions.pop()
        if f in seen:
            continue
        seen.add(f)
        loads = {i.argval for i in dis.get_instructions(f) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
        assert not loads, (f.__name__, loads)
        functions += [
            c.cell_contents
            for c in f.__closure__ or ()
            if callable(c.cell_contents) and hasattr(c.cell_contents, "__code__")
        ]
    assert len(seen) > 5


def test_gradient_penalty_reference_matches_the_package():
    from gencourse.gan import gradient_penalty

    hidden = load_assignment(ROOT / "assignments" / "02_gan")
    reference = hidden.checks["q3"].reference
    critic = build(mlp(np.random.default_rng(1), [2, 8, 1], "tanh", squeeze=True))
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    alpha = torch.rand((6, 1), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = reference(critic, real, fake, alpha)
    theirs = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(3))
    assert torch.allclose(ours, theirs, rtol=1e-9)


def test_diffusion_references_agree_with_the_package_conventions():
    """Assignment 5's references (Bayes on a grid, the closed form, the loss judged from the
    model's inputs) accept ``gencourse.diffusion``'s functions: the assignment and lecture 13
    share one set of conventions."""
    diffusion = pytest.importorskip("gencourse.diffusion")
    hidden = load_assignment(ROOT / "assignments" / "05_diffusion")
    rng = np.random.default_rng(0)
    for question, function in (("q1", diffusion.q_sample), ("q2", diffusion.q_posterior)):
        check = hidden.checks[question]
        for probe in check.probes(rng):
            args = [build(spec) for spec in probe.args]
            got = function(*args)
            if question == "q2":  # the variance as one number per item, whatever its shape
                got = (
                    got[0],
                    got[1].reshape(len(args[1]), -1)[:, :1].reshape(-1, *[1] * (args[1].dim() - 1)),
                )
            problem = check.compare(to_plain(check.reference(*args)), to_plain(got), tuple(args))
            assert problem is None, (question, probe.label, problem)
    check = hidden.checks["q3"]
    for probe in check.probes(rng):
        net, x0, alpha_bars, seed = (build(spec) for spec in probe.args)
        model, seen = _recording_eps_model(net, len(alpha_bars))
        loss = diffusion.ddpm_loss(model, x0, alpha_bars, generator=torch.Generator().manual_seed(seed))
        got = (loss, torch.cat([s[0] for s in seen]), torch.cat([s[1] for s in seen]), loss.requires_grad)
        expected = to_plain(check.reference(net, x0, alpha_bars, seed))
        assert check.compare(expected, to_plain(got), (net, x0, alpha_bars, seed)) is None, probe.label


def _recording_eps_model(net, T):
    """model(xt, t) = net([xt flattened, t / T]) as assignment 5's EpsilonModel, and the list of
    the inputs it was called with."""
    seen = []

    def model(xt, t):
        seen.append((xt.detach(), t))
        return net(torch.cat([xt.flatten(1), t.to(xt.dtype).unsqueeze(1) / T], dim=1)).reshape(xt.shape)

    return model, seen


def test_find_submissions_and_written_answers(tmp_path):
    (tmp_path / "bob smith.ipynb").write_text("{}")
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "hw.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    assert [s for s, _ in find_submissions(tmp_path)] == ["bob_smith", "carol"]
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "<!-- BEGIN QUESTION -->\nprompt"},
            {"cell_type": "markdown", "source": ["my ", "answer"]},
            {"cell_type": "markdown", "source": "<!-- END QUESTION -->"},
        ]
    }
    assert written_answers(nb, ["q6"]) == {"q6": "my answer"}


def test_every_assignment_loads_with_checks_for_its_autograded_questions():
    assert ASSIGNMENTS == ["01_vae", "02_gan", "03_inverse", "04_adversarial", "05_diffusion"]
    for name in ASSIGNMENTS:
        assignment = load_assignment(ROOT / "assignments" / name)
        assert assignment.forbidden_modules and len(assignment.autograded) >= 3
        assert sum(q.manual for q in assignment.questions) == 1
