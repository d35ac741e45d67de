# ruff: noqa: S608  (SQL here is built from this module's constants, never from input)
"""Dealer-plugin revenue (docs/revenue.md): the mirrored dealer rules, the per-deal revenue
figures computed from the ingested deals, and the questions the revenue API asks of them.

`refresh_deal_revenue` is the incremental computation: the trade deals after a server's cursor
(UTC time, ticket), at most `limit` a run, plus the `OVERLAP` before the cursor read again (a
deal committed late, a history order ingested after its deal), each computed by
`domain.revenue.deal_revenue` and upserted by (server, deal). `recompute_deal_revenue` does
the same for a past range (a dealer's correction older than the overlap).

Like every query module, it works in the caller's transaction and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models.revenue import DealerRuleRow, DealRevenueRow
from domain.revenue import UNKNOWN_CURRENCY, DealerRule, DealFacts, DealRevenue, deal_revenue

OVERLAP = timedelta(seconds=30)
BATCH = 20_000
EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def _deals_sql(where: str, limit: bool) -> str:
    # MT5 gives PriceGateway 0 when no LP filled the deal (the B-book): no price, not a price 0.
    return f"""
        SELECT d.deal, d.time, d.login, d.symbol, d.action, d.entry, d.digits, d.contract_size,
               d.volume, d.volume_ext, d.price, d.market_bid, d.market_ask, d.gateway,
               NULLIF(d.price_gateway, 0) AS price_gateway, d.profit, d.commission, d.fee,
               d.rate_profit,
               d.order_ticket, d.position_id, o.type AS order_type, o.price_order,
               a.currency, a."group" AS group_name
        FROM deals d
        LEFT JOIN history_orders o ON o.server = d.server AND o.order_ticket = d.order_ticket
        LEFT JOIN mt5_accounts a ON a.server = d.server AND a.login = d.login
        WHERE d.server = :server AND d.action IN (0, 1) AND {where}
        ORDER BY d.time, d.deal
        {"LIMIT :limit" if limit else ""}
    """


async def _rows(session: AsyncSession, sql: str, params: dict[str, Any]) -> Sequence[RowMapping]:
    return (await session.execute(text(sql), params)).mappings().all()


def facts_of(row: RowMapping) -> DealFacts:
    return DealFacts(
        deal=row["deal"],
        login=row["login"],
        symbol=row["symbol"],
        action=row["action"],
        entry=row["entry"],
        digits=row["digits"],
        contract_size=row["contract_size"],
        volume=row["volume"],
        volume_ext=row["volume_ext"],
        price=row["price"],
        currency=row["currency"] or UNKNOWN_CURRENCY,
        market_bid=row["market_bid"],
        market_ask=row["market_ask"],
        gateway=row["gateway"],
        price_gateway=row["price_gateway"],
        price_requested=row["price_order"],
        profit=row["profit"],
        commission=row["commission"],
        fee=row["fee"],
        rate_profit=row["rate_profit"],
        order_type=row["order_type"],
    )


def _stored(server: str, row: RowMapping, r: DealRevenue, at: datetime) -> dict[str, Any]:
    def amount(value: Any) -> Decimal | None:
        return None if value is None else value.amount

    return {
        "server": server,
        "deal": row["deal"],
        "time": row["time"],
        "login": row["login"],
        "symbol": row["symbol"],
        "group_name": row["group_name"],
        "currency": row["currency"] or UNKNOWN_CURRENCY,
        "action": row["action"],
        "entry": row["entry"],
        "order_ticket": row["order_ticket"],
        "order_type": row["order_type"],
        "position_id": row["position_id"],
        "gateway": row["gateway"],
        "a_book": r.a_book,
        "comparable": r.comparable,
        "lots": r.lots,
        "spread_points": r.spread_points,
        "markup_points": r.markup_points,
        "slippage_points": r.slippage_points,
        "gateway_slippage_points": r.gateway_slippage_points,
        "spread_captured": amount(r.spread_captured),
        "markup": amount(r.markup),
        "commission_revenue": r.commission_revenue.amount,
        "fee_revenue": r.fee_revenue.amount,
        "b_book_pnl": r.b_book_pnl.amount,
        "a_book_cost": amount(r.a_book_cost),
        "computed_at": at,
    }


async def _compute(
    session: AsyncSession, server: str, rows: Sequence[RowMapping], at: datetime
) -> int:
    if not rows:
        return 0
    values = [_stored(server, row, deal_revenue(facts_of(row)), at) for row in rows]
    kept = {"server", "deal"}
    columns = [c.name for c in DealRevenueRow.__table__.columns if c.name not in kept]
    for start in range(0, len(values), 2_000):  # bound the statement's parameters
        statement = insert(DealRevenueRow).values(values[start : start + 2_000])
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["server", "deal"],
                set_={name: statement.excluded[name] for name in columns},
            )
        )
    return len(values)


async def refresh_deal_revenue(
    session: AsyncSession, server: str, at: datetime, *, limit: int = BATCH
) -> tuple[int, bool]:
    """Compute `server`'s next deals (see the module's docstring) and move its cursor; answers
    (deals computed, caught up: the forward read was not full)."""
    state = (
        await session.execute(
            text(
                "SELECT through, through_deal FROM deal_revenue_state WHERE server = :s FOR UPDATE"
            ),
            {"s": server},
        )
    ).first()
    through, through_deal = (state[0], state[1]) if state and state[0] else (EPOCH, 0)
    params = {"server": server, "t": through, "d": through_deal}
    again: Sequence[RowMapping] = []
    if state and state[0]:
        again = await _rows(
            session,
            _deals_sql("d.time >= :since AND (d.time, d.deal) <= (:t, :d)", False),
            {**params, "since": through - OVERLAP},
        )
    forward = await _rows(
        session,
        _deals_sql("(d.time, d.deal) > (:t, :d)", True),
        {**params, "limit": limit},
    )
    computed = await _compute(session, server, [*again, *forward], at)
    if forward:
        through, through_deal = forward[-1]["time"], forward[-1]["deal"]
    await session.execute(
        text(
            """
            INSERT INTO deal_revenue_state (server, through, through_deal, computed_at, deals)
            VALUES (:s, :t, :d, :at, :n)
            ON CONFLICT (server) DO UPDATE SET through = excluded.through,
                through_deal = excluded.through_deal, computed_at = excluded.computed_at,
                deals = deal_revenue_state.deals + :n
            """
        ),
        {
            "s": server,
            "t": through if forward or state else None,
            "d": through_deal,
            "at": at,
            "n": len(forward),
        },
    )
    return computed, len(forward) < limit


async def recompute_deal_revenue(
    session: AsyncSession, server: str, since: datetime, until: datetime, at: datetime
) -> int:
    """Compute again `server`'s deals with `since <= time < until` (the cursor stays)."""
    rows = await _rows(
        session,
        _deals_sql("d.time >= :since AND d.time < :until", False),
        {"server": server, "since": since, "until": until},
    )
    return await _compute(session, server, rows, at)


