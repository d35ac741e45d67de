"""What the trade-ingestion console page and /metrics show: per server figures and alerts.

Per MT5 server, from `ingestion_state` (the followers commit it with their rows): the deals'
watermark, the lag, rows per second, deals ingested, the last error, and where the history
orders, positions and account states stand, with the open positions and accounts held.

Alerts are computed when read, from that one row, so they are raised even when nothing runs
(a dead worker cannot raise its own alert):
* `stuck`: the deal follower's heartbeat (`last_poll_at`, stamped at least every
  `HEARTBEAT_EVERY` seconds even when idle, and by every commit of new deals) is older than
  `STUCK_AFTER`: no worker is polling that server, or its polls hang;
* `failing`: a poll failed within `FAILING_WITHIN` (its error is shown). A follower that keeps
  failing cannot make progress, so "no progress while MT5 has newer deals" shows as `failing`
  (the read or the write fails) or as `stuck` (nothing runs).
The console had no alert mechanism of its own: an alert is a banner (`role="alert"`) at the top
of this page and a row mark; on the API's /metrics, `brokerflow_ingestion_alerts{server,kind}`
is 1 while raised (sum it to count them), beside the figures as gauges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models.trading import AccountStateRow, IngestionState, PositionRow
from observability.ingestion import IngestionGauges, ServerFigures

log = logging.getLogger("brokerflow.console.ingestion")

STUCK_AFTER = timedelta(minutes=5)
FAILING_WITHIN = timedelta(minutes=5)
STUCK, FAILING = "stuck", "failing"


@dataclass(frozen=True)
class Alert:
    server: str
    kind: str  # STUCK or FAILING
    text: str


@dataclass(frozen=True)
class ServerIngestion:
    server: str
    watermark: datetime | None
    lag_seconds: Decimal | None
    rows_per_second: Decimal | None
    deals_ingested: int
    last_poll_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    orders_watermark: datetime | None
    positions_at: datetime | None
    accounts_at: datetime | None
    positions: int
    accounts: int
    alerts: tuple[Alert, ...]


def alerts_of(state: IngestionState, at: datetime) -> tuple[Alert, ...]:
    """The alerts one server's state raises at `at`."""
    raised: list[Alert] = []
    beat = state.last_poll_at
    if beat is None or at - beat > STUCK_AFTER:
        since = "never polled" if beat is None else f"no poll since {beat:%Y-%m-%d %H:%M:%S} UTC"
        raised.append(Alert(state.server, STUCK, f"{since} (more than {_minutes(STUCK_AFTER)})"))
    if state.last_error_at is not None and at - state.last_error_at <= FAILING_WITHIN:
        raised.append(
            Alert(
                state.server,
                FAILING,
                f"failed at {state.last_error_at:%Y-%m-%d %H:%M:%S} UTC: {state.last_error}",
            )
        )
    return tuple(raised)


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} min"


async def _counts(session: AsyncSession, server: InstrumentedAttribute[str]) -> dict[str, int]:
    rows = await session.execute(select(server, func.count()).group_by(server))
    return {name: int(count) for name, count in rows.all()}


async def ingestion_overview(session: AsyncSession, at: datetime) -> list[ServerIngestion]:
    """Every server with an ingestion state, by name, with its alerts at `at`."""
    states = (await session.scalars(select(IngestionState).order_by(IngestionState.server))).all()
    positions = await _counts(session, PositionRow.server)
    accounts = await _counts(session, AccountStateRow.server)
    return [
        ServerIngestion(
            server=s.server,
            watermark=s.watermark,
            lag_seconds=s.lag_seconds,
            rows_per_second=s.rows_per_second,
            deals_ingested=s.deals_ingested,
            last_poll_at=s.last_poll_at,
            last_error=s.last_error,
            last_error_at=s.last_error_at,
            orders_watermark=s.orders_watermark,
            positions_at=s.positions_at,
            accounts_at=s.accounts_at,
            positions=positions.get(s.server, 0),
            accounts=accounts.get(s.server, 0),
            alerts=alerts_of(s, at),
        )
        for s in states
    ]


def minutes(span: timedelta) -> str:
    return _minutes(span)


async def publish_ingestion_metrics(request: Request) -> None:
    """Before /metrics renders: the ingestion gauges set from the database. A database that
    does not answer leaves them as they were (the scrape itself must not fail for it)."""
    metrics = request.app.state.metrics
    gauges = getattr(metrics, "ingestion", None)
    if gauges is None:
        gauges = metrics.ingestion = IngestionGauges(metrics.registry)
    try:
        async with request.app.state.brokerflow.sessions() as session:
            servers = await ingestion_overview(session, datetime.now(UTC))
    except Exception:
        log.exception("ingestion figures not read for /metrics")
        return
    gauges.publish(
        [
            ServerFigures(
                server=s.server,
                watermark=s.watermark,
                lag_seconds=float(s.lag_seconds or 0),
                rows_per_second=float(s.rows_per_second or 0),
                deals_ingested=s.deals_ingested,
                last_poll_at=s.last_poll_at,
                last_error_at=s.last_error_at,
                alerts=frozenset(a.kind for a in s.alerts),
            )
            for s in servers
        ],
        kinds=(STUCK, FAILING),
    )
