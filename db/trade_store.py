# ruff: noqa: S608  (every statement here is built from this module's constants, never from input)
"""Bulk writes of MT5 deals: COPY into a session-local staging table, then one merge into the
partitioned `deals` table keyed by (server, deal).

Records stay as MT5 wrote them: the Web API answers every field as a string, and those strings
go to PostgreSQL unchanged in COPY's text format, where `numeric` reads them exactly (never
through a float). Only the time is added: the deal's UTC instant in milliseconds, from
`TimeMsc` on the server's clock (the caller knows the server's zone).

The merge:
1. the months the batch spans get their partition (`create_deals_month`, its own transaction);
2. a deal whose time a correction moved loses its old row (the key holds `time`, see
   `db.models.trading.DealRow`);
3. `INSERT ... ON CONFLICT (server, deal, time) DO UPDATE` overwrites a deal only when a field
   differs, stamping `updated_at`: a re-read of an unchanged deal writes nothing.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, all_, bindparam, delete, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from db.models.trading import SymbolRow

# (column, MT5 field, value when the server leaves the field out). Order is COPY's order.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("deal", "Deal", "0"),
    ("time_server", "Time", "0"),
    ("time_msc", "TimeMsc", "0"),
    ("login", "Login", "0"),
    ("order_ticket", "Order", "0"),
    ("action", "Action", "0"),
    ("entry", "Entry", "0"),
    ("reason", "Reason", "0"),
    ("symbol", "Symbol", ""),
    ("digits", "Digits", "0"),
    ("digits_currency", "DigitsCurrency", "0"),
    ("contract_size", "ContractSize", "0"),
    ("price", "Price", "0"),
    ("price_position", "PricePosition", "0"),
    ("volume", "Volume", "0"),
    ("volume_ext", "VolumeExt", "0"),
    ("volume_closed", "VolumeClosed", "0"),
    ("volume_closed_ext", "VolumeClosedExt", "0"),
    ("profit", "Profit", "0"),
    ("profit_raw", "ProfitRaw", "0"),
    ("storage", "Storage", "0"),
    ("commission", "Commission", "0"),
    ("fee", "Fee", "0"),
    ("rate_profit", "RateProfit", "0"),
    ("rate_margin", "RateMargin", "0"),
    ("market_bid", "MarketBid", "0"),
    ("market_ask", "MarketAsk", "0"),
    ("price_gateway", "PriceGateway", "0"),
    ("position_id", "PositionID", "0"),
    ("position_by_id", "PositionByID", "0"),
    ("dealer", "Dealer", "0"),
    ("expert_id", "ExpertID", "0"),
    ("flags", "Flags", "0"),
    ("external_id", "ExternalID", ""),
    ("gateway", "Gateway", ""),
    ("comment", "Comment", ""),
)
COLUMNS = tuple(column for column, _, _ in FIELDS)
# Free texts may hold what COPY's text format escapes; numbers never do.
_FREE_TEXT = {"Symbol", "ExternalID", "Gateway", "Comment"}
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
STAGING = "deal_staging"
STAGING_COLUMNS = ("server", "utc_msc", *COLUMNS)
# Made once per database session, emptied at each commit.
_STAGING_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} ON COMMIT DELETE ROWS AS "
    f"SELECT server, 0::bigint AS utc_msc, {', '.join(COLUMNS)} FROM deals WITH NO DATA"
)
_UTC = "(timestamptz 'epoch' + s.utc_msc * interval '1 millisecond')"
_MOVED = (
    f"DELETE FROM deals d USING {STAGING} s WHERE d.server = s.server AND d.deal = s.deal "
    f"AND d.time <> {_UTC}"
)
_COMPARED = [c for c in COLUMNS if c != "deal"]
_MERGE = (
    f"INSERT INTO deals (server, time, {', '.join(COLUMNS)}) "
    f"SELECT DISTINCT ON (s.deal) s.server, {_UTC}, {', '.join('s.' + c for c in COLUMNS)} "
    # A batch holding a deal twice (overlapping reads) writes it once; in ticket order, so
    # two writers of overlapping batches lock rows in the same order.
    f"FROM {STAGING} s ORDER BY s.deal "
    "ON CONFLICT (server, deal, time) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COMPARED)
    + ", updated_at = now() WHERE ("
    + ", ".join(f"deals.{c}" for c in _COMPARED)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"EXCLUDED.{c}" for c in _COMPARED)
    + ")"
)


_KEYS = tuple(key for _, key, _ in FIELDS)
_ALL_FIELDS = operator.itemgetter(*_KEYS)
_FREE_AT = tuple(i for i, key in enumerate(_KEYS) if key in _FREE_TEXT)


def copy_line(server: str, utc_msc: int, record: Mapping[str, str]) -> str:
    """One staging row in COPY's text format."""
    try:
        # The usual record: every field there, every value a string (one C call for all).
        values = list(_ALL_FIELDS(record))
        for index in _FREE_AT:
            values[index] = values[index].translate(_COPY_ESCAPES)
        return f"{server}\t{utc_msc}\t" + "\t".join(values) + "\n"
    except (KeyError, AttributeError, TypeError):
        pass
    slow = [server, str(utc_msc)]
    for _, key, default in FIELDS:
        value = str(record.get(key, default))
        slow.append(value.translate(_COPY_ESCAPES) if key in _FREE_TEXT else value)
    return "\t".join(slow) + "\n"


