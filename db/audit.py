"""Writing the audit trail, always inside the transaction of the change it describes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who did it: a staff user, a client, an IB, or the system acting on someone's behalf."""

    kind: str
    id: str | None
    roles: tuple[str, ...] = ()
    on_behalf_of: str | None = None
    ip: str | None = None
    request_id: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True)
class Change:
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str | None = None


def system_actor(on_behalf_of: str | None = None, trace_id: str | None = None) -> Actor:
    return Actor(kind="system", id="brokerflow", on_behalf_of=on_behalf_of, trace_id=trace_id)


def record(session: AsyncSession, actor: Actor, change: Change) -> None:
    session.add(
        AuditEntry(
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_roles=list(actor.roles),
            on_behalf_of=actor.on_behalf_of,
            action=change.action,
            entity_type=change.entity_type,
            entity_id=change.entity_id,
            before=change.before,
            after=change.after,
            ip=actor.ip,
            request_id=actor.request_id,
            trace_id=actor.trace_id,
            reason=change.reason,
        )
    )
