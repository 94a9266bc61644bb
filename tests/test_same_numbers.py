"""tools/same_numbers.py: two scoreboard files compared number by number."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("same_numbers", ROOT / "tools" / "same_numbers.py")
same_numbers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(same_numbers)

BOARD = {
    "budget": "cpu",
    "date": "2026-12-06",
    "machine": "x",
    "timings_s": {"02_gan": 900.0},
    "results": [
        {
            "name": "a",
            "ours": {"modes": 7.5, "hq": 0.9},
            "baseline": {"u": 3},
            "wall_time_s": 12.0,
            "verdict": "x",
        },
        {"name": "b", "ours": math.nan, "spread": None, "seeds": [0, 1]},
    ],
}


def _write(tmp_path: Path, name: str, board: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(board))
    return path


def test_identical_boards_pass_and_timings_are_not_results(tmp_path, capsys):
    after = copy.deepcopy(BOARD)
    after["results"][0]["wall_time_s"] = 99.0
    after["timings_s"] = {"02_gan": 1.0}
    after["date"] = "later"
    code = same_numbers.main([str(_write(tmp_path, "a.json", BOARD)), str(_write(tmp_path, "b.json", after))])
    assert code == 0 and "same numbers: 2 results identical" in capsys.readouterr().out


def test_every_difference_is_listed_with_its_path(tmp_path, capsys):
    after = copy.deepcopy(BOARD)
    after["results"][0]["ours"]["modes"] = 7.6
    after["results"][0]["verdict"] = "y"
    after["results"][1]["seeds"] = [0, 2]
    after["results"].append({"name": "c", "ours": 1})
    code = same_numbers.main([str(_write(tmp_path, "a.json", BOARD)), str(_write(tmp_path, "b.json", after))])
    out = capsys.readouterr().out
    assert code == 1 and "4 difference(s)" in out
    assert "a: ours.modes: 7.5 → 7.6 +1.33%" in out and "a: verdict: 'x' → 'y'" in out
    assert "b: seeds[1]: 1 → 2" in out and "c: only in the second file" in out


def test_numbers_compare_exactly_and_nan_equals_nan():
    assert list(same_numbers.differences({"x": math.nan, "y": 1}, {"x": math.nan, "y": 1.0})) == []
    assert list(same_numbers.differences({"x": 0.1 + 0.2}, {"x": 0.3})) == [("x", 0.1 + 0.2, 0.3)]
    assert list(same_numbers.differences({"x": True}, {"x": 1})) == [("x", True, 1)]
    assert list(same_numbers.differences([1, 2], [1, 2, 3])) == [("", [1, 2], [1, 2, 3])]
