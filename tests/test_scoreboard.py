import json

import pytest

from gencourse import scoreboard
from gencourse.scoreboard import collect, record, record_timing, render, render_timing


def test_record_is_silent_without_the_results_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GENCOURSE_RESULTS", raising=False)
    entry = record("vae/x", 1.0, lecture="01_vae", description="d")
    assert entry["ours"] == 1.0 and entry["budget"] == "ci"
    assert not list(tmp_path.iterdir())


def test_record_collect_and_render(monkeypatch, tmp_path):
    monkeypatch.setenv("GENCOURSE_RESULTS", str(tmp_path))
    record(
        "vae/nll",
        101.23456789,
        paper="85–100",
        unit="nats",
        lecture="01_vae",
        description="NLL",
        seeds=[0, 1],
    )
    record("gan/modes", {"GAN": 17.0, "PacGAN2": float("inf")}, lecture="04_pacgan", description="modes")
    saved = json.loads((tmp_path / "vae" / "nll.json").read_text())
    assert saved["ours"] == 101.235 and saved["seeds"] == [0, 1]
    entries = collect(tmp_path)
    assert [e["name"] for e in entries] == ["vae/nll", "gan/modes"]  # sorted by lecture
    assert entries[1]["ours"]["PacGAN2"] == "inf"
    record_timing("01_vae", 12.3)
    entries = collect(tmp_path)
    page = render(entries, "ci", "test machine", "2026-01-01")
    assert page.startswith("# Reproduction scoreboard")
    assert "| 1 | NLL | 85–100 | 101.2 | **none recorded** | not reproduced |" in page
    assert "1. `vae/nll`; unit: nats; 2 seeds (0, 1)" in page
    assert "| 01_vae | 12 |" in page and "timing/" not in page
    report = render_timing({"ci": {"01_vae": 12.3}, "cpu": {"01_vae": 100.0, "02_gan": 50.0}}, "m", "d")
    assert "| 01_vae | 12 | 100 |" in report and "| 02_gan | – | 50 |" in report
    assert "| **total** | 12 | 150 |" in report
    assert "| two at a time on 2 cores (min, estimated) | 0 | 1 |" in report  # 12.3 s / 120, 150 s / 120
    assert render_timing({"ci": {"a": 1.0}}, "m", "d", note="under load").rstrip().endswith("under load")


def test_record_rejects_bad_names():
    with pytest.raises(ValueError):
        record("NoTopic", 1.0, lecture="x", description="d")


