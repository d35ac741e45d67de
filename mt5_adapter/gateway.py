"""The one interface activities use to reach an MT5 server.

`WebApiGateway` (webapi.py) implements it over the MT5 Web API; the Windows-only Manager API can
later be a second implementation. Every method raises `mt5_adapter.errors.Mt5Error` subclasses,
each of which says whether a retry can help.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from domain.mt5 import (
    BalanceOperation,
    Mt5AccountState,
    Mt5Deal,
    Mt5User,
    Mt5UserChanges,
    NewMt5User,
)
from mt5_adapter.server_time import ServerZone


class Mt5Gateway(Protocol):
    async def ping(self) -> None: ...

    async def add_user(self, user: NewMt5User) -> Mt5User: ...

    async def get_user(self, login: int) -> Mt5User: ...

    async def update_user(self, login: int, changes: Mt5UserChanges) -> Mt5User:
        """`user/update` of the fields `changes` sets; answers the updated user. A group of
        another deposit currency raises `Mt5GroupCurrencyMismatch`."""
        ...

    async def delete_user(self, login: int) -> None:
        """`user/delete`; refused with `Mt5HasOpenPositions` while the account has open trades."""
        ...

    async def get_open_position_count(self, login: int) -> int:
        """Open positions of `login` (`position/get_total`)."""
        ...

    async def get_account_state(self, login: int) -> Mt5AccountState:
        """Balance, equity and free margin of `login` (`user/account/get`)."""
        ...

    async def apply_balance(self, operation: BalanceOperation) -> int:
        """Run `trade/balance`; returns the ticket of the deal MT5 created."""
        ...

    async def find_deal_by_comment(
        self, login: int, comment: str, since: datetime, until: datetime
    ) -> Mt5Deal | None:
        """The balance-type deal of `login` in [since, until] whose comment equals `comment`."""
        ...

    async def get_deals_page(
        self, login: int, since: datetime, until: datetime, offset: int, total: int
    ) -> list[Mt5Deal]:
        """`deal/get_page`: deals of `login` in [since, until], `total` from `offset` on."""
        ...

    async def server_zone(self) -> ServerZone:
        """The server's time zone: its `Time` fields and `from`/`to` are on that clock."""
        ...

    async def deal_records(
        self,
        group: str,
        since: datetime,
        until: datetime,
        *,
        logins: Sequence[int] | None = None,
    ) -> list[dict[str, str]]:
        """`deal/get_batch` over the accounts of `group` (a mask), or of `logins` when given,
        in [since, until]: the raw records (every field a string, as MT5 writes it), at most
        `MAX_DEAL_BATCH` of the lowest tickets; a full answer means more deals in the window."""
        ...

    async def logins(self, group: str) -> list[int]:
        """`user/logins`: the logins of the accounts of `group` (a mask), ascending."""
        ...

    async def records(self, command: str, params: dict[str, str]) -> list[dict[str, str]]:
        """A reading command's raw `answer` array (positions, orders, account states)."""
        ...

    async def window(self, since: datetime, until: datetime) -> dict[str, str]:
        """`from`/`to` of [since, until] on the server's clock."""
        ...

    async def symbol_records(self) -> tuple[list[dict[str, Any]], bool]:
        """Every symbol's configuration (`symbol/total`, `symbol/next`) as the server wrote it,
        and whether the listing is complete (no symbol added or deleted while it was read)."""
        ...

    async def aclose(self) -> None: ...
