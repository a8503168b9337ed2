"""Locate the SQL trees (db/, functions/, migrations/) in a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_file(*parts: str) -> Path:
    """Return a path inside the SQL trees shipped with pgtally.

    A wheel carries them under ``pgtally/_sql``; a source checkout (editable
    install, tests) has them at the repository root.
    """
    bundled = _PACKAGE_DIR / "_sql"
    base = bundled if bundled.is_dir() else _PACKAGE_DIR.parent.parent
    path = base.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"pgtally resource {'/'.join(parts)} not found under {base}")
    return path
