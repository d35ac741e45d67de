from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Mt5Login, Reason, decimal_text
from db.models import FinanceCase, Payment, UnmatchedFunds


class FinancePaymentView(BaseModel):
    """A payment as finance and compliance see it: both references, checks and flags."""

    id: UUID
    client_id: UUID
    reference: str
    # The processor's reference: its payment/payout id, or the bank transfer reference.
    gateway_reference: str | None
    provider_ref: str | None
    transfer_reference: str | None
    direction: str
    provider: str
    amount: str
    requested_amount: str
    currency: str
    status: str
    compliance_status: str
    risk_flags: list[str]
    mt5_server: str | None
    mt5_login: int | None
    mt5_ticket: int | None
    payer_name: str | None
    beneficiary_name: str | None
    beneficiary_account: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def fields_of(cls, payment: Payment) -> dict[str, Any]:
        return {
            "id": payment.id,
            "client_id": payment.client_id,
            "reference": payment.reference,
            "gateway_reference": payment.provider_ref or payment.transfer_reference,
            "provider_ref": payment.provider_ref,
            "transfer_reference": payment.transfer_reference,
            "direction": payment.direction,
            "provider": payment.provider,
            "amount": decimal_text(payment.amount_minor, payment.currency),
            "requested_amount": decimal_text(payment.requested_minor, payment.currency),
            "currency": payment.currency,
            "status": payment.status,
            "compliance_status": payment.compliance_status,
            "risk_flags": list(payment.risk_flags or []),
            "mt5_server": payment.mt5_server,
            "mt5_login": payment.mt5_login,
            "mt5_ticket": payment.mt5_ticket,
            "payer_name": payment.payer_name,
            "beneficiary_name": payment.beneficiary_name,
            "beneficiary_account": payment.beneficiary_account,
            "failure_reason": payment.failure_reason,
            "created_at": payment.created_at,
            "updated_at": payment.updated_at,
            "completed_at": payment.completed_at,
        }

    @classmethod
    def of(cls, payment: Payment) -> FinancePaymentView:
        return cls(**cls.fields_of(payment))


class PaymentPage(BaseModel):
    items: list[FinancePaymentView]
    limit: int
    offset: int


class DecisionView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    staff_id: UUID
    role: str
    approve: bool
    reason: str
    decided_at: datetime


class WebhookEventView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    provider: str
    event_id: str | None
    kind: str | None
    outcome: str
    reason: str | None
    payment_id: UUID | None
    payload: dict[str, Any] | None
    received_at: datetime
    # Rejected webhooks are aggregated: how many arrived like this one, from where, last when.
    repeats: int = 1
    source_ip: str | None = None
    last_received_at: datetime | None = None


class FinancePaymentDetail(FinancePaymentView):
    decisions: list[DecisionView]
    webhook_events: list[WebhookEventView]


class PendingApproval(FinancePaymentView):
    """A withdrawal waiting for finance's four-eyes approval, or a deposit held for compliance."""

    waiting_for: str
    approvals: int
    decisions: list[DecisionView]


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: Reason


class DecisionResult(BaseModel):
    payment_id: UUID
    status: str
    approvals: int


class CaseStep(BaseModel):
    """One undo step in a finance case: what it undoes, the amount, and the error if it failed."""

    step: str
    what: str
    amount: str | None = None
    currency: str | None = None
    error: str | None = None


class FinanceCaseView(BaseModel):
    """A movement whose undoing stopped short: what was undone, what was not, the amounts."""

    id: UUID
    movement_kind: str
    movement_id: UUID
    reference: str
    client_id: UUID
    kind: str
    status: str
    amount: str | None
    currency: str | None
    reason: str
    undone: list[CaseStep]
    not_undone: list[CaseStep]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, case: FinanceCase) -> FinanceCaseView:
        amount = None
        if case.amount_minor is not None and case.currency is not None:
            amount = decimal_text(case.amount_minor, case.currency)
        return cls(
            id=case.id,
            movement_kind=case.movement_kind,
            movement_id=case.movement_id,
            reference=case.reference,
            client_id=case.client_id,
            kind=case.kind,
            status=case.status,
            amount=amount,
            currency=case.currency,
            reason=case.reason,
            undone=[CaseStep.model_validate(step) for step in case.undone],
            not_undone=[CaseStep.model_validate(step) for step in case.not_undone],
            created_at=case.created_at,
            updated_at=case.updated_at,
        )


class ResolvedCaseView(FinanceCaseView):
    """A case just resolved, and where its resolution took its movement: a
    `compensation_incomplete` case's payment or transfer leaves `needs_attention` (an
    unmatched-funds item `crediting`); both null when the movement was not changed."""

    movement_status_before: str | None = None
    movement_status: str | None = None


class UnmatchedFundsView(BaseModel):
    """A verified payment no deposit booked, and where finance's resolution of it stands."""

    id: UUID
    reference: str
    provider: str
    event_id: str
    event_kind: str
    provider_ref: str
    # The reference the payer quoted (a deposit's, or one BrokerFlow does not know).
    event_reference: str
    amount: str
    currency: str
    payer_name: str | None
    payment_id: UUID | None
    reason: str
    detail: str | None
    status: str
    resolution: str | None
    resolved_by: UUID | None
    credited_client_id: UUID | None
    resolution_note: str | None
    return_ref: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, item: UnmatchedFunds) -> UnmatchedFundsView:
        return cls(
            id=item.id,
            reference=item.reference,
            provider=item.provider,
            event_id=item.event_id,
            event_kind=item.event_kind,
            provider_ref=item.provider_ref,
            event_reference=item.event_reference,
            amount=decimal_text(item.amount_minor, item.currency),
            currency=item.currency,
            payer_name=item.payer_name,
            payment_id=item.payment_id,
            reason=item.reason,
            detail=item.detail,
            status=item.status,
            resolution=item.resolution,
            resolved_by=item.resolved_by,
            credited_client_id=item.credited_client_id,
            resolution_note=item.resolution_note,
            return_ref=item.return_ref,
            error=item.error,
            created_at=item.created_at,
            updated_at=item.updated_at,
            resolved_at=item.resolved_at,
        )


class ReturnUnmatchedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ResolveCaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class CreditUnmatchedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: UUID
    reason: Reason
    # One of the client's live MT5 accounts, in the item's currency, to credit straight away
    # (through the deposits' balance step); left out, the client's wallet is credited.
    mt5_login: Mt5Login | None = None


# -- the console's forms and what its finance-case and unmatched-funds pages show -----------------


class ConsoleReasonForm(BaseModel):
    """A console form that only gives a reason: resolve a case, return unmatched funds."""

    reason: str = Field(default="", max_length=1000)
    csrf: str = Field(default="", max_length=128)


class ConsoleCreditForm(BaseModel):
    """Credit unmatched funds from the console: the client by email (names, not ids), and
    optionally one of the client's live MT5 accounts (empty: the wallet)."""

    client_email: str = Field(default="", max_length=254)
    mt5_login: str = Field(default="", max_length=20)
    reason: str = Field(default="", max_length=1000)
    csrf: str = Field(default="", max_length=128)


class LiveAccountChoice(BaseModel):
    """One of a client's live MT5 accounts that can take a credit in the item's currency."""

    server: str
    login: int
    currency: str
    group: str
