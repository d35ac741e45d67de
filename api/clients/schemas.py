from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from api.me.schemas import ApplicationView, ClientProfile, Mt5AccountView
from api.schemas import Stripped


class ClientSummary(ClientProfile):
    referred_by_ib_id: UUID | None


class ClientDetail(BaseModel):
    client: ClientSummary
    accounts: list[Mt5AccountView]
    applications: list[ApplicationView]


class ClientStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "blocked"]
    reason: Annotated[str, Stripped(3, 500)]


class ClientPage(BaseModel):
    items: list[ClientSummary]
    next_before: datetime | None
