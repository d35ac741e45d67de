"""The client aggregate's questions: one client by id or address, pages and batches of them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client
from domain.errors import NotFound
from domain.payment_checks import KycStatus

# The clients screened again when a list changes: those approved, and those still under review.
SCREENED_STATUSES = (KycStatus.APPROVED.value, KycStatus.PENDING.value)


async def client_by_id(
    session: AsyncSession, client_id: uuid.UUID, *, lock: bool = False
) -> Client | None:
    """The client, or None; `lock` takes the row for update until the transaction ends."""
    return await session.get(Client, client_id, with_for_update=lock)


async def client_or_not_found(
    session: AsyncSession,
    client_id: uuid.UUID,
    *,
    lock: bool = False,
    missing: str | None = None,
) -> Client:
    """The client, or `NotFound` with `missing` (by default "no client <id>")."""
    client = await client_by_id(session, client_id, lock=lock)
    if client is None:
        raise NotFound(missing if missing is not None else f"no client {client_id}")
    return client


async def client_by_email(session: AsyncSession, email: str) -> Client | None:
    """The client signed up with this address, in any case (addresses are stored lower-case)."""
    client: Client | None = await session.scalar(
        select(Client).where(Client.email == email.lower())
    )
    return client


async def email_registered(session: AsyncSession, email: str) -> bool:
    """Whether a client signed up with this address (in any case)."""
    found = await session.scalar(select(Client.id).where(Client.email == email.lower()))
    return found is not None


async def person_registered(session: AsyncSession, name_key: str, date_of_birth: date) -> bool:
    """Whether a client with this folded name (`Client.name_key`) and date of birth exists."""
    found = await session.scalar(
        select(Client.id).where(Client.name_key == name_key, Client.date_of_birth == date_of_birth)
    )
    return found is not None


async def clients_newest_first(
    session: AsyncSession,
    *,
    limit: int,
    before: datetime | None = None,
    email: str | None = None,
) -> list[Client]:
    """A page of clients, newest first: those signed up before `before`, or the one with `email`."""
    query = select(Client).order_by(Client.created_at.desc()).limit(limit)
    if before is not None:
        query = query.where(Client.created_at < before)
    if email is not None:
        query = query.where(Client.email == email.lower())
    return list(await session.scalars(query))


async def clients_referred_by(session: AsyncSession, ib_id: uuid.UUID) -> list[Client]:
    """The clients an introducing broker referred, in sign-up order."""
    rows = await session.scalars(
        select(Client).where(Client.referred_by_ib_id == ib_id).order_by(Client.created_at)
    )
    return list(rows)


async def clients_to_screen(
    session: AsyncSession, *, after: uuid.UUID | None, limit: int
) -> Sequence[Client]:
    """The next batch of clients to screen against the lists (`SCREENED_STATUSES`), in id order,
    after the client `after` (from the start when None)."""
    query = select(Client).where(Client.kyc_status.in_(SCREENED_STATUSES))
    if after is not None:
        query = query.where(Client.id > after)
    return (await session.scalars(query.order_by(Client.id).limit(limit))).all()
