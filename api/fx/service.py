"""Stored FX rates: finance sets them, the FX feed stores MT5's quotes (`activities/fx_feed.py`),
and transfers between currencies convert at the newest one of the pair, whatever its source."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.fx.schemas import FxRateCreate
from api.policy import Principal
from api.schemas import require_supported
from db import audit
from db.models import FxRateRow
from domain.errors import InvalidInput

# The source of a rate finance entered (the FX feed's are `mt5:<server>:<symbol>`).
STAFF = "staff"


async def set_rate(session: AsyncSession, request: FxRateCreate, by: Principal) -> FxRateRow:
    require_supported(request.base, "base")
    require_supported(request.quote, "quote")
    if request.base == request.quote:
        raise InvalidInput("base and quote must be different currencies", field="quote")
    if request.bid <= 0:
        raise InvalidInput("bid must be above zero", field="bid")
    if request.ask < request.bid:
        raise InvalidInput("ask must not be below bid", field="ask")
    previous = await latest_rate(session, request.base, request.quote)
    row = FxRateRow(
        base=request.base,
        quote=request.quote,
        bid=request.bid,
        ask=request.ask,
        as_of=datetime.now(UTC),
        source=STAFF,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="fx_rate.set",
            entity_type="fx_rate",
            entity_id=str(row.id),
            before=_snapshot(previous) if previous else None,
            after=_snapshot(row),
        ),
    )
    return row


async def latest_rates(session: AsyncSession) -> list[FxRateRow]:
    """The newest rate of every pair (as quoted: EUR/USD and USD/EUR are two), whatever its
    source."""
    rows = await session.scalars(
        select(FxRateRow)
        .distinct(FxRateRow.base, FxRateRow.quote)
        .order_by(FxRateRow.base, FxRateRow.quote, FxRateRow.as_of.desc(), FxRateRow.id.desc())
    )
    return list(rows)


async def latest_rate(session: AsyncSession, base: str, quote: str) -> FxRateRow | None:
    row: FxRateRow | None = await session.scalar(
        select(FxRateRow)
        .where(FxRateRow.base == base, FxRateRow.quote == quote)
        .order_by(FxRateRow.as_of.desc(), FxRateRow.id.desc())
        .limit(1)
    )
    return row


async def require_rate(session: AsyncSession, sell: str, buy: str) -> None:
    """A conversion needs a stored rate for the pair, quoted either way round."""
    found = await session.scalar(
        select(FxRateRow.id)
        .where(
            or_(
                (FxRateRow.base == sell) & (FxRateRow.quote == buy),
                (FxRateRow.base == buy) & (FxRateRow.quote == sell),
            )
        )
        .limit(1)
    )
    if found is None:
        raise InvalidInput(f"no FX rate for {sell}/{buy}; finance has not quoted this pair")


def _snapshot(row: FxRateRow) -> dict[str, str]:
    return {
        "base": row.base,
        "quote": row.quote,
        "bid": format(row.bid, "f"),
        "ask": format(row.ask, "f"),
        "as_of": row.as_of.isoformat(),
        "source": row.source,
    }
