"""The README, the changelog and docs/ point at things that exist, and docs/errors.md lists every SQLSTATE the SQL raises.

Checked outside fenced code blocks:
- markdown links `[text](path)` and `[text](path#anchor)` relative to the page:
  the file exists, and the anchor is a heading of it (GitHub's slugs);
- repository paths quoted as code, such as `tests/test_oracle.py` or
  `tests/test_admin.py::test_name`, relative to the repository root: the file
  exists (and defines the test);
- Python names quoted as code, such as `pgtally.user_reads.UserReadsMixin`:
  they import.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from pgtally import errors

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
PLACEHOLDER = re.compile(r"[*<>{}]|NNNN|\.\.\.")


def _prose(markdown: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", markdown)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"[`*_~](?=\W|$)|(?<=\W)[`*_~]|^[`*_~]", "", text)  # markup, not underscores inside words
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(_prose(markdown)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def broken_references(page: Path, root: Path) -> list[str]:
    """Every link and quoted repository path of a page that points at nothing, as `page: target (why)`."""
    text = _prose(page.read_text())
    label = page.relative_to(root).as_posix()
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            problems.append(f"{label}: link to {target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
            problems.append(f"{label}: link to {target} (no heading with anchor #{anchor} in {path.name})")
    top_dirs = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for quoted in CODE_SPAN.findall(text):
        path_part, _, test_name = quoted.partition("::")
        if path_part.split("/")[0] not in top_dirs or "/" not in path_part or PLACEHOLDER.search(quoted):
            continue
        path = root / path_part.split("#")[0]
        if not path.exists():
            problems.append(f"{label}: `{quoted}` (no such file)")
        elif test_name and not re.search(rf"^(?:async )?def {re.escape(test_name)}\(", path.read_text(), re.M):
            problems.append(f"{label}: `{quoted}` (no test {test_name} in {path_part})")
    return problems


def test_every_link_and_quoted_path_of_the_docs_exists() -> None:
    problems = [p for page in DOCS for p in broken_references(page, ROOT)]
    assert problems == [], "broken references in the docs:\n" + "\n".join(problems)


def unresolved_python_names(markdown: str) -> list[str]:
    """Dotted `pgtally...` names quoted in a page that do not import (module, then attributes)."""
    problems = []
    for quoted in CODE_SPAN.findall(_prose(markdown)):
        match = re.match(r"pgtally(?:\.\w+)+", quoted)
        if not match:
            continue
        parts = match.group(0).split(".")
        for n in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj: object = importlib.import_module(".".join(parts[:n]))
            except ModuleNotFoundError:
                continue
            for attr in parts[n:]:
                obj = getattr(obj, attr, None)
            if obj is None:
                problems.append(f"`{quoted}`")
            break
        else:
            problems.append(f"`{quoted}`")
    return problems


def test_every_python_name_quoted_in_the_docs_imports() -> None:
    problems = [f"{page.relative_to(ROOT)}: {p}" for page in DOCS for p in unresolved_python_names(page.read_text())]
    assert problems == [], "Python names in the docs that do not exist:\n" + "\n".join(problems)
    assert unresolved_python_names("`pgtally.errors.QuotaExceeded`, `pgtally.nowhere`, `pgtally.errors.Nope`") == [
        "`pgtally.nowhere`",
        "`pgtally.errors.Nope`",
    ]


def test_the_checker_reports_missing_files_anchors_and_tests(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_real.py").write_text("def test_there() -> None:\n    pass\n")
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## The `tally.x()` function: **fast**\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n## Second part\n\n"
        "See [other](other.md), [its function](other.md#the-tallyx-function-fast), [above](#second-part),\n"
        "[the web](https://example.org/missing.md) and `tests/test_real.py::test_there`.\n"
        "Broken: [gone](missing.md), [bad anchor](other.md#nowhere), [here](#nothing),\n"
        "`tests/test_gone.py`, `tests/test_real.py::test_absent`.\n"
        "Ignored: `tally.usage_events`, `migrations/sql/NNNN_upgrade.sql`.\n\n"
        "```md\n[in a code block](not-checked.md)\n```\n"
    )
    assert broken_references(page, tmp_path) == [
        "docs/page.md: link to missing.md (no such file)",
        "docs/page.md: link to other.md#nowhere (no heading with anchor #nowhere in other.md)",
        "docs/page.md: link to #nothing (no heading with anchor #nothing in page.md)",
        "docs/page.md: `tests/test_gone.py` (no such file)",
        "docs/page.md: `tests/test_real.py::test_absent` (no test test_absent in tests/test_real.py)",
    ]


def test_slugs_follow_github() -> None:
    assert slug("Concurrency: no lost update, no deadlock") == "concurrency-no-lost-update-no-deadlock"
    assert slug("Engagement: `tally.engagement_profile(user_id, at)`") == "engagement-tallyengagement_profileuser_id-at"
    assert anchors("# A\n## Errors\n## Errors\n") == {"a", "errors", "errors-1"}


def _raised_sqlstates() -> set[str]:
    """SQLSTATEs the SQL raises on purpose: errcode literals, validation rule arrays, bare RAISE (P0001)."""
    codes: set[str] = set()
    for path in [*(ROOT / "db").glob("*.sql"), *(ROOT / "functions").glob("*.sql")]:
        sql = path.read_text()
        codes |= set(re.findall(r"errcode\s*=\s*'([0-9A-Z]{5})'", sql))
        codes |= set(re.findall(r"array\['(PT\d{3})'", sql))
        if re.search(r"raise\s+exception\s+'", sql, re.I):
            codes.add("P0001")
    return codes


def test_errors_page_lists_every_sqlstate_the_sql_raises() -> None:
    page = (ROOT / "docs" / "errors.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| ([0-9A-Z]{5})\b.*$", page, re.M)}
    raised = _raised_sqlstates()
    assert sorted(raised - rows.keys()) == [], "raised by the SQL but missing from docs/errors.md"
    own = {code for code in rows if code.startswith("PT")}
    assert sorted(own - raised) == [], "listed in docs/errors.md but raised nowhere"
    for code, cls in errors.BY_SQLSTATE.items():
        assert f"`{cls.__name__}`" in rows.get(code, ""), f"docs/errors.md: the row of {code} must name {cls.__name__}"
