"""The prose of the lectures does not repeat the errors listed on the errata page.

``book/errata.md`` lists wrong forms seen in slides, each with its correction. The code of each
lecture asserts the correction; this test checks the prose. It reads the markdown cells of every
lecture (``lectures/*.py``, jupytext py:percent) and fails where a wrong form appears outside a
**correction aside**, which is the only place a lecture may quote it:

    a MyST admonition whose title starts with "Errat" (Erratum, Errata), that is a block opened
    by a line ```` ```{admonition} Erratum ```` (three or more backticks or colons, any title
    starting with "Errat") and closed by the next bare fence of the same character at the same
    nesting depth.

Each row of the errata page has one regular expression in :data:`WRONG_FORMS`; the tests check
that the page and the patterns list the same rows, that each pattern matches its row's "as seen
in slides" cell and not its "correct" cell, and that the checker flags a wrong form planted in a
small synthetic lecture (and ignores it inside an aside or in a code cell).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ERRATA_PAGE = ROOT / "book" / "errata.md"
LECTURES = sorted((ROOT / "lectures").glob("*.py"))

# one pattern per row of the errata page: (what it detects, regular expression on LaTeX prose)
WRONG_FORMS: dict[int, tuple[str, str]] = {
    1: ("the Gaussian KL with + 1 + log σ²", r"\+\s*1\s*\+\s*\\log\s*\\sigma"),
    2: ("0.0414 stated as a KL value", r"=\s*0\.0414(?!\d)|0\.0414(?!\d)\s*(?:nats|bits|bans)"),
    3: ('"scale ε by the variance"', r"scal\w*\s+\S+\s+by\s+the\s+variance"),
    4: ("the regulariser with − log σ − 1", r"-\s*\\log\s*\\sigma(?:_\{?j\}?)?\s*-\s*1"),
    5: (
        "the LSGAN losses with a minus before a squared error",
        r"-\s*\\mathbb\s*E[^$+=]{0,30}?\(\s*D\s*\((?:x|G\(z\))\)\s*-\s*1\s*\)\s*\^\s*\{?2",
    ),
    6: (
        "E_P|1 − Q/P| (or its minimum) called d_TV",
        r"(?<!2)(?<!2\\,)(?<!2 )d_\{?(?:\\mathrm\{TV\}|TV)\}?(?:\(P,\s*Q\))?\s*=\s*(?:\\min_\{?Q\}?\s*)?\\mathbb\s*E"
        r"|\\mathbb\s*E[^$]*?(?:\||\\lvert)\s*1\s*-\s*[qQ][^$]*?\$?,?\s*(?:called|is|equals|=)\s*\$?\s*"
        r"d_\{?(?:\\mathrm\{TV\}|TV)",
    ),
    7: ('"minimise_z" for the deep image prior', r"minimi[sz]e\s*\$?\s*_\s*\{?\s*z\b"),
}

# Lectures that the checker flags today and whose owners must move the wrong form into an aside
# (strict: the test fails once the lecture is fixed, so that this entry is removed).
KNOWN_VIOLATIONS: dict[str, str] = {}

_OPEN_ASIDE = re.compile(r"^(`{3,}|:{3,})\{admonition\}\s+Errat")
_FENCE_OPEN = re.compile(r"^(`{3,}|:{3,})\S")
_FENCE_CLOSE = re.compile(r"^(`{3,}|:{3,})\s*$")
_CELL = re.compile(r"^# %%(?:\s|$)")
_MARKDOWN_CELL = re.compile(r"^# %% \[(?:markdown|md)\]")


@dataclass(frozen=True)
class Finding:
    """A wrong form of erratum ``erratum`` found outside an aside at ``line`` (1-based) of ``path``."""

    path: str
    line: int
    erratum: int
    text: str


def markdown_lines(source: str) -> list[tuple[int, str]]:
    """The lines of the markdown cells of a py:percent ``source``, as (line number, text) with
    the comment prefix ``# `` removed; code cells are skipped."""
    lines, in_markdown = [], False
    for number, line in enumerate(source.splitlines(), start=1):
        if _CELL.match(line):
            in_markdown = bool(_MARKDOWN_CELL.match(line))
            continue
        if in_markdown:
            lines.append((number, line[2:] if line.startswith("# ") else line.lstrip("#")))
    return lines


