"""Every SQL and Python example in the README and docs/ runs against a real database.

Blocks fenced as ```sql or ```python run, in order, each file in a fresh
database; ```sql no-run marks the few that need outside set-up (COPY from
stdin, pg_cron, login roles with passwords). Python examples connect to the
literal "postgresql:///app", which the test points at its database.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^( *)```(\w+)([^\n]*)\n(.*?)^\1```", re.S | re.M)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[tuple[str, str]]:
    found = []
    for indent, lang, info, body in FENCE.findall(path.read_text()):
        if lang in ("sql", "python") and "no-run" not in info:
            found.append((lang, "\n".join(line[len(indent) :] for line in body.splitlines())))
    return found


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(path: Path, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for lang, code in blocks(path):
            if lang == "sql":
                try:
                    conn.execute(code)  # type: ignore[arg-type]
                except psycopg.Error as exc:
                    pytest.fail(f"{path.name}: SQL example failed: {exc}\n{code}")
            else:
                code = code.replace('"postgresql:///app"', repr(dsn))
                try:
                    exec(compile(code, f"{path.name}:example", "exec"), {"__name__": "docs_example"})
                except Exception as exc:
                    pytest.fail(f"{path.name}: Python example failed: {exc!r}\n{code}")


def test_readme_example_prints_a_duration_card(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    test_examples_run(ROOT / "README.md", dsn, capsys)
    assert "13 s of af_alloy" in capsys.readouterr().out  # 12,857 ms of af_alloy, as the README promises
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select value, events, quantity from tally.lifetime_totals('user-42', 'kind') order by value"
        ).fetchall()
    assert row == [("ocr", 1, 1), ("tts", 1, 180)]