def copy_text(
    server: str, records: Iterable[Mapping[str, str]], utc_msc: Callable[[int], int]
) -> tuple[str, int, int]:
    """The COPY text of `records`, with the earliest and latest UTC milliseconds in it (for the
    partitions); `utc_msc` maps a `TimeMsc` to UTC."""
    lines: list[str] = []
    low, high = 2**63, -(2**63)
    for record in records:
        moment = utc_msc(int(record.get("TimeMsc") or int(record["Time"]) * 1000))
        low, high = min(low, moment), max(high, moment)
        lines.append(copy_line(server, moment, record))
    return "".join(lines), low, high


def months_between(low_msc: int, high_msc: int) -> list[datetime]:
    """The first day of each UTC month from `low_msc` to `high_msc`."""
    first = datetime.fromtimestamp(low_msc / 1000, UTC)
    last = datetime.fromtimestamp(high_msc / 1000, UTC)
    month, months = datetime(first.year, first.month, 1, tzinfo=UTC), []
    while month <= last:
        months.append(month)
        month = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return months


@dataclass
class Batch:
    """Deals ready for COPY: `lines` in COPY text, `count` rows, UTC span in milliseconds."""

    lines: str
    count: int
    low_msc: int
    high_msc: int


class DealStore:
    """Writes batches of deals for any server. Remembers the months it has made partitions for
    (a partition is never dropped while it runs)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._months: set[datetime] = set()

    async def ensure_months(self, low_msc: int, high_msc: int) -> None:
        missing = [m for m in months_between(low_msc, high_msc) if m not in self._months]
        if not missing:
            return
        # Its own short transaction: the partition's lock on `deals` is not held while rows load.
        async with self._sessions.begin() as session:
            for month in missing:
                await session.execute(
                    text("SELECT create_deals_month(:month)"), {"month": month.date()}
                )
        self._months.update(missing)

    async def merge(self, connection: AsyncConnection, batch: Batch) -> int:
        """COPY `batch` to staging and merge it into `deals` in `connection`'s transaction (the
        caller commits, with whatever else belongs to the batch). Answers rows inserted or
        changed."""
        if batch.count == 0:
            return 0
        await self.ensure_months(batch.low_msc, batch.high_msc)
        await stage(connection, batch.lines)
        # The staging table has no statistics (ANALYZE would cost more than the merge): make
        # sure the moved-deal check probes the key index rather than scanning the partitions.
        await connection.execute(text("SET LOCAL enable_hashjoin = off"))
        await connection.execute(text("SET LOCAL enable_mergejoin = off"))
        await connection.execute(text(_MOVED))
        result = await connection.execute(text(_MERGE))
        return int(result.rowcount or 0)


async def stage(connection: AsyncConnection, lines: str, table: str = STAGING) -> None:
    """COPY `lines` into `table` (the staging table, created for this session when missing)."""
    if table == STAGING:
        await connection.execute(text(_STAGING_DDL))
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with driver.cursor() as cursor:
        columns = ", ".join(STAGING_COLUMNS)
        async with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            await copy.write(lines.encode())


# -- orders, positions, account states ---------------------------------------------------------
#
# Far fewer rows than deals (open positions, accounts, the orders of a few seconds), so each is
# a plain COPY to a session-local staging table shaped like its target and one statement or two.
# A column is (column, MT5 field, value when missing); a time column's MT5 field is a
# millisecond stamp on the server's clock, converted to the UTC instant by the caller's
# `utc_msc` (0: no time, NULL).


@dataclass(frozen=True)
class StateTable:
    name: str
    key: str  # the ticket or login column (the other key column is `server`)
    fields: tuple[tuple[str, str, str], ...]
    times: tuple[tuple[str, str], ...] = ()  # (column, MT5 millisecond field): UTC instants

    @property
    def columns(self) -> tuple[str, ...]:
        return ("server", *(c for c, _, _ in self.fields), *(c for c, _ in self.times))

    @property
    def staging(self) -> str:
        return f"{self.name}_staging"


POSITIONS = StateTable(
    "positions",
    "position",
    (
        ("position", "Position", "0"),
        ("login", "Login", "0"),
        ("symbol", "Symbol", ""),
        ("action", "Action", "0"),
        ("reason", "Reason", "0"),
        ("digits", "Digits", "0"),
        ("digits_currency", "DigitsCurrency", "0"),
        ("time_create_msc", "TimeCreateMsc", "0"),
        ("time_update_msc", "TimeUpdateMsc", "0"),
        ("contract_size", "ContractSize", "0"),
        ("price_open", "PriceOpen", "0"),
        ("price_current", "PriceCurrent", "0"),
        ("price_sl", "PriceSL", "0"),
        ("price_tp", "PriceTP", "0"),
        ("volume", "Volume", "0"),
        ("volume_ext", "VolumeExt", "0"),
        ("profit", "Profit", "0"),
        ("storage", "Storage", "0"),
        ("rate_profit", "RateProfit", "0"),
        ("rate_margin", "RateMargin", "0"),
        ("dealer", "Dealer", "0"),
        ("expert_id", "ExpertID", "0"),
        ("external_id", "ExternalID", ""),
        ("comment", "Comment", ""),
    ),
    (("time_create", "TimeCreateMsc"), ("time_update", "TimeUpdateMsc")),
)
HISTORY_ORDERS = StateTable(
    "history_orders",
    "order_ticket",
    (
        ("order_ticket", "Order", "0"),
        ("login", "Login", "0"),
        ("symbol", "Symbol", ""),
        ("type", "Type", "0"),
        ("state", "State", "0"),
        ("reason", "Reason", "0"),
        ("type_fill", "TypeFill", "0"),
        ("type_time", "TypeTime", "0"),
        ("digits", "Digits", "0"),
        ("digits_currency", "DigitsCurrency", "0"),
        ("time_setup_msc", "TimeSetupMsc", "0"),
        ("time_done_msc", "TimeDoneMsc", "0"),
        ("time_expiration", "TimeExpiration", "0"),
        ("price_order", "PriceOrder", "0"),
        ("price_trigger", "PriceTrigger", "0"),
        ("price_sl", "PriceSL", "0"),
        ("price_tp", "PriceTP", "0"),
        ("volume_initial", "VolumeInitial", "0"),
        ("volume_initial_ext", "VolumeInitialExt", "0"),
        ("volume_current", "VolumeCurrent", "0"),
        ("volume_current_ext", "VolumeCurrentExt", "0"),
        ("position_id", "PositionID", "0"),
        ("position_by_id", "PositionByID", "0"),
        ("dealer", "Dealer", "0"),
        ("expert_id", "ExpertID", "0"),
        ("external_id", "ExternalID", ""),
        ("comment", "Comment", ""),
    ),
    (("time_setup", "TimeSetupMsc"), ("time_done", "TimeDoneMsc")),
)
# Pending orders open now: a snapshot like positions, with the history orders' fields but the
# done time, and two that not every build's order record holds (`\\N`: NULL when absent).
OPEN_ORDERS = StateTable(
    "open_orders",
    "order_ticket",
    (
        *(field for field in HISTORY_ORDERS.fields if field[0] != "time_done_msc"),
        ("price_current", "PriceCurrent", "\\N"),
        ("contract_size", "ContractSize", "\\N"),
    ),
    (("time_setup", "TimeSetupMsc"),),
)
ACCOUNT_STATES = StateTable(
    "account_states",
    "login",
    (
        ("login", "Login", "0"),
        ("currency_digits", "CurrencyDigits", "2"),
        ("balance", "Balance", "0"),
        ("credit", "Credit", "0"),
        ("equity", "Equity", "0"),
        ("margin", "Margin", "0"),
        ("margin_free", "MarginFree", "0"),
        ("margin_level", "MarginLevel", "0"),
        ("profit", "Profit", "0"),
        ("storage", "Storage", "0"),
        ("floating", "Floating", "0"),
    ),
)
_STATE_FREE_TEXT = {"Symbol", "ExternalID", "Comment"}
# What an account's history row holds (everything but the key and the stamps).
_ACCOUNT_FIGURES = [c for c, _, _ in ACCOUNT_STATES.fields if c != "login"]


def state_copy_text(
    table: StateTable,
    server: str,
    records: Iterable[Mapping[str, str]],
    utc_msc: Callable[[int], int],
) -> str:
    """The COPY text of `records` for `table`'s staging table."""
    lines = []
    for record in records:
        values = [server]
        for _, key, default in table.fields:
            value = str(record.get(key, default))
            values.append(value.translate(_COPY_ESCAPES) if key in _STATE_FREE_TEXT else value)
        for _, key in table.times:
            stamp = int(record.get(key) or 0)
            values.append(_utc_text(utc_msc(stamp)) if stamp else "\\N")
        lines.append("\t".join(values) + "\n")
    return "".join(lines)


