"""The shapes of the IB payout routes: finance's payouts and decisions, the IB portal's tree,
clients (masked), commission rows with their traces and payouts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.ib.schemas import ServerName
from api.schemas import BIGINT_END, Mt5Login, Reason
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


class PayoutRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class PayoutPayAgain(BaseModel):
    """Pay again a payout that needs attention, where the IB is paid now."""

    model_config = ConfigDict(extra="forbid")

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

    server: ServerName
    login: Mt5Login
    ib_id: UUID
    effective_from: int = Field(ge=0, lt=BIGINT_END)  # trade-server-clock Unix seconds
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


# -- the console's views (api/console/ib_payouts.py, api/console/ib_portal.py) -----------------


class Approver(BaseModel):
    """A finance officer who approved, as the console names them (not a bare id)."""

    staff_id: str
    name: str
    email: str


class PayoutDecisionEntry(BaseModel):
    """One decision on a payout, from its audit row."""

    at: datetime
    action: str  # payouts_service.DECISION_ACTIONS
    staff_id: str | None
    name: str
    reason: str | None


class ConsolePayout(BaseModel):
    """A payout as finance sees it in the console: the IB by name, the approvals so far and how
    many it needs (two different finance officers above the four-eyes threshold)."""

    id: UUID
    ib_id: UUID
    ib_name: str
    ib_email: str
    period_start: int
    period_end: int
    amount: Decimal
    currency: str
    rows: int
    status: str
    approvals: int
    needed: int
    four_eyes_above: Decimal
    decision_reason: str | None
    ledger_key: str | None
    created_at: datetime
    has_statement: bool

    @property
    def four_eyes(self) -> bool:
        return self.needed > 1


class FraudFlagNote(BaseModel):
    """An open fraud flag of the payout's IB (`domain.ib.fraud`) with its evidence: shown to
    finance beside the payout and its statement, it never blocks the payout by itself (cleared
    with `POST /v1/ibs/fraud-flags/{id}/clear`)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: str = Field(
        description="self_referral_identity, self_referral_payment, self_referral_ip or"
        " commission_farming"
    )
    evidence_key: str = Field(description="`client:<id>` or `login:<server>:<login>:<YYYY-MM>`")
    detail: str
    evidence: dict[str, Any] = Field(
        description="what was found: the matches (identity), the masked bank accounts"
        " (payment), the shared addresses (IP), the pieces held just above the minimum hold"
        " (farming)"
    )
    server: str | None
    login: int | None
    client_id: UUID | None
    detected_at: datetime


class FinancePayoutView(IbPayoutView):
    """A payout as finance reads it: with its IB's open fraud flags and their evidence (the IB's
    own view, `GET /v1/ib/payouts`, has none)."""

    fraud_flags: list[FraudFlagNote] = Field(default_factory=list)


class ConsolePayoutDetail(ConsolePayout):
    approvers: list[Approver]
    decisions: list[PayoutDecisionEntry]
    ib_parent_name: str | None
    fraud_flags: list[FraudFlagNote]
    mt5_ticket: int | None


class ConsolePayoutPage(BaseModel):
    items: list[ConsolePayout]
    total: int
    page: int
    pages: int
    per_page: int


class CommissionTotal(BaseModel):
    """An IB's commission rows in one currency: all of them, and those not in a payout yet."""

    currency: str
    rows: int
    total: Decimal
    unpaid: Decimal
