"""Check the built book in headless Chromium: maths rendered, launch buttons, figures, no
console errors; keep a screenshot of each lecture page under ``_build/screenshots``.

Usage: ``python tests/site_check.py [--html _build/html] [--require-figures]``. The test suite
calls :func:`check_site` on a build made without execution (figures are then absent); the
book command runs it with ``--require-figures`` on the executed build.
"""

from __future__ import annotations

import argparse
import html as html_lib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=10000",
    "--enable-logging=stderr",
    "--v=0",
]
CONSOLE_ERROR = re.compile(r"CONSOLE.*(Uncaught|Failed to load resource|ERR_FILE_NOT_FOUND)")
COLAB = "https://colab.research.google.com/github/"


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """Path of Chromium or Google Chrome (the names ``tools/system_deps.sh`` looks for), or raise
    with the install command."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        f"no browser found ({', '.join(BROWSERS)}): install one, e.g. `apt-get install chromium`"
    )


def _run(args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )


def check_page(page: Path, screenshot: Path | None, require_figures: bool) -> list[str]:
    """Problems found on one lecture page (an empty list when it is fine)."""
    url = page.resolve().as_uri()
    result = _run(["--dump-dom", url])
    dom, problems = result.stdout, []
    n_math = dom.count("<mjx-container")
    if n_math == 0:
        problems.append("no rendered maths (no <mjx-container>)")
    main = re.search(r'<main[^>]*id="main-content".*?</main>', dom, re.S)
    # visible text outside code blocks and rendered maths must hold no raw TeX
    code_free = re.sub(r"<pre.*?</pre>", " ", main.group(0) if main else dom, flags=re.S)
    visible = html_lib.unescape(
        re.sub(r"<mjx-container.*?</mjx-container>|<[^>]+>", " ", code_free, flags=re.S)
    )
    problems += [f"raw TeX {raw!r} left in the page" for raw in (r"\begin{", "$$") if raw in visible]
    stem = page.stem
    if f"{COLAB}" not in dom or f"lectures/{stem}.ipynb" not in dom:
        problems.append("no Colab launch link to the lecture's .ipynb")
    if require_figures and not re.search(r'<img[^>]+src="[^"]*_images/[^"]+\.(png|svg|jpg)"', dom):
        problems.append("no figure in the executed page")
    errors = [line for line in result.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    problems += [f"console: {line.split('CONSOLE', 1)[-1][:200]}" for line in errors]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _run(["--window-size=1280,2400", f"--screenshot={screenshot}", url])
    return problems


def check_site(
    html_dir: Path, require_figures: bool = False, screenshots: Path | None = None
) -> dict[str, list[str]]:
    """Check every lecture page under ``html_dir/lectures``; returns {page: problems}."""
    pages = sorted((html_dir / "lectures").glob("*.html"))
    if not pages:
        raise RuntimeError(f"no lecture pages under {html_dir / 'lectures'}: build the book first")
    return {
        page.name: check_page(
            page, screenshots / f"{page.stem}.png" if screenshots else None, require_figures
        )
        for page in pages
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=Path("_build/html"))
    parser.add_argument("--require-figures", action="store_true")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"))
    args = parser.parse_args()
    report = check_site(args.html, args.require_figures, args.screenshots)
    bad = {page: problems for page, problems in report.items() if problems}
    for page, problems in report.items():
        print(f"{page}: {'ok' if not problems else '; '.join(problems)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
