"""The risk dashboard (/console/risk): net exposure by symbol, the series over time and the open
alerts, pushed by server-sent events (/console/risk/stream), with polling of /console/risk/live
(the same figures as GET /v1/risk/exposure) when the stream cannot be used; alerts are
acknowledged and resolved by forms (the same service as the API, audited)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from api.deps import SessionDep, StateDep
from api.pages import back, check_csrf, render
from api.policy import Principal
from api.risk import service
from api.risk.policies import RISK_DESK, ConsoleRiskDesk, ConsoleRiskReader
from api.risk.schemas import SERVER_PATTERN, ConsoleAlertForm, LiveExposure
from api.risk.stream import live_events
from domain.errors import BackOfficeError

router = APIRouter(prefix="/console/risk", tags=["console"])
PAGE = "/console/risk"
# How often the page asks for new figures when it cannot use the event stream (milliseconds).
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


# Not in the OpenAPI document: an endless answer is no operation a client generator or a fuzzer
# can call (a client that does not accept text/event-stream gets one event and the end).
@router.get("/stream", include_in_schema=False)
async def risk_stream(
    request: Request, _: ConsoleRiskReader, state: StateDep, server: Server = None
) -> StreamingResponse:
    """Server-sent events: `live` (the figures of /console/risk/live) at once and at each new
    point or alert change."""
    follow = "text/event-stream" in request.headers.get("accept", "")
    return StreamingResponse(
        live_events(state.sessions, server, follow=follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


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
