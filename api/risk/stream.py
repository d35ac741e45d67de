"""The dashboard's server-sent events (`GET /console/risk/stream`): the live exposure (the JSON of
`/console/risk/live`) as an event named `live`, sent at once and again whenever a new point is
stored or an unresolved alert changes.

The database has no change feed the API listens to, so the stream looks every `check` seconds
with one small query (the newest point's id and the unresolved alerts' state) and builds the
whole answer only when that changed. A comment line every `heartbeat` seconds keeps proxies
from closing an idle connection; after `lifetime` the stream ends and the browser's
EventSource reconnects by itself (after the `retry` it was given), so a session that ended
meanwhile is checked again. A client that does not ask for `text/event-stream` (no
EventSource) gets the current figures once and the end of the stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.risk import service
from db.models import ExposurePointRow, RiskAlert
from db.queries.risk import RESOLVED


@dataclass(frozen=True)
class StreamTiming:
    check: float = 1.0  # seconds between two looks at the database
    heartbeat: float = 15.0
    lifetime: float = 300.0
    retry_ms: int = 2000  # what the browser waits before reconnecting


async def version(session: AsyncSession, server: str | None) -> tuple[object, ...]:
    """What changes when the page would: the newest point's id and the unresolved alerts."""
    newest = select(func.max(ExposurePointRow.id))
    if server is not None:
        newest = newest.where(ExposurePointRow.server == server)
    alerts = await session.execute(
        select(
            RiskAlert.id,
            RiskAlert.status,
            RiskAlert.raised_count,
            RiskAlert.cleared_at,
            RiskAlert.last_value,
            RiskAlert.peak_value,
        )
        .where(RiskAlert.status != RESOLVED)
        .order_by(RiskAlert.id)
    )
    return (await session.scalar(newest), tuple(tuple(row) for row in alerts))


def event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


async def live_events(
    sessions: async_sessionmaker[AsyncSession],
    server: str | None,
    *,
    follow: bool,
    timing: StreamTiming = StreamTiming(),
) -> AsyncIterator[str]:
    """The stream's text: `retry`, the first `live` event, then one per change (while
    `follow`), heartbeats between, until `timing.lifetime` has passed."""
    yield f"retry: {timing.retry_ms}\n\n"
    seen: tuple[object, ...] | None = None
    started = last_sent = time.monotonic()
    while True:
        async with sessions() as session:
            now = await version(session, server)
            if now != seen:
                live = await service.live_exposure(session, server)
        if now != seen:
            seen = now
            last_sent = time.monotonic()
            yield event("live", live.model_dump_json())
        if not follow:
            return
        if time.monotonic() - started >= timing.lifetime:
            return
        if time.monotonic() - last_sent >= timing.heartbeat:
            last_sent = time.monotonic()
            yield ": still here\n\n"
        await asyncio.sleep(timing.check)
