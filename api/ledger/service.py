"""The books as finance reads them: accounts with balances, and the entries touching one."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.ledger.schemas import (
    JournalEntryPage,
    JournalEntryView,
    LedgerAccountPage,
    LedgerAccountView,
    PostingView,
)
from api.schemas import decimal_text
from db.models import JournalEntryRow, LedgerAccount, PostingRow
from domain.errors import NotFound


async def accounts(
    session: AsyncSession,
    *,
    kind: str | None,
    currency: str | None,
    code_prefix: str | None,
    limit: int,
    offset: int,
) -> LedgerAccountPage:
    query = (
        select(LedgerAccount, func.coalesce(func.sum(PostingRow.amount_minor), 0))
        .outerjoin(PostingRow, PostingRow.account_id == LedgerAccount.id)
        .group_by(LedgerAccount.id)
        .order_by(LedgerAccount.code)
    )
    if kind is not None:
        query = query.where(LedgerAccount.kind == kind)
    if currency is not None:
        query = query.where(LedgerAccount.currency == currency)
    if code_prefix is not None:
        query = query.where(LedgerAccount.code.startswith(code_prefix, autoescape=True))
    rows = await session.execute(query.limit(limit).offset(offset))
    return LedgerAccountPage(
        items=[_account(account, int(total)) for account, total in rows],
        limit=limit,
        offset=offset,
    )


async def entries(session: AsyncSession, code: str, limit: int, offset: int) -> JournalEntryPage:
    account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if account is None:
        raise NotFound(f"no ledger account {code!r}")
    total = await session.scalar(
        select(func.coalesce(func.sum(PostingRow.amount_minor), 0)).where(
            PostingRow.account_id == account.id
        )
    )
    touching = (
        select(PostingRow.entry_id, func.sum(PostingRow.amount_minor).label("on_account"))
        .where(PostingRow.account_id == account.id)
        .group_by(PostingRow.entry_id)
        .subquery()
    )
    page = list(
        await session.execute(
            select(JournalEntryRow, touching.c.on_account)
            .join(touching, touching.c.entry_id == JournalEntryRow.id)
            .order_by(JournalEntryRow.booked_at.desc(), JournalEntryRow.id)
            .limit(limit)
            .offset(offset)
        )
    )
    postings = await _postings(session, [entry.id for entry, _ in page])
    return JournalEntryPage(
        account=_account(account, int(total or 0)),
        items=[
            JournalEntryView(
                id=entry.id,
                idempotency_key=entry.idempotency_key,
                description=entry.description,
                reverses_id=entry.reverses_id,
                booked_at=entry.booked_at,
                amount_on_account=decimal_text(int(on_account), account.currency),
                postings=postings[entry.id],
            )
            for entry, on_account in page
        ],
        limit=limit,
        offset=offset,
    )


async def _postings(
    session: AsyncSession, entry_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[PostingView]]:
    found: dict[uuid.UUID, list[PostingView]] = defaultdict(list)
    if not entry_ids:
        return found
    rows = await session.execute(
        select(
            PostingRow.entry_id, LedgerAccount.code, PostingRow.amount_minor, PostingRow.currency
        )
        .join(LedgerAccount, LedgerAccount.id == PostingRow.account_id)
        .where(PostingRow.entry_id.in_(entry_ids))
        .order_by(PostingRow.id)
    )
    for entry_id, code, amount_minor, currency in rows:
        found[entry_id].append(
            PostingView(
                account=code, amount=decimal_text(amount_minor, currency), currency=currency
            )
        )
    return found


def _account(account: LedgerAccount, total_minor: int) -> LedgerAccountView:
    return LedgerAccountView(
        code=account.code,
        kind=account.kind,
        currency=account.currency,
        balance=decimal_text(total_minor, account.currency),
    )
