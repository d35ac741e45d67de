"""The operations console's trade-ingestion page: per MT5 server the deals' watermark, the lag,
rows per second, the last error, where orders, positions and account states stand, and the
alerts raised (stuck, failing), as a banner at the top. The figures and alerts are read by
`api.console.ingestion_service`, which also puts them on the API's /metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.console.ingestion_service import (
    FAILING_WITHIN,
    STUCK_AFTER,
    ingestion_overview,
    minutes,
)
from api.deps import SessionDep
from api.pages import render
from api.policy import ConsolePolicy, Principal
from domain.roles import StaffRole

router = APIRouter(prefix="/console", tags=["console"])

# Those who answer for the trade servers, and the auditor.
INGESTION_READERS = frozenset(
    {StaffRole.ADMIN, StaffRole.DEALER, StaffRole.RISK, StaffRole.AUDITOR}
)
console_ingestion_readers = ConsolePolicy(
    "console: trade ingestion readers", staff=INGESTION_READERS
)
ConsoleIngestionReader = Annotated[Principal, Depends(console_ingestion_readers)]


@router.get("/ingestion", response_class=HTMLResponse)
async def ingestion_page(
    request: Request, staff: ConsoleIngestionReader, session: SessionDep
) -> HTMLResponse:
    """Per server: the figures, the alerts raised (a banner above the table) and the last
    error."""
    at = datetime.now(UTC)
    servers = await ingestion_overview(session, at)
    return render(
        request,
        "console_ingestion.html",
        staff,
        servers=servers,
        alerts=[a for s in servers for a in s.alerts],
        at=at,
        stuck_after=minutes(STUCK_AFTER),
        failing_within=minutes(FAILING_WITHIN),
    )
