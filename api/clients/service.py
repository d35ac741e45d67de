"""Clients as staff see them, and the one change staff make to a client here: blocking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api import sessions
from api.clients.schemas import ClientStatusChange
from api.policy import Principal
from db import audit
from db.models import Client
from db.queries.clients import client_or_not_found, clients_newest_first
from domain.roles import PrincipalKind


async def list_clients(
    session: AsyncSession, limit: int, before: datetime | None, email: str | None
) -> list[Client]:
    return await clients_newest_first(session, limit=limit, before=before, email=email)


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> Client:
    return await client_or_not_found(session, client_id, missing="client not found")


async def change_status(
    session: AsyncSession, client_id: uuid.UUID, change: ClientStatusChange, by: Principal
) -> Client:
    client = await client_or_not_found(session, client_id, lock=True)
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
        if change.status == "blocked":
            ended = await sessions.revoke_all(
                session, PrincipalKind.CLIENT, client.id, "client_blocked", datetime.now(UTC)
            )
            audit.record(
                session,
                by.actor(),
                audit.Change(
                    action="auth.sessions_revoked",
                    entity_type="client",
                    entity_id=str(client.id),
                    after={"sessions_ended": ended, "why": "client_blocked"},
                    reason=change.reason,
                ),
            )
        await session.flush()
        await session.refresh(client)
    return client
