"""The risk dashboard (/console/risk): net exposure by symbol, the series over time and the open
alerts, refreshed by polling /console/risk/live (the same figures as GET /v1/risk/exposure);
alerts are acknowledged and resolved by forms (the same service as the API, audited)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep
from api.pages import back, check_csrf, render
from api.policy import Principal
from api.risk import service
from api.risk.policies import RISK_DESK, ConsoleRiskDesk, ConsoleRiskReader
from api.risk.schemas import SERVER_PATTERN, ConsoleAlertForm, LiveExposure
from domain.errors import BackOfficeError

router = APIRouter(prefix="/console/risk", tags=["console"])
PAGE = "/console/risk"
# How often the page asks for new figures (milliseconds).
REFRESH_MS = 2000

Server = Annotated[str | None, Query(pattern=SERVER_PATTERN)]


@router.get("", response_class=HTMLResponse)
async def risk_page(
    request: Request,
    staff: ConsoleRiskReader,
    session: SessionDep,
    server: Server = None,
    notice: Annotated[str | None, Query(max_length=300)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    live = await service.live_exposure(session, server)
    return render(
        request,
        "console_risk.html",
        staff,
        live=live,
        live_json=live.model_dump_json(),
        can_decide=staff.has_role(*RISK_DESK),
        refresh_ms=REFRESH_MS,
        notice=notice,
        error=error,
    )


@router.get("/live")
async def risk_live(
    _: ConsoleRiskReader, session: SessionDep, server: Server = None
) -> LiveExposure:
    """What the dashboard polls: the figures of GET /v1/risk/exposure."""
    return await service.live_exposure(session, server)


async def _decide(
    alert_id: UUID, form: ConsoleAlertForm, staff: Principal, session: SessionDep, action: str
) -> RedirectResponse:
    check_csrf(staff, form.csrf)
    note = form.note.replace("\x00", "").strip() or None
    try:
        if action == "acknowledge":
            alert = await service.acknowledge_alert(session, alert_id, staff, note)
        else:
            alert = await service.resolve_alert(session, alert_id, staff, note)
    except BackOfficeError as exc:
        return back(PAGE, error=exc.detail[:300])
    return back(PAGE, notice=f"alert {alert.scope} {alert.key} {alert.metric}: {alert.status}")


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge_alert_form(
    alert_id: UUID,
    form: Annotated[ConsoleAlertForm, Form()],
    staff: ConsoleRiskDesk,
    session: SessionDep,
) -> RedirectResponse:
    return await _decide(alert_id, form, staff, session, "acknowledge")


@router.post("/alerts/{alert_id}/resolve")
async def resolve_alert_form(
    alert_id: UUID,
    form: Annotated[ConsoleAlertForm, Form()],
    staff: ConsoleRiskDesk,
    session: SessionDep,
) -> RedirectResponse:
    return await _decide(alert_id, form, staff, session, "resolve")
