"""What the console's finance-case and unmatched-funds pages read, as people read it: each
list a page at a time with its search and filters, the people its ids stand for, an item's
audit trail and the live MT5 accounts a client could be credited on.

Read-only: no audit rows, no commits (the actions go through `api.finance.service`)."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, String, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.audit.schemas import AuditView
from api.console.list_pages import paged
from api.console.lookups import like, people
from api.console.schemas import Paging, Person
from api.finance.schemas import LiveAccountChoice
from db.models import AuditEntry, Client, FinanceCase, Mt5Account, Payment, UnmatchedFunds
from domain.payments import FinanceCaseKind, FinanceCaseStatus, UnmatchedReason, UnmatchedStatus


async def cases_page(
    session: AsyncSession,
    *,
    status: FinanceCaseStatus | None,
    kind: FinanceCaseKind | None,
    search: str,
    limit: int,
    offset: int,
) -> tuple[list[FinanceCase], Paging, dict[str, Person]]:
    """Finance cases, oldest first (the longest waiting on top); `search` finds the client's
    name or email, the movement's reference or its id."""
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(FinanceCase.status == status.value)
    if kind is not None:
        conditions.append(FinanceCase.kind == kind.value)
    if search:
        pattern = like(search)
        conditions.append(
            or_(
                Client.full_name.ilike(pattern),
                Client.email.ilike(pattern),
                FinanceCase.reference.ilike(pattern),
                cast(FinanceCase.movement_id, String).ilike(pattern),
            )
        )
    base = select(FinanceCase).join(Client, Client.id == FinanceCase.client_id).where(*conditions)
    order = (FinanceCase.created_at, FinanceCase.id)
    rows, paging = await paged(session, base, order, limit=limit, offset=offset)
    return rows, paging, await people(session, [c.client_id for c in rows])


async def unmatched_page(
    session: AsyncSession,
    *,
    status: UnmatchedStatus | None,
    reason: UnmatchedReason | None,
    search: str,
    limit: int,
    offset: int,
) -> tuple[list[UnmatchedFunds], Paging, dict[str, Person]]:
    """Unmatched funds, oldest first; `search` finds the item's reference, the reference the
    payer quoted, the payer's name, the processor's ids, or the name or email of the client
    it was credited to or whose deposit the reference named."""
    credited = aliased(Client)
    depositor = aliased(Client)
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(UnmatchedFunds.status == status.value)
    if reason is not None:
        conditions.append(UnmatchedFunds.reason == reason.value)
    if search:
        pattern = like(search)
        conditions.append(
            or_(
                UnmatchedFunds.reference.ilike(pattern),
                UnmatchedFunds.event_reference.ilike(pattern),
                UnmatchedFunds.payer_name.ilike(pattern),
                UnmatchedFunds.provider_ref.ilike(pattern),
                UnmatchedFunds.event_id.ilike(pattern),
                credited.full_name.ilike(pattern),
                credited.email.ilike(pattern),
                depositor.full_name.ilike(pattern),
                depositor.email.ilike(pattern),
            )
        )
    base = (
        select(UnmatchedFunds)
        .outerjoin(credited, credited.id == UnmatchedFunds.credited_client_id)
        .outerjoin(Payment, Payment.id == UnmatchedFunds.payment_id)
        .outerjoin(depositor, depositor.id == Payment.client_id)
        .where(*conditions)
    )
    order = (UnmatchedFunds.created_at, UnmatchedFunds.id)
    rows, paging = await paged(session, base, order, limit=limit, offset=offset)
    deposits = await deposits_of(session, [i.payment_id for i in rows if i.payment_id])
    names = await people(
        session,
        [i.credited_client_id for i in rows]
        + [i.resolved_by for i in rows]
        + [p.client_id for p in deposits.values()],
    )
    return rows, paging, names


async def deposits_of(
    session: AsyncSession, payment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Payment]:
    """The payments the items' references named, by id."""
    if not payment_ids:
        return {}
    rows = await session.scalars(select(Payment).where(Payment.id.in_(payment_ids)))
    return {p.id: p for p in rows}


async def trail(session: AsyncSession, entity_type: str, entity_id: uuid.UUID) -> list[AuditView]:
    """The entity's audit rows, newest first, as a trail is read."""
    rows = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.id.desc())
        .limit(200)
    )
    return [AuditView.model_validate(row) for row in rows]


async def live_accounts(
    session: AsyncSession, client_id: uuid.UUID, currency: str
) -> list[LiveAccountChoice]:
    """The client's active live MT5 accounts in `currency`: those a credit can go to."""
    rows = await session.scalars(
        select(Mt5Account)
        .where(
            Mt5Account.client_id == client_id,
            Mt5Account.kind == "live",
            Mt5Account.status == "active",
            Mt5Account.currency == currency,
        )
        .order_by(Mt5Account.created_at)
    )
    return [
        LiveAccountChoice(server=a.server, login=a.login, currency=a.currency, group=a.group)
        for a in rows
    ]
