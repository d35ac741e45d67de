from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from api.schemas import Email, NewPassword, PersonName
from domain.roles import StaffRole

# A network as an address and an optional prefix length: IPv4 dotted (no leading zeros) or IPv6
# in hex groups (`::` shortening allowed). The pattern is the documented rule and the first
# check; every string it admits is one `ipaddress` reads.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}(?:/(?:3[0-2]|[12]?[0-9]))?"
_H = "[0-9a-fA-F]{1,4}"
_IPV6 = (
    "(?:"
    + "|".join(
        (
            rf"(?:{_H}:){{7}}{_H}",
            rf"(?:{_H}:){{1,7}}:",
            rf"(?:{_H}:){{1,6}}:{_H}",
            rf"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
            rf"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
            rf"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
            rf"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
            rf"{_H}:(?::{_H}){{1,6}}",
            rf":(?:(?::{_H}){{1,7}}|:)",
        )
    )
    + ")(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?"
)
CIDR_PATTERN = f"^(?:{_IPV4}|{_IPV6})$"


def _cidr(value: str) -> str:
    """The network, host bits cleared: `10.1.2.3/8` is kept as `10.0.0.0/8`, as PostgreSQL's
    cidr type would refuse the first."""
    if not re.fullmatch(CIDR_PATTERN, value):
        raise ValueError(f"{value!r} is not a network such as 10.0.0.0/8 or 2001:db8::/32")
    return str(ipaddress.ip_network(value, strict=False))


Cidr = Annotated[
    str,
    AfterValidator(_cidr),
    WithJsonSchema({"type": "string", "pattern": CIDR_PATTERN, "examples": ["10.0.0.0/8"]}),
]
Roles = Annotated[list[StaffRole], Field(min_length=1, max_length=len(StaffRole))]
Allowlist = Annotated[list[Cidr], Field(min_length=1, max_length=50)]


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: PersonName
    password: NewPassword
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
