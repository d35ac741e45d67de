from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints

from api.schemas import Email, Password, PersonName

ReferralCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,32}$")]


class IbCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: PersonName
    password: Password
    referral_code: ReferralCode


class IbView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    name: str
    referral_code: str
    created_at: datetime


class ReferredClient(BaseModel):
    """What an IB may know of a client it introduced: no contact or identity details."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    full_name: str
    country: str
    status: str
    created_at: datetime
