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
    assert "| 01_vae | NLL | 85–100 | 101.2 | nats | 2 (0, 1) |" in page
    assert "| 01_vae | 12 |" in page and "timing/" not in page
    report = render_timing({"ci": {"01_vae": 12.3}, "cpu": {"01_vae": 100.0, "02_gan": 50.0}}, "m", "d")
    assert "| 01_vae | 12 | 100 |" in report and "| 02_gan | – | 50 |" in report
    assert "| **total** | 12 | 150 |" in report
    assert "| two at a time (min, estimated) | 0 | 1 |" in report  # 12.3 s / 120, 150 s / 120
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
    assert "| demo | two plus two | 4 | 4 |" in page
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
    monkeypatch.setattr(sb, "reference_workload", lambda steps=100: 7.5)
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