def outside_asides(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``lines`` without the correction asides (see the module docstring); raises ValueError on an
    aside that is never closed."""
    kept, depth, opened_at = [], 0, 0
    for number, text in lines:
        stripped = text.strip()
        if depth == 0:
            if _OPEN_ASIDE.match(stripped):
                depth, opened_at = 1, number
            else:
                kept.append((number, text))
        elif _FENCE_CLOSE.match(stripped):
            depth -= 1
        elif _FENCE_OPEN.match(stripped):
            depth += 1
    if depth:
        raise ValueError(f"the correction aside opened at line {opened_at} is never closed")
    return kept


def paragraphs(lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """``lines`` grouped into paragraphs (runs of non-blank lines)."""
    groups: list[list[tuple[int, str]]] = [[]]
    for number, text in lines:
        if text.strip():
            groups[-1].append((number, text))
        elif groups[-1]:
            groups.append([])
    return [g for g in groups if g]


def find_wrong_forms(path: Path) -> list[Finding]:
    """Every wrong form of :data:`WRONG_FORMS` in the markdown of the lecture at ``path``, outside
    its correction asides. Each line is searched, and each paragraph joined into one line, for
    forms broken across lines (such a finding points at the paragraph's first line)."""
    kept = outside_asides(markdown_lines(path.read_text()))
    findings = [
        Finding(path.name, number, erratum, match.group(0))
        for number, text in kept
        for erratum, (_, pattern) in WRONG_FORMS.items()
        if (match := re.search(pattern, text))
    ]
    for paragraph in paragraphs(kept):
        joined = " ".join(text.strip() for _, text in paragraph)
        numbers = {number for number, _ in paragraph}
        for erratum, (_, pattern) in WRONG_FORMS.items():
            match = re.search(pattern, joined)
            if match and not any(f.erratum == erratum and f.line in numbers for f in findings):
                findings.append(Finding(path.name, paragraph[0][0], erratum, match.group(0)))
    return sorted(findings, key=lambda f: (f.line, f.erratum))


def errata_rows() -> dict[int, tuple[str, str]]:
    """The rows of the errata page's table: number → ("as seen in slides", "correct")."""
    rows = {}
    for line in ERRATA_PAGE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            rows[int(cells[0])] = (cells[1], cells[2])
    return rows


def test_every_row_of_the_errata_page_has_a_pattern():
    assert sorted(errata_rows()) == sorted(WRONG_FORMS), "the errata page and WRONG_FORMS list different rows"


@pytest.mark.parametrize("number", sorted(WRONG_FORMS))
def test_pattern_matches_its_rows_wrong_form_and_not_its_correction(number):
    wrong, correct = errata_rows()[number]
    pattern = WRONG_FORMS[number][1]
    assert re.search(pattern, wrong), f"erratum {number}: the pattern misses the page's own wrong form"
    assert not re.search(pattern, correct), f"erratum {number}: the pattern flags the page's correction"


CORRECT_FORMS = [
    r"$\mathrm{KL} = \tfrac12 \sum_j (\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)$",
    r"$-\tfrac12 \sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)$",
    r"$\mathrm{KL}(P\,\|\,Q) = 0.0853$ nats, and $\sum_x p(x) \log_{10}(p(x)/0.33) = 0.04141$",
    r"$z = \mu + \sigma \odot \varepsilon$ scales $\varepsilon$ by the standard deviation",
    r"$L_D = \mathbb E(D(x) - 1)^2 + \mathbb E\,D(G(z))^2$, $L_G = \mathbb E(D(G(z)) - 1)^2$",
    r"$2\,d_{\mathrm{TV}}(P, Q) = \mathbb E_P\lvert 1 - Q/P\rvert$ if $Q \ll P$",
    r"$d_{TV}(P, Q) = \tfrac12\, \mathbb E_{x \sim P}|1 - q(x)/p(x)|$",
    r"$\hat w = \arg\min_w \ell(G_w(z), x_0)$: minimise over the weights",
]


@pytest.mark.parametrize("text", CORRECT_FORMS)
def test_checker_passes_correct_forms(tmp_path, text):
    assert find_wrong_forms(_synthetic_lecture(tmp_path, f"The book says {text}.")) == []


def _synthetic_lecture(tmp_path: Path, markdown: str, code: str = "x = 1") -> Path:
    """A py:percent lecture with one markdown cell (``markdown``) and one code cell (``code``)."""
    body = "\n".join(f"# {line}" if line else "#" for line in markdown.splitlines())
    path = tmp_path / "99_synthetic.py"
    path.write_text(f"# %% [markdown]\n# # A synthetic lecture\n#\n{body}\n\n# %%\n{code}\n")
    return path


@pytest.mark.parametrize("number", sorted(WRONG_FORMS))
def test_checker_flags_a_planted_wrong_form(tmp_path, number):
    wrong = errata_rows()[number][0]
    findings = find_wrong_forms(
        _synthetic_lecture(tmp_path, f"Some text.\n\nSlides say {wrong}, mistakenly.")
    )
    assert [f.erratum for f in findings] == [number] and findings[0].line == 6


@pytest.mark.parametrize("number", sorted(WRONG_FORMS))
def test_checker_finds_a_wrong_form_broken_across_lines(tmp_path, number):
    words = errata_rows()[number][0].split(" ")
    half = len(words) // 2
    text = " ".join(words[:half]) + "\n" + " ".join(words[half:])
    findings = find_wrong_forms(_synthetic_lecture(tmp_path, f"Slides say\n{text}\nmistakenly."))
    assert number in {f.erratum for f in findings}


@pytest.mark.parametrize("fence", ["```", "````", ":::"])
@pytest.mark.parametrize("number", sorted(WRONG_FORMS))
def test_checker_allows_a_wrong_form_inside_an_aside(tmp_path, number, fence):
    wrong = errata_rows()[number][0]
    aside = f"{fence}{{admonition}} Erratum\n:class: warning\nSlides say {wrong}.\n{fence}\n\nAfter it."
    assert find_wrong_forms(_synthetic_lecture(tmp_path, aside)) == []
    # the same text in another kind of block, or in a code cell, is not an aside / not prose
    note = aside.replace("{admonition} Erratum", "{note}")
    assert [f.erratum for f in find_wrong_forms(_synthetic_lecture(tmp_path, note))] == [number]
    assert find_wrong_forms(_synthetic_lecture(tmp_path, "Prose.", code=f"# {wrong}")) == []


def test_checker_handles_nested_blocks_and_rejects_an_unclosed_aside(tmp_path):
    wrong = errata_rows()[1][0]
    nested = f"````{{admonition}} Errata\n```{{math}}\nx\n```\nSlides say {wrong}.\n````\n\nThen {wrong}."
    findings = find_wrong_forms(_synthetic_lecture(tmp_path, nested))
    assert [(f.erratum, f.line) for f in findings] == [(1, 11)]
    with pytest.raises(ValueError, match="never closed"):
        find_wrong_forms(_synthetic_lecture(tmp_path, f"```{{admonition}} Erratum\n{wrong}"))


def test_the_errata_page_documents_the_check():
    page = ERRATA_PAGE.read_text()
    assert "tests/test_errata.py" in page and "{admonition} Erratum" in page


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.name)
def test_lecture_prose_does_not_repeat_an_erratum(lecture):
    if lecture.name in KNOWN_VIOLATIONS:
        pytest.xfail(KNOWN_VIOLATIONS[lecture.name])  # reported to the lecture's owner
    findings = find_wrong_forms(lecture)
    assert not findings, "wrong forms outside a correction aside:\n" + "\n".join(
        f"  {f.path}:{f.line}: erratum {f.erratum} ({WRONG_FORMS[f.erratum][0]}): {f.text!r}"
        for f in findings
    )


def test_known_violations_are_still_violations():
    """An entry of KNOWN_VIOLATIONS must be removed once its lecture is fixed."""
    for name in KNOWN_VIOLATIONS:
        assert find_wrong_forms(ROOT / "lectures" / name), f"{name} is fixed: remove it from KNOWN_VIOLATIONS"
