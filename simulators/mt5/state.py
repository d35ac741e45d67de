"""The server's books: groups, users, deals. Snapshotted to a JSON file so restarts keep them."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

# User rights (`Rights`, a 64-bit mask); the bits this server acts on.
RIGHT_ENABLED = 0x1  # off: the account may not connect (so it sends no trade requests)
RIGHT_TRADE_DISABLED = 0x4  # on: trading is off for the account
RIGHTS_MAX = 2**64 - 1
RIGHTS_NEW_ACCOUNT = 0x1E3  # enabled, password, trailing, expert, obsolete, reports
FIRST_AUTO_LOGIN = 1_000_000

# Instant commission of 3.50 (deposit currency) per lot on entry and on exit, for FX symbols.
FX_PER_LOT = {
    "Name": "FX per lot",
    "Path": "Forex\\*",
    "Mode": 0,  # standard
    "ChargeMode": 2,  # instant: written on the deal itself
    "EntryMode": 0,  # in and out deals
    "Tiers": [{"Mode": 0, "Type": 1, "Value": "3.50", "RangeFrom": "0", "RangeTo": "0"}],
}
# Pro (raw-spread) live accounts: 2.50 per lot on entry and on exit, on every symbol.
PRO_PER_LOT = {
    "Name": "Pro per lot",
    "Path": "*",
    "Mode": 0,
    "ChargeMode": 2,
    "EntryMode": 0,
    "Tiers": [{"Mode": 0, "Type": 1, "Value": "2.50", "RangeFrom": "0", "RangeTo": "0"}],
}


def _live_groups() -> list[dict[str, Any]]:
    """The live groups per region: standard and pro, each also as an `-hr` variant; all retail
    hedging, deposit currency per region. `real\\eu\\standard` is in `_GROUPS` already."""
    groups = []
    for region, currency in (("eu", "EUR"), ("uk", "GBP"), ("intl", "USD")):
        for kind in ("standard", "pro", "standard-hr", "pro-hr"):
            name = f"real\\{region}\\{kind}"
            if name == "real\\eu\\standard":
                continue
            commission = FX_PER_LOT if kind.startswith("standard") else PRO_PER_LOT
            groups.append(
                {
                    "Group": name,
                    "Currency": currency,
                    "MarginMode": 2,
                    "DemoLeverage": 0,
                    "Commissions": [commission],
                }
            )
    return groups


# MarginMode: 0 retail netting, 2 retail hedging.
_GROUPS: list[dict[str, Any]] = [
    {
        "Group": "demo\\standard",
        "Currency": "USD",
        "MarginMode": 2,
        "DemoLeverage": 100,
        "Commissions": [FX_PER_LOT],
    },
    {"Group": "demo\\pro", "Currency": "USD", "MarginMode": 0, "DemoLeverage": 500},
    {"Group": "demo\\eur", "Currency": "EUR", "MarginMode": 2, "DemoLeverage": 100},
    {
        "Group": "real\\standard",
        "Currency": "USD",
        "MarginMode": 2,
        "DemoLeverage": 0,
        "Commissions": [FX_PER_LOT],
    },
    {"Group": "real\\pro", "Currency": "USD", "MarginMode": 0, "DemoLeverage": 0},
    {
        "Group": "real\\eu\\standard",
        "Currency": "EUR",
        "MarginMode": 2,
        "DemoLeverage": 0,
        "Commissions": [FX_PER_LOT],
    },
    *_live_groups(),
]


def default_groups() -> dict[str, dict[str, Any]]:
    groups = {}
    for spec in _GROUPS:
        groups[spec["Group"]] = {
            "Server": "1",
            "Company": "BrokerFlow Simulated Markets",
            "CurrencyDigits": 2,
            "MarginSOMode": 0,
            "MarginCall": 100,
            "MarginStopOut": 50,
            "MarginFreeMode": 1,
            "TradeFlags": 0x1 | 0x2 | 0x4,
            "PermissionsFlags": 0x2,
            "AuthPasswordMin": 8,
            "DemoDeposit": 10000 if spec["DemoLeverage"] else 0,
            "LimitHistory": 0,
            "LimitOrders": 0,
            "LimitSymbols": 0,
            "LimitPositions": 0,
            "Commissions": [],
            "Symbols": [],
            **spec,
        }
    return groups


@dataclass
class User:
    login: int
    group: str
    name: str
    password_main: str
    password_investor: str
    leverage: int
    email: str = ""
    country: str = ""
    city: str = ""
    address: str = ""
    phone: str = ""
    comment: str = ""
    rights: int = RIGHTS_NEW_ACCOUNT
    registration: int = field(default_factory=lambda: int(time.time()))
    balance: str = "0"
    credit: str = "0"
    commission_daily: str = "0"  # accumulated, charged at the end of the day (negative)
    commission_monthly: str = "0"  # accumulated, charged at the end of the month (negative)
    agent: int = 0  # login of the agent (IB) account agent commissions are credited to
    commission_agent_daily: str = "0"  # accumulated for this agent, paid at the end of the day
    commission_agent_monthly: str = "0"  # accumulated for this agent, paid at the month's end

    @property
    def money(self) -> tuple[Decimal, Decimal]:
        return Decimal(self.balance), Decimal(self.credit)


@dataclass
class Deal:
    """A deal as MT5 records it; money fields are strings of the deposit currency's decimals."""

    deal: int
    login: int
    action: int
    profit: str
    comment: str
    time_msc: int
    entry: int = 0
    # Trade deals only:
    symbol: str = ""
    volume: int = 0  # 1/10000 lot
    volume_closed: int = 0
    price: str = "0"
    price_position: str = "0"
    position_id: int = 0
    order: int = 0
    storage: str = "0.00"
    commission: str = "0.00"
    profit_raw: str = "0"
    contract_size: str = "0"
    rate_profit: str = "1"
    rate_margin: str = "1"
    reason: int = 2
    market_bid: str = "0"
    market_ask: str = "0"
    digits: int = 0
    gateway: str = ""  # A-book: the liquidity provider's gateway
    price_gateway: str = "0"  # A-book: the LP's execution price
    position_by_id: int = 0  # close-by: the opposite position
    fee: str = "0.00"  # commissions of Mode 2 (fee), kept apart from Commission


