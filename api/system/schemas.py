"""What the system routes answer with."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str
    database: str
