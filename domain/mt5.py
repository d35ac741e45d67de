"""MT5 value types the rest of BrokerFlow speaks; the gateway turns them into Web API calls.

These mirror MT5's own records only as far as BrokerFlow needs them. Amounts are `Decimal`
in the account's deposit currency, volumes are not modelled yet.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class BalanceType(IntEnum):
    """`type` of `trade/balance`: the deal action codes MT5 accepts for cash operations."""

    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6


class Mt5Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class NewMt5User(Mt5Frozen):
    """A user to create with `user/add`. `login` is allocated by BrokerFlow (see docs/mt5.md)."""

    login: int = Field(gt=0)
    group: str
    name: str
    email: str = ""
    country: str = ""
    leverage: int = Field(gt=0)
    password_main: SecretStr
    password_investor: SecretStr
    # Free-text marker MT5 keeps on the record; BrokerFlow writes its own reference here so that a
    # retried `user/add` can tell its own earlier success from somebody else's account.
    comment: str = ""


class Mt5UserChanges(Mt5Frozen):
    """Fields of `user/update` that BrokerFlow changes; None leaves a field as it is."""

    group: str | None = None
    name: str | None = None
    email: str | None = None
    leverage: int | None = Field(default=None, gt=0)
    rights: int | None = None
    comment: str | None = None


class Mt5User(Mt5Frozen):
    login: int
    group: str
    name: str
    email: str
    country: str
    leverage: int
    rights: int
    comment: str
    balance: Decimal
    credit: Decimal
    registration: datetime


class BalanceOperation(Mt5Frozen):
    """One `trade/balance` call. `comment` is the operation's idempotency key on the MT5 side."""

    login: int = Field(gt=0)
    type: BalanceType = BalanceType.BALANCE
    amount: Decimal
    comment: str = Field(min_length=1, max_length=31)
    check_margin: bool = True


class Mt5Deal(Mt5Frozen):
    ticket: int
    login: int
    action: int
    entry: int
    profit: Decimal
    comment: str
    time: datetime


class Mt5AccountState(Mt5Frozen):
    """`user/account/get`: the trade state a withdrawal's free-margin check reads."""

    login: int
    balance: Decimal
    credit: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