@dataclass
class Position:
    position: int  # ticket; equals the opening order's ticket, kept through reversals
    login: int
    symbol: str
    action: int  # 0 buy, 1 sell
    volume: int  # 1/10000 lot
    price_open: str
    storage: str = "0"
    time_create_msc: int = 0
    time_update_msc: int = 0
    reason: int = 0
    price_sl: str = "0"
    price_tp: str = "0"


@dataclass
class Order:
    """An order: pending ones wait in `Books.orders`; done ones (filled, canceled) are history."""

    order: int
    login: int
    symbol: str
    type: int  # 0 buy, 1 sell, 2/3 buy/sell limit, 4/5 buy/sell stop, 6/7 buy/sell stop-limit
    volume_initial: int
    volume_current: int
    price_order: str
    state: int  # 1 placed, 2 canceled, 4 filled
    time_setup_msc: int
    time_done_msc: int = 0
    price_trigger: str = "0"
    price_sl: str = "0"
    price_tp: str = "0"
    position_id: int = 0
    reason: int = 0
    comment: str = ""
    position_by_id: int = 0  # close-by: the opposite position


@dataclass
class Books:
    groups: dict[str, dict[str, Any]] = field(default_factory=default_groups)
    users: dict[int, User] = field(default_factory=dict)
    deals: list[Deal] = field(default_factory=list)
    positions: dict[int, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    history_orders: list[Order] = field(default_factory=list)
    quotes: dict[str, list[str]] = field(default_factory=dict)  # symbol -> [bid, ask]
    next_ticket: int = 1000
    next_login: int = FIRST_AUTO_LOGIN
    # Symbols added or changed through `symbol/add` or the config file, as Web API records;
    # the catalogue's defaults apply to the others.
    symbols: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Dealer requests by id and their results, so an id answered before a restart still is.
    requests: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_request: int = 0
    rolled_over_to: str = ""  # ISO server date of the last automatic end of day

    def digits(self, login: int) -> int:
        return int(self.groups[self.users[login].group]["CurrencyDigits"])

    def round_money(self, login: int, amount: Decimal) -> Decimal:
        return amount.quantize(Decimal(1).scaleb(-self.digits(login)), ROUND_HALF_UP)

    def __post_init__(self) -> None:
        # Not persisted: rebuilt from `deals`, so look-ups by login and ticket stay O(1).
        self._by_login: dict[int, list[Deal]] = {}
        self._by_ticket: dict[int, Deal] = {}
        for deal in self.deals:
            self._index(deal)

    def _index(self, deal: Deal) -> None:
        self._by_login.setdefault(deal.login, []).append(deal)
        self._by_ticket[deal.deal] = deal

    def add_deal(self, deal: Deal) -> None:
        self.deals.append(deal)
        self._index(deal)

    def drop_deals_after(self, count: int) -> None:
        """Forget the deals past the first `count` (a fill undone whole)."""
        for deal in self.deals[count:]:
            self._by_login[deal.login].remove(deal)
            del self._by_ticket[deal.deal]
        del self.deals[count:]

    def deals_of(self, login: int) -> list[Deal]:
        return self._by_login.get(login, [])

    def deal(self, ticket: int) -> Deal | None:
        return self._by_ticket.get(ticket)

    def allocate_login(self) -> int:
        while self.next_login in self.users:
            self.next_login += 1
        login = self.next_login
        self.next_login += 1
        return login

    def new_ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket


class Snapshot:
    """Keeps the books in a file, written atomically; absent path = memory only.

    Changes mark the books dirty and `flush` writes them (the server flushes every 0.2 s and on
    shutdown), so a busy server does not rewrite the whole file on every deal.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.dirty = False

    def changed(self, books: Books) -> None:
        self.dirty = True

    def flush(self, books: Books) -> None:
        if self.dirty:
            self.dirty = False
            self.save(books)

    def load(self) -> Books:
        if self.path is None or not self.path.exists():
            return Books()
        raw = json.loads(self.path.read_text())
        return Books(
            # Groups added to the defaults since the file was written appear; the file's win.
            groups={**default_groups(), **raw["groups"]},
            users={int(k): User(**v) for k, v in raw["users"].items()},
            deals=[Deal(**d) for d in raw["deals"]],
            positions={int(k): Position(**v) for k, v in raw.get("positions", {}).items()},
            orders={int(k): Order(**v) for k, v in raw.get("orders", {}).items()},
            history_orders=[Order(**o) for o in raw.get("history_orders", [])],
            quotes=raw.get("quotes", {}),
            next_ticket=raw["next_ticket"],
            next_login=raw["next_login"],
            symbols=raw.get("symbols", {}),
            requests={int(k): v for k, v in raw.get("requests", {}).items()},
            next_request=raw.get("next_request", 0),
            rolled_over_to=raw.get("rolled_over_to", ""),
        )

    def save(self, books: Books) -> None:
        if self.path is None:
            return
        raw = {
            "groups": books.groups,
            "users": {str(k): asdict(v) for k, v in books.users.items()},
            "deals": [asdict(d) for d in books.deals],
            "positions": {str(k): asdict(v) for k, v in books.positions.items()},
            "orders": {str(k): asdict(v) for k, v in books.orders.items()},
            "history_orders": [asdict(o) for o in books.history_orders],
            "quotes": books.quotes,
            "next_ticket": books.next_ticket,
            "next_login": books.next_login,
            "symbols": books.symbols,
            "requests": {str(k): v for k, v in books.requests.items()},
            "next_request": books.next_request,
            "rolled_over_to": books.rolled_over_to,
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(raw))
        os.replace(temporary, self.path)
