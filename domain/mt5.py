"""MT5 value types the rest of BrokerFlow speaks; the gateway turns them into Web API calls.

These mirror MT5's own records only as far as BrokerFlow needs them. Amounts are `Decimal`
in the account's deposit currency, volumes are not modelled yet.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import IntEnum, IntFlag

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class BalanceType(IntEnum):
    """`type` of `trade/balance`: the deal action codes MT5 accepts for cash operations."""

    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6


class UserRights(IntFlag):
    """`Rights` of an MT5 user record: a 64-bit mask (reference 4.5, `USER_RIGHT_*`).

    Bits MT5 defines beyond these (newer builds) are kept as they are: the helpers below change
    only the bit they name, with integer arithmetic (`~` on an IntFlag would drop unknown bits).
    """

    ENABLED = 0x1  # may connect
    PASSWORD = 0x2  # may change its password
    TRADE_DISABLED = 0x4  # set: trading is off
    INVESTOR = 0x8
    CONFIRMED = 0x10  # certificate confirmed
    TRAILING = 0x20
    EXPERT = 0x40
    OBSOLETE = 0x80
    REPORTS = 0x100
    READONLY = 0x200
    RESET_PASS = 0x400  # must change the password at the next login
    OTP_ENABLED = 0x800
    SPONSORED_HOSTING = 0x2000
    API_ENABLED = 0x4000
    PUSH_NOTIFICATION = 0x8000
    TECHNICAL = 0x10000
    EXCLUDE_REPORTS = 0x20000


RIGHTS_MASK = 2**64 - 1

# What BrokerFlow gives a live account it opens: the composition the reference gives for
# `USER_RIGHT_DEFAULT` (ENABLED|PASSWORD|TRAILING|EXPERT|REPORTS = 0x163). Servers' own defaults
# often also carry OBSOLETE (0x1E3 = 483); that bit means nothing to set on purpose.
DEFAULT_LIVE_RIGHTS = (
    UserRights.ENABLED
    | UserRights.PASSWORD
    | UserRights.TRAILING
    | UserRights.EXPERT
    | UserRights.REPORTS
)


def _set(rights: int, bit: UserRights) -> UserRights:
    return UserRights(int(rights) | int(bit))


def _clear(rights: int, bit: UserRights) -> UserRights:
    return UserRights(int(rights) & ~int(bit) & RIGHTS_MASK)


def with_trading_disabled(rights: int) -> UserRights:
    """`rights` with trading off (TRADE_DISABLED set); every other bit unchanged."""
    return _set(rights, UserRights.TRADE_DISABLED)


def with_trading_enabled(rights: int) -> UserRights:
    """`rights` with trading on (TRADE_DISABLED clear); every other bit unchanged."""
    return _clear(rights, UserRights.TRADE_DISABLED)


def with_login_disabled(rights: int) -> UserRights:
    """`rights` of an account that may not connect (ENABLED clear); every other bit unchanged."""
    return _clear(rights, UserRights.ENABLED)


def with_login_enabled(rights: int) -> UserRights:
    """`rights` of an account that may connect (ENABLED set); every other bit unchanged."""
    return _set(rights, UserRights.ENABLED)


def trading_enabled(rights: int) -> bool:
    """Whether the account may trade: it may connect and its trading is not off."""
    return bool(rights & UserRights.ENABLED) and not rights & UserRights.TRADE_DISABLED


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
    # `Rights` to create the account with (e.g. DEFAULT_LIVE_RIGHTS); None: the server's default.
    rights: int | None = Field(default=None, ge=0, le=RIGHTS_MASK)


class Mt5UserChanges(Mt5Frozen):
    """Fields of `user/update` that BrokerFlow changes; None leaves a field as it is."""

    group: str | None = None
    name: str | None = None
    email: str | None = None
    leverage: int | None = Field(default=None, gt=0)
    rights: int | None = Field(default=None, ge=0, le=RIGHTS_MASK)  # the whole mask, see UserRights
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
