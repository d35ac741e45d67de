"""A reconciliation run's report, as finance signs it off: a PDF (Jinja2 + WeasyPrint, like
the IB statement) and a CSV of the same breaks. `build_report` turns the run, its breaks and
their cases (any objects with those attributes: the ORM rows the caller read, through
`db.queries.reconciliation_cases.report_inputs`) into these plain values; this module knows
nothing of the database or the domain (the caller gives the money formatter). The run stores
its report at its end (`activities.reconciliation`), finance's sign-off stores it again
(`api.reconciliation.service`).

The PDF: a header with the server, the broker day and its period in UTC, the counts and the
sign-off (or "not signed off"), a summary of breaks by type with their totals per currency,
then one row per break (type, key, reference / deal / login / provider, amount, the sides it
was found in and missing from, its case's status and age in days), repeated table headers on
every page and the page number bottom right.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

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
    balances: str = ""  # "12 accounts checked", or why they were not


class RunRow(Protocol):
    @property
    def server(self) -> str: ...
    @property
    def day(self) -> date: ...
    @property
    def period_start(self) -> datetime: ...
    @property
    def period_end(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def matched(self) -> int | None: ...
    @property
    def balances_note(self) -> str | None: ...


class BreakRow(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def reference(self) -> str | None: ...
    @property
    def deal(self) -> int | None: ...
    @property
    def login(self) -> int | None: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def amount_minor(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def found_in(self) -> str: ...
    @property
    def missing_from(self) -> str: ...
    @property
    def expected_minor(self) -> int | None: ...
    @property
    def actual_minor(self) -> int | None: ...
    @property
    def expected_currency(self) -> str | None: ...
    @property
    def detail(self) -> str: ...


class CaseRow(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def first_day(self) -> date: ...
    @property
    def closed_at(self) -> datetime | None: ...


def case_age_days(case: CaseRow, today: date) -> int:
    """Days the case has been open: from the day its break was first found to today (or to the
    day it closed)."""
    until = case.closed_at.astimezone(UTC).date() if case.closed_at is not None else today
    return max(0, (until - case.first_day).days)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def build_report(
    run: RunRow,
    breaks: Iterable[BreakRow],
    cases: Mapping[str, CaseRow],
    *,
    money: Callable[[int, str], str],
    signed_off: str,
    deals: int,
    settlement_rows: int,
    balances: int,
    now: datetime,
) -> RunReport:
    """The report of `run` as it stands at `now`: `cases` by break key, `money` the decimal
    text of minor units in a currency, `balances` the accounts whose balance the run checked."""
    today = now.astimezone(UTC).date()
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[str, int] = defaultdict(int)
    rows: list[ReportBreak] = []
    for b in breaks:
        counts[b.type] += 1
        totals[b.type][b.currency] += abs(b.amount_minor)
        case = cases.get(b.key)
        other = b.expected_currency or b.currency
        rows.append(
            ReportBreak(
                type=b.type,
                key=b.key,
                reference=_text(b.reference),
                deal=_text(b.deal),
                login=_text(b.login),
                provider=_text(b.provider),
                amount=money(b.amount_minor, b.currency),
                currency=b.currency,
                found_in=b.found_in,
                missing_from=b.missing_from,
                expected="" if b.expected_minor is None else money(b.expected_minor, other),
                actual="" if b.actual_minor is None else money(b.actual_minor, b.currency),
                expected_currency="" if b.expected_minor is None else other,
                detail=b.detail,
                case_status=case.status if case else "",
                age_days=str(case_age_days(case, today)) if case else "",
            )
        )
    start, end = run.period_start.astimezone(UTC), run.period_end.astimezone(UTC)
    return RunReport(
        server=run.server,
        day=run.day.isoformat(),
        period=f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
        status=run.status,
        matched=run.matched or 0,
        deals=deals,
        settlement_rows=settlement_rows,
        generated_at=f"{now.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        signed_off=signed_off,
        breaks=rows,
        by_type=[
            TypeTotal(
                type=kind,
                count=counts[kind],
                totals="; ".join(
                    f"{money(minor, ccy)} {ccy}" for ccy, minor in sorted(totals[kind].items())
                ),
            )
            for kind in counts
        ],
        balances=run.balances_note or f"{balances} accounts checked",
    )


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
