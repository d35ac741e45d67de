"""Who can act in BrokerFlow: the kinds of principal and the staff roles."""

from __future__ import annotations

from enum import StrEnum


class PrincipalKind(StrEnum):
    STAFF = "staff"
    CLIENT = "client"
    IB = "ib"


class StaffRole(StrEnum):
    ADMIN = "admin"
    COMPLIANCE = "compliance"
    FINANCE = "finance"
    DEALER = "dealer"
    RISK = "risk"
    SUPPORT = "support"
    # Reads everything an audit needs, changes nothing.
    AUDITOR = "auditor"


ALL_STAFF_ROLES: frozenset[StaffRole] = frozenset(StaffRole)
