"""Write migrations/sql/0001_upgrade.sql from the declarative schema.

Used once per release that squashes history; ordinary schema changes get a new
revision with its own hand-written SQL file, and the test
tests/test_migrations.py proves the chain and db/+functions/ stay identical.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally.schema import schema_files  # noqa: E402

out = ROOT / "migrations" / "sql" / "0001_upgrade.sql"
parts = ["-- Revision 0001: the initial pgtally schema (frozen copy of db/ + functions/ at this revision)."]
for f in schema_files():
    parts.append(f"\n-- >>> {f.label}\n{f.path.read_text().rstrip()}\n")
out.write_text("\n".join(parts))
print(f"wrote {out.relative_to(ROOT)}")
