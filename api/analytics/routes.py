"""The reports as JSON, CSV and PDF (docs/reporting.md). Days are UTC; `first`..`last` are
inclusive (default: the last 30 days)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.analytics import service
from api.analytics.access import (
    CSV_RESPONSES,
    PDF_RESPONSES,
    Day,
    ReportReader,
    csv_response,
)
from api.analytics.schemas import (
    ClientMoneyStatement,
    IbContributionReport,
    LifetimeValueReport,
    RegionReport,
    RevenueReport,
)
from api.deps import SessionDep

router = APIRouter(prefix="/v1/analytics", tags=["reporting"])

First = Annotated[Day | None, Query(description="first UTC day (default: 29 days before last)")]
Last = Annotated[Day | None, Query(description="last UTC day, included (default: today)")]


@router.get("/revenue")
async def revenue_report(
    _: ReportReader,
    session: SessionDep,
    by: Literal["symbol", "symbol_group", "day", "book"] = "symbol",
    first: First = None,
    last: Last = None,
) -> RevenueReport:
    """The broker's revenue per symbol, symbol group, day (the breakdown) or book (A/B
    split): commission, swap and fee income and the B-book P&L, per currency."""
    return await service.revenue(session, by, *service.date_range(first, last))


@router.get("/lifetime-value")
async def lifetime_value_report(
    _: ReportReader, session: SessionDep, first: First = None, last: Last = None
) -> LifetimeValueReport:
    """Per client: net deposits, revenue, tenure; cohorts by sign-up month and country, and
    each sign-up month's cumulative revenue per client."""
    return await service.lifetime_value(session, *service.date_range(first, last))


@router.get("/regions")
async def regional_report(
    _: ReportReader, session: SessionDep, first: First = None, last: Last = None
) -> RegionReport:
    """Per client country (and its region): accounts, volume, revenue, net deposits."""
    return await service.regions(session, *service.date_range(first, last))


@router.get("/ib-contribution")
async def ib_contribution_report(
    _: ReportReader, session: SessionDep, first: First = None, last: Last = None
) -> IbContributionReport:
    """Per IB: its tree's clients' volume and revenue against the commissions accrued to
    the tree."""
    return await service.ib_contribution(session, *service.date_range(first, last))


@router.get("/client-money")
async def client_money_statement(
    _: ReportReader,
    session: SessionDep,
    day: Annotated[Day | None, Query(description="UTC day (default: today)")] = None,
) -> ClientMoneyStatement:
    """Client money held per currency at the end of `day`: the ledger's wallets, holds and
    MT5 mirrors against the MT5 balances of client accounts."""
    return await service.client_money(session, day)


@router.get("/export/{report}", response_class=Response, responses=CSV_RESPONSES)
async def export_report(
    report: service.Export,
    _: ReportReader,
    session: SessionDep,
    first: First = None,
    last: Last = None,
) -> Response:
    """A report as CSV; `transactions` is the transaction report (one row per deal)."""
    return csv_response(*await service.export(session, report, first, last))


@router.get("/report.pdf", response_class=Response, responses=PDF_RESPONSES)
async def report_pdf(
    _: ReportReader,
    session: SessionDep,
    first: First = None,
    last: Last = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> Response:
    """The management report: every report's charts and tables."""
    first_day, last_day = service.date_range(first, last)
    content = await service.report_pdf(session, first_day, last_day, currency)
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="report-{first_day}-{last_day}.pdf"'
        },
    )
