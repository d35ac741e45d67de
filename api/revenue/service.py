"""Dealer-plugin revenue (docs/revenue.md): the mirrored rules (staff-maintained, audited) and
the views over the per-deal figures `db.queries.revenue` computes from the ingested deals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.policy import Policy, Principal
from api.revenue.schemas import (
    DealerRulesSet,
    DealerRuleView,
    DealRevenueView,
    FloatingPnl,
    MirrorReport,
    MirrorRow,
    RevenueSummary,
    RevenueTotal,
    SlippagePatterns,
    SlippageRow,
)
from db import audit
from db.queries import revenue as queries
from domain.errors import InvalidInput
from domain.revenue import DealerRule, Observed, check_mirror, floating_b_book
from domain.roles import StaffRole

# The dealing desk and risk keep the mirror; finance and the auditor read the figures too.
REVENUE_DESK = frozenset({StaffRole.ADMIN, StaffRole.DEALER, StaffRole.RISK})
REVENUE_READERS = REVENUE_DESK | {StaffRole.FINANCE, StaffRole.AUDITOR}
RevenueDesk = Annotated[Principal, Depends(Policy("revenue desk", staff=REVENUE_DESK))]
RevenueReader = Annotated[Principal, Depends(Policy("revenue readers", staff=REVENUE_READERS))]

EARLIEST, LATEST = date(1970, 1, 1), date(9999, 12, 30)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def window(first: date | None, last: date | None) -> tuple[datetime, datetime]:
    """The UTC days `first`..`last` (included) as [since, until): `last` defaults to today,
    `first` to `last`; days outside 1970-01-01..9999-12-30 are read as the nearest; `first`
    after `last` is an empty range."""

    def clamp(day: date) -> date:
        return min(max(day, EARLIEST), LATEST)

    end = clamp(last or datetime.now(UTC).date())
    start = clamp(first or end)
    return _midnight(start), _midnight(end) + timedelta(days=1)


def _snapshot(rules: list[Any]) -> dict[str, Any]:
    return {
        "rules": [
            {
                "group_mask": r.group_mask,
                "symbol_mask": r.symbol_mask,
                "markup_points": r.markup_points,
                "a_book": r.a_book,
                "gateway": r.gateway,
            }
            for r in rules
        ]
    }


async def rules(session: AsyncSession, server: str) -> list[DealerRuleView]:
    return [DealerRuleView.of(r) for r in await queries.dealer_rules(session, server)]


async def set_rules(
    session: AsyncSession, server: str, request: DealerRulesSet, by: Principal
) -> list[DealerRuleView]:
    """Replace the server's mirrored rules, audited with the list before and after."""
    before = await queries.dealer_rules(session, server)
    snapshot = _snapshot(before)
    rows = await queries.replace_dealer_rules(
        session,
        server,
        [
            DealerRule(r.group_mask, r.symbol_mask, r.markup_points, r.a_book, r.gateway)
            for r in request.rules
        ],
        str(by.id),
        datetime.now(UTC),
    )
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="revenue.dealer_rules_set",
            entity_type="dealer_rules",
            entity_id=server,
            before=snapshot,
            after=_snapshot(rows),
            reason=request.reason,
        ),
    )
    return [DealerRuleView.of(r) for r in rows]


async def deals(
    session: AsyncSession,
    server: str,
    first: date | None,
    last: date | None,
    login: int | None,
    limit: int,
) -> list[DealRevenueView]:
    start, end = window(first, last)
    rows = await queries.deals(session, server, start, end, login=login, limit=limit)
    return [DealRevenueView.of(r) for r in rows]


async def summary(
    session: AsyncSession, server: str, first: date | None, last: date | None
) -> RevenueSummary:
    start, end = window(first, last)
    totals = [RevenueTotal(**dict(r)) for r in await queries.totals(session, server, start, end)]
    floating = floating_b_book(
        (r["profit"], r["currency"]) for r in await queries.floating_b_book(session, server)
    )
    through = await session.scalar(
        text("SELECT through FROM deal_revenue_state WHERE server = :s"), {"s": server}
    )
    return RevenueSummary(
        server=server,
        since=start,
        until=end,
        totals=totals,
        floating_b_book_pnl=[
            FloatingPnl(currency=c, amount=v) for c, v in sorted(floating.items())
        ],
        computed_through=through,
    )


async def slippage(
    session: AsyncSession, server: str, first: date | None, last: date | None
) -> SlippagePatterns:
    start, end = window(first, last)

    async def rows(by: str, column: str) -> list[SlippageRow]:
        found = await queries.slippage(session, server, start, end, by, column)
        return [SlippageRow(**dict(r)) for r in found]

    return SlippagePatterns(
        server=server,
        since=start,
        until=end,
        by_symbol=await rows("symbol", "requested"),
        by_gateway=await rows("gateway", "requested"),
        by_hour=await rows("hour", "requested"),
        lp_by_gateway=await rows("gateway", "gateway"),
        lp_by_symbol=await rows("symbol", "gateway"),
        lp_by_hour=await rows("hour", "gateway"),
    )


async def mirror(
    session: AsyncSession,
    server: str,
    first: date | None,
    last: date | None,
    tolerance: Decimal,
) -> MirrorReport:
    if not tolerance.is_finite() or tolerance < 0:
        raise InvalidInput("tolerance_points is a number of points, 0 or more")
    start, end = window(first, last)
    mirrored = [queries.as_rule(r) for r in await queries.dealer_rules(session, server)]
    observed = [
        Observed(r["group_name"], r["symbol"], r["gateway"], r["low_points"], r["high_points"],
                 r["deals"])
        for r in await queries.observed_markups(session, server, start, end)
    ]  # fmt: skip
    checks = check_mirror(mirrored, observed, tolerance)
    return MirrorReport(
        server=server,
        since=start,
        until=end,
        tolerance_points=tolerance,
        rules=len(mirrored),
        rows=[
            MirrorRow(
                group=c.group,
                symbol=c.symbol,
                deals=c.deals,
                mirrored_markup_points=c.mirrored_markup_points,
                observed_min_points=c.observed_min_points,
                observed_max_points=c.observed_max_points,
                mirrored_gateway=c.mirrored_gateway,
                observed_gateways=list(c.observed_gateways),
                markup_differs=c.markup_differs,
                routing_differs=c.routing_differs,
                flagged=c.flagged,
            )
            for c in checks
        ],
    )
