"""The console's dealer-revenue page (`/console/revenue`, docs/revenue.md): one MT5 server's
revenue figures over UTC days (spread captured, markup, commission and fee revenue, B-book P&L
realised and floating, A-book cost) and its slippage by symbol, LP gateway and hour; read-only,
from the same service as `GET /v1/revenue/servers/{server}/summary` and `.../slippage`, for the
same readers."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.pages import render
from api.policy import ConsolePolicy, Principal
from api.revenue import service
from api.revenue.schemas import SERVER_PATTERN, First, Last
from api.revenue.service import REVENUE_READERS
from db.queries import revenue as queries

router = APIRouter(prefix="/console/revenue", tags=["console"])
ConsoleRevenueReader = Annotated[
    Principal, Depends(ConsolePolicy("console: revenue readers", staff=REVENUE_READERS))
]

Server = Annotated[str | None, Query(pattern=SERVER_PATTERN)]


@router.get("", response_class=HTMLResponse)
async def revenue_page(
    request: Request,
    staff: ConsoleRevenueReader,
    session: SessionDep,
    server: Server = None,
    first: First = None,
    last: Last = None,
) -> HTMLResponse:
    """The server's totals per currency and book and its slippage patterns over the days
    (default: the first server, today), with links to today, the last 7 days and the month."""
    servers = await queries.revenue_servers(session)
    chosen = server or (servers[0] if servers else None)
    since, until = service.window(first, last)
    today = service.window(None, None)[0].date()
    context: dict[str, object] = {
        "servers": servers,
        "server": chosen,
        "first": since.date(),
        "last": (until - timedelta(days=1)).date(),
        "periods": {
            "Today": (today, today),
            "Last 7 days": (today - timedelta(days=6), today),
            "This month": (today.replace(day=1), today),
        },
        "summary": None,
        "slippage": None,
    }
    if chosen is not None:
        context["summary"] = await service.summary(session, chosen, first, last)
        context["slippage"] = await service.slippage(session, chosen, first, last)
    return render(request, "console_revenue.html", staff, **context)
