"""A live trading account's status, and the changes made to it (leverage, group, trading
rights, closure) with their status: values the account rows, the API and the account-change
process share."""

from __future__ import annotations

from enum import StrEnum


class AccountStatus(StrEnum):
    ACTIVE = "active"
    TRADING_DISABLED = "trading_disabled"
    CLOSED = "closed"


class AccountChangeKind(StrEnum):
    LEVERAGE = "leverage"
    GROUP = "group"
    DISABLE_TRADING = "disable_trading"
    ENABLE_TRADING = "enable_trading"
    CLOSE = "close"


class AccountChangeStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPLYING = "applying"
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"
