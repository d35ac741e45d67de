"""Client profiles and dealer book decisions (issue 15): the deals a profiling run reads, the
profiles it writes, and what the API and the `BookMove` steps read and write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AccountBook, BookDecision, ClientProfileRow, DealRow, Mt5Account

TRADE_ACTIONS = (0, 1)  # buy, sell: balance and other deals say nothing of the flow
MOVING = "moving"


async def trade_deals_between(
    session: AsyncSession, server: str, since: datetime, until: datetime
) -> Sequence[DealRow]:
    """`server`'s buy and sell deals with since <= time <= until (UTC), oldest first."""
    result = await session.scalars(
        select(DealRow)
        .where(
            DealRow.server == server,
            DealRow.time >= since,
            DealRow.time <= until,
            DealRow.action.in_(TRADE_ACTIONS),
        )
        .order_by(DealRow.time_msc, DealRow.deal)
    )
    return result.all()


async def accounts_on(session: AsyncSession, server: str) -> dict[int, tuple[str, str]]:
    """BrokerFlow's accounts on `server`: login -> (owner client id, status)."""
    rows = await session.execute(
        select(Mt5Account.login, Mt5Account.client_id, Mt5Account.status).where(
            Mt5Account.server == server
        )
    )
    return {login: (str(client), status) for login, client, status in rows.all()}


async def store_profiles(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace each account's profile (one row per server and login)."""
    if not rows:
        return
    statement = insert(ClientProfileRow).values(list(rows))
    replaced = {
        column: statement.excluded[column]
        for column in rows[0]
        if column not in ("server", "login")
    }
    await session.execute(
        statement.on_conflict_do_update(index_elements=["server", "login"], set_=replaced)
    )


async def profiles_page(
    session: AsyncSession,
    *,
    server: str | None,
    profile: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[ClientProfileRow], int]:
    """Profiles, the latest computed first (then by server and login), and how many match."""
    query = select(ClientProfileRow)
    if server is not None:
        query = query.where(ClientProfileRow.server == server)
    if profile is not None:
        query = query.where(ClientProfileRow.profile == profile)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(
            ClientProfileRow.computed_at.desc(), ClientProfileRow.server, ClientProfileRow.login
        )
        .limit(limit)
        .offset(offset)
    )
    return rows.all(), total


async def profile_of(
    session: AsyncSession, server: str, login: int, *, lock: bool = False
) -> ClientProfileRow | None:
    query = select(ClientProfileRow).where(
        ClientProfileRow.server == server, ClientProfileRow.login == login
    )
    found: ClientProfileRow | None = await session.scalar(
        query.with_for_update() if lock else query
    )
    return found


async def decisions_of(session: AsyncSession, server: str, login: int) -> Sequence[BookDecision]:
    """An account's book decisions, the newest first."""
    result = await session.scalars(
        select(BookDecision)
        .where(BookDecision.server == server, BookDecision.login == login)
        .order_by(BookDecision.created_at.desc(), BookDecision.id)
    )
    return result.all()


async def latest_decisions(
    session: AsyncSession, accounts: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], BookDecision]:
    """The newest decision of each of `accounts` that has one."""
    if not accounts:
        return {}
    logins = {login for _, login in accounts}
    result = await session.scalars(
        select(BookDecision)
        .where(BookDecision.login.in_(logins))
        .order_by(BookDecision.created_at.desc())
    )
    wanted = set(accounts)
    newest: dict[tuple[str, int], BookDecision] = {}
    for row in result.all():
        key = (row.server, row.login)
        if key in wanted and key not in newest:
            newest[key] = row
    return newest


async def moving_decision_of(session: AsyncSession, server: str, login: int) -> BookDecision | None:
    found: BookDecision | None = await session.scalar(
        select(BookDecision).where(
            BookDecision.server == server,
            BookDecision.login == login,
            BookDecision.status == MOVING,
        )
    )
    return found


async def decision_by_id(
    session: AsyncSession, decision_id: uuid.UUID, *, lock: bool = False
) -> BookDecision | None:
    return await session.get(BookDecision, decision_id, with_for_update=lock)


async def set_account_book(
    session: AsyncSession,
    server: str,
    login: int,
    *,
    book: str,
    a_share: Decimal | None,
    set_by: str,
    at: datetime,
) -> dict[str, Any]:
    """Write the account's book in the risk desk's `account_books` (the risk desk's queries
    have no writer: its API sets books in its own service). Answers the book before."""
    row: AccountBook | None = await session.scalar(
        select(AccountBook)
        .where(AccountBook.server == server, AccountBook.login == login)
        .with_for_update()
    )
    before: dict[str, Any] = (
        {"book": "B", "a_share": None, "default": True}
        if row is None
        else {"book": row.book, "a_share": None if row.a_share is None else f"{row.a_share:f}"}
    )
    if row is None:
        row = AccountBook(server=server, login=login)
        session.add(row)
    row.book = book
    row.a_share = a_share
    row.set_by = set_by
    row.updated_at = at
    return before
