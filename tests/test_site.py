"""The rendered book, checked in headless Chromium (see tests/site_check.py).

The book is built without executing the notebooks (fast); the book command (`make book`) runs
the same check with figures required on the executed build.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import site_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HAVE_CHROMIUM = any(shutil.which(n) for n in site_check.BROWSERS)
# `make test` installs Chromium and sets this, so that a missing browser fails instead of skipping
REQUIRED = os.environ.get("GENCOURSE_REQUIRE_BROWSER") == "1"
needs_browser = pytest.mark.skipif(not HAVE_CHROMIUM and not REQUIRED, reason="Chromium is not installed")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    config = ROOT / ".config_noexec.yml"
    text = (ROOT / "_config.yml").read_text().replace("execute_notebooks: cache", 'execute_notebooks: "off"')
    config.write_text(text)
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [
            str(jb),
            "build",
            str(ROOT),
            "-W",
            "-n",
            "--keep-going",
            "--config",
            str(config),
            "--path-output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "_build" / "html"


@needs_browser
def test_every_page_renders_in_chromium(built_book):
    shots = ROOT / "_build" / "screenshots"
    report = site_check.check_site(
        built_book, require_figures=False, screenshots=shots, ref=site_check.release_ref(ROOT)
    )
    assert sum(page.startswith("lectures/") for page in report) >= 12, "every lecture page is checked"
    assert {"index.html", "book/references.html", "book/scoreboard.html", "search.html"} <= set(report)
    bad = {page: problems for page, problems in report.items() if problems}
    assert not bad, bad
    for page in site_check.SCREENSHOT_PAGES:
        assert (shots / page.replace("/", "_").replace(".html", ".png")).stat().st_size > 10_000


@needs_browser
def test_the_check_catches_broken_pages(tmp_path):
    lectures = tmp_path / "lectures"
    lectures.mkdir()
    images = tmp_path / "_images"
    images.mkdir()
    import matplotlib.pyplot as plt

    plt.imsave(images / "blank.png", [[0.5, 0.5], [0.5, 0.5]], cmap="gray", vmin=0, vmax=1)
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "references.html").write_text('<html><body><p id="id1">A paper</p></body></html>')
    (lectures / "99_bad.html").write_text(
        '<html><body><main id="main-content"><p>$$ x^2 $$ and \\begin{aligned}</p>'
        '<a href="../book/references.html#id7">[7]</a><img src="../_images/blank.png">'
        '<img src="../_images/gone.png"></main>'
        "<script>undefinedFunction();</script></body></html>"
    )
    (tmp_path / "search.html").write_text('<html><body><ul class="search"></ul></body></html>')
    report = site_check.check_site(tmp_path, require_figures=True, ref="v9.9.9")
    joined = " | ".join(report["lectures/99_bad.html"])
    for expected in (
        "no rendered maths",
        "raw TeX '$$'",
        "raw TeX '\\\\begin{'",
        "blob/v9.9.9/",
        "figure ../_images/blank.png is blank",
        "figure ../_images/gone.png missing",
        "references.html#id7 has no entry",
        "Uncaught",
    ):
        assert expected in joined, (expected, report)
    assert "does not list lectures/01_vae.html" in " ".join(report["search.html"])
