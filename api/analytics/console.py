"""The console's reports page (`/console/reports`): the charts (inline SVG drawn on the
server, `reports.analytics`), every report's table, and the CSV and PDF downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.analytics import service
from api.analytics.access import (
    CSV_RESPONSES,
    PDF_RESPONSES,
    ConsoleReportReader,
    Day,
    csv_response,
)
from api.deps import SessionDep
from api.pages import pdf_response, render

router = APIRouter(prefix="/console/reports", tags=["console"])

First = Annotated[Day | None, Query()]
Last = Annotated[Day | None, Query()]
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")]


@router.get("", response_class=HTMLResponse)
async def reports_page(
    request: Request,
    staff: ConsoleReportReader,
    session: SessionDep,
    first: First = None,
    last: Last = None,
    currency: Currency = None,
) -> HTMLResponse:
    first_day, last_day = service.date_range(first, last)
    context = await service.overview(session, first_day, last_day, currency)
    return render(request, "console_reports.html", staff, **context)


@router.get("/export/{report}", response_class=Response, responses=CSV_RESPONSES)
async def export_report_csv(
    report: service.Export,
    _: ConsoleReportReader,
    session: SessionDep,
    first: First = None,
    last: Last = None,
) -> Response:
    return csv_response(*await service.export(session, report, first, last))


@router.get("/report.pdf", response_class=Response, responses=PDF_RESPONSES)
async def report_pdf_download(
    _: ConsoleReportReader,
    session: SessionDep,
    first: First = None,
    last: Last = None,
    currency: Currency = None,
) -> Response:
    first_day, last_day = service.date_range(first, last)
    content = await service.report_pdf(session, first_day, last_day, currency)
    return pdf_response(content, f"report-{first_day}-{last_day}.pdf", download=True)
