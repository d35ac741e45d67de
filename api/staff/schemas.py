from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from api.schemas import Email, Password, PersonName
from domain.roles import StaffRole


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR network such as 10.0.0.0/8") from exc


Cidr = Annotated[str, Field(max_length=64), AfterValidator(_cidr)]
Roles = Annotated[list[StaffRole], Field(min_length=1, max_length=len(StaffRole))]
Allowlist = Annotated[list[Cidr], Field(min_length=1, max_length=50)]


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: PersonName
    password: Password
    roles: Roles
    ip_allowlist: Allowlist


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: Roles | None = None
    ip_allowlist: Allowlist | None = None
    active: bool | None = None


class StaffView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    full_name: str
    roles: list[StaffRole]
    # PostgreSQL's cidr comes back as ipaddress networks.
    ip_allowlist: list[Annotated[str, BeforeValidator(str)]]
    active: bool
    created_at: datetime


class StaffCreated(StaffView):
    # Shown once so the new user can enrol an authenticator app; BrokerFlow keeps it sealed.
    totp_provisioning_uri: str
