from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from api.schemas import Stripped


class LockView(BaseModel):
    """An account or an address that waits or is locked after failed attempts."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    scope: str
    key_kind: str
    key: str
    failures: int
    locks: int
    blocked_until: datetime | None
    locked: bool


class UnlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Stripped(3, 500)]
