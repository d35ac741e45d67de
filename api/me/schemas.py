from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class ClientProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    full_name: str
    country: str
    date_of_birth: date
    status: str
    created_at: datetime
    nationality: str | None = None
    phone: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    email_verified_at: datetime | None = None
    kyc_status: str = "pending"
    category: str = "retail"
    account_type: str = "standard"


class TradingSnapshot(BaseModel):
    """The account's money on MT5 as the trade-state ingestion last read it
    (`user/account/get_batch`), never asked of MT5 by the API: `as_of` says how fresh it is."""

    currency: str
    balance: Decimal
    credit: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal
    as_of: datetime


class Mt5AccountView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    # BrokerFlow's id of the account (stable; the login is MT5's number on its server).
    id: UUID
    login: int
    server: str
    group: str
    leverage: int
    currency: str
    kind: str
    created_at: datetime
    status: str = "active"
    # None until the ingestion has read the account once (or on a server it does not follow).
    trading: TradingSnapshot | None = None


class ApplicationView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    account_type: str
    kind: str
    status: str
    mt5_server: str
    mt5_login: int | None
    failure_reason: str | None
    created_at: datetime


class Mt5Credentials(BaseModel):
    login: int
    server: str
    password: str
    investor_password: str


class NotificationView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    message: str
    created_at: datetime
