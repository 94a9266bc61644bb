"""gencourse.lecture: the one-line set-up and the closing timing of a lecture notebook."""

import json
import time

import pytest
import torch

from gencourse.lecture import Lecture, start


def test_start_prints_level_and_device_and_starts_the_clock(monkeypatch, capsys):
    monkeypatch.setenv("GENCOURSE_BUDGET", "ci")
    monkeypatch.delenv("GENCOURSE_STRICT_DEVICE", raising=False)
    before = time.perf_counter()
    lecture = start("05_compressed_sensing_gm")
    assert lecture.name == "05_compressed_sensing_gm" and lecture.level == "ci"
    assert isinstance(lecture.device, torch.device)
    assert before <= lecture.t0 <= time.perf_counter()
    assert capsys.readouterr().out == f"budget level: ci, device: {lecture.device}\n"


def test_finish_records_the_wall_time_for_the_timing_page(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GENCOURSE_BUDGET", "ci")
    monkeypatch.setenv("GENCOURSE_RESULTS", str(tmp_path))
    lecture = Lecture("13_diffusion", "ci", torch.device("cpu"), t0=time.perf_counter() - 2.5)
    seconds = lecture.finish()
    assert 2.5 <= seconds < 60
    saved = json.loads((tmp_path / "timing" / "13_diffusion.json").read_text())
    assert saved["ours"] == pytest.approx(seconds, abs=1e-3) and saved["unit"] == "s"
    assert saved["budget"] == "ci" and saved["lecture"] == "13_diffusion"
    assert capsys.readouterr().out.endswith(f"lecture run time at budget 'ci': {seconds:.0f} s\n")


@pytest.mark.parametrize("bad", ["__main__", "lecture5", "5_cs", "05-cs", "", None])
def test_a_name_that_is_not_a_notebook_name_is_refused(bad):
    with pytest.raises(ValueError, match="notebook's file name"):
        start(bad)


def test_every_lecture_starts_and_finishes_under_its_own_name():
    """Each lecture calls start("its file name") once and LECTURE.finish() once, in that order."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "lectures").glob("[0-9][0-9]_*.py")):
        text = path.read_text()
        if "gencourse.lecture" not in text:
            continue  # not yet converted
        assert text.count(f'start("{path.stem}")') == 1, path.name
        assert text.count("LECTURE.finish()") == 1, path.name
        assert text.index(f'start("{path.stem}")') < text.index("LECTURE.finish()"), path.name