async def servers_to_compute(session: AsyncSession) -> list[str]:
    """Every server the ingestion follows."""
    result = await session.scalars(text("SELECT server FROM ingestion_state ORDER BY server"))
    return list(result.all())


async def revenue_servers(session: AsyncSession) -> list[str]:
    """The servers whose figures can be read: those followed and those computed already."""
    result = await session.scalars(
        text(
            "SELECT server FROM ingestion_state UNION SELECT server FROM deal_revenue_state"
            " ORDER BY server"
        )
    )
    return list(result.all())


# --- the mirrored dealer rules ----------------------------------------------------------------


async def dealer_rules(session: AsyncSession, server: str) -> list[DealerRuleRow]:
    result = await session.scalars(
        select(DealerRuleRow).where(DealerRuleRow.server == server).order_by(DealerRuleRow.position)
    )
    return list(result.all())


def as_rule(row: DealerRuleRow) -> DealerRule:
    return DealerRule(row.group_mask, row.symbol_mask, row.markup_points, row.a_book, row.gateway)


async def replace_dealer_rules(
    session: AsyncSession, server: str, rules: Sequence[DealerRule], by: str, at: datetime
) -> list[DealerRuleRow]:
    """`server`'s rules become `rules`, in that order (the caller audits)."""
    for old in await dealer_rules(session, server):
        await session.delete(old)
    await session.flush()
    rows = [
        DealerRuleRow(
            server=server,
            position=index,
            group_mask=rule.group_mask,
            symbol_mask=rule.symbol_mask,
            markup_points=rule.markup_points,
            a_book=rule.a_book,
            gateway=rule.gateway,
            set_by=by,
            updated_at=at,
        )
        for index, rule in enumerate(rules)
    ]
    session.add_all(rows)
    await session.flush()
    return rows


