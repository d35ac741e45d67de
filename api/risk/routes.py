"""The risk desk's API: account books, alert thresholds, alerts and the live exposure."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from api.deps import SessionDep
from api.problems import error_responses
from api.risk import service
from api.risk.policies import RiskDesk, RiskReader
from api.risk.schemas import (
    SERVER_PATTERN,
    AlertNote,
    AlertView,
    BookSet,
    BookView,
    LiveExposure,
    Login,
    ServerName,
    ThresholdCreate,
    ThresholdView,
)

router = APIRouter(prefix="/v1/risk", tags=["risk"])

ALERT_ERRORS = error_responses(
    {404: "no such alert", 409: "the alert is already acknowledged or resolved"}
)


@router.put("/books/{server}/{login}")
async def set_account_book(
    server: ServerName, login: Login, body: BookSet, staff: RiskDesk, session: SessionDep
) -> BookView:
    """Set an account's book (no book set: B). Audited with the book before and after."""
    return BookView.of(await service.set_book(session, server, login, body, staff))


@router.get("/books/{server}")
async def list_account_books(
    server: ServerName, _: RiskReader, session: SessionDep
) -> list[BookView]:
    """The books set on `server` (every other account is B)."""
    return [BookView.of(b) for b in await service.books(session, server)]


@router.post("/thresholds", status_code=status.HTTP_201_CREATED)
async def create_threshold(
    body: ThresholdCreate, staff: RiskDesk, session: SessionDep
) -> ThresholdView:
    """A new alert threshold, evaluated on every next point of the series."""
    return ThresholdView.of(await service.create_threshold(session, body, staff))


@router.get("/thresholds")
async def list_thresholds(_: RiskReader, session: SessionDep) -> list[ThresholdView]:
    return [ThresholdView.of(t) for t in await service.thresholds(session)]


@router.post(
    "/thresholds/{threshold_id}/deactivate",
    responses=error_responses({404: "no such threshold", 409: "already inactive"}),
)
async def deactivate_threshold(
    threshold_id: UUID, staff: RiskDesk, session: SessionDep
) -> ThresholdView:
    """No more alerts from this threshold; its unresolved alerts stay until resolved."""
    return ThresholdView.of(await service.deactivate_threshold(session, threshold_id, staff))


@router.get("/alerts")
async def list_alerts(_: RiskReader, session: SessionDep) -> list[AlertView]:
    """Alerts not resolved yet, newest first."""
    return [AlertView.of(a) for a in await service.unresolved_alerts(session)]


@router.post("/alerts/{alert_id}/acknowledge", responses=ALERT_ERRORS)
async def acknowledge_alert(
    alert_id: UUID, body: AlertNote, staff: RiskDesk, session: SessionDep
) -> AlertView:
    return AlertView.of(await service.acknowledge_alert(session, alert_id, staff, body.note))


@router.post("/alerts/{alert_id}/resolve", responses=ALERT_ERRORS)
async def resolve_alert(
    alert_id: UUID, body: AlertNote, staff: RiskDesk, session: SessionDep
) -> AlertView:
    return AlertView.of(await service.resolve_alert(session, alert_id, staff, body.note))


@router.get("/exposure")
async def live_exposure(
    _: RiskReader,
    session: SessionDep,
    server: Annotated[str | None, Query(pattern=SERVER_PATTERN)] = None,
    minutes: Annotated[int, Query(ge=1, le=2880)] = service.SERIES_MINUTES,
) -> LiveExposure:
    """The newest exposure point of `server` (default: the first with points), its series over
    the last `minutes`, and every unresolved alert."""
    return await service.live_exposure(session, server, minutes=minutes)
