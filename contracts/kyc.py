"""Payloads the KYC-side processes share: who acts (written into the audit trail by the steps),
and an officer's decision, which both a KYC case and an account change accept."""

from __future__ import annotations

import uuid

from domain.frozen import Frozen as Contract
from domain.kyc import Decision


class StaffActor(Contract):
    """Who acts, carried into the activity that writes the audit entry."""

    staff_id: uuid.UUID
    roles: tuple[str, ...] = ()
    ip: str | None = None
    request_id: str | None = None
    trace_id: str | None = None


class OfficerDecision(Contract):
    """The `decide` update's argument (a KYC case's and an account change's)."""

    actor: StaffActor
    decision: Decision
