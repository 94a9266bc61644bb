"""The GPU-time estimate (gencourse.gpu_estimate): the counts against hand-computed FLOPs, the
T4 model's formula, the hook in runtime.progress, and the step matching against budget calls."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gencourse import gpu_estimate as ge
from gencourse.gpu_estimate import T4, OpCounter, Tally, kernel_seconds, tally_seconds, tally_totals
from gencourse.runtime import progress


def _count(fn) -> Tally:
    """The tally of ``fn()``'s operations."""
    tally, counter = Tally(), OpCounter()
    with counter:
        counter.bucket = tally
        fn()
        counter.bucket = None
    return tally


def test_a_linear_layer_counts_2_in_out_batch_flops_forward_and_three_times_that_with_backward():
    b, n_in, n_out = 32, 100, 10
    layer = nn.Linear(n_in, n_out)
    x = torch.randn(b, n_in)
    forward = tally_totals(_count(lambda: layer(x)).rows())
    assert forward["flops"] == 2 * b * n_in * n_out and forward["kernels"] == 1  # one addmm (t() is a view)
    # addmm(bias, x, W^T): reads the bias, x and W, writes the output, in float32
    assert forward["bytes"] == 4 * (n_out + b * n_in + n_in * n_out + b * n_out)
    both = tally_totals(_count(lambda: layer(x.requires_grad_()).sum().backward()).rows())
    # backward: grad_x = g W (2·b·out·in) and grad_W = g^T x (2·b·out·in): 6·b·in·out in all
    assert both["flops"] == 6 * b * n_in * n_out


def test_the_flops_are_flop_counter_modes():
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 28 * 28, 10))
    x = torch.randn(16, 1, 28, 28)
    with FlopCounterMode(display=False) as reference:
        net(x).logsumexp(1).sum().backward()
    got = tally_totals(_count(lambda: net(x).logsumexp(1).sum().backward()).rows())
    assert got["flops"] == reference.get_total_flops() > 0


def test_views_launch_nothing_and_item_waits_for_the_device():
    x = torch.randn(4, 6)
    tally = _count(lambda: (x.view(6, 4).t().unsqueeze(0)[0], x.detach()))
    assert tally_totals(tally.rows())["kernels"] == 0
    tally = _count(lambda: x.sum().item())
    assert tally_totals(tally.rows())["kernels"] == 2 and tally.syncs == 1  # sum, then the copy to the host


def test_indexing_reads_the_rows_it_gathers_not_the_whole_tensor():
    data, idx = torch.randn(100_000, 2), torch.randint(100_000, (10,))
    (row,) = _count(lambda: data[idx]).rows()
    assert row[0] == "index" and row[2] == 10 * 8 + 2 * 10 * 2 * 4  # int64 indices, 10 rows read and written


def test_kernel_time_is_the_launch_floor_or_the_roofline_sum():
    assert kernel_seconds(0, 0) == T4.launch_s == 20e-6
    # 1 TFLOP at 25 % of 8.1 TFLOP/s, plus 1.6 GB at 50 % of 320 GB/s
    assert kernel_seconds(1e12, 1.6e9) == pytest.approx(1e12 / (8.1e12 * 0.25) + 1.6e9 / 160e9)
    ops = [["mm", 1e12, 0, 2], ["add", 10, 400, 3]]
    expected = 2 * 1e12 / 2.025e12 + 3 * 20e-6 + 5 * 50e-6
    assert tally_seconds(ops, syncs=5) == pytest.approx(expected)
    # a wider layer makes each kernel bigger, not more kernels
    assert tally_seconds(ops, 0, scale=4) == pytest.approx(2 * 4e12 / 2.025e12 + 3 * 20e-6)
    big = [["add", 0, 1.6e9, 1]]
    assert tally_seconds(big, 0, scale=16, byte_scale=4) == pytest.approx(4 * 1.6e9 / 160e9)


def test_progress_is_untouched_without_the_variable(monkeypatch):
    monkeypatch.delenv(ge.ENV, raising=False)
    items = range(3)
    assert ge.watch(items, "x") is items
    assert list(progress(items)) == [0, 1, 2]


