"""Client profiling: per-account trading metrics and the flow's profile and book (issue 15)."""

from domain.profiling.classify import Book, Classification, Condition, Profile, Thresholds, classify
from domain.profiling.metrics import (
    AccountMetrics,
    QuoteTape,
    Settings,
    Tick,
    Trade,
    TradeDeal,
    account_metrics,
    profile_accounts,
    trades_of,
)

__all__ = [
    "AccountMetrics",
    "Book",
    "Classification",
    "Condition",
    "Profile",
    "QuoteTape",
    "Settings",
    "Thresholds",
    "Tick",
    "Trade",
    "TradeDeal",
    "account_metrics",
    "classify",
    "profile_accounts",
    "trades_of",
]
