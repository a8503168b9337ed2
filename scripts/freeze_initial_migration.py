"""Write migrations/sql/0001_upgrade.sql from the declarative schema.

Revision 0001 has landed: databases are installed from it, so it must not
change any more. Every schema change from now on gets a new revision
(migrations/versions/NNNN_*.py running migrations/sql/NNNN_upgrade.sql and
NNNN_downgrade.sql, written by hand), and tests/test_migrations.py proves the
chain and db/+functions/ stay identical. This script only runs with
--squash, for a release that deliberately squashes history into 0001.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_client"))

from pgtally.schema import schema_files

if "--squash" not in sys.argv:
    sys.exit(
        "0001 has landed and is frozen: add a new revision instead (see this script's docstring), "
        "or pass --squash to rewrite history on purpose"
    )
out = ROOT / "migrations" / "sql" / "0001_upgrade.sql"
tracked_only = "--tracked-only" in sys.argv
if tracked_only:
    # Only files in git's index, with their staged content: for committing part of a tree others are editing.
    staged = set(
        subprocess.run(
            ["git", "ls-files", "db", "functions"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
parts = ["-- Revision 0001: the initial pgtally schema (frozen copy of db/ + functions/ at this revision)."]
for f in schema_files():
    if tracked_only:
        if f.label not in staged:
            continue
        text = subprocess.run(
            ["git", "show", f":{f.label}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    else:
        text = f.path.read_text()
    parts.append(f"\n-- >>> {f.label}\n{text.rstrip()}\n")
content = "\n".join(parts)
if tracked_only:
    # Stage the result without touching the working copy.
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=ROOT, input=content, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(
        ["git", "update-index", "--cacheinfo", f"100644,{blob},{out.relative_to(ROOT)}"], cwd=ROOT, check=True
    )
    print(f"staged {out.relative_to(ROOT)} from the index's db/ and functions/")
else:
    out.write_text(content)
    print(f"wrote {out.relative_to(ROOT)}")
