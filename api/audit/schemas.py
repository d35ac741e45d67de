"""What the audit log answers with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    actor_roles: list[str]
    on_behalf_of: str | None
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
    request_id: str | None
    trace_id: str | None
    reason: str | None


class AuditPage(BaseModel):
    items: list[AuditView]
    next_before_id: int | None
