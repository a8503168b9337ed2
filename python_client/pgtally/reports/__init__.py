"""Reports people receive: the HTML and PDF usage report of one user, and the monthly e-mail summary.

- :func:`render_html` / :func:`render_pdf`: the usage report of any user
  (:mod:`pgtally.reports.html`, :mod:`pgtally.reports.pdf`; the PDF is the
  HTML printed by headless Chromium);
- :func:`send_reports`: the monthly e-mail summaries, sent once per user and
  month through the outbox ``tally.report_outbox`` (:mod:`pgtally.reports.email`).

docs/reports.md describes them.
"""

from __future__ import annotations

from .email import SendResult, SmtpSettings, SmtpUnavailable, month_summary, send_reports
from .html import UnknownUser, render_html, render_report
from .pdf import ChromiumMissing, PdfFailed, find_chromium, html_to_pdf, render_pdf

__all__ = [
    "ChromiumMissing",
    "PdfFailed",
    "SendResult",
    "SmtpSettings",
    "SmtpUnavailable",
    "UnknownUser",
    "find_chromium",
    "html_to_pdf",
    "month_summary",
    "render_html",
    "render_pdf",
    "render_report",
    "send_reports",
]