# --- what the API reads -----------------------------------------------------------------------


_RANGE = "r.server = :server AND r.time >= :since AND r.time < :until"


async def deals(
    session: AsyncSession,
    server: str,
    since: datetime,
    until: datetime,
    *,
    login: int | None = None,
    limit: int = 500,
) -> Sequence[RowMapping]:
    """The computed deals of the range, newest first."""
    return await _rows(
        session,
        f"""
        SELECT r.* FROM deal_revenue r
        WHERE {_RANGE} {"AND r.login = :login" if login is not None else ""}
        ORDER BY r.time DESC, r.deal DESC LIMIT :limit
        """,
        {"server": server, "since": since, "until": until, "login": login, "limit": limit},
    )


async def totals(
    session: AsyncSession, server: str, since: datetime, until: datetime
) -> Sequence[RowMapping]:
    """Per currency and book (A/B): deals, lots and the amounts summed."""
    return await _rows(
        session,
        f"""
        SELECT r.currency, CASE WHEN r.a_book THEN 'A' ELSE 'B' END AS book,
               count(*) AS deals, sum(r.lots) AS lots,
               coalesce(sum(r.spread_captured), 0) AS spread_captured,
               coalesce(sum(r.markup), 0) AS markup,
               sum(r.commission_revenue) AS commission_revenue,
               sum(r.fee_revenue) AS fee_revenue, sum(r.b_book_pnl) AS b_book_pnl,
               coalesce(sum(r.a_book_cost), 0) AS a_book_cost,
               count(*) FILTER (WHERE r.markup IS NULL) AS without_market
        FROM deal_revenue r WHERE {_RANGE}
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        {"server": server, "since": since, "until": until},
    )


async def floating_b_book(session: AsyncSession, server: str) -> Sequence[RowMapping]:
    """Open positions of the last snapshot kept in-house (no deal of the position went to an
    LP gateway): their floating profit and the account's currency."""
    return await _rows(
        session,
        """
        SELECT p.profit, coalesce(a.currency, 'XXX') AS currency
        FROM positions p
        LEFT JOIN mt5_accounts a ON a.server = p.server AND a.login = p.login
        WHERE p.server = :server AND NOT EXISTS (
            SELECT 1 FROM deal_revenue r
            WHERE r.server = p.server AND r.position_id = p.position AND r.a_book
        )
        """,
        {"server": server},
    )


_SLIPPAGE_KEYS = {
    "symbol": "r.symbol",
    "gateway": "CASE WHEN r.gateway = '' THEN '(B-book)' ELSE r.gateway END",
    "hour": "lpad(extract(hour FROM r.time AT TIME ZONE 'UTC')::int::text, 2, '0')",
}


async def slippage(
    session: AsyncSession, server: str, since: datetime, until: datetime, by: str, column: str
) -> Sequence[RowMapping]:
    """`column` (slippage_points or gateway_slippage_points) per `by` (symbol, gateway, hour
    of the UTC day): deals, mean, worst, best and how many each way."""
    key = _SLIPPAGE_KEYS[by]
    value = {"requested": "r.slippage_points", "gateway": "r.gateway_slippage_points"}[column]
    return await _rows(
        session,
        f"""
        SELECT {key} AS key, count(*) AS deals, avg({value}) AS mean_points,
               max({value}) AS worst_points, min({value}) AS best_points,
               count(*) FILTER (WHERE {value} > 0) AS worse,
               count(*) FILTER (WHERE {value} < 0) AS better,
               count(*) FILTER (WHERE {value} = 0) AS exact
        FROM deal_revenue r WHERE {_RANGE} AND {value} IS NOT NULL
        GROUP BY 1 ORDER BY 1
        """,
        {"server": server, "since": since, "until": until},
    )


async def observed_markups(
    session: AsyncSession, server: str, since: datetime, until: datetime
) -> Sequence[RowMapping]:
    """Comparable deals (market fills of a known order) of BrokerFlow's logins per group,
    symbol and gateway: how many, their lowest and highest markup."""
    return await _rows(
        session,
        f"""
        SELECT r.group_name, r.symbol, r.gateway, count(*) AS deals,
               min(r.markup_points) AS low_points, max(r.markup_points) AS high_points
        FROM deal_revenue r
        WHERE {_RANGE} AND r.comparable AND r.group_name IS NOT NULL
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        {"server": server, "since": since, "until": until},
    )
