"""The server's books: groups, users, deals; on disk as a snapshot plus a journal of commits."""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")

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


# What every built-in group has unless its spec says otherwise, and what a group added through
# `group/add` gets for the fields it leaves out.
GROUP_DEFAULTS: dict[str, Any] = {
    "Server": "1",
    "Company": "BrokerFlow Simulated Markets",
    "CurrencyDigits": 2,
    "MarginMode": 2,
    "MarginSOMode": 0,
    "MarginCall": 100,
    "MarginStopOut": 50,
    "MarginFreeMode": 1,
    "TradeFlags": 0x1 | 0x2 | 0x4,
    "PermissionsFlags": 0x2,
    "AuthPasswordMin": 8,
    "DemoLeverage": 0,
    "DemoDeposit": 0,
    "LimitHistory": 0,
    "LimitOrders": 0,
    "LimitSymbols": 0,
    "LimitPositions": 0,
    "Commissions": [],
    "Symbols": [],
}


def default_groups() -> dict[str, dict[str, Any]]:
    return {
        spec["Group"]: {
            **GROUP_DEFAULTS,
            "DemoDeposit": 10000 if spec["DemoLeverage"] else 0,
            **spec,
        }
        for spec in _GROUPS
    }


class Watched:
    """A record that tells the map holding it when a field is set: the engine changes users,
    positions and orders in place, and a commit writes only the records that changed."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        holder = self.__dict__.get("_holder")
        if holder is not None:
            holder[0].add(holder[1])


class TrackedMap(dict[K, V]):
    """A map of the books that remembers which keys were written or removed (`touched`) since
    the last commit, and makes its `Watched` records report their own changes under their key."""

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        super().__init__()
        self.touched: set[K] = set()
        self.update(items or {})

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.touched.add(key)
        if isinstance(value, Watched):
            object.__setattr__(value, "_holder", (self.touched, key))

    def __delitem__(self, key: K) -> None:
        super().__delitem__(key)
        self.touched.add(key)

    def pop(self, key: K, *default: Any) -> Any:
        self.touched.add(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[K, V]:
        key, value = super().popitem()
        self.touched.add(key)
        return key, value

    def setdefault(self, key: K, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        self.touched.update(self)
        super().clear()

    def __ior__(self, other: Any) -> TrackedMap[K, V]:  # type: ignore[override,misc]
        self.update(other)
        return self


class PositionMap(TrackedMap[int, "Position"]):
    """The open positions by ticket, also kept by login (a position never changes its login):
    margin, equity and stop-out look at one account's positions on every price move."""

    def __init__(self, items: Mapping[int, Position] | None = None) -> None:
        self.by_login: dict[int, dict[int, Position]] = {}
        super().__init__(items)

    def __setitem__(self, key: int, value: Position) -> None:
        self._unindex(key)
        super().__setitem__(key, value)
        self.by_login.setdefault(value.login, {})[key] = value

    def __delitem__(self, key: int) -> None:
        self._unindex(key)
        super().__delitem__(key)

    def pop(self, key: int, *default: Any) -> Any:
        self._unindex(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[int, Position]:
        key, value = super().popitem()
        self._unindex_position(key, value)
        return key, value

    def clear(self) -> None:
        super().clear()
        self.by_login.clear()

    def _unindex(self, key: int) -> None:
        known = self.get(key)
        if known is not None:
            self._unindex_position(key, known)

    def _unindex_position(self, key: int, position: Position) -> None:
        own = self.by_login.get(position.login)
        if own is not None:
            own.pop(key, None)
            if not own:
                del self.by_login[position.login]


@dataclass
class User(Watched):
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
class Position(Watched):
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
class Order(Watched):
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


# How the books persist: maps journaled by key (their key type; records by class), small nested
# maps compared whole at each commit, append-only lists, and counters.
KEYED: dict[str, type] = {
    "users": int,
    "positions": int,
    "orders": int,
    "requests": int,
    "quotes": str,
}
COMPARED = ("groups", "symbols")
APPENDED = ("deals", "history_orders")
COUNTERS = ("next_ticket", "next_login", "next_request", "rolled_over_to")


@dataclass
class Books:
    groups: dict[str, dict[str, Any]] = field(default_factory=default_groups)
    users: dict[int, User] = field(default_factory=dict)
    deals: list[Deal] = field(default_factory=list)
    positions: PositionMap = field(default_factory=PositionMap)
    orders: dict[int, Order] = field(default_factory=dict)
    history_orders: list[Order] = field(default_factory=list)
    quotes: dict[str, list[str]] = field(default_factory=dict)  # symbol -> [bid, ask]
    next_ticket: int = 1000
    next_login: int = FIRST_AUTO_LOGIN
    # Every symbol's Web API record once any was added, changed or deleted (through `symbol/*`
    # or the config file, see `config.catalogue_of`); empty: the built-in catalogue.
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
        self.replaced = False

    def __setattr__(self, name: str, value: Any) -> None:
        """Keyed maps are kept as `TrackedMap`s; a whole collection swapped for another cannot be
        journaled as a change set, so it marks the books `replaced` (the next commit snapshots)."""
        if name == "positions":
            value = PositionMap(value)
        elif name in KEYED:
            value = TrackedMap(value)
        if name in KEYED or name in APPENDED:
            object.__setattr__(self, "replaced", True)
        object.__setattr__(self, name, value)

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

    def positions_of(self, login: int) -> list[Position]:
        """`login`'s open positions, oldest first."""
        return list(self.positions.by_login.get(login, {}).values())

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


FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in (User, Deal, Position, Order)
}
RECORDS: dict[str, type] = {"users": User, "positions": Position, "orders": Order}
ROWS: dict[str, type] = {"deals": Deal, "history_orders": Order}
_ROW_OF = {name: attrgetter(*FIELDS[cls]) for name, cls in ROWS.items()}
# The journal is compacted into the snapshot once it outgrows both this and the snapshot itself
# (so rewriting the snapshot costs O(1) per journaled byte); a commit bringing more rows than
# BULK_ROWS (a generated history) is snapshotted rather than journaled.
COMPACT_MIN_BYTES = 16 * 2**20
BULK_ROWS = 20_000


