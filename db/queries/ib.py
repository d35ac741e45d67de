"""The IB aggregate's questions: the tree, plans in force, attribution, the deals a period's
commissions are computed from, the commission ledger and payouts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Select, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import FxRateRow, Mt5Account
from db.models.ib import (
    IbAttribution,
    IbCommission,
    IbPayout,
    IbPlanVersion,
    IntroducingBroker,
)
from db.models.trading import DealRow
from domain.errors import NotFound

BALANCE = 2  # MT5 deal action: a balance operation (a deposit when Profit > 0)


@dataclass(frozen=True)
class TreeNode:
    id: uuid.UUID
    parent: uuid.UUID | None
    plan: str | None
    name: str
    payout_frequency: str


async def ib_tree(session: AsyncSession) -> dict[uuid.UUID, TreeNode]:
    """Every IB with its parent and plan."""
    rows = await session.execute(
        select(
            IntroducingBroker.id,
            IntroducingBroker.parent_id,
            IntroducingBroker.plan_id,
            IntroducingBroker.name,
            IntroducingBroker.payout_frequency,
        )
    )
    return {r.id: TreeNode(r.id, r.parent_id, r.plan_id, r.name, r.payout_frequency) for r in rows}


def subtree(tree: dict[uuid.UUID, TreeNode], root: uuid.UUID) -> list[uuid.UUID]:
    """`root` and every IB below it, parents before children."""
    children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for node in tree.values():
        children.setdefault(node.parent, []).append(node.id)
    found, queue = [], [root]
    while queue:
        ib = queue.pop(0)
        found.append(ib)
        queue += sorted(children.get(ib, []))
    return found


async def plan_versions(session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
    """plan id → its versions' terms (the `domain.ib` plan version documents)."""
    rows = await session.scalars(select(IbPlanVersion).order_by(IbPlanVersion.effective_from))
    plans: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        plans.setdefault(row.plan_id, []).append(row.terms)
    return plans


async def attributions(
    session: AsyncSession, server: str, *, ib_ids: Iterable[uuid.UUID] | None = None
) -> list[IbAttribution]:
    query = select(IbAttribution).where(IbAttribution.server == server)
    if ib_ids is not None:
        query = query.where(IbAttribution.ib_id.in_(list(ib_ids)))
    return list(
        await session.scalars(query.order_by(IbAttribution.login, IbAttribution.effective_from))
    )


async def attributed_servers(session: AsyncSession) -> list[str]:
    return list(
        await session.scalars(
            select(IbAttribution.server).distinct().order_by(IbAttribution.server)
        )
    )