def _utc_text(msc: int) -> str:
    return datetime.fromtimestamp(msc / 1000, UTC).isoformat()


async def _stage_state(connection: AsyncConnection, table: StateTable, lines: str) -> None:
    await connection.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {table.staging} ON COMMIT DELETE ROWS AS "
            f"SELECT {', '.join(table.columns)} FROM {table.name} WITH NO DATA"
        )
    )
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with driver.cursor() as cursor:
        columns = ", ".join(table.columns)
        async with cursor.copy(f"COPY {table.staging} ({columns}) FROM STDIN") as copy:
            await copy.write(lines.encode())


def _upsert(table: StateTable, stamp: str | None = None) -> str:
    """INSERT from staging, one row per key; an existing row is overwritten when a field
    differs (`updated_at` then moves). `stamp`: a column set to the `:at` parameter on insert
    and on every overwrite."""
    columns = list(table.columns)
    compared = [c for c in columns if c not in ("server", table.key)]
    extra = [stamp] if stamp else []
    return (
        f"INSERT INTO {table.name} ({', '.join(columns + extra)}) "
        f"SELECT DISTINCT ON (s.{table.key}) {', '.join('s.' + c for c in columns)}"
        + (", :at" if stamp else "")
        + f" FROM {table.staging} s ORDER BY s.{table.key} "
        f"ON CONFLICT (server, {table.key}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in compared + extra)
        + ", updated_at = now() WHERE ("
        + ", ".join(f"{table.name}.{c}" for c in compared)
        + ") IS DISTINCT FROM ("
        + ", ".join(f"EXCLUDED.{c}" for c in compared)
        + ")"
    )


