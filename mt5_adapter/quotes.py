"""Reading a price feed: the last quote of each symbol, as the source wrote it.

`QuoteFeed` is the interface the FX feed (`activities/fx_feed.py`) reads rates through.
`WebApiGateway` implements it with the Web API's `tick/last` (the MT5 simulator answers it too,
so locally the simulator's quotes are the feed); another source (a bank's rate service, a
market-data vendor) would be a second implementation giving the same `Quote`s.

MT5 writes a tick's time on the trade server's clock (`DatetimeMsc`: milliseconds of server
time, not UTC); `utc_of_server_msc` turns it into an instant with the server's clock offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Quote:
    """One symbol's last quote: `bid`/`ask` as printed, `server_msc` its time on the source's
    clock in milliseconds (MT5: `DatetimeMsc`, trade-server time)."""

    symbol: str
    bid: Decimal
    ask: Decimal
    server_msc: int


@runtime_checkable
class QuoteFeed(Protocol):
    async def last_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """The last quote of each of `symbols` (MT5 `tick/last`, every symbol, `trans_id=0`).
        A symbol the source does not know raises `mt5_adapter.errors.Mt5NotFound` for the
        whole call (ask the others one by one to find it)."""
        ...


def utc_of_server_msc(server_msc: int, offset_seconds: int) -> datetime:
    """The UTC instant of a server-clock time in milliseconds, the server's clock being
    `offset_seconds` ahead of UTC (UTC+2: 7200)."""
    return datetime.fromtimestamp(server_msc / 1000, UTC) - timedelta(seconds=offset_seconds)