async def account_terms(
    session: AsyncSession, server: str, logins: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """login → (MT5 group, deposit currency), for the logins BrokerFlow opened."""
    rows = await session.execute(
        select(Mt5Account.login, Mt5Account.group, Mt5Account.currency).where(
            Mt5Account.server == server, Mt5Account.login.in_(logins)
        )
    )
    return {r.login: (r.group, r.currency) for r in rows}


async def mid_rates(session: AsyncSession) -> list[tuple[str, str, Decimal]]:
    """The newest stored quote of every pair at mid, both ways (`domain.ib` derives no inverse)."""
    newest = (
        select(FxRateRow.base, FxRateRow.quote, func.max(FxRateRow.as_of).label("as_of"))
        .group_by(FxRateRow.base, FxRateRow.quote)
        .subquery()
    )
    rows = await session.execute(
        select(FxRateRow.base, FxRateRow.quote, FxRateRow.bid, FxRateRow.ask).join(
            newest,
            and_(
                FxRateRow.base == newest.c.base,
                FxRateRow.quote == newest.c.quote,
                FxRateRow.as_of == newest.c.as_of,
            ),
        )
    )
    found = []
    for base, quote, bid, ask in rows:
        mid = ((bid + ask) / 2).normalize()
        found += [(base, quote, mid), (quote, base, 1 / mid)]
    return found


_DEAL_COLUMNS = (
    "deal login time_server symbol action entry volume volume_closed price position_id"
    " position_by_id commission profit contract_size digits market_bid market_ask"
).split()


def _web_api(row: Any) -> dict[str, Any]:
    return {
        "Deal": row.deal,
        "Login": row.login,
        "Time": row.time_server,
        "Symbol": row.symbol,
        "Action": row.action,
        "Entry": row.entry,
        "Volume": row.volume,
        "VolumeClosed": row.volume_closed,
        "Price": row.price,
        "PositionID": row.position_id,
        "PositionByID": row.position_by_id,
        "Commission": row.commission,
        "Profit": row.profit,
        # Web API deal fields too, that the calculation does not read: the symbol's terms.
        "ContractSize": row.contract_size,
        "Digits": row.digits,
        # The raw quote the deal was filled against: a spread rule prices the captured spread.
        "MarketBid": row.market_bid,
        "MarketAsk": row.market_ask,
    }


def _deals_query(server: str, logins: Sequence[int], history_from: int, end: int) -> Select[Any]:
    """The deals of `logins` from `history_from` to `end`, plus each login's first deposit
    whenever it was (the deals at its time). `login = ANY(array)`: one parameter however many
    logins, which PostgreSQL matches by hashing."""
    wanted = DealRow.login == func.any(bindparam("logins", list(logins), type_=ARRAY(BigInteger)))
    first_deposit = (
        select(DealRow.login, func.min(DealRow.time_server).label("at"))
        .where(DealRow.server == server, wanted, DealRow.action == BALANCE, DealRow.profit > 0)
        .group_by(DealRow.login)
        .subquery()
    )
    return (
        select(*(getattr(DealRow, column) for column in _DEAL_COLUMNS))
        .outerjoin(
            first_deposit,
            and_(first_deposit.c.login == DealRow.login, first_deposit.c.at == DealRow.time_server),
        )
        .where(
            DealRow.server == server,
            wanted,
            DealRow.time_server < end,
            or_(DealRow.time_server >= history_from, first_deposit.c.at.is_not(None)),
        )
    )


async def deals_for_commissions(
    session: AsyncSession, server: str, logins: Sequence[int], history_from: int, end: int
) -> list[dict[str, Any]]:
    """The deals of `logins` from `history_from` to `end` (server-clock seconds, end exclusive),
    plus each login's first deposit whenever it was, in MT5 Web API field names as `domain.ib`
    reads them. The one place that knows the deals table (`db.models.trading`)."""
    rows = await session.execute(
        _deals_query(server, logins, history_from, end).order_by(DealRow.time_server, DealRow.deal)
    )
    return [_web_api(row) for row in rows]


async def deals_for_accrual(
    session: AsyncSession,
    server: str,
    logins: Sequence[int],
    history_from: int,
    end: int,
    *,
    page: int = 20_000,
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The same deals as `deals_for_commissions`, for all of a server's logins at once, streamed
    login after login (`ORDER BY login, time`) in pages of about `page` deals, each deal a tuple
    of the Web API fields in `ACCRUAL_DEAL_FIELDS` order. The accrual reads every attributed
    login's deals: one pass over the deals table (which has no index by login) instead of one
    per batch of logins."""
    # Read through the driver's own server-side cursor: its rows are the tuples wanted, as
    # the ORM would convert them (ints, str, Decimals), without a Row object each.
    query = _deals_query(server, logins, history_from, end).order_by(
        DealRow.login, DealRow.time_server, DealRow.deal
    )
    connection = await session.connection()
    compiled = query.compile(dialect=connection.dialect)
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with driver.cursor(name="ib_accrual_deals") as cursor:
        await cursor.execute(str(compiled), compiled.params)
        while rows := await cursor.fetchmany(page):
            yield rows


# `deals_for_accrual`'s tuples: Web API field names of `_DEAL_COLUMNS`, in its order.
ACCRUAL_DEAL_FIELDS = (
    "Deal Login Time Symbol Action Entry Volume VolumeClosed Price PositionID PositionByID"
    " Commission Profit ContractSize Digits MarketBid MarketAsk"
).split()


async def accounts_of_logins(
    session: AsyncSession, server: str, logins: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """`account_terms` for any number of logins (one array parameter)."""
    rows = await session.execute(
        select(Mt5Account.login, Mt5Account.group, Mt5Account.currency).where(
            Mt5Account.server == server,
            Mt5Account.login
            == func.any(bindparam("logins", list(logins), type_=ARRAY(BigInteger))),
        )
    )
    return {r.login: (r.group, r.currency) for r in rows}


async def commission_rows(
    session: AsyncSession, server: str, deals: Sequence[int]
) -> list[IbCommission]:
    """Every ledger row of these deals, oldest revision first."""
    return list(
        await session.scalars(
            select(IbCommission)
            .where(IbCommission.server == server, IbCommission.deal.in_(deals))
            .order_by(IbCommission.deal, IbCommission.ib_id, IbCommission.revision)
        )
    )


async def commissions_of_ib(
    session: AsyncSession, ib_id: uuid.UUID, *, limit: int = 500, before_id: int | None = None
) -> list[IbCommission]:
    query = select(IbCommission).where(IbCommission.ib_id == ib_id)
    if before_id is not None:
        query = query.where(IbCommission.id < before_id)
    return list(await session.scalars(query.order_by(IbCommission.id.desc()).limit(limit)))


async def payout_rows(session: AsyncSession, payout_id: uuid.UUID) -> list[IbCommission]:
    return list(
        await session.scalars(
            select(IbCommission)
            .where(IbCommission.payout_id == payout_id)
            .order_by(IbCommission.deal_time, IbCommission.deal, IbCommission.revision)
        )
    )


async def payout_by_id(
    session: AsyncSession, payout_id: uuid.UUID, *, lock: bool = False
) -> IbPayout | None:
    return await session.get(IbPayout, payout_id, with_for_update=lock)


async def payout_or_not_found(
    session: AsyncSession, payout_id: uuid.UUID, *, lock: bool = False
) -> IbPayout:
    payout = await payout_by_id(session, payout_id, lock=lock)
    if payout is None:
        raise NotFound(f"no IB payout {payout_id}")
    return payout


async def release_rows(session: AsyncSession, payout_id: uuid.UUID) -> None:
    """The payout's commission rows back to the next cycle (they keep their amounts)."""
    await session.execute(
        update(IbCommission).where(IbCommission.payout_id == payout_id).values(payout_id=None)
    )


async def payouts_newest_first(
    session: AsyncSession,
    *,
    status: str | None = None,
    ib_id: uuid.UUID | None = None,
    limit: int = 200,
) -> list[IbPayout]:
    query = select(IbPayout)
    if status is not None:
        query = query.where(IbPayout.status == status)
    if ib_id is not None:
        query = query.where(IbPayout.ib_id == ib_id)
    return list(
        await session.scalars(
            query.order_by(IbPayout.period_end.desc(), IbPayout.created_at.desc()).limit(limit)
        )
    )