def test_progress_counts_every_step_but_the_first_and_writes_a_record(monkeypatch, tmp_path):
    monkeypatch.setenv(ge.ENV, str(tmp_path))
    monkeypatch.setenv(ge.LECTURE_ENV, "99_demo")
    b, n_in, n_out = 8, 20, 5
    layer = nn.Linear(n_in, n_out)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(b, n_in)
    try:
        wrapped = ge.watch(range(6), "demo")
        assert len(wrapped) == 6
        for _ in progress(range(6), desc="demo"):
            opt.zero_grad()
            layer(x).square().mean().backward()
            opt.step()
        outside = layer(x)  # after the loop: not counted
    finally:
        ge._State.counter.__exit__(None, None, None)
        ge._State.counter = None
    (record,) = ge.read_records(tmp_path / "99_demo.jsonl")
    assert record["kind"] == "loop" and record["desc"] == "demo" and record["lecture"] == "99_demo"
    assert record["steps"] == record["done"] == 6 and record["counted"] == 5
    per_step = tally_totals(record["ops_per_step"])
    assert per_step["flops"] == 4 * b * n_in * n_out  # forward and grad_W (x needs no gradient)
    assert outside.shape == (b, n_out) and json.dumps(record)


LECTURE = [
    "import torch\nfrom gencourse.runtime import budget, progress\n"
    "STEPS = budget(ci=5, cpu=50, gpu=1000)\nSEEDS = list(range(budget(ci=1, cpu=2, gpu=3)))\nN = 512",
    "a, b = torch.randn(N, N), torch.randn(N, N)\n"
    "for seed in SEEDS:\n"
    "    for _ in progress(range(STEPS), desc='matmul'):\n"
    "        y = a @ b",
    "print(float(y.sum()))",
]
# one step of the loop: one matrix product of two N × N matrices, by hand on the T4 model
N = 512
STEP_S = max(20e-6, 2 * N**3 / (8.1e12 * 0.25) + 3 * N * N * 4 / (320e9 * 0.5))


def test_a_notebook_run_with_the_counting_on_gives_the_hand_computed_estimate(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in LECTURE]
    nbformat.write(nb, tmp_path / "99_demo.ipynb")
    ge.run_notebook(tmp_path / "99_demo.ipynb", tmp_path / "records")
    records = ge.read_records(tmp_path / "records" / "99_demo.jsonl")
    loops = [r for r in records if r["kind"] == "loop"]
    assert [(r["cell"], r["desc"], r["steps"], r["counted"]) for r in loops] == [(1, "matmul", 5, 4)]
    assert loops[0]["line"] == 3  # the cell's line that runs the loop, as in the lecture's source
    assert loops[0]["groups"][0]["ops"] == [["mm", 2 * N**3, 3 * N * N * 4, 4]]
    assert [r["cell"] for r in records if r["kind"] == "other"] == [0, 1, 2]
    lecture = ge.read_lecture(ge.notebook_cells(tmp_path / "99_demo.ipynb"))
    est = ge.estimate_lecture(records, lecture, "gpu")
    (loop,) = est["loops"]
    assert loop["steps"] == 1000 and loop["repeat"] == 3  # STEPS at gpu; SEEDS: 1 run at ci, 3 at gpu
    assert loop["seconds"] == pytest.approx(3 * 1000 * STEP_S)
    assert est["other_s"] > 0 and est["seconds"] == pytest.approx(loop["seconds"] + est["other_s"])
    # the `other` work of cell 1 (two randn of N × N) is charged at the launch floor or its bytes
    cell1 = next(r for r in est["other"] if r["cell"] == 1)
    assert cell1["factor"] == 3  # SEEDS, not the loop's STEPS


