"""Clients as staff see them, and the one change staff make to a client here: blocking."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.clients.schemas import ClientStatusChange
from api.me import service as me_service
from api.policy import Principal
from db import audit
from db.models import Client
from domain.errors import NotFound


async def list_clients(
    session: AsyncSession, limit: int, before: datetime | None, email: str | None
) -> list[Client]:
    query = select(Client).order_by(Client.created_at.desc()).limit(limit)
    if before is not None:
        query = query.where(Client.created_at < before)
    if email is not None:
        query = query.where(Client.email == email.lower())
    return list(await session.scalars(query))


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> Client:
    return await me_service.profile(session, client_id)


async def change_status(
    session: AsyncSession, client_id: uuid.UUID, change: ClientStatusChange, by: Principal
) -> Client:
    client = await session.get(Client, client_id, with_for_update=True)
    if client is None:
        raise NotFound(f"no client {client_id}")
    before = {"status": client.status}
    if client.status != change.status:
        client.status = change.status
        audit.record(
            session,
            by.actor(),
            audit.Change(
                action=f"client.{'blocked' if change.status == 'blocked' else 'unblocked'}",
                entity_type="client",
                entity_id=str(client.id),
                before=before,
                after={"status": client.status},
                reason=change.reason,
            ),
        )
        await session.flush()
        await session.refresh(client)
    return client
