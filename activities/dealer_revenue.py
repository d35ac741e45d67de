"""The dealer-revenue step: per server, the trade deals after its cursor computed by
`domain.revenue` and stored (`db.queries.revenue.refresh_deal_revenue`), batch after batch in
one transaction each, at most `MAX_BATCHES_PER_RUN` a run (a first run over a long history
catches up over several); or a given range computed again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.dealer_revenue import (
    DealerRevenueComputed,
    DealerRevenueInput,
    refresh_dealer_revenue,
)
from contracts.steps import implements
from db.queries import revenue as queries

MAX_BATCHES_PER_RUN = 10


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DealerRevenueSteps:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._sessions = sessions
        self._now = now

    @implements(refresh_dealer_revenue)
    async def refresh_dealer_revenue(self, request: DealerRevenueInput) -> DealerRevenueComputed:
        result = DealerRevenueComputed()
        servers = request.servers
        if not servers:
            async with self._sessions() as session:
                servers = await queries.servers_to_compute(session)
        for server in servers:
            if request.since is not None:
                async with self._sessions.begin() as session:
                    result.deals[server] = await queries.recompute_deal_revenue(
                        session, server, request.since, request.until or self._now(), self._now()
                    )
                result.caught_up[server] = True
                continue
            total, caught_up = 0, False
            for _ in range(MAX_BATCHES_PER_RUN):
                async with self._sessions.begin() as session:
                    computed, caught_up = await queries.refresh_deal_revenue(
                        session, server, self._now()
                    )
                total += computed
                if caught_up:
                    break
            result.deals[server] = total
            result.caught_up[server] = caught_up
        return result
