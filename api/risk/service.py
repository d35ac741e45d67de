"""The risk desk: account books, alert thresholds, alerts (acknowledge, resolve) and the live
exposure as the dashboard reads it. Every staff change writes its audit row in the request's
transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.policy import Principal
from api.risk.schemas import (
    AlertView,
    BookSet,
    LiveExposure,
    MarginCallView,
    SeriesPoint,
    SymbolExposure,
    ThresholdCreate,
)
from db import audit
from db.models import AccountBook, RiskAlert, RiskThreshold
from db.queries import risk as queries
from domain.errors import Conflict, InvalidInput, NotFound
from domain.exposure.alerts import TOTAL_KEY, Metric, Scope

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", queries.RESOLVED
# What a ratio metric may be set to (1 = 100 %): above is a typo, not a threshold.
RATIO_METRICS = frozenset({Metric.CONCENTRATION, Metric.MARGIN_UTILISATION})
SERIES_MINUTES = 60


def _book_snapshot(row: AccountBook | None) -> dict[str, Any]:
    if row is None:
        return {"book": "B", "a_share": None, "default": True}
    return {
        "book": row.book,
        "a_share": None if row.a_share is None else format(row.a_share, "f"),
    }


async def set_book(
    session: AsyncSession, server: str, login: int, request: BookSet, by: Principal
) -> AccountBook:
    """Set (or change) an account's book. Any login of the server may be given: coverage
    accounts (the broker's own at a liquidity provider) are not BrokerFlow's clients."""
    if (request.book == "hybrid") != (request.a_share is not None):
        raise InvalidInput("a_share is given for a hybrid book, and only for it", field="a_share")
    if request.a_share is not None and not Decimal(0) < request.a_share < Decimal(1):
        raise InvalidInput("a_share must be above 0 and below 1", field="a_share")
    row = await queries.book_of(session, server, login, lock=True)
    before = _book_snapshot(row)
    now = datetime.now(UTC)
    if row is None:
        row = AccountBook(server=server, login=login)
        session.add(row)
    row.book = request.book
    row.a_share = request.a_share
    row.set_by = str(by.id)
    row.updated_at = now
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="risk.book_set",
            entity_type="account_book",
            entity_id=f"{server}:{login}",
            before=before,
            after=_book_snapshot(row),
            reason=request.reason,
        ),
    )
    return row


async def books(session: AsyncSession, server: str) -> list[AccountBook]:
    return list(await queries.books_of(session, server))


def _threshold_snapshot(row: RiskThreshold) -> dict[str, Any]:
    return {
        "server": row.server,
        "scope": row.scope,
        "key": row.key,
        "metric": row.metric,
        "raise_above": format(row.raise_above, "f"),
        "clear_below": format(row.clear_below, "f"),
        "window_seconds": row.window_seconds,
        "active": row.active,
    }


async def create_threshold(
    session: AsyncSession, request: ThresholdCreate, by: Principal
) -> RiskThreshold:
    if request.clear_below > request.raise_above:
        raise InvalidInput(
            "clear_below must not be above raise_above (the alert clears below it)",
            field="clear_below",
        )
    if (request.metric is Metric.CHANGE) != (request.window_seconds is not None):
        raise InvalidInput(
            "window_seconds is given for the change metric, and only for it",
            field="window_seconds",
        )
    if request.metric in RATIO_METRICS and request.raise_above > 1:
        raise InvalidInput(f"{request.metric} is a ratio: 0.25 is 25 %", field="raise_above")
    if request.metric is Metric.CONCENTRATION and request.scope is Scope.TOTAL:
        raise InvalidInput("concentration is a bucket's share: not for total", field="scope")
    if request.metric is Metric.MARGIN_UTILISATION and request.scope not in (
        Scope.TOTAL,
        Scope.GROUP,
        Scope.ACCOUNT,
    ):
        raise InvalidInput("margin utilisation is per account, group or total", field="scope")
    if request.scope is Scope.ACCOUNT:
        if request.metric is not Metric.MARGIN_UTILISATION:
            raise InvalidInput("an account is watched for margin_utilisation only", field="metric")
        key = request.key
        if not (key.isascii() and key.isdigit() and len(key) <= 18 and int(key) >= 1):
            raise InvalidInput("an account's key is its MT5 login (digits)", field="key")
        request = request.model_copy(update={"key": str(int(request.key))})
    row = RiskThreshold(
        id=uuid.uuid4(),
        server=request.server,
        scope=request.scope.value,
        key=TOTAL_KEY if request.scope is Scope.TOTAL else request.key,
        metric=request.metric.value,
        raise_above=request.raise_above,
        clear_below=request.clear_below,
        window_seconds=request.window_seconds,
        active=True,
        created_by=str(by.id),
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="risk.threshold_created",
            entity_type="risk_threshold",
            entity_id=str(row.id),
            after=_threshold_snapshot(row),
        ),
    )
    return row


async def deactivate_threshold(
    session: AsyncSession, threshold_id: uuid.UUID, by: Principal
) -> RiskThreshold:
    """No more alerts from it (its open alerts stay until resolved)."""
    row = await queries.threshold_by_id(session, threshold_id, lock=True)
    if row is None:
        raise NotFound("no such threshold")
    if not row.active:
        raise Conflict("the threshold is already inactive")
    before = _threshold_snapshot(row)
    row.active = False
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="risk.threshold_deactivated",
            entity_type="risk_threshold",
            entity_id=str(row.id),
            before=before,
            after=_threshold_snapshot(row),
        ),
    )
    return row


async def thresholds(session: AsyncSession) -> list[RiskThreshold]:
    return list(await queries.thresholds_newest_first(session))


async def unresolved_alerts(session: AsyncSession) -> list[RiskAlert]:
    return list(await queries.alerts_unresolved(session))


async def _decide_alert(
    session: AsyncSession,
    alert_id: uuid.UUID,
    by: Principal,
    *,
    status: str,
    note: str | None,
) -> RiskAlert:
    row = await queries.alert_by_id(session, alert_id, lock=True)
    if row is None:
        raise NotFound("no such alert")
    if row.status == RESOLVED or row.status == status:
        raise Conflict(f"the alert is already {row.status}")
    before = {"status": row.status}
    now = datetime.now(UTC)
    row.status = status
    if status == ACKNOWLEDGED:
        row.acknowledged_by, row.acknowledged_at = str(by.id), now
    else:
        row.resolved_by, row.resolved_at = str(by.id), now
    if note:
        row.note = note
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action=f"risk.alert_{status}",
            entity_type="risk_alert",
            entity_id=str(row.id),
            before=before,
            after={"status": row.status, "key": f"{row.scope}:{row.key}:{row.metric}"},
            reason=note,
        ),
    )
    return row


async def acknowledge_alert(
    session: AsyncSession, alert_id: uuid.UUID, by: Principal, note: str | None = None
) -> RiskAlert:
    return await _decide_alert(session, alert_id, by, status=ACKNOWLEDGED, note=note)


async def resolve_alert(
    session: AsyncSession, alert_id: uuid.UUID, by: Principal, note: str | None = None
) -> RiskAlert:
    return await _decide_alert(session, alert_id, by, status=RESOLVED, note=note)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


async def live_exposure(
    session: AsyncSession, server: str | None, *, minutes: int = SERIES_MINUTES
) -> LiveExposure:
    """The newest point of `server` (default: the first server with points) and the series of
    the last `minutes` before it, with the unresolved alerts of every server."""
    servers = await queries.exposure_servers(session)
    chosen = server or (servers[0] if servers else None)
    alerts = [AlertView.of(a) for a in await queries.alerts_unresolved(session)]
    latest = None if chosen is None else await queries.newest_point(session, chosen)
    if chosen is None or latest is None:
        return LiveExposure(
            server=chosen,
            servers=servers,
            currency=None,
            at=None,
            net_notional=None,
            gross_notional=None,
            pending_notional=None,
            house_net_notional=None,
            margin_utilisation=None,
            by_symbol=[],
            margin_calls=[],
            series=[],
            alerts=alerts,
        )
    series = await queries.points_since(session, chosen, latest.at - timedelta(minutes=minutes))
    by_symbol = [
        SymbolExposure(
            symbol=name,
            long_notional=b["long_notional"],
            short_notional=b["short_notional"],
            net_notional=b["net_notional"],
            net_lots=b["net_lots"],
        )
        for name, b in sorted(
            latest.figures.get("by_symbol", {}).items(),
            key=lambda item: -abs(Decimal(item[1]["net_notional"])),
        )
    ]
    return LiveExposure(
        server=chosen,
        servers=servers,
        currency=latest.currency,
        at=latest.at,
        net_notional=_text(latest.net_notional),
        gross_notional=_text(latest.gross_notional),
        pending_notional=_text(latest.pending_notional),
        house_net_notional=_text(latest.house_net_notional),
        margin_utilisation=_text(latest.margin_utilisation),
        by_symbol=by_symbol,
        margin_calls=[
            MarginCallView.model_validate(row) for row in latest.figures.get("margin_calls", [])
        ],
        series=[
            SeriesPoint(
                at=p.at,
                net_notional=format(p.net_notional, "f"),
                gross_notional=format(p.gross_notional, "f"),
                house_net_notional=format(p.house_net_notional, "f"),
            )
            for p in series
        ],
        alerts=alerts,
    )
