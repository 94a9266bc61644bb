"""The book's notebook scheduler (tools/execute_book.py): measured times and the order."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("execute_book", ROOT / "tools" / "execute_book.py")
execute_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execute_book)


def test_measured_seconds_reads_the_timing_table_and_prefers_recorded_runs(tmp_path):
    page = tmp_path / "timing.md"
    page.write_text(
        "| lecture | `ci` (s) | `cpu` (s) |\n| --- | --- | --- |\n"
        "| 00_basics | 51 | 487 |\n| 01_vae | 83 | – |\n| 02_gan | 33 | 206 |\n| **total** | 1 | 2 |\n"
    )
    (tmp_path / "results" / "timing").mkdir(parents=True)
    (tmp_path / "results" / "timing" / "02_gan.json").write_text(json.dumps({"ours": 99.5}))
    seconds = execute_book.measured_seconds(page, tmp_path / "results")
    assert seconds == {"00_basics": 487.0, "02_gan": 99.5}


def test_longest_first_puts_unmeasured_notebooks_first_then_decreasing_time():
    uris = ["/l/00_basics.ipynb", "/l/01_vae.ipynb", "/l/02_gan.ipynb", "/l/03_new.ipynb"]
    seconds = {"00_basics": 10.0, "01_vae": 30.0, "02_gan": 20.0}
    assert execute_book.longest_first(uris, seconds) == [
        "/l/03_new.ipynb",
        "/l/01_vae.ipynb",
        "/l/02_gan.ipynb",
        "/l/00_basics.ipynb",
    ]


def test_the_committed_timing_page_gives_a_time_for_every_lecture():
    lectures = sorted(p.stem for p in (ROOT / "lectures").glob("[0-9][0-9]_*.py"))
    seconds = execute_book.measured_seconds(results=ROOT / "no-such-dir")
    assert set(lectures) <= set(seconds), set(lectures) - set(seconds)
