from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.payments.validation import iban_problem, normalise_iban
from api.schemas import Amount, CurrencyCode, Mt5Login, PersonName, decimal_text
from db.models import Payment
from domain.payments import Provider


def _iban(value: str) -> str:
    iban = normalise_iban(value)
    problem = iban_problem(iban)
    if problem is not None:
        raise ValueError(f"not a valid IBAN: {problem}")
    return iban


Iban = Annotated[str, Field(min_length=15, max_length=64), AfterValidator(_iban)]


class DepositRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider
    amount: Amount
    currency: CurrencyCode
    mt5_login: Mt5Login | None = Field(
        default=None, description="one of your live MT5 accounts; without it, your wallet"
    )


class WithdrawalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider = Field(description="bankco: CardCo pays back only as refunds")
    amount: Amount
    currency: CurrencyCode
    mt5_login: Mt5Login | None = Field(
        default=None, description="one of your live MT5 accounts; without it, your wallet"
    )
    beneficiary_name: PersonName
    beneficiary_account: Iban


class PaymentView(BaseModel):
    """A deposit or withdrawal as its client sees it (no compliance internals)."""

    id: UUID
    reference: str
    direction: str
    provider: str
    status: str
    amount: str
    requested_amount: str
    currency: str
    mt5_login: int | None
    # CardCo: the hosted page to pay on; BankCo: the reference to quote on the bank transfer.
    redirect_url: str | None
    transfer_reference: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, payment: Payment) -> PaymentView:
        return cls(
            id=payment.id,
            reference=payment.reference,
            direction=payment.direction,
            provider=payment.provider,
            status=payment.status,
            amount=decimal_text(payment.amount_minor, payment.currency),
            requested_amount=decimal_text(payment.requested_minor, payment.currency),
            currency=payment.currency,
            mt5_login=payment.mt5_login,
            redirect_url=payment.redirect_url,
            transfer_reference=payment.transfer_reference,
            failure_reason=payment.failure_reason,
            created_at=payment.created_at,
            updated_at=payment.updated_at,
            completed_at=payment.completed_at,
        )