async def replace_snapshot(
    connection: AsyncConnection, table: StateTable, server: str, lines: str, seen_at: datetime
) -> int:
    """`lines`, a complete snapshot of `table`'s rows of `server`, upserted (a row changes, and
    its `seen_at` with it, when a field did); rows missing from it deleted, in the caller's
    transaction. Answers rows inserted, changed or deleted."""
    await _stage_state(connection, table, lines)
    written = await connection.execute(text(_upsert(table, "seen_at")), {"at": seen_at})
    gone = await connection.execute(
        text(
            f"DELETE FROM {table.name} t WHERE t.server = :server AND NOT EXISTS "
            f"(SELECT 1 FROM {table.staging} s WHERE s.{table.key} = t.{table.key})"
        ),
        {"server": server},
    )
    return int(written.rowcount or 0) + int(gone.rowcount or 0)


async def open_order_tickets(connection: AsyncConnection, server: str) -> set[str]:
    """The tickets of `server`'s orders open at the last committed snapshot (as MT5 writes
    them: decimal strings)."""
    result = await connection.execute(
        text("SELECT order_ticket FROM open_orders WHERE server = :server"), {"server": server}
    )
    return {str(ticket) for ticket in result.scalars()}


class TradeStateStore:
    """Writes positions snapshots, history orders and account states for any server."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._months: set[datetime] = set()

    async def replace_positions(
        self, connection: AsyncConnection, server: str, lines: str, seen_at: datetime
    ) -> int:
        """`lines`, a complete snapshot of `server`'s open positions, upserted (a row changes,
        and its `seen_at` with it, when a field did); positions missing from it (closed since)
        deleted. Answers rows inserted, changed or deleted."""
        return await replace_snapshot(connection, POSITIONS, server, lines, seen_at)

    async def replace_open_orders(
        self, connection: AsyncConnection, server: str, lines: str, seen_at: datetime
    ) -> int:
        """The same for `server`'s pending orders: a complete snapshot replaces the last one
        (an order filled, cancelled or expired since is deleted)."""
        return await replace_snapshot(connection, OPEN_ORDERS, server, lines, seen_at)

    async def merge_orders(self, connection: AsyncConnection, lines: str) -> int:
        """History orders upserted by ticket (a changed one overwritten). Answers rows written."""
        if not lines:
            return 0
        await _stage_state(connection, HISTORY_ORDERS, lines)
        result = await connection.execute(text(_upsert(HISTORY_ORDERS)))
        return int(result.rowcount or 0)

    async def merge_accounts(
        self, connection: AsyncConnection, lines: str, taken_at: datetime
    ) -> int:
        """Account states: a history row for each account whose figures changed (or new),
        then the current state overwritten. Answers accounts changed."""
        if not lines:
            return 0
        await self._ensure_month(taken_at)
        await _stage_state(connection, ACCOUNT_STATES, lines)
        figures = ", ".join(_ACCOUNT_FIGURES)
        changed = await connection.execute(
            text(
                f"INSERT INTO account_state_history (server, login, taken_at, {figures}) "
                f"SELECT DISTINCT ON (s.login) s.server, s.login, :at, "
                f"{', '.join('s.' + c for c in _ACCOUNT_FIGURES)} "
                f"FROM {ACCOUNT_STATES.staging} s LEFT JOIN account_states a "
                "ON a.server = s.server AND a.login = s.login "
                "WHERE a.login IS NULL OR ("
                + ", ".join(f"a.{c}" for c in _ACCOUNT_FIGURES)
                + ") IS DISTINCT FROM ("
                + ", ".join(f"s.{c}" for c in _ACCOUNT_FIGURES)
                + ") ORDER BY s.login ON CONFLICT DO NOTHING"
            ),
            {"at": taken_at},
        )
        await connection.execute(text(_upsert(ACCOUNT_STATES, "taken_at")), {"at": taken_at})
        return int(changed.rowcount or 0)

    async def _ensure_month(self, moment: datetime) -> None:
        month = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        if month in self._months:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                text("SELECT create_account_states_month(:month)"), {"month": month.date()}
            )
        self._months.add(month)


# -- symbols -------------------------------------------------------------------------------------
#
# A few hundred to a few thousand rows per server, read whole every few minutes: built as rows
# here and upserted in one statement. Numbers as MT5 wrote them (Decimal from the strings);
# the whole record is kept in `raw`, and a row is rewritten only when `raw` differs.

# (column, MT5 field) of the numbers every symbol record has; a record without one is skipped.
_SYMBOL_REQUIRED: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("calc_mode", "CalcMode", int),
    ("digits", "Digits", int),
    ("contract_size", "ContractSize", Decimal),
)
# (column, MT5 field, parse) of the fields NULL when the server does not give them.
_SYMBOL_OPTIONAL: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("trade_mode", "TradeMode", int),
    ("spread_balance", "SpreadBalance", int),
    ("spread_diff", "SpreadDiff", int),
    ("margin_initial", "MarginInitial", Decimal),
    ("margin_maintenance", "MarginMaintenance", Decimal),
    ("margin_hedged", "MarginHedged", Decimal),
    ("margin_rate_liquidity", "MarginRateLiquidity", Decimal),
    ("margin_rate_currency", "MarginRateCurrency", Decimal),
    ("tick_size", "TickSize", Decimal),
    ("tick_value", "TickValue", Decimal),
    ("margin_flags", "MarginFlags", int),
)


_SYMBOL_COLUMNS = (
    "server", "symbol", "path", "spread", "currency_base", "currency_profit", "currency_margin",
    "margin_rate_initial", "margin_rate_maintenance", "raw", "seen_at", "point",
    *(column for column, _, _ in _SYMBOL_REQUIRED + _SYMBOL_OPTIONAL),
)  # fmt: skip
_SYMBOL_CHANGING = [c for c in _SYMBOL_COLUMNS if c not in ("server", "symbol")]
_MERGE_SYMBOLS = (
    f"INSERT INTO symbols ({', '.join(_SYMBOL_COLUMNS)}) "
    f"SELECT {', '.join(_SYMBOL_COLUMNS)} "
    "FROM jsonb_populate_recordset(NULL::symbols, CAST(:rows AS jsonb)) "
    "ON CONFLICT (server, symbol) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _SYMBOL_CHANGING)
    + ", updated_at = now() WHERE symbols.raw IS DISTINCT FROM EXCLUDED.raw"
)


def _json_value(value: object) -> str:
    """Decimals and instants in the JSON of `_MERGE_SYMBOLS`: as text, read exactly."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def _rates(value: object) -> list[Decimal] | None:
    """A per-order-type rate table: MT5's array, or one number for every type."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [Decimal(str(v)) for v in value]
    return [Decimal(str(value))]


def symbol_row(server: str, record: Mapping[str, Any], seen_at: datetime) -> dict[str, Any] | None:
    """A `symbols` row from a `symbol/get`/`symbol/next` record; None when the record lacks
    the symbol's name or one of the numbers every symbol has."""
    name = str(record.get("Symbol") or "")
    if not name or any(record.get(key) in (None, "") for _, key, _ in _SYMBOL_REQUIRED):
        return None
    row: dict[str, Any] = {
        "server": server,
        "symbol": name,
        "path": str(record.get("Path") or ""),
        "spread": int(str(record.get("Spread") or 0)),
        "currency_base": str(record.get("CurrencyBase") or ""),
        "currency_profit": str(record.get("CurrencyProfit") or ""),
        "currency_margin": str(record.get("CurrencyMargin") or ""),
        "margin_rate_initial": _rates(record.get("MarginRateInitial")),
        "margin_rate_maintenance": _rates(record.get("MarginRateMaintenance")),
        "raw": dict(record),
        "seen_at": seen_at,
    }
    for column, key, parse in _SYMBOL_REQUIRED:
        row[column] = parse(str(record[key]))
    for column, key, parse in _SYMBOL_OPTIONAL:
        value = record.get(key)
        row[column] = None if value in (None, "") else parse(str(value))
    point = record.get("Point")
    # MT5's point is one unit of the last digit; a record without `Point` has it from `Digits`.
    row["point"] = (
        Decimal(str(point)) if point not in (None, "") else Decimal(1).scaleb(-row["digits"])
    )
    return row


async def merge_symbols(
    connection: AsyncConnection,
    server: str,
    records: Iterable[Mapping[str, Any]],
    seen_at: datetime,
    *,
    complete: bool,
) -> int:
    """`server`'s symbols upserted (a row rewritten, `seen_at` and `updated_at` with it, only
    when its record changed); with `complete`, the symbols missing from `records` (deleted in
    MT5) deleted. Answers rows inserted, changed or deleted."""
    rows = {
        row["symbol"]: row
        for row in (symbol_row(server, r, seen_at) for r in records)
        if row is not None
    }
    written = 0
    if rows:
        # One statement whatever the count: the rows travel as one JSON array, which
        # `jsonb_populate_recordset` reads as `symbols` rows (numbers from their strings).
        payload = json.dumps(list(rows.values()), default=_json_value)
        result = await connection.execute(text(_MERGE_SYMBOLS), {"rows": payload})
        written = int(result.rowcount or 0)
    if complete:
        names = bindparam("names", list(rows), type_=ARRAY(Text))
        gone = await connection.execute(
            delete(SymbolRow).where(SymbolRow.server == server, SymbolRow.symbol != all_(names))
        )
        written += int(gone.rowcount or 0)
    return written
