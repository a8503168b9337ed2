"""The PDF usage report: the HTML report printed by headless Chromium.

The PDF has exactly the HTML report's charts and text (Chromium prints the same
document with its print stylesheet: A4, one column of cards per row pair, no
navigation bar). Chromium is found on the PATH as ``chromium``,
``chromium-browser``, ``google-chrome`` or ``google-chrome-stable``
(``scripts/setup.sh`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from .html import render_html

#: Executables tried, in order, to print the report.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags of a headless, offline, throwaway Chromium (the report fetches nothing).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)


class ChromiumMissing(RuntimeError):
    """No Chromium (or Chrome) executable on the PATH: the PDF cannot be printed."""


class PdfFailed(RuntimeError):
    """Chromium ran but wrote no PDF (its stderr tail is in the message)."""


def find_chromium() -> str:
    """The path of a Chromium or Chrome executable; raises :class:`ChromiumMissing` with what to install."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissing(
        "cannot print the PDF: no chromium, chromium-browser or google-chrome on the PATH. "
        "Install Chromium (Debian/Ubuntu: apt-get install chromium; scripts/setup.sh does it as root)."
    )


def html_to_pdf(html: str, *, timeout: float = 120.0) -> bytes:
    """Print an HTML document to PDF with headless Chromium (A4, the document's print stylesheet)."""
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="pgtally-pdf-") as tmp:
        folder = Path(tmp)
        page, out = folder / "report.html", folder / "report.pdf"
        page.write_text(html, encoding="utf-8")
        try:
            run = subprocess.run(
                [
                    chromium,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={folder / 'profile'}",
                    f"--print-to-pdf={out}",
                    page.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PdfFailed(f"chromium did not print the PDF within {timeout:.0f} s") from exc
        if not out.exists() or out.stat().st_size == 0:
            raise PdfFailed(f"chromium wrote no PDF (exit code {run.returncode}): {run.stderr[-2000:]}")
        return out.read_bytes()


def render_pdf(conn: psycopg.Connection[Any], user_id: str, *, end: dt.date | None = None) -> bytes:
    """The usage report of one user as PDF bytes: :func:`pgtally.reports.render_html` printed by Chromium.

    Raises :class:`pgtally.reports.UnknownUser` for a user without recorded
    usage, :class:`ChromiumMissing` when no Chromium is installed. Example::

        Path("report.pdf").write_bytes(render_pdf(conn, "user-42", end=dt.date(2026, 6, 30)))
    """
    return html_to_pdf(render_html(conn, user_id, end=end))
