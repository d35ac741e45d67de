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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

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


def copy_line(server: str, utc_msc: int, record: Mapping[str, str]) -> str:
    """One staging row in COPY's text format."""
    values = [server, str(utc_msc)]
    for _, key, default in FIELDS:
        value = str(record.get(key, default))
        values.append(value.translate(_COPY_ESCAPES) if key in _FREE_TEXT else value)
    return "\t".join(values) + "\n"


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
