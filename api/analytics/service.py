"""The reports (docs/reporting.md): read from the daily aggregate and the raw tables by
`db.queries.analytics`, shaped per currency, exported as CSV, drawn as charts and rendered as
a PDF (`reports.analytics`)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from api.analytics.schemas import (
    ClientMoneyRow,
    ClientMoneyStatement,
    ClientValueRow,
    CohortCurve,
    CohortRow,
    IbContributionReport,
    IbContributionRow,
    LifetimeValueReport,
    RegionReport,
    RegionRow,
    RevenueReport,
    RevenueRow,
)
from db.queries import analytics as queries
from domain.countries import region_of
from domain.errors import InvalidInput
from domain.money import MINOR_UNITS
from reports import analytics as charts

ZERO = Decimal(0)
# The transaction report's columns, in order (docs/reporting.md, "Transaction report").
TRANSACTION_FIELDS = (
    "deal_id", "time_utc", "venue", "login", "client_id", "client_lei", "client_country",
    "symbol", "instrument_currency", "side", "entry", "volume_lots", "quantity_units", "price",
    "notional", "account_currency", "commission", "swap", "fee", "profit", "order_id",
    "position_id", "lp_ticket", "gateway", "reason",
)  # fmt: skip
SIDES = {0: "BUY", 1: "SELL"}
ENTRIES = {0: "IN", 1: "OUT", 2: "INOUT", 3: "OUT_BY"}


class Export(StrEnum):
    REVENUE_BY_SYMBOL = "revenue-by-symbol"
    REVENUE_BY_GROUP = "revenue-by-group"
    BREAKDOWN = "breakdown"
    BOOKS = "books"
    CLIENTS = "clients"
    COHORTS = "cohorts"
    REGIONS = "regions"
    IBS = "ibs"
    CLIENT_MONEY = "client-money"
    TRANSACTIONS = "transactions"


def today() -> date:
    return datetime.now(UTC).date()


# Days outside these hold no deals; a date beyond them is read as the nearest (no 500 on
# 9999-12-31, whose next midnight does not exist).
EARLIEST, LATEST = date(1970, 1, 1), date(9999, 12, 30)


def clamp(day: date) -> date:
    return min(max(day, EARLIEST), LATEST)


def date_range(first: date | None, last: date | None) -> tuple[date, date]:
    """The days a report covers: `last` defaults to today (UTC), `first` to 29 days before;
    `first` after `last` is an empty range (every report answers with no rows)."""
    last = clamp(last or today())
    first = clamp(first or max(last - timedelta(days=29), EARLIEST))
    return first, last


def _major(minor: int | Decimal, currency: str) -> Decimal:
    return Decimal(int(minor)).scaleb(-MINOR_UNITS.get(currency, 2))


def _revenue_row(key: str, row: RowMapping) -> RevenueRow:
    return RevenueRow(
        key=key,
        currency=row["currency"],
        deals=row.get("deals"),
        accounts=row.get("accounts"),
        volume_lots=row["volume_lots"],
        commission_income=row["commission_income"],
        swap_income=row["swap_income"],
        fee_income=row["fee_income"],
        b_book_pnl=row["b_book_pnl"],
        markup=row.get("markup"),
        revenue=row["revenue"],
    )


def _totals(rows: Sequence[RevenueRow]) -> list[RevenueRow]:
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    fields = (
        "volume_lots",
        "commission_income",
        "swap_income",
        "fee_income",
        "b_book_pnl",
        "revenue",
    )
    markups: dict[str, Decimal] = {}
    for row in rows:
        for name in fields:
            sums[row.currency][name] += getattr(row, name)
        if row.markup is not None:
            markups[row.currency] = markups.get(row.currency, ZERO) + row.markup
    return [
        RevenueRow(key="total", currency=currency, markup=markups.get(currency), **values)
        for currency, values in sorted(sums.items())
    ]


async def revenue(session: AsyncSession, dimension: str, first: date, last: date) -> RevenueReport:
    if dimension == "symbol":
        rows = [
            _revenue_row(r["symbol"], r)
            for r in await queries.revenue_by_symbol(session, first, last)
        ]
    elif dimension == "symbol_group":
        rows = [
            _revenue_row(r["symbol_group"], r)
            for r in await queries.revenue_by_group(session, first, last)
        ]
    elif dimension == "day":
        rows = [
            _revenue_row(r["day"].isoformat(), r)
            for r in await queries.revenue_breakdown(session, first, last)
        ]
    else:
        rows = [
            _revenue_row(r["book"], r) for r in await queries.revenue_by_book(session, first, last)
        ]
    return RevenueReport(
        first=first, last=last, dimension=dimension, rows=rows, totals=_totals(rows)
    )


def _region(country: str) -> str:
    try:
        return str(region_of(country).value)
    except InvalidInput:
        return "unknown"


async def lifetime_value(session: AsyncSession, first: date, last: date) -> LifetimeValueReport:
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    clients = [
        ClientValueRow(
            client_id=r["client_id"],
            country=r["country"],
            region=_region(r["country"]),
            signed_up=r["signed_up"].astimezone(UTC).date(),
            tenure_days=max((end - r["signed_up"]).days, 0),
            currency=r["currency"],
            net_deposits=_major(r["net_deposits_minor"], r["currency"]),
            revenue=r["revenue"],
            volume_lots=r["volume_lots"],
        )
        for r in await queries.client_values(session, first, last)
    ]
    groups: dict[tuple[str, str, str], list[ClientValueRow]] = defaultdict(list)
    for c in clients:
        groups[(c.signed_up.strftime("%Y-%m"), c.country, c.currency)].append(c)
    cohorts = [
        CohortRow(
            cohort=cohort,
            country=country,
            currency=currency,
            clients=len(members),
            net_deposits=sum((m.net_deposits for m in members), ZERO),
            revenue=sum((m.revenue for m in members), ZERO),
            revenue_per_client=(sum((m.revenue for m in members), ZERO) / len(members)).quantize(
                Decimal("0.01")
            ),
        )
        for (cohort, country, currency), members in sorted(groups.items())
    ]
    curve_rows: dict[tuple[date, str], dict[date, Decimal]] = defaultdict(dict)
    sizes: dict[tuple[date, str], int] = {}
    for r in await queries.cohort_curve(session, first, last):
        curve_rows[(r["cohort"], r["currency"])][r["month"]] = r["revenue"]
        sizes[(r["cohort"], r["currency"])] = int(r["clients"])
    curves = []
    for (cohort, currency), months in sorted(curve_rows.items()):
        newest = max(months)
        count = (newest.year - cohort.year) * 12 + newest.month - cohort.month + 1
        running, points = ZERO, []
        for i in range(max(count, 1)):
            month = date(
                cohort.year + (cohort.month - 1 + i) // 12, (cohort.month - 1 + i) % 12 + 1, 1
            )
            running += months.get(month, ZERO)
            points.append((running / sizes[(cohort, currency)]).quantize(Decimal("0.01")))
        curves.append(
            CohortCurve(
                cohort=cohort.strftime("%Y-%m"),
                currency=currency,
                clients=sizes[(cohort, currency)],
                cumulative_per_client=points,
            )
        )
    return LifetimeValueReport(
        first=first, last=last, clients=clients, cohorts=cohorts, curves=curves
    )


async def regions(session: AsyncSession, first: date, last: date) -> RegionReport:
    rows = [
        RegionRow(
            country=r["country"],
            region=_region(r["country"]),
            currency=r["currency"],
            accounts=r["accounts"],
            volume_lots=r["volume_lots"],
            revenue=r["revenue"],
            net_deposits=_major(r["net_deposits_minor"], r["currency"]),
        )
        for r in await queries.regional(session, first, last)
    ]
    return RegionReport(first=first, last=last, rows=rows)


async def ib_contribution(session: AsyncSession, first: date, last: date) -> IbContributionReport:
    rows = [
        IbContributionRow(
            ib_id=r["ib_id"],
            name=r["name"],
            parent_id=r["parent_id"],
            currency=r["currency"],
            accounts=r["accounts"],
            volume_lots=r["volume_lots"],
            revenue=r["revenue"],
            commissions=r["commissions"],
            net=r["revenue"] - r["commissions"],
        )
        for r in await queries.ib_contribution(session, first, last)
    ]
    return IbContributionReport(first=first, last=last, rows=rows)


async def client_money(session: AsyncSession, day: date | None) -> ClientMoneyStatement:
    day = clamp(day or today())
    rows = []
    for r in await queries.client_money(session, day):
        ccy = r["currency"]
        wallets, holds = _major(r["wallets_minor"], ccy), _major(r["holds_minor"], ccy)
        mirror = _major(r["mt5_ledger_minor"], ccy)
        rows.append(
            ClientMoneyRow(
                currency=ccy,
                wallets=wallets,
                holds=holds,
                mt5_ledger=mirror,
                ledger_client_money=wallets + holds + mirror,
                mt5_balances=r["mt5_balance"],
                mt5_accounts=r["mt5_accounts"],
                mt5_difference=r["mt5_balance"] - mirror,
                client_money_requirement=wallets + holds + r["mt5_balance"],
            )
        )
    return ClientMoneyStatement(day=day, rows=rows)


def _lots(row: RowMapping) -> Decimal:
    if row["volume_ext"]:
        return Decimal(row["volume_ext"]).scaleb(-8)
    return Decimal(row["volume"]).scaleb(-4)


def _plain(value: Decimal) -> str:
    """A decimal without trailing zeros and never in exponent notation."""
    return f"{value.normalize():f}"


def transaction_line(row: RowMapping) -> dict[str, Any]:
    lots = _lots(row)
    units = lots * row["contract_size"]
    return {
        "deal_id": row["deal"],
        "time_utc": row["time"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "venue": row["server"],
        "login": row["login"],
        "client_id": row["client_id"] or "",
        "client_lei": "",
        "client_country": row["country"] or "",
        "symbol": row["symbol"],
        "instrument_currency": row["currency_profit"] or "",
        "side": SIDES.get(row["action"], str(row["action"])),
        "entry": ENTRIES.get(row["entry"], str(row["entry"])),
        "volume_lots": _plain(lots),
        "quantity_units": _plain(units),
        "price": row["price"],
        "notional": _plain(units * row["price"]),
        "account_currency": row["currency"] or "",
        "commission": row["commission"],
        "swap": row["storage"],
        "fee": row["fee"],
        "profit": row["profit"],
        "order_id": row["order_ticket"],
        "position_id": row["position_id"],
        "lp_ticket": row["external_id"],
        "gateway": row["gateway"],
        "reason": row["reason"],
    }


def _csv(fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def _model_rows(rows: Sequence[BaseModel]) -> str:
    if not rows:
        return ""
    fields = list(type(rows[0]).model_fields)
    return _csv(fields, (r.model_dump() for r in rows))


async def export_csv(session: AsyncSession, report: Export, first: date, last: date) -> str:
    """A report as CSV: one row per report row (the transaction report: per deal)."""
    if report is Export.TRANSACTIONS:
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        rows = await queries.transactions(
            session, since, since + timedelta(days=(last - first).days + 1)
        )
        return _csv(TRANSACTION_FIELDS, map(transaction_line, rows))
    if report is Export.CLIENT_MONEY:
        return _model_rows((await client_money(session, last)).rows) or _csv(
            list(ClientMoneyRow.model_fields), []
        )
    dimension = {
        Export.REVENUE_BY_SYMBOL: "symbol",
        Export.REVENUE_BY_GROUP: "symbol_group",
        Export.BREAKDOWN: "day",
        Export.BOOKS: "book",
    }.get(report)
    if dimension is not None:
        found = await revenue(session, dimension, first, last)
        return _model_rows(found.rows) or _csv(list(RevenueRow.model_fields), [])
    if report in (Export.CLIENTS, Export.COHORTS):
        ltv = await lifetime_value(session, first, last)
        if report is Export.CLIENTS:
            return _model_rows(ltv.clients) or _csv(list(ClientValueRow.model_fields), [])
        return _model_rows(ltv.cohorts) or _csv(list(CohortRow.model_fields), [])
    if report is Export.REGIONS:
        return _model_rows((await regions(session, first, last)).rows) or _csv(
            list(RegionRow.model_fields), []
        )
    return _model_rows((await ib_contribution(session, first, last)).rows) or _csv(
        list(IbContributionRow.model_fields), []
    )


async def export(
    session: AsyncSession, report: Export, first: date | None, last: date | None
) -> tuple[str, str]:
    """A report as CSV over the range asked for, and its file name."""
    first_day, last_day = date_range(first, last)
    body = await export_csv(session, report, first_day, last_day)
    return body, f"{report.value}-{first_day}-{last_day}.csv"


def chart_currency(reports: Sequence[RevenueRow], wanted: str | None) -> str:
    """The currency the charts show: the one asked for, else the one with most revenue."""
    if wanted:
        return wanted
    best = max(reports, key=lambda r: abs(r.revenue), default=None)
    return best.currency if best else "USD"


async def overview(
    session: AsyncSession, first: date, last: date, currency: str | None
) -> dict[str, Any]:
    """Everything the console page and the PDF show: the reports and their charts."""
    by_symbol = await revenue(session, "symbol", first, last)
    by_group = await revenue(session, "symbol_group", first, last)
    by_day = await revenue(session, "day", first, last)
    by_book = await revenue(session, "book", first, last)
    ltv = await lifetime_value(session, first, last)
    region_report = await regions(session, first, last)
    ibs = await ib_contribution(session, first, last)
    money = await client_money(session, last)
    ccy = chart_currency(by_symbol.totals, currency)
    days = [r for r in by_day.rows if r.currency == ccy]
    parts = (
        ("commission", "commission_income"),
        ("swap", "swap_income"),
        ("fee", "fee_income"),
        ("B-book P&L", "b_book_pnl"),
    )
    curves = [c for c in ltv.curves if c.currency == ccy]
    longest = max((len(c.cumulative_per_client) for c in curves), default=0)
    country_revenue: dict[str, Decimal] = defaultdict(Decimal)
    for r in region_report.rows:
        if r.currency == ccy:
            country_revenue[r.country] += r.revenue
    figures = {
        "symbols": charts.bar_chart(
            "Revenue by symbol",
            [(r.key, r.revenue) for r in by_symbol.rows if r.currency == ccy][:15],
            unit=ccy,
        ),
        "groups": charts.bar_chart(
            "Revenue by symbol group",
            [(r.key, r.revenue) for r in by_group.rows if r.currency == ccy][:15],
            unit=ccy,
        ),
        "breakdown": charts.stacked_chart(
            "Revenue breakdown per day",
            [r.key for r in days],
            [
                charts.Series(name, [getattr(r, attribute) for r in days])
                for name, attribute in parts
            ],
            unit=ccy,
        ),
        "cohorts": charts.line_chart(
            "Cumulative revenue per client by sign-up cohort",
            [f"M{i}" for i in range(longest)],
            [charts.Series(c.cohort, c.cumulative_per_client) for c in curves],
            unit=ccy,
        ),
        "regions": charts.bar_chart(
            "Revenue by client country",
            sorted(country_revenue.items(), key=lambda i: -i[1]),
            unit=ccy,
        ),
    }
    return {
        "first": first,
        "last": last,
        "currency": ccy,
        "by_symbol": by_symbol,
        "by_group": by_group,
        "by_day": by_day,
        "by_book": by_book,
        "ltv": ltv,
        "regions": region_report,
        "ibs": ibs,
        "money": money,
        "charts": figures,
        "exports": [e.value for e in Export],
    }


async def report_pdf(session: AsyncSession, first: date, last: date, currency: str | None) -> bytes:
    context = await overview(session, first, last, currency)
    # WeasyPrint is CPU-bound: off the event loop.
    return await asyncio.to_thread(charts.render_report_pdf, context)
