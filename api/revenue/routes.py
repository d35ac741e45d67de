"""The dealer-revenue API (docs/revenue.md): the mirrored dealer-plugin rules, each deal's
revenue figures, totals with the floating B-book P&L, slippage patterns and the mirror check."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep
from api.revenue import service
from api.revenue.schemas import (
    DealerRulesSet,
    DealerRuleView,
    DealRevenueView,
    First,
    Last,
    MirrorReport,
    RevenueSummary,
    ServerName,
    SlippagePatterns,
)
from api.revenue.service import RevenueDesk, RevenueReader

router = APIRouter(prefix="/v1/revenue/servers/{server}", tags=["revenue"])


@router.get("/dealer-rules")
async def list_dealer_rules(
    server: ServerName, _: RevenueReader, session: SessionDep
) -> list[DealerRuleView]:
    """The dealer plugin's rules as BrokerFlow mirrors them, in the plugin's order."""
    return await service.rules(session, server)


@router.put("/dealer-rules")
async def set_dealer_rules(
    server: ServerName, body: DealerRulesSet, staff: RevenueDesk, session: SessionDep
) -> list[DealerRuleView]:
    """Replace the mirrored rules (MT5's Web API does not expose the plugin's configuration:
    staff copy it here). Audited with the list before and after."""
    return await service.set_rules(session, server, body, staff)


@router.get("/deals")
async def list_deal_revenue(
    server: ServerName,
    _: RevenueReader,
    session: SessionDep,
    first: First = None,
    last: Last = None,
    login: Annotated[int | None, Query(ge=1, le=9_223_372_036_854_775_807)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[DealRevenueView]:
    """Each computed trade deal's figures of the UTC days, newest first (default: today)."""
    return await service.deals(session, server, first, last, login, limit)


@router.get("/summary")
async def revenue_summary(
    server: ServerName, _: RevenueReader, session: SessionDep, first: First = None,
    last: Last = None,
) -> RevenueSummary:  # fmt: skip
    """Totals per currency and book, and the house's floating B-book P&L."""
    return await service.summary(session, server, first, last)


@router.get("/slippage")
async def slippage_patterns(
    server: ServerName, _: RevenueReader, session: SessionDep, first: First = None,
    last: Last = None,
) -> SlippagePatterns:  # fmt: skip
    """Slippage per symbol, LP gateway and UTC hour."""
    return await service.slippage(session, server, first, last)


@router.get("/mirror")
async def mirror_check(
    server: ServerName,
    _: RevenueReader,
    session: SessionDep,
    first: First = None,
    last: Last = None,
    # Whole points, as the dealer plugin's markup is set (a decimal in a query string would be
    # documented as any string).
    tolerance_points: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MirrorReport:
    """The mirrored rules against the markup and routing the deals showed; a group and symbol
    whose deals differ is flagged."""
    return await service.mirror(session, server, first, last, Decimal(tolerance_points))
