"""A reconciliation run's report, as finance signs it off: a PDF (Jinja2 + WeasyPrint, like
the IB statement) and a CSV of the same breaks. The caller (`api.reconciliation.service`)
turns the run, its breaks and their cases into these plain values: this module knows nothing
of the database or the domain.

The PDF: a header with the server, the broker day and its period in UTC, the counts and the
sign-off (or "not signed off"), a summary of breaks by type with their totals per currency,
then one row per break (type, key, reference / deal / login / provider, amount, the sides it
was found in and missing from, its case's status and age in days), repeated table headers on
every page and the page number bottom right.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import HTML

TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
)

CSV_COLUMNS = (
    "type",
    "key",
    "reference",
    "deal",
    "login",
    "provider",
    "amount",
    "currency",
    "found_in",
    "missing_from",
    "expected",
    "actual",
    "expected_currency",
    "detail",
    "case_status",
    "age_days",
)


@dataclass(frozen=True)
class ReportBreak:
    type: str
    key: str
    reference: str
    deal: str
    login: str
    provider: str
    amount: str  # a decimal in the break's currency, as text
    currency: str
    found_in: str
    missing_from: str
    expected: str
    actual: str
    expected_currency: str
    detail: str
    case_status: str
    age_days: str


@dataclass(frozen=True)
class TypeTotal:
    type: str
    count: int
    totals: str  # "1,234.00 USD; 10.00 EUR"


@dataclass(frozen=True)
class RunReport:
    server: str
    day: str
    period: str  # "2026-12-06 22:00 to 2026-12-07 22:00 UTC"
    status: str
    matched: int
    deals: int
    settlement_rows: int
    generated_at: str
    signed_off: str  # "signed off by … at …", or ""
    breaks: list[ReportBreak] = field(default_factory=list)
    by_type: list[TypeTotal] = field(default_factory=list)


def render_html(report: RunReport) -> str:
    return _ENV.get_template("reconciliation_report.html").render(report=report)


def render_pdf(report: RunReport) -> bytes:
    pdf = HTML(string=render_html(report), base_url=str(TEMPLATES)).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def render_csv(report: RunReport) -> str:
    """The breaks as CSV (RFC 4180, a header row; amounts as decimals in their currency)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for found in report.breaks:
        writer.writerow([_safe(getattr(found, column)) for column in CSV_COLUMNS])
    return out.getvalue()


def _safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "@", "\t", "\r") else value
