from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.audit.schemas import AuditPage, AuditView
from api.deps import SessionDep
from api.policy import AuditorPrincipal
from api.schemas import BeforeId, Instant
from db.models import AuditEntry

router = APIRouter(prefix="/v1/audit", tags=["audit"])
ShortText = Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]


@router.get("")
async def search_audit_log(
    _: AuditorPrincipal,
    session: SessionDep,
    entity_type: ShortText = None,
    entity_id: ShortText = None,
    actor_id: ShortText = None,
    action: ShortText = None,
    since: Instant | None = None,
    until: Instant | None = None,
    before_id: BeforeId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Newest first. Page with `before_id` = the previous page's `next_before_id`."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    filters = {
        AuditEntry.entity_type: entity_type,
        AuditEntry.entity_id: entity_id,
        AuditEntry.actor_id: actor_id,
        AuditEntry.action: action,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEntry.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEntry.occurred_at <= until)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    entries = list(await session.scalars(query))
    return AuditPage(
        items=[AuditView.model_validate(e) for e in entries],
        next_before_id=entries[-1].id if len(entries) == limit else None,
    )
