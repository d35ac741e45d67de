"""The reporting aggregates' step: for each server, the UTC days from the aggregates'
watermark (`analytics_state.through`) to its newest deal are recomputed from `deals` and
replaced (`db.queries.analytics.replace_days`), and the watermark moved, in one transaction
per server. Recomputing a day writes the same rows, so a retried attempt or an overlapping
back-fill is harmless. At most `MAX_DAYS_PER_RUN` days a run: a first run over a long history
catches up over several runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.analytics import AggregatesRefreshed, RefreshAggregates, refresh_aggregates
from contracts.steps import implements
from db.queries import analytics as queries


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


class AnalyticsSteps:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._sessions = sessions
        self._now = now

    @implements(refresh_aggregates)
    async def refresh_aggregates(self, request: RefreshAggregates) -> AggregatesRefreshed:
        return await self.run(request)

    async def run(self, request: RefreshAggregates) -> AggregatesRefreshed:
        """The step's work, outside an activity (tests, a back-fill from a shell)."""
        result = AggregatesRefreshed()
        servers = request.servers
        if not servers:
            async with self._sessions() as session:
                servers = await queries.servers_to_refresh(session)
        for server in servers:
            async with self._sessions.begin() as session:
                span = await self.refresh(session, server, request.first, request.last)
            if span is not None:
                (first, last), rows = span
                result.days[server] = f"{first}..{last}"
                result.rows[server] = rows
        return result

    async def refresh(
        self, session: AsyncSession, server: str, first: date | None, last: date | None
    ) -> tuple[tuple[date, date], int] | None:
        """One server's days in the caller's transaction; None when there was nothing to do."""
        if first is not None:
            days = (first, last or first)
            rows = await queries.replace_days(session, server, *days)
            return days, rows
        through, newest = await queries.refresh_window(session, server)
        if through is None or newest is None:
            return None
        start = _day(through)
        end = min(_day(newest), start + timedelta(days=queries.MAX_DAYS_PER_RUN - 1))
        rows = await queries.replace_days(session, server, start, end)
        reached = (
            newest
            if end == _day(newest)
            else datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        )
        await queries.record_refresh(session, server, reached, self._now(), (end - start).days + 1)
        return (start, end), rows
