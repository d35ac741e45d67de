from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Amount, CurrencyCode, Mt5Login, decimal_text
from db.models import Transfer


class WalletSide(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["wallet"]


class WalletDestination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["wallet"]
    currency: CurrencyCode


class Mt5Side(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["mt5"]
    login: Mt5Login


Source = Annotated[WalletSide | Mt5Side, Field(discriminator="kind")]
Destination = Annotated[WalletDestination | Mt5Side, Field(discriminator="kind")]


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount = Field(description="in the source's currency")
    currency: CurrencyCode = Field(description="the source's currency")
    source: Source
    destination: Destination = Field(
        description="a wallet in any currency or a live MT5 account; converted at the stored "
        "FX rate less the spread when its currency differs"
    )


class PocketView(BaseModel):
    kind: Literal["wallet", "mt5"]
    currency: str
    server: str | None = None
    login: int | None = None


class TransferView(BaseModel):
    id: UUID
    reference: str
    status: str
    amount: str
    currency: str
    source: PocketView
    destination: PocketView
    credited_amount: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, transfer: Transfer) -> TransferView:
        return cls(
            id=transfer.id,
            reference=transfer.reference,
            status=transfer.status,
            amount=decimal_text(transfer.amount_minor, transfer.currency),
            currency=transfer.currency,
            source=_pocket(transfer.currency, transfer.source_server, transfer.source_login),
            destination=_pocket(
                transfer.destination_currency,
                transfer.destination_server,
                transfer.destination_login,
            ),
            credited_amount=(
                None
                if transfer.credited_minor is None
                else decimal_text(transfer.credited_minor, transfer.destination_currency)
            ),
            failure_reason=transfer.failure_reason,
            created_at=transfer.created_at,
            updated_at=transfer.updated_at,
            completed_at=transfer.completed_at,
        )


def _pocket(currency: str, server: str | None, login: int | None) -> PocketView:
    if login is None:
        return PocketView(kind="wallet", currency=currency)
    return PocketView(kind="mt5", currency=currency, server=server, login=login)