CELLS = [
    "BATCH, N_EVAL = 100, budget(ci=2, cpu=8, gpu=20)\n"
    "BASE = dict(hidden=16, steps=40)\n"
    "PROTOCOL = budget(ci=BASE, cpu={**BASE, 'steps': 4000}, gpu={**BASE, 'hidden': 64, 'steps': 20000},"
    " paper={**BASE, 'hidden': 400, 'steps': 400000})\n"
    "SEEDS = list(range(budget(ci=2, cpu=5, gpu=10)))",
    "def train(m):\n    return fit(PROTOCOL['steps'], SEEDS, m)",
    "result = train(2)\nHALF = budget(ci=40, cpu=100, gpu=500) // 2",
    "plot(result, n=budget(ci=3, cpu=6, gpu=12))",
    "print(HALF)",
]


def test_the_lectures_knobs_and_what_each_cell_sees():
    lecture = ge.read_lecture(CELLS)
    labels = {(k.cell, k.label): k for k in lecture.knobs}
    assert labels[0, "N_EVAL"].values == {"ci": 2, "cpu": 8, "gpu": 20, "paper": 20}
    assert labels[0, "steps"].values["paper"] == 400000 and labels[0, "steps"].paper
    assert labels[0, "hidden"].ratio("gpu") == 4 and labels[0, "hidden"].ratio("paper") == 25
    assert not labels[0, "SEEDS"].paper and labels[0, "SEEDS"].ratio("paper") == 5  # paper = gpu
    assert labels[3, "n"].values["gpu"] == 12  # a keyword names its knob
    seen = {c: {lecture.knobs[i].label for i in lecture.reach[c]} for c in lecture.reach}
    # cell 2 calls train(), whose body reads PROTOCOL and SEEDS; `result` does not carry them to cell 3
    assert {"steps", "hidden", "SEEDS"} <= seen[2] and "N_EVAL" not in seen[2]
    assert seen[3] == {"n"} and seen[4] == {"HALF"}  # HALF = budget(...) // 2 is still the knob
    assert lecture.names["BATCH"] == 100


def test_a_loop_of_a_constant_length_stays_as_it_is_and_a_derived_one_scales_like_the_steps():
    lecture = ge.read_lecture(
        [
            "DEMO_STEPS = 400\nSTEPS = budget(ci=300, cpu=4000, gpu=20000)",
            "train(net, DEMO_STEPS)\ntrain(net, STEPS // 5)",
        ]
    )
    group = {
        "kind": "loop",
        "cell": 1,
        "desc": "x",
        "groups": [{"steps": 9, "syncs": 0, "ops": [], "dims": []}],
    }
    lengths = ge.step_knobs([], lecture, "gpu")
    assert (
        ge.loop_seconds([{**group, "steps": 400, "line": 1}], lecture, "gpu", lengths=lengths)["steps"] == 400
    )
    assert (
        ge.loop_seconds([{**group, "steps": 60, "line": 2}], lecture, "gpu", lengths=lengths)["steps"] == 4000
    )


def test_a_loop_length_matches_the_knobs_it_can_see_first_and_the_larger_when_ambiguous():
    lecture = ge.read_lecture(CELLS)
    assert ge.match_steps(40, 2, lecture, "gpu")[0] == 20000  # PROTOCOL's steps, seen through train()
    assert ge.match_steps(40, 2, lecture, "paper")[0] == 400000
    assert ge.match_steps(40, 4, lecture, "gpu")[0] == 500  # HALF's knob (ci 40) is what cell 4 sees
    assert ge.match_steps(40, 3, lecture, "gpu")[0] == 20000  # cell 3 sees neither: the larger of both
    assert ge.match_steps(7, 2, lecture, "gpu") == (None, set())


