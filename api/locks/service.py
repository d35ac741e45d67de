"""Administrators see who is locked out after failed attempts, and lift a lock (audited)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.locks.schemas import LockView
from api.policy import Principal
from api.throttle import is_lock
from db import audit
from db.models import AuthThrottle
from domain.errors import Conflict, NotFound


def _view(row: AuthThrottle) -> LockView:
    return LockView(
        id=row.id,
        scope=row.scope,
        key_kind=row.key_kind,
        key=row.key,
        failures=row.failures,
        locks=row.locks,
        blocked_until=row.blocked_until,
        locked=is_lock(row),
    )


def _snapshot(row: AuthThrottle) -> dict[str, Any]:
    return {
        "failures": row.failures,
        "locks": row.locks,
        "blocked_until": row.blocked_until.isoformat() if row.blocked_until else None,
    }


async def blocked(session: AsyncSession, now: datetime) -> list[LockView]:
    rows = await session.scalars(
        select(AuthThrottle)
        .where(AuthThrottle.blocked_until > now)
        .order_by(AuthThrottle.blocked_until.desc())
        .limit(500)
    )
    return [_view(row) for row in rows]


async def unlock(
    session: AsyncSession, lock_id: uuid.UUID, reason: str, by: Principal, now: datetime
) -> LockView:
    row = await session.get(AuthThrottle, lock_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no throttle entry {lock_id}")
    if not row.failures and not (row.blocked_until and row.blocked_until > now):
        raise Conflict("this account or address is neither waiting nor locked")
    before = _snapshot(row)
    row.failures, row.locks = 0, 0
    row.blocked_until, row.locked_at, row.last_failure_at = None, None, None
    audit.record(
        session,
        by.actor(),
        audit.Change(
            action="auth.unlocked",
            entity_type="auth_throttle",
            entity_id=str(row.id),
            before={"scope": row.scope, "key_kind": row.key_kind, "key": row.key, **before},
            after={"scope": row.scope, "key_kind": row.key_kind, "key": row.key, **_snapshot(row)},
            reason=reason,
        ),
    )
    await session.flush()
    return _view(row)
