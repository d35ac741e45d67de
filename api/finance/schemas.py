from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from api.schemas import Reason, decimal_text
from db.models import Payment


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