def test_knobs_scale_a_loop_by_the_for_around_it_their_label_or_the_tensors_dimensions():
    effect = ge.knob_effect
    width = ge.Knob(0, 1, "G_WIDTH", {"ci": 16, "cpu": 32, "gpu": 64, "paper": 64})
    assert effect(width, "gpu", iterated=False, dims=set()) == ("width", 4.0)
    seeds = ge.Knob(0, 1, "SEEDS", {"ci": [0], "cpu": [0, 1], "gpu": [0, 1, 2], "paper": [0, 1, 2]})
    assert effect(seeds, "gpu", iterated=True, dims=set()) == ("repeat", 3.0)  # for seed in SEEDS: train(...)
    assert effect(seeds, "gpu", iterated=False, dims={1}) == ("batch", 3.0)  # stacked into one ensemble
    unroll = ge.Knob(0, 1, "UNROLL", {"ci": 1, "cpu": 1, "gpu": 5, "paper": 5})
    assert effect(unroll, "gpu", iterated=False, dims=set()) == (
        "repeat",
        5.0,
    )  # k look-ahead steps per update
    n_test = ge.Knob(0, 1, "N_TEST", {"ci": 6, "cpu": 40, "gpu": 200, "paper": 200})
    assert effect(n_test, "gpu", iterated=False, dims={6, 784}) == ("batch", 200 / 6)  # a batch of 6 images
    assert effect(n_test, "gpu", iterated=False, dims={5, 784}) == ("occasional", 200 / 6)  # evaluations only
    n_curve = ge.Knob(0, 1, "N_CURVE", {"ci": 2, "cpu": 8, "gpu": 20, "paper": 20})
    assert effect(n_curve, "gpu", iterated=False, dims={2, 100}) == ("occasional", 10.0)  # 2 says nothing
    side = ge.Knob(0, 1, "SIZE", {"ci": 48, "cpu": 96, "gpu": 256, "paper": 256})
    assert effect(side, "gpu", iterated=False, dims=set()) == ("spatial", 256 / 48)
    batch = ge.Knob(0, 1, "batch_size", {"ci": 32, "cpu": 64, "gpu": 64, "paper": 64})
    assert effect(batch, "gpu", iterated=False, dims=set()) == ("batch", 2.0)  # not a "size"
    # unroll repeats the step where the training call is given it, not where its results are read
    assert effect(unroll, "gpu", iterated=False, dims=set(), direct=False) == ("occasional", 5.0)


def test_the_for_loops_around_a_line_name_the_knobs_they_iterate():
    cells = [
        "SEEDS = budget(ci=[0], cpu=[0, 1], gpu=[0, 1, 2])\nN = budget(ci=2, cpu=4, gpu=8)",
        "for seed in SEEDS:\n    copies.append(net(seed))\ntrain(stack(copies))\n"
        "out = [evaluate(i) for i in range(N)]\n"
        "for make in [lambda: Net(N), lambda: Net(2 * N)]:\n    train(make())",
    ]
    lecture = ge.read_lecture(cells)
    labels = lambda ks: {lecture.knobs[k].label for k in ks}  # noqa: E731
    assert labels(lecture.iterated_at(1, 2)) == {"SEEDS"}  # inside the for
    assert labels(lecture.iterated_at(1, 3)) == set()  # after it: the stacked copies train once
    assert labels(lecture.iterated_at(1, 4)) == {"N"}  # a comprehension over range(N)
    assert labels(lecture.iterated_at(1, 6)) == set()  # two makers, whatever N is


ROOT = ge.PACGAN_NOTEBOOK.parents[1]
ESTIMATES = ROOT / "book" / "gpu_estimate.json"
COLAB_MINUTES = 30
# Lectures whose estimated `gpu` time exceeds COLAB_MINUTES, for their owners to cut (their
# `gpu` knobs); empty it as they are fixed (the test fails when an entry fits, so it cannot go stale).
KNOWN_OVER: set[str] = set()


def test_lecture_4s_paper_protocol_is_read_from_the_lecture():
    p = ge.paper_protocol()
    assert (p["steps"], p["runs"], p["g_hidden"], p["d_hidden"], p["batch"]) == (400_000, 10, 400, 200, 100)
    assert p["g_batch_norm"] and p["lr"] == p["lr_d"] == 1e-4


def test_the_paper_probe_times_updates_and_extrapolates():
    result = ge.paper_probe(seconds=0, eval_every=2)  # stopped at the first evaluation, on the CPU here
    assert result["updates_run"] == 2 and result["seconds_per_update"] > 0 and not result["completed"]
    assert result["one_setting_min"] == pytest.approx(result["seconds_per_update"] * 400_000 / 60)
    assert result["table_min_lower_bound"] == pytest.approx(11 * result["one_setting_min"])
    assert result["paper"] == {"modes": 17.3, "high_quality": 94.8, "reverse_kl": 0.70}  # GAN, grid


