"""What the live exposure reads from MT5 beside the ingested trades: the groups' margin mode and
deposit currency, the group and leverage of accounts, and the symbols' last ticks.

`TradingTerms` is the interface; `WebApiGateway` implements it with `group/get`,
`user/get_batch` and `tick/last` (the MT5 simulator answers all three). A gateway that does not
(a test's fake) is read through `activities.risk_exposure.trading_terms_of`, which falls back to
the ingested state alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

# MT5 group `MarginMode` (reference 4.6).
MARGIN_MODE_RETAIL_NETTING = 0
MARGIN_MODE_EXCHANGE = 1
MARGIN_MODE_RETAIL_HEDGED = 2


@dataclass(frozen=True)
class GroupTerms:
    """A group's `Currency` (its accounts' deposit currency) and `MarginMode` (`group/get`),
    and its margin-call and stop-out lines: `MarginCall`, `MarginStopOut` (percent of margin,
    or money when `MarginSOMode` is 1). A fake that gives none gives 0: no line is reached."""

    group: str
    currency: str
    margin_mode: int
    margin_call: Decimal = Decimal(0)
    margin_stop_out: Decimal = Decimal(0)
    margin_so_mode: int = 0

    @property
    def hedging(self) -> bool:
        """Retail hedging (2); retail netting (0) and exchange (1) net their positions."""
        return self.margin_mode == MARGIN_MODE_RETAIL_HEDGED


@dataclass(frozen=True)
class UserTerms:
    """An account's `Group`, `Leverage` and `Country` as `user/get_batch` has them (`Country`
    as the manager typed it: MT5 does not force ISO codes)."""

    login: int
    group: str
    leverage: int
    country: str


@dataclass(frozen=True)
class Tick:
    """One symbol's last tick (`tick/last`): `last` 0 when the symbol prints no Last price,
    `server_msc` its time in trade-server milliseconds."""

    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    server_msc: int


@dataclass(frozen=True)
class TradeState:
    """An account's trade state (`user/account/get_batch`): its `Equity` and `Margin` in the
    deposit currency and MT5's own `MarginLevel` (%; 0 when Margin is 0)."""

    login: int
    equity: Decimal
    margin: Decimal
    margin_level: Decimal


@runtime_checkable
class TradeStates(Protocol):
    async def trade_states(self, logins: Sequence[int]) -> list[TradeState]:
        """`user/account/get_batch?login=…` (pages of `USER_PAGE` logins): the trade states
        found; a login MT5 has none for (13: no positions, orders or activity since its
        restart) is absent, and has nothing at risk."""
        ...


@runtime_checkable
class TradingTerms(Protocol):
    async def group_terms(self, group: str) -> GroupTerms:
        """`group/get?group=`: an unknown group raises `Mt5NotFound`."""
        ...

    async def user_terms(self, logins: Sequence[int]) -> list[UserTerms]:
        """`user/get_batch?login=…` (pages of `USER_PAGE` logins): the accounts found, by
        login; a login the server does not know is absent from the answer."""
        ...

    async def last_ticks(self, symbols: Sequence[str]) -> list[Tick]:
        """`tick/last?symbol=…&trans_id=0`: each named symbol's last tick. A symbol the server
        does not know raises `Mt5NotFound` for the whole call."""
        ...


# Logins per `user/get_batch` (the list travels in the URL), as the ingestion's pages.
USER_PAGE = 500