def test_main_runs_a_notebook_and_writes_the_page(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from gencourse.scoreboard import record\n"
            "record('demo/value', 2 + 2, paper=4, higher_is_better=True, lecture='demo', description='two plus two')"
        )
    ]
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "book"
    assert (
        scoreboard.main(
            [
                "--budget",
                "ci",
                "--run",
                "--lectures",
                str(path),
                "--out",
                str(out),
                "--results",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    page = (out / "scoreboard.md").read_text()
    assert "| 1 | two plus two | 4 | 4 | **none recorded** | reproduced |" in page
    # the figure is written next to the page and included in it
    assert (out / "scoreboard.png").read_bytes().startswith(b"\x89PNG")
    assert "```{figure} scoreboard.png" in page
    data = json.loads((out / "scoreboard.json").read_text())
    assert data["budget"] == "ci" and data["results"][0]["ours"] == 4
    with pytest.raises(RuntimeError, match="no results"):
        scoreboard.main(["--budget", "cpu", "--out", str(out), "--results", str(tmp_path / "r")])


def test_timing_page_shows_the_reference_workload(tmp_path, monkeypatch):
    import gencourse.scoreboard as sb

    report = render_timing({"cpu": {"a": 1.0}}, "m", "d", reference={"cpu": 12.34})
    assert "took 12.3 s before the `cpu` run" in report
    assert "Machine speed" not in render_timing({"cpu": {"a": 1.0}}, "m", "d")
    # the command line times it into the results folder, and --timing reads it back
    from gencourse.report import benchmark

    monkeypatch.setattr(benchmark, "reference_workload", lambda steps=100: 7.5)
    results = tmp_path / "results-cpu"
    assert sb.main(["--budget", "cpu", "--reference", "--results", str(results)]) == 0
    (results / "timing").mkdir()
    monkeypatch.setenv("GENCOURSE_RESULTS", str(results))
    monkeypatch.setenv("GENCOURSE_BUDGET", "cpu")
    record_timing("01_vae", 3.0)
    assert sb.main(["--budget", "cpu", "--timing", str(results), "--out", str(tmp_path)]) == 0
    assert "took 7.5 s before the `cpu` run" in (tmp_path / "timing.md").read_text()


def test_reference_workload_times_real_training():
    from gencourse.scoreboard import reference_workload

    assert 0 < reference_workload(steps=3) < 60


@pytest.fixture(autouse=True)
def no_results_folder(monkeypatch):
    """Tests call record() for its return value: nothing may reach the results folder that
    `make test` sets (its scoreboard check would see a demo row); a test that wants a folder sets
    its own."""
    monkeypatch.delenv("GENCOURSE_RESULTS", raising=False)


def _entry(ours, **kw):
    return record("demo/x", ours, lecture="demo", description="d", **kw)


def test_verdict_rule_each_branch():
    base = {"uniform noise": 22.3}
    # within two of the paper's stated ± of its mean
    assert (
        _entry(24.0, paper=23.8, paper_spread=0.7, higher_is_better=True, baseline=base)["verdict"]
        == "reproduced"
    )
    assert _entry(23.0, paper=24.8, paper_spread=0.2, higher_is_better=True, baseline={"u": 1})[
        "verdict"
    ] == ("not reproduced")
    # the book's old PacGAN row: fewer modes than uniform noise
    assert _entry(16.3, paper=23.8, paper_spread=0.7, higher_is_better=True, baseline=base)["verdict"] == (
        "below baseline"
    )
    # the number cannot be read as the paper's: too few high-quality samples
    bad = _entry(24.0, paper=23.8, paper_spread=0.7, higher_is_better=True, invalid_reason="high quality 2 %")
    assert bad["verdict"] == "not reproduced"
    # no ± from the paper: within 10 % of its number; lower is better for an error
    assert (
        _entry(0.0100, paper=0.0096, higher_is_better=False, baseline={"zero": 0.1})["verdict"]
        == "reproduced"
    )
    assert _entry(0.0150, paper=0.0096, higher_is_better=False, baseline={"zero": 0.1})["verdict"] == (
        "not reproduced"
    )
    held = _entry(
        0.0150,
        paper=0.0096,
        higher_is_better=False,
        baseline={"zero": 0.1},
        ordering=True,
        ordering_claim="c",
    )
    assert held["verdict"] == "ordering held"
    assert _entry(3.0, higher_is_better=True, baseline={"b": 1.0})["verdict"] == "no paper number"
    # dict-valued results are compared key by key
    two = {"fbp": 26.0, "network": 33.8}
    assert (
        _entry(two, higher_is_better=True, baseline={"fbp": {"network": 26.0}})["verdict"]
        == "no paper number"
    )
    assert (
        _entry(two, higher_is_better=True, baseline={"noisy": {"network": 40.0}})["verdict"]
        == "below baseline"
    )


def test_record_asks_for_the_evidence_it_needs():
    with pytest.raises(ValueError, match="higher_is_better"):
        _entry(1.0, paper=2.0)
    with pytest.raises(ValueError, match="ordering_claim"):
        _entry(1.0, ordering=True)


def test_paper_range_verdicts_and_format():
    from gencourse.scoreboard import fmt_paper, paper_range

    def nll(ours):
        return _entry(ours, paper=[85, 100], higher_is_better=False, baseline={"independent pixels": 200.0})

    assert paper_range([85, 100]) == (85.0, 100.0) and paper_range([100, 85]) is None
    assert paper_range("85–100") is None and paper_range([1, 2, 3]) is None
    # inside the range, ends included: reproduced; outside: not reproduced
    assert [nll(v)["verdict"] for v in (85.0, 92.5, 100.0)] == ["reproduced"] * 3
    assert nll(111.4)["verdict"] == "not reproduced" and nll(84.9)["verdict"] == "not reproduced"
    # the baseline test comes first, as for single numbers
    assert nll(250.0)["verdict"] == "below baseline"
    assert fmt_paper(nll(90.0)) == "85–100"
    assert (
        fmt_paper(_entry(1.0, paper=23.8, paper_spread=0.7, higher_is_better=True)) == "23.8\u00a0±\u00a00.7"
    )
    assert "inside the range" in scoreboard.VERDICT_RULE
    with pytest.raises(ValueError, match="higher_is_better"):
        _entry(90.0, paper=[85, 100])
    with pytest.raises(ValueError, match="range"):
        _entry(90.0, paper=[100, 85], higher_is_better=False)


def _lecture_entries():
    """Rows of two lectures with every kind of evidence, and a timing."""
    return [
        record(
            "dip/psnr",
            25.6,
            lecture="06_deep_image_prior",
            description="DIP PSNR | best step",
            paper=[29, 31],
            unit="dB",
            seeds=[1],
            higher_is_better=True,
            baseline={"noisy input": 20.6, "TV denoising": 26.5},
            note="best step 631",
        ),
        record(
            "restoration/ct",
            {"skips": 33.8, "no skips": 26.8},
            lecture="08_restoration_segmentation",
            description="CT PSNR",
            unit="dB",
            seeds=[0, 1, 2],
            wall_time_s=12.0,
            higher_is_better=True,
            baseline={"low-dose FBP": {"skips": 26.1, "no skips": 26.1}},
        ),
        record(
            "restoration/dice",
            0.58,
            lecture="08_restoration_segmentation",
            description="Dice",
            spread=0.02,
            paper=0.6,
            higher_is_better=True,
            baseline={"all background": 0.0},
            ordering=True,
            ordering_claim="Dice loss above cross-entropy",
            invalid_reason="only 2 seeds",
        ),
        record_timing("06_deep_image_prior", 584.0),
    ]


def test_render_groups_rows_by_lecture_with_notes_under_each_table(monkeypatch):
    monkeypatch.delenv("GENCOURSE_RESULTS", raising=False)
    page = render(_lecture_entries(), "cpu", "m", "d", figure="scoreboard.png")
    # short cell lines are kept whole, longer ones keep their value with the word before it
    assert "no\u00a0skips:\u00a026.8" in page and "TV denoising:\u00a026.5" in page
    assert "0.58\u00a0±\u00a00.02" in page
    page = page.replace("\u00a0", " ")
    # each lecture's table sits in a container that the book's stylesheet styles
    assert page.count("````{container} scoreboard-table\n| # |") == 2
    dip, ct, timing = (
        page.index(h) for h in ("## Lecture 6: deep image prior", "## Lecture 8:", "## Time per")
    )
    assert page.index("## Verdicts") < page.index("```{figure} scoreboard.png") < dip < ct < timing
    header = "| # | result | paper | ours | trivial baselines | verdict |"
    assert page.count(header) == 2
    # lecture 6's table: the range as lo–hi, a '|' in a description escaped, baselines one per line
    assert (
        "| 1 | DIP PSNR \\| best step | 29–31 | 25.6 | noisy input: 20.6<br>TV denoising: 26.5 | below baseline |"
        in (page[dip:ct])
    )
    assert "1. `dip/psnr`; unit: dB; 1 seed (1); higher is better; best step 631" in page[dip:ct]
    # lecture 8's table numbers its own rows; a baseline equal for every key shows once; ours ± spread
    section = page[ct:timing]
    assert (
        "| 1 | CT PSNR | – | skips: 33.8<br>no skips: 26.8 | low-dose FBP: 26.1 | no paper number |"
        in section
    )
    assert "| 2 | Dice | 0.6 | 0.58 ± 0.02 | all background: 0 | not reproduced |" in section
    notes = section[section.index("Notes, by row:") :]
    assert "1. `restoration/ct`; unit: dB; 3 seeds (0, 1, 2); wall time 12 s" in notes
    assert "the paper's comparison, Dice loss above cross-entropy: held in our numbers" in notes
    assert "not readable as the paper's number: only 2 seeds" in notes
    # the rule, one bullet per verdict, and the count of rows per verdict
    assert "- *Reproduced*: our mean lies within two" in page
    assert "| below baseline | 1 |" in page and "| no paper number | 1 |" in page
    assert "| not reproduced | 1 |" in page and "| **all** | 3 |" in page
    assert "| 06_deep_image_prior | 584 |" in page
    assert "the 2 of 3 rows" in page  # the caption says which rows the figure shows
    assert "```{figure}" not in render(_lecture_entries(), "cpu", "m", "d")


def test_plot_scoreboard_writes_one_panel_per_row_with_a_paper_number(tmp_path, monkeypatch):
    from gencourse.scoreboard import figure_rows, plot_scoreboard

    monkeypatch.delenv("GENCOURSE_RESULTS", raising=False)
    results = _lecture_entries()[:3]
    more = _entry(16.3, paper=23.8, paper_spread=0.7, spread=1.2, higher_is_better=True, baseline={"u": 22.3})
    results.append(more | {"lecture": "04_pacgan"})
    assert [e["name"] for e in figure_rows(results)] == ["dip/psnr", "restoration/dice", "demo/x"]
    path = tmp_path / "board.png"
    assert plot_scoreboard(results, path) == 3
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    # without any paper number the figure says so, and is still written
    assert plot_scoreboard(results[1:2], tmp_path / "empty.png") == 0
    assert (tmp_path / "empty.png").stat().st_size > 1_000


def test_check_flags_missing_baselines_directions_and_typed_verdicts(monkeypatch, tmp_path, capsys):
    from gencourse.scoreboard import check

    monkeypatch.delenv("GENCOURSE_RESULTS", raising=False)
    good = _lecture_entries()
    assert check(good) == []
    no_base = record("a/none", 1.0, lecture="x", description="d")
    no_direction = good[0] | {"name": "a/up", "higher_is_better": None}
    typed = good[1] | {"name": "a/typed", "verdict": "reproduced"}
    words = good[1] | {"name": "a/words", "baseline": {"trivial": "n/a"}}
    problems = check([no_base, no_direction, typed, words, good[3]])
    assert any(p.startswith("a/none (x): no trivial baseline") for p in problems)
    assert any(p.startswith("a/up (06_deep_image_prior): no higher_is_better") for p in problems)
    assert any(
        "a/typed" in p and "'reproduced' differs from the rule's 'no paper number'" in p for p in problems
    )
    assert any(p.startswith("a/words (08_restoration_segmentation): no trivial baseline") for p in problems)
    assert not any("timing" in p for p in problems)
    # the command line: --check fails naming the rows, and passes on good rows
    monkeypatch.setenv("GENCOURSE_RESULTS", str(tmp_path / "bad"))
    record("a/none", 1.0, lecture="x", description="d")
    args = ["--budget", "ci", "--results", str(tmp_path / "bad"), "--out", str(tmp_path / "out"), "--check"]
    assert scoreboard.main(args) == 1
    assert "a/none (x): no trivial baseline" in capsys.readouterr().err
    monkeypatch.setenv("GENCOURSE_RESULTS", str(tmp_path / "good"))
    _lecture_entries()
    args[3] = str(tmp_path / "good")
    assert scoreboard.main(args) == 0
    assert "check passed" in capsys.readouterr().out


def test_reader_pages_hold_no_development_history():
    """The timing and scoreboard pages speak to readers; commits and what a change saved belong in
    CHANGELOG.md."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert "Changelog" in (root / "CHANGELOG.md").read_text()
    for name in ("timing.md", "scoreboard.md"):
        text = (root / "book" / name).read_text()
        # a commit id: 7-40 hex digits with at least one letter (not the digits of a decimal)
        assert not re.search(r"(?<![\d.])\b(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", text), (
            f"{name} names a commit"
        )
        assert re.search(r"(?<![\d.])\b(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", "the build at 1faceda")
        for word in ("session", "clean clone", "fresh clone", " saved "):
            assert word not in text, f"{name} tells development history ({word!r})"


ESTIMATES = {
    "device": {
        "name": "NVIDIA T4 (free Colab)",
        "peak_flops": 8.1e12,
        "bandwidth": 320e9,
        "flop_efficiency": 0.25,
        "bandwidth_efficiency": 0.5,
        "launch_s": 20e-6,
        "sync_s": 50e-6,
        "cpu_factor": 1.5,
    },
    "rules": "The rules.",
    "lectures": {"01_vae": {"gpu": 754.0, "paper": None}, "04_pacgan": {"gpu": 1500.0, "paper": 36000.0}},
}


def test_timing_page_has_the_estimated_gpu_and_paper_columns_with_the_method(tmp_path):
    import importlib.util
    from pathlib import Path

    measured = {"ci": {"01_vae": 17.0, "04_pacgan": 14.0}, "cpu": {"01_vae": 325.0, "04_pacgan": 297.0}}
    page = render_timing(measured, "m", "d", estimates=ESTIMATES)
    assert (
        "| lecture | `ci` (s) | `cpu` (s) | `gpu` on a T4, estimated (min) | `paper` on a T4, estimated (min) |"
        in page
    )
    assert "| 01_vae | 17 | 325 | 13 | – |" in page and "| 04_pacgan | 14 | 297 | 25 | 600 |" in page
    assert "| **total** | 31 | 622 | 38 | 600 |" in page
    for constant in (
        "8.1 TFLOP/s",
        "η = 0.25",
        "320 GB/s",
        "η_mem = 0.5",
        "t_launch = 20 µs",
        "50 µs",
        "1.5× the time",
        "The rules.",
    ):
        assert constant in page, constant
    assert "estimated" not in render_timing(measured, "m", "d").split("| --- |")[0].splitlines()[-1]
    # the book's scheduler still reads the `cpu` column
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("execute_book", root / "tools" / "execute_book.py")
    execute_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(execute_book)
    (tmp_path / "timing.md").write_text(page)
    assert execute_book.measured_seconds(tmp_path / "timing.md", tmp_path) == {
        "01_vae": 325.0,
        "04_pacgan": 297.0,
    }


def test_the_timing_command_reads_the_estimates_file(tmp_path, monkeypatch):
    results = tmp_path / "results-cpu"
    monkeypatch.setenv("GENCOURSE_RESULTS", str(results))
    monkeypatch.setenv("GENCOURSE_BUDGET", "cpu")
    record_timing("01_vae", 300.0)
    (tmp_path / "est.json").write_text(json.dumps(ESTIMATES))
    args = ["--budget", "cpu", "--timing", str(results), "--out", str(tmp_path)]
    assert scoreboard.main([*args, "--estimates", str(tmp_path / "est.json")]) == 0
    assert "| 01_vae | 300 | 13 | – |" in (tmp_path / "timing.md").read_text()
    assert scoreboard.main([*args, "--estimates", str(tmp_path / "missing.json")]) == 0
    assert "| 01_vae | 300 |\n" in (tmp_path / "timing.md").read_text()