def _plain(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in FIELDS[type(record)]}


def _revive(cls: type, names: tuple[str, ...], raw: Any) -> Any:
    """A record from a row under the field names it was written with (or an older file's dict)."""
    if isinstance(raw, dict):
        return cls(**raw)
    if names == FIELDS[cls]:
        return cls(*raw)
    return cls(**dict(zip(names, raw, strict=True)))


def _encode(name: str, value: Any) -> Any:
    return None if value is None else _plain(value) if name in RECORDS else value


def _decode(name: str, value: dict[str, Any]) -> Any:
    return RECORDS[name](**value) if name in RECORDS else value


def _dumps(raw: Any) -> bytes:
    # Money is kept as strings; a Decimal a config slipped in is written as one too.
    return json.dumps(raw, separators=(",", ":"), default=str).encode()


class Store:
    """The books on disk: a snapshot and, next to it, an append-only journal (`<file>.journal`,
    JSON lines) of the change sets committed since.

    `commit` appends what changed since the previous commit (new deals and history orders, the
    records of touched keys, changed groups and symbols, counters) and fsyncs it: the server
    commits before it answers, so an answered write survives a SIGKILL and a ticket once handed
    out is never handed out again. `load` replays the journal over the snapshot (a torn last
    line was never answered and is dropped). `compact` writes the snapshot atomically and empties
    the journal: at shutdown, and when the journal outgrows the snapshot. No path: memory only.

    Each record carries a sequence number and the snapshot the last one it includes, so a crash
    between writing the snapshot and emptying the journal replays nothing twice.
    """

    def __init__(self, path: Path | None, compact_bytes: int = COMPACT_MIN_BYTES) -> None:
        self.path = path
        self.journal = None if path is None else path.with_name(path.name + ".journal")
        self.compact_bytes = compact_bytes
        self._fd = -1
        self._seq = 0
        self._journal_bytes = self._header_bytes = self._snapshot_bytes = 0
        self._appended: dict[str, int] = {}
        self._copies: dict[str, Any] = {}
        self._counters: dict[str, Any] = {}

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> Books:
        if self.path is None or self.journal is None:
            return Books()
        books = self._read_snapshot(self.path)
        good, header = self._replay(books, self.journal)
        os.ftruncate(self._open_journal(), good)
        self._journal_bytes = good
        if header != self._fields():  # empty, or written by code with other fields: start anew
            self.compact(books)
        else:
            self._header_bytes = len(_dumps({"fields": header})) + 1
            self._baseline(books)
        return books

    @staticmethod
    def _fields() -> dict[str, list[str]]:
        return {name: list(FIELDS[cls]) for name, cls in ROWS.items()}

    def _read_snapshot(self, path: Path) -> Books:
        if not path.exists():
            return Books()
        data = path.read_bytes()
        self._snapshot_bytes = len(data)
        raw = json.loads(data)
        self._seq = int(raw.get("seq", 0))
        names = {name: tuple(raw.get("fields", {}).get(name, ())) for name in ROWS}
        books = Books(
            deals=[_revive(Deal, names["deals"], row) for row in raw["deals"]],
            history_orders=[
                _revive(Order, names["history_orders"], row)
                for row in raw.get("history_orders", [])
            ],
        )
        for name in COUNTERS:
            if name in raw:
                setattr(books, name, raw[name])
        # Groups added to the defaults since the file was written appear; the file's win, and
        # a default it no longer has was deleted.
        known = set(raw.get("default_groups", ()))
        books.groups = {
            **{name: group for name, group in books.groups.items() if name not in known},
            **raw["groups"],
        }
        books.symbols.update(raw.get("symbols", {}))
        for name, key_type in KEYED.items():
            target = getattr(books, name)
            for key, value in raw.get(name, {}).items():
                target[key_type(key)] = _decode(name, value)
        return books

    def _replay(self, books: Books, journal: Path) -> tuple[int, dict[str, list[str]]]:
        """Apply the journal's records newer than the snapshot; the length of its sound part and
        the field names it was written with."""
        good, header = 0, dict[str, list[str]]()
        if not journal.exists():
            return good, header
        with journal.open("rb") as file:
            for line in file:
                try:
                    record = json.loads(line) if line.endswith(b"\n") else None
                except ValueError:
                    record = None
                if record is None:
                    if file.read().strip():
                        raise ValueError(f"{journal}: corrupt record at byte {good}")
                    break  # the torn tail of a write that was never answered
                good += len(line)
                if "fields" in record:
                    header = record["fields"]
                elif record["seq"] > self._seq:
                    self._apply(books, record, header)
                    self._seq = record["seq"]
        return good, header

    @staticmethod
    def _apply(books: Books, record: dict[str, Any], header: dict[str, list[str]]) -> None:
        for row in record.get("deals", ()):
            books.add_deal(_revive(Deal, tuple(header["deals"]), row))
        for row in record.get("history_orders", ()):
            books.history_orders.append(_revive(Order, tuple(header["history_orders"]), row))
        for name in (*KEYED, *COMPARED):
            target = getattr(books, name)
            key_type = KEYED.get(name, str)
            for key, value in record.get(name, {}).items():
                if value is None:
                    target.pop(key_type(key), None)
                else:
                    target[key_type(key)] = _decode(name, value)
        for name, value in record.get("counters", {}).items():
            if name in COUNTERS:
                setattr(books, name, value)

    # -- committing ------------------------------------------------------------------------

    def commit(self, books: Books) -> None:
        """Make every change since the last commit durable (fsynced) before the caller answers."""
        if self.path is None:
            self._forget(books)
            return
        if books.replaced or any(
            not 0 <= len(getattr(books, name)) - self._appended[name] <= BULK_ROWS
            for name in APPENDED
        ):
            self.compact(books)  # swapped, shrunk (not by a change set) or bulk-loaded
            return
        record = self._changes(books)
        if not record:
            return
        self._seq += 1
        record["seq"] = self._seq
        line = _dumps(record) + b"\n"
        try:
            self._write(line)
        except OSError:
            books.replaced = True  # the journal missed this change set: snapshot next time
            raise
        self._journal_bytes += len(line)
        if self._journal_bytes > max(self.compact_bytes, self._snapshot_bytes):
            self.compact(books)

    def _changes(self, books: Books) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for name in APPENDED:
            rows = getattr(books, name)
            if len(rows) > self._appended[name]:
                record[name] = [_ROW_OF[name](r) for r in rows[self._appended[name] :]]
                self._appended[name] = len(rows)
        for name in KEYED:
            target = getattr(books, name)
            if target.touched:
                record[name] = {str(k): _encode(name, target.get(k)) for k in target.touched}
                target.touched.clear()
        for name in COMPARED:
            current, seen = getattr(books, name), self._copies[name]
            if current != seen:
                changed = {k: v for k, v in current.items() if seen.get(k) != v}
                record[name] = {**changed, **{k: None for k in seen if k not in current}}
                self._copies[name] = copy.deepcopy(current)
        counters = {name: getattr(books, name) for name in COUNTERS}
        if counters != self._counters:
            record["counters"] = self._counters = counters
        return record

    def _open_journal(self) -> int:
        if self._fd < 0 and self.journal is not None:
            self._fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return self._fd

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def compact(self, books: Books) -> None:
        """Write the whole books as the snapshot (atomically, fsynced), then empty the journal
        (also on a store not loaded: the books given replace whatever the files held)."""
        if self.path is None:
            self._forget(books)
            return
        raw: dict[str, Any] = {
            "seq": self._seq,
            "fields": self._fields(),
            # The built-in groups this version knew: a later version's new ones appear on load,
            # but one deleted through the Web API stays deleted.
            "default_groups": sorted(default_groups()),
            **{name: getattr(books, name) for name in (*COMPARED, *COUNTERS)},
            **{name: [_ROW_OF[name](r) for r in getattr(books, name)] for name in APPENDED},
            **{
                name: {str(k): _encode(name, v) for k, v in getattr(books, name).items()}
                for name in KEYED
            },
        }
        data = _dumps(raw)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        header = _dumps({"fields": self._fields()}) + b"\n"
        os.ftruncate(self._open_journal(), 0)
        self._write(header)
        self._snapshot_bytes = len(data)
        self._journal_bytes = self._header_bytes = len(header)
        self._baseline(books)

    def close(self, books: Books) -> None:
        """Shutdown: compact if the journal holds anything, and let go of it."""
        if self.path is None:
            return
        self.commit(books)
        if self._journal_bytes > self._header_bytes:
            self.compact(books)
        os.close(self._fd)
        self._fd = -1

    # -- what the last commit saw ----------------------------------------------------------

    @staticmethod
    def _forget(books: Books) -> None:
        for name in KEYED:
            getattr(books, name).touched.clear()
        books.replaced = False

    def _baseline(self, books: Books) -> None:
        self._forget(books)
        self._appended = {name: len(getattr(books, name)) for name in APPENDED}
        self._copies = {name: copy.deepcopy(getattr(books, name)) for name in COMPARED}
        self._counters = {name: getattr(books, name) for name in COUNTERS}
