"""Check the built book in headless Chromium: maths rendered on every page, the lectures' Colab
launch buttons at the release ref, the search (a query for "ELBO" finds lecture 1), the
bibliography links, figures present and not blank, no console errors; keep screenshots of three
pages (the landing page, lecture 1, the scoreboard) under ``_build/screenshots``.

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


MATH_SOURCE = re.compile(r'class="math|\\\(|\\\[')  # maths in the HTML before MathJax ran
FIGURE = re.compile(r'<img[^>]+src="([^"]*_images/[^"]+\.(?:png|svg|jpg))"')
CITATION = re.compile(r'href="([^"#]*references\.html)#([\w-]+)"')
SCREENSHOT_PAGES = ("book/intro.html", "lectures/01_vae.html", "book/scoreboard.html")


def _figure_problems(page: Path, dom: str) -> list[str]:
    """Every figure of the page is a file with content: it exists, and a PNG is not one flat colour."""
    problems = []
    for src in sorted(set(FIGURE.findall(dom))):
        path = (page.parent / src).resolve()
        if not path.exists() or path.stat().st_size == 0:
            problems.append(f"figure {src} missing or empty")
        elif path.suffix == ".png":
            import matplotlib.image as mpimg

            pixels = mpimg.imread(path)
            pixels = pixels.reshape(-1, pixels.shape[-1]) if pixels.ndim == 3 else pixels.reshape(-1, 1)
            if float(pixels.std(axis=0).max()) == 0.0:
                problems.append(f"figure {src} is blank (one colour)")
    return problems


def _citation_problems(page: Path, html: str) -> list[str]:
    """Every bibliography link of the page points at an entry that exists on the references page."""
    problems = []
    for target, anchor in sorted(set(CITATION.findall(html))):
        refs = (page.parent / target).resolve()
        if not refs.exists():
            problems.append(f"bibliography link to missing page {target}")
        elif f'id="{anchor}"' not in refs.read_text():
            problems.append(f"bibliography link {target}#{anchor} has no entry")
    return problems


def check_page(
    page: Path, screenshot: Path | None, require_figures: bool, lecture: bool = True, ref: str | None = None
) -> list[str]:
    """Problems found on one page (an empty list when it is fine). A lecture page must have
    rendered maths, a Colab launch link to its notebook (at ``ref``, when given) and, with
    ``require_figures``, a figure; every page must have no raw TeX left, working bibliography
    links, non-empty figures and no console errors."""
    url = page.resolve().as_uri()
    source = page.read_text()
    result = _run(["--dump-dom", url])
    dom, problems = result.stdout, []
    n_math = dom.count("<mjx-container")
    if n_math == 0 and (lecture or MATH_SOURCE.search(source)):
        problems.append("no rendered maths (no <mjx-container>)")
    main = re.search(r'<main[^>]*id="main-content".*?</main>', dom, re.S)
    # visible text outside code blocks and rendered maths must hold no raw TeX
    code_free = re.sub(r"<pre.*?</pre>", " ", main.group(0) if main else dom, flags=re.S)
    visible = html_lib.unescape(
        re.sub(r"<mjx-container.*?</mjx-container>|<[^>]+>", " ", code_free, flags=re.S)
    )
    problems += [f"raw TeX {raw!r} left in the page" for raw in (r"\begin{", "$$") if raw in visible]
    if lecture:
        stem = page.stem
        link = f"{COLAB}" if ref is None else f"{COLAB}gencourse/gencourse/blob/{ref}/"
        if link not in dom or f"lectures/{stem}.ipynb" not in dom:
            problems.append(f"no Colab launch link to the lecture's .ipynb (expected {link}...)")
        if require_figures and not FIGURE.search(dom):
            problems.append("no figure in the executed page")
    problems += _figure_problems(page, dom)
    problems += _citation_problems(page, source)
    errors = [line for line in result.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    problems += [f"console: {line.split('CONSOLE', 1)[-1][:200]}" for line in errors]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _run(["--window-size=1280,2400", f"--screenshot={screenshot}", url])
    return problems


def check_search(html_dir: Path, query: str = "ELBO", expect: str = "lectures/01_vae.html") -> list[str]:
    """The book's search page, run in the browser, lists ``expect`` among the results of ``query``."""
    page = html_dir / "search.html"
    if not page.exists():
        return ["no search page"]
    dom = _run(["--dump-dom", f"{page.resolve().as_uri()}?q={query}"]).stdout
    results = re.search(r'<ul class="search">(.*?)</ul>', dom, re.S)
    found = re.findall(r'href="([^"?#]+)', results.group(1)) if results else []
    return [] if expect in found else [f"search for {query!r} does not list {expect} (found {found})"]


def check_site(
    html_dir: Path,
    require_figures: bool = False,
    screenshots: Path | None = None,
    ref: str | None = None,
) -> dict[str, list[str]]:
    """Check every page of the book under ``html_dir`` (lecture pages more strictly, see
    :func:`check_page`) and its search; screenshots of :data:`SCREENSHOT_PAGES` go to
    ``screenshots``. Returns {page: problems}."""
    lectures = sorted((html_dir / "lectures").glob("*.html"))
    if not lectures:
        raise RuntimeError(f"no lecture pages under {html_dir / 'lectures'}: build the book first")
    others = [
        p
        for p in sorted(html_dir.glob("*.html")) + sorted((html_dir / "book").glob("*.html"))
        if p.name not in ("search.html", "genindex.html")
    ]
    report = {}
    for page in lectures + others:
        rel = page.relative_to(html_dir).as_posix()
        shot = (
            screenshots / rel.replace("/", "_").replace(".html", ".png")
            if screenshots and rel in SCREENSHOT_PAGES
            else None
        )
        report[rel] = check_page(page, shot, require_figures, lecture=page in lectures, ref=ref)
    if (html_dir / "search.html").exists() or others:
        report["search.html"] = check_search(html_dir)
    return report


def release_ref(root: Path) -> str:
    """The ref that the launch buttons name (``repository.branch`` in ``_config.yml``)."""
    import yaml

    return str(yaml.safe_load((root / "_config.yml").read_text())["repository"]["branch"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=Path("_build/html"))
    parser.add_argument("--require-figures", action="store_true")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"))
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    report = check_site(args.html, args.require_figures, args.screenshots, ref=release_ref(root))
    bad = {page: problems for page, problems in report.items() if problems}
    for page, problems in report.items():
        print(f"{page}: {'ok' if not problems else '; '.join(problems)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
