"""The schema files install in dependency order, each under a prefix of its own.

db/ and functions/ install as one sequence sorted on the four-digit prefix of
the file names (pgtally.schema.schema_files). PostgreSQL resolves some names
when a statement runs at install time: tables and views in the statements of
db/ files, the bodies of LANGUAGE sql functions, argument and return types,
`comment on`, grants, DO blocks. A file using such a name must install after
the file creating it. PL/pgSQL bodies are resolved only when called, so they
may refer to anything.

The checker below reads the SQL with a few regexes: it is not a SQL parser,
but it sees every `tally.` name and every `create ... tally.name`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pgtally import schema

ROOT = Path(__file__).resolve().parents[1]
TREES = {"db": ROOT / "db", "functions": ROOT / "functions"}

FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# SQL text as comments, quoted strings, dollar-quoted bodies, quoted identifiers, statement ends and the rest.
TOKEN = re.compile(
    r"""(?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<string>'(?:[^']|'')*')
      | (?P<dollar>\$(?P<tag>[A-Za-z_]*)\$(?P<body>.*?)\$(?P=tag)\$)
      | (?P<ident>"(?:[^"]|"")*")
      | (?P<end>;)
      | (?P<code>[^-'$/";]+|.)""",
    re.S | re.X,
)
# A function whose body PostgreSQL does not look into at creation time.
PLPGSQL_FUNCTION = re.compile(
    r"\bcreate\s+(?:or\s+replace\s+)?(?:function|procedure)\b.*\blanguage\s+plpgsql\b", re.I | re.S
)
# create [or replace] [unique|unlogged|materialized ...] table|view|function|type|... tally.name
CREATES_QUALIFIED = re.compile(
    r"\bcreate\s+(?:or\s+replace\s+)?(?:(?:unique|unlogged|temporary|temp|materialized)\s+)*"
    r"(?:table|view|function|procedure|type|domain|sequence|index)\s+(?:if\s+not\s+exists\s+)?tally\.(\w+)",
    re.I,
)
# create [unique] index name on tally.table: the index lives in the table's schema.
CREATES_INDEX = re.compile(
    r"\bcreate\s+(?:unique\s+)?index\s+(?:if\s+not\s+exists\s+)?(?!on\b)(\w+)\s+on\s+(?:only\s+)?tally\.", re.I
)
# create trigger|policy name ... on tally.table: named per table.
CREATES_ON_TABLE = re.compile(
    r"\bcreate\s+(?:or\s+replace\s+)?(trigger|policy)\s+(\w+|\"[^\"]+\")\s[^;]*?\bon\s+tally\.(\w+)", re.I
)
REFERENCES = re.compile(r"\btally\.(\w+)", re.I)
# comment on / alter / drop trigger|policy name on tally.table
REFERENCES_ON_TABLE = re.compile(r"\b(trigger|policy)\s+(\w+|\"[^\"]+\")\s+on\s+tally\.(\w+)", re.I)


def _on_table(kind: str, name: str, table: str) -> str:
    """A trigger or policy: its name is unique only on its table."""
    name = name[1:-1] if name.startswith('"') else name.lower()
    return f"{kind.lower()} {name} on tally.{table.lower()}"


def install_time_sql(sql: str, *, plpgsql_bodies: bool) -> str:
    """The SQL PostgreSQL resolves names in at install time.

    Comments go, and so does the text of `comment on ... is '...'`; bodies of
    PL/pgSQL functions go unless plpgsql_bodies (db/ files: the only bodies
    there are DO blocks, which run at install). Other dollar-quoted bodies
    (LANGUAGE sql functions, DO blocks) stay, without their comments.
    """
    kept: list[str] = []
    for statement in _statements(sql):
        code = "".join(tok.group(0) for tok in statement if tok.group("code") or tok.group("ident"))
        drop_bodies = not plpgsql_bodies and PLPGSQL_FUNCTION.search(code) is not None
        previous = ""
        for tok in statement:
            if tok.group("comment"):
                text = " "
            elif tok.group("string"):
                # The text of a comment on an object is prose, not a reference.
                text = "''" if re.search(r"\bis\s*$", previous, re.I) else tok.group(0)
            elif tok.group("dollar"):
                text = " " if drop_bodies else " " + install_time_sql(tok.group("body"), plpgsql_bodies=True) + " "
            else:
                text = tok.group(0)
            kept.append(text)
            previous = text
    return "".join(kept)


def _statements(sql: str) -> list[list[re.Match[str]]]:
    """The tokens of sql, statement by statement (a statement ends at a `;` outside quotes)."""
    statements: list[list[re.Match[str]]] = [[]]
    for tok in TOKEN.finditer(sql):
        statements[-1].append(tok)
        if tok.group("end"):
            statements.append([])
    return statements


def creates_and_references(sql: str, *, plpgsql_bodies: bool) -> tuple[set[str], set[str]]:
    """The tally objects a file creates and the ones it uses at install time."""
    text = install_time_sql(sql, plpgsql_bodies=plpgsql_bodies)
    creates = {f"tally.{n.lower()}" for n in CREATES_QUALIFIED.findall(text)}
    creates |= {f"tally.{n.lower()}" for n in CREATES_INDEX.findall(text)}
    creates |= {_on_table(*m) for m in CREATES_ON_TABLE.findall(text)}
    references = {f"tally.{n.lower()}" for n in REFERENCES.findall(text)}
    references |= {_on_table(*m) for m in REFERENCES_ON_TABLE.findall(text)}
    return creates, references


def install_order(trees: dict[str, Path]) -> list[tuple[str, Path]]:
    """(tree, file) in the order pgtally.schema installs them: prefix, then tree, then name."""
    files = [(tree, p) for tree, d in trees.items() for p in d.iterdir() if FILE_NAME.match(p.name)]
    return sorted(files, key=lambda f: (f[1].name[:4], f[0], f[1].name))


def check_schema_files(trees: dict[str, Path]) -> list[str]:
    """Every problem with the names and the order of the schema files, as sentences naming the files."""
    problems: list[str] = []
    by_prefix: dict[str, list[str]] = {}
    for tree, d in trees.items():
        for p in sorted(d.iterdir()):
            match = FILE_NAME.match(p.name)
            if not match:
                problems.append(f"{tree}/{p.name}: schema files are named NNNN_name.sql (four digits, lower case)")
                continue
            by_prefix.setdefault(match.group(1), []).append(f"{tree}/{p.name}")
    for prefix, labels in sorted(by_prefix.items()):
        if len(labels) > 1:
            problems.append(f"prefix {prefix} is used by {' and '.join(labels)}: give each file a prefix of its own")

    files = install_order(trees)
    facts = [creates_and_references(p.read_text(), plpgsql_bodies=(tree == "db")) for tree, p in files]
    created_by: dict[str, int] = {}
    for i, (creates, _) in enumerate(facts):
        for name in creates:
            created_by.setdefault(name, i)
    for i, (_, references) in enumerate(facts):
        for name in sorted(references):
            j = created_by.get(name)
            if j is not None and j > i:
                user, creator = (f"{t}/{p.name}" for t, p in (files[i], files[j]))
                problems.append(
                    f"{user} uses {name} at install time, but {creator} creates it later: "
                    f"give {creator} a smaller prefix than {user}"
                )
    return problems


def test_schema_files_have_unique_prefixes_and_install_in_dependency_order() -> None:
    problems = check_schema_files(TREES)
    assert problems == [], "\n".join(problems)


def test_the_checker_follows_the_installer_order() -> None:
    assert [(f.tree, f.path.name) for f in schema.schema_files()] == [(t, p.name) for t, p in install_order(TREES)]


def test_the_checker_sees_the_objects_of_the_real_schema() -> None:
    """Guards against regexes that quietly match nothing."""
    seen: dict[str, tuple[set[str], set[str]]] = {
        f"{t}/{p.name}": creates_and_references(p.read_text(), plpgsql_bodies=(t == "db"))
        for t, p in install_order(TREES)
    }
    creates = set().union(*(c for c, _ in seen.values()))
    references = set().union(*(r for _, r in seen.values()))
    for name in (
        "tally.usage_events",
        "tally.record_usage",
        "tally.admin_totals_mv",
        "tally.admin_overview",
        "trigger usage_events_before_insert_record on tally.usage_events",
        "policy analysts read the analytics settings on tally.analytics_settings",
    ):
        assert name in creates, name
    # The triggers' functions are used where the triggers are created; PL/pgSQL bodies use nothing at install.
    assert "tally._trg_usage_events_before_insert_record" in references
    assert "tally.pending_deltas" not in next(
        r for label, (_, r) in seen.items() if label.startswith("functions/") and "merge_pending" in label
    )


def test_the_checker_reports_a_shared_prefix_and_a_table_created_too_late(tmp_path: Path) -> None:
    db, functions = tmp_path / "db", tmp_path / "functions"
    db.mkdir()
    functions.mkdir()
    (db / "0100_widgets.sql").write_text(
        "-- Widgets.\n-- Test.\ncreate table tally.widgets (id int);\n"
        "comment on table tally.widgets is 'Counted by tally.widget_count.';\n"
    )
    (functions / "0050_widget_count.sql").write_text(
        "-- Counts widgets.\n-- Test.\ncreate or replace function tally.widget_count() returns bigint\n"
        "language sql set search_path = pg_catalog, pg_temp as $$ select count(*) from tally.widgets $$;\n"
    )
    (functions / "0100_widget_names.sql").write_text(
        "-- Widget names.\n-- Test.\ncreate or replace function tally.widget_names() returns setof text\n"
        "language plpgsql as $$ begin return query select 'w' || id from tally.gadgets; end $$;\n"
    )
    (functions / "widget.sql").write_text("select 1;\n")
    problems = check_schema_files({"db": db, "functions": functions})
    assert problems == [
        "functions/widget.sql: schema files are named NNNN_name.sql (four digits, lower case)",
        "prefix 0100 is used by db/0100_widgets.sql and functions/0100_widget_names.sql: give each file a prefix of its own",
        "functions/0050_widget_count.sql uses tally.widgets at install time, but db/0100_widgets.sql creates it later: "
        "give db/0100_widgets.sql a smaller prefix than functions/0050_widget_count.sql",
    ]


def test_plpgsql_bodies_are_not_resolved_at_install_but_signatures_are() -> None:
    sql = (
        "create or replace function tally.f(x tally.kinds) returns setof tally.rows\n"
        "language plpgsql as $body$ begin perform tally.g(); end $body$;\n"
        "-- tally.in_a_comment\n"
        "comment on function tally.f(tally.kinds) is 'see tally.in_prose';\n"
        "do $$ begin perform tally.h(); end $$;\n"
        "create or replace function tally.s() returns int as $$ select tally.t() $$ language sql;\n"
    )
    creates, references = creates_and_references(sql, plpgsql_bodies=False)
    assert creates == {"tally.f", "tally.s"}
    assert references == {"tally.f", "tally.kinds", "tally.rows", "tally.h", "tally.s", "tally.t"}