def test_the_paper_probe_runs_any_setting_of_table_1_and_reports_its_metrics_over_the_runs():
    """PacGAN2 on the ring for 4 updates, evaluated every 2: the metrics of the ten runs at each
    evaluation (mean, sd), the time per update measured between the two evaluations, the paper's
    row beside them."""
    result = ge.paper_probe(seconds=1e9, eval_every=2, data_name="ring", pack=2, max_updates=4)
    assert result["updates_run"] == 4 and result["setting"].startswith("PacGAN2 on the ring")
    assert not result["completed"]  # 4 of the protocol's 400,000 updates
    assert result["paper"] == {"modes": 7.9, "high_quality": 95.6, "reverse_kl": 0.07}
    first, last = result["evaluations"]
    assert (first["updates"], last["updates"]) == (2, 4)
    assert result["seconds_per_update"] == pytest.approx((last["seconds"] - first["seconds"]) / 2)
    for row in (first, last):  # the runs start collapsed at the origin, far from the ring's modes
        assert 0 <= row["modes"][0] <= 8 and 0 <= row["high_quality"][0] <= 100
        assert row["modes"][1] >= 0 and row["high_quality"][1] >= 0
        # no reverse KL without high-quality samples: NaN then, as in the lecture
        assert (row["runs_with_high_quality"] == 0) == math.isnan(row["reverse_kl"][0])
    with pytest.raises(ValueError, match="grid or ring"):
        ge.paper_probe(seconds=0, data_name="ring", pack=5)
    with pytest.raises(ValueError, match="eval_every"):
        ge.paper_probe(seconds=0, eval_every=0)


def _recipe(target: str) -> str:
    import re

    text = (ROOT / "Makefile").read_text()
    return re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.M).group(1)


def test_gpu_check_runs_every_lecture_at_gpu_and_lecture_4_at_paper_time_capped_and_is_documented():
    recipe = _recipe("gpu-check")
    assert "torch.cuda.is_available()" in recipe  # only where a GPU is at hand
    assert "gencourse.report --budget gpu --run" in recipe
    assert "gencourse.gpu_estimate paper-probe --seconds 1800" in recipe
    readme = (ROOT / "README.md").read_text()
    assert (
        "`make gpu-check`" in readme and "lecture 4 at `paper`" in readme and "`make gpu-estimate`" in readme
    )
    assert "gencourse.gpu_estimate run lectures/*.ipynb" in _recipe("gpu-estimate")


@pytest.mark.skipif(not ESTIMATES.exists(), reason="no recorded estimates (make gpu-estimate)")
def test_every_lecture_fits_a_colab_session_at_gpu_by_the_recorded_estimate():
    """book/gpu_estimate.json (make gpu-estimate): every lecture's estimated `gpu` time on a T4 is
    at most 30 minutes, every lecture is estimated, and the lectures with a `paper=` knob have a
    `paper` estimate."""
    data = json.loads(ESTIMATES.read_text())
    lectures = {p.stem for p in (ROOT / "lectures").glob("[0-9]*.ipynb")}
    assert set(data["lectures"]) == lectures
    over = {k: round(v["gpu"] / 60, 1) for k, v in data["lectures"].items() if v["gpu"] > COLAB_MINUTES * 60}
    new = {k: v for k, v in over.items() if k not in KNOWN_OVER}
    assert not new, f"estimated minutes at `gpu` on a T4 above {COLAB_MINUTES}: {new}"
    assert not KNOWN_OVER - set(over), f"now within {COLAB_MINUTES} minutes: {KNOWN_OVER - set(over)}"
    for name in lectures:
        cells = ge.notebook_cells(ROOT / "lectures" / f"{name}.ipynb")
        has_paper = any(k.paper for k in ge.read_lecture(cells).knobs)
        assert (data["lectures"][name]["paper"] is not None) == has_paper, name
