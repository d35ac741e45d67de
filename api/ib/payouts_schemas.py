"""The shapes of the IB payout routes: finance's payouts and decisions, the IB portal's tree,
clients (masked), commission rows with their traces and payouts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Reason
from contracts.ib_payout import PayoutStatus


class IbPayoutView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    ib_id: UUID
    period_start: int  # trade-server-clock Unix seconds
    period_end: int
    amount: Decimal
    currency: str
    rows: int
    status: str
    approved_by: list[str]
    decision_reason: str | None
    ledger_key: str | None
    created_at: datetime
    statement_url: str | None = None


class PayoutDecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: Reason


class PayoutDecisionResult(BaseModel):
    payout_id: UUID
    status: PayoutStatus
    approvals: int
    needed: int


class TreeMember(BaseModel):
    id: UUID
    name: str
    parent_id: UUID | None
    level: int  # 0: the IB itself, 1: its direct sub-IBs, ...


class AttributedClient(BaseModel):
    """A client as an IB may see it: the login and a masked name, nothing else."""

    server: str
    login: int
    ib_id: UUID
    name: str
    effective_from: int
    effective_to: int | None


class CommissionRowView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    server: str
    deal: int
    login: int
    symbol: str
    deal_time: int
    level: int
    plan_id: str
    version: int
    revision: int
    amount: Decimal
    currency: str
    payout_id: UUID | None
    trace: dict[str, Any]


class AttributionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: str = Field(min_length=1, max_length=64)
    login: int = Field(gt=0)
    ib_id: UUID
    effective_from: int  # trade-server-clock Unix seconds
    reason: Reason


class AttributionView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    server: str
    login: int
    ib_id: UUID
    effective_from: int
    effective_to: int | None
    source: str
