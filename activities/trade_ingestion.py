"""Deals from an MT5 server into `deals`: the live follower's poll loop and the range copy of a
back-fill, both reading `deal/get_batch` over every group (`*`) by server-time window.

A batch answers at most `MAX_DEAL_BATCH` deals, the lowest tickets of the window, so a full
answer is not used: the window shrinks to what the answer's time span suggests holds
`TARGET_DEALS` and is read again. Windows then adapt to the density they meet. Reading the next
window overlaps writing the last one (HTTP and JSON here, COPY and the merge in PostgreSQL).

The follower reads from `watermark - OVERLAP` to an open end, so a deal committed late within
the overlap is still read; deals it already wrote unchanged are not written again, changed ones
are (a dealer's correction). Corrections older than the overlap are picked up by a back-fill of
their range. Every merge commits the new watermark with the deals: a killed run loses nothing
and a re-read duplicates nothing (the upsert is keyed by server and ticket).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import MetricMeter

from contracts.steps import implements
from contracts.trade_ingestion import (
    CopiedDeals,
    DealRange,
    FollowDeals,
    FollowedDeals,
    FollowedTradeState,
    FollowTradeState,
    copy_deal_range,
    follow_deals,
    follow_trade_state,
)
from db.models.trading import IngestionState
from db.trade_store import (
    ACCOUNT_STATES,
    HISTORY_ORDERS,
    OPEN_ORDERS,
    POSITIONS,
    Batch,
    DealStore,
    TradeStateStore,
    copy_text,
    merge_symbols,
    open_order_tickets,
    state_copy_text,
)
from mt5_adapter.gateway import Mt5Gateway
from mt5_adapter.server_time import ServerZone
from mt5_adapter.webapi import MAX_DEAL_BATCH

log = logging.getLogger("brokerflow.trade_ingestion")

ALL_GROUPS = "*"
TARGET_DEALS = 50_000  # per window: ~45 MB of JSON; fewer windows, fewer server-side scans
SECOND = timedelta(seconds=1)
GROWTH = 4
# A back-fill reads accounts by login: this many at first, then as many as held about
# TARGET_DEALS last time, at most MAX_LOGINS (the list travels in the URL).
FIRST_LOGINS = 50
MAX_LOGINS = 500
DENSITY_SAMPLE = 1_000  # deals a window needs before its density is trusted
# How far back each poll reads again, for deals the server committed after a poll that saw
# later ones.
OVERLAP = timedelta(seconds=2)
# Reads "up to now" go this far ahead, as a server clock may run ahead of ours.
OPEN_END = timedelta(days=1)
# Poll again at once after data; when idle, wait longer each time, up to IDLE_POLL.
BUSY_POLL = 0.2
IDLE_POLL = 2.0
# An idle follower still stamps `ingestion_state.last_poll_at` this often: its heartbeat, which
# the console's "stuck" alert reads.
HEARTBEAT_EVERY = 15.0
# Positions, account states and history orders: read every STATE_POLL seconds.
STATE_POLL = 5.0


def utc_converter(zone: ServerZone) -> Callable[[int], int]:
    """Server-clock milliseconds → UTC milliseconds, the zone's offset looked up once a minute
    (offsets change on whole minutes)."""
    offsets: dict[int, int] = {}

    def convert(server_msc: int) -> int:
        minute = server_msc // 60_000
        offset = offsets.get(minute)
        if offset is None:
            utc = zone.moment(minute * 60)
            offset = offsets[minute] = minute * 60_000 - int(utc.timestamp()) * 1000
        return server_msc - offset

    return convert


@dataclass
class Window:
    """One page read: the deals of [since, until] of `logins` (None: of every account)."""

    since: datetime
    until: datetime
    records: list[dict[str, str]]
    logins: tuple[int, ...] | None = None


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


Fetch = Callable[[datetime, datetime], Awaitable[list[dict[str, str]]]]


async def read_windows(
    gateway: Mt5Gateway,
    since: datetime,
    until: datetime,
    *,
    first: timedelta | None = None,
    logins: tuple[int, ...] | None = None,
) -> AsyncIterator[Window]:
    """The deals of [since, until] window by window (inclusive whole seconds, in time order),
    none of them a full batch. `first`: the first window's width (None: the whole range);
    `logins`: only theirs (None: every account's)."""

    async def fetch(start: datetime, end: datetime) -> list[dict[str, str]]:
        return await gateway.deal_records(ALL_GROUPS, start, end, logins=logins)

    zone = await gateway.server_zone()
    async for window in windows_of(fetch, zone, since, until, first=first, time_key="Time"):
        window.logins = logins
        yield window


async def windows_of(
    fetch: Fetch,
    zone: ServerZone,
    since: datetime,
    until: datetime,
    *,
    first: timedelta | None,
    time_key: str,
) -> AsyncIterator[Window]:
    """What `fetch` answers for [since, until], window by window, none a full batch; records
    are timed by `time_key` (server-clock seconds)."""
    start, width = whole_second(since), first
    until = whole_second(until)
    while start <= until:
        end = until if width is None else min(until, start + width)
        records = await fetch(start, end)
        if len(records) >= MAX_DEAL_BATCH and end > start:
            width = _narrower(records, zone.server_seconds(start), end - start, time_key)
            continue
        yield Window(start, end, records)
        width = _next_width(records, end - start + SECOND, time_key)
        start = end + SECOND


def history_by_setup(gateway: Mt5Gateway) -> Fetch:
    """Reads the history orders of every account set up in a window (`history/get_batch`)."""

    async def fetch(start: datetime, end: datetime) -> list[dict[str, str]]:
        params = {"group": ALL_GROUPS, **await gateway.window(start, end)}
        return await gateway.records("history/get_batch", params)

    return fetch


async def read_by_logins(
    gateway: Mt5Gateway, since: datetime, until: datetime
) -> AsyncIterator[Window]:
    """The deals of [since, until] a few accounts at a time (`deal/get_batch?login=…` over the
    whole range), none of them a full batch.

    Why not time windows over every account: a server answers a window by walking every deal
    of every account (the simulator does, and MT5 keeps deals per account too), so a range
    read as N windows costs N walks of the whole history; by accounts, each deal is walked
    once. The accounts per page adapt to what the last page held (about TARGET_DEALS); an
    account with more than a batch in the range alone is read window by window. Accounts
    opened after the list was read are not in it: a back-fill is of the past, the follower
    reads every account."""
    logins = await gateway.logins(ALL_GROUPS)
    since, until = whole_second(since), whole_second(until)
    at, size = 0, FIRST_LOGINS
    while at < len(logins):
        chunk = tuple(logins[at : at + size])
        records = await gateway.deal_records(ALL_GROUPS, since, until, logins=chunk)
        if len(records) >= MAX_DEAL_BATCH:
            if len(chunk) > 1:
                size = max(1, min(len(chunk) // 2, len(chunk) * TARGET_DEALS // len(records)))
                continue
            async for window in read_windows(
                gateway, since, until, first=timedelta(hours=1), logins=chunk
            ):
                yield window
        else:
            yield Window(since, until, records, chunk)
        at += len(chunk)
        density = max(len(records), 1) / len(chunk)
        size = max(1, min(len(chunk) * GROWTH, MAX_LOGINS, int(TARGET_DEALS / density)))


def _times(records: list[dict[str, str]], key: str) -> tuple[int, int]:
    seconds = [int(r[key]) for r in records]
    return min(seconds), max(seconds)


def _narrower(
    records: list[dict[str, str]], start: int, width: timedelta, key: str = "Time"
) -> timedelta:
    """After a full answer (the lowest tickets, which run about in time order): a width from
    `start` (server seconds) to where about TARGET_DEALS of its deals lie, less than `width`."""
    low, high = _times(records, key)
    reach = low - start + (high - low) * TARGET_DEALS / len(records)
    return whole(min(timedelta(seconds=reach), width - SECOND), least=timedelta(0))


def _next_width(records: list[dict[str, str]], span: timedelta, key: str = "Time") -> timedelta:
    """The next window: about TARGET_DEALS at the density of this one's deals (measured over
    their own time spread, not the window's), growing at most fourfold at a time."""
    if len(records) < DENSITY_SAMPLE:
        return whole(span * GROWTH)
    low, high = _times(records, key)
    guess = timedelta(seconds=max(1, high - low) * TARGET_DEALS / len(records))
    return whole(min(guess, span * GROWTH))


def whole(width: timedelta, least: timedelta = SECOND) -> timedelta:
    """`width` in whole seconds (windows are whole server seconds), at least `least`."""
    return max(least, timedelta(seconds=int(width.total_seconds())))


class DealIngestion:
    """One server's deal steps (on its MT5 task queue)."""

    def __init__(
        self, server: str, sessions: async_sessionmaker[AsyncSession], gateway: Mt5Gateway
    ) -> None:
        self.server = server
        self._sessions = sessions
        self.gateway = gateway
        self._store = DealStore(sessions)
        self._state_store = TradeStateStore(sessions)
        self._metrics: Metrics | None = None

    @property
    def metrics(self) -> Metrics:
        """Made on first use, inside an activity (where the worker's meter is)."""
        if self._metrics is None:
            self._metrics = Metrics(activity.metric_meter(), self.server)
        return self._metrics

    async def _batch(self, records: list[dict[str, str]]) -> Batch:
        lines, low, high = copy_text(
            self.server, records, utc_converter(await self.gateway.server_zone())
        )
        return Batch(lines, len(records), low, high)

    async def copy_range(
        self,
        since: datetime,
        until: datetime,
        *,
        first: timedelta | None = None,
        on_window: Callable[[Window], None] | None = None,
        by_login: bool = True,
    ) -> CopiedDeals:
        """Every deal of [since, until] upserted, the next page read while the last is
        written; pages of a few accounts each (`read_by_logins`), or with `by_login` False
        time windows over every account (the follower's reads)."""
        windows: asyncio.Queue[Window | None] = asyncio.Queue(maxsize=1)

        async def read() -> None:
            pages = (
                read_by_logins(self.gateway, since, until)
                if by_login
                else read_windows(self.gateway, since, until, first=first)
            )
            async for window in pages:
                await windows.put(window)
            await windows.put(None)

        reader = asyncio.create_task(read())

        async def next_window() -> Window | None:
            """The next window read, or None when the reader has ended (raising its error)."""
            getter = asyncio.ensure_future(windows.get())
            await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                return getter.result()
            getter.cancel()
            reader.result()
            return None

        deals = count = 0
        try:
            while (window := await next_window()) is not None:
                batch = await self._batch(window.records)
                async with self._sessions.begin() as session:
                    await self._store.merge(await session.connection(), batch)
                deals, count = deals + batch.count, count + 1
                if on_window is not None:
                    on_window(window)
            await reader
        finally:
            reader.cancel()
        return CopiedDeals(deals=deals, windows=count)

    @implements(copy_deal_range)
    async def copy_deal_range(self, request: DealRange) -> CopiedDeals:
        copied = await self.copy_range(request.since, request.until, first=timedelta(hours=1))
        orders = await self.copy_history_orders(request.since, request.until)
        return copied.model_copy(update={"orders": orders})

    async def copy_history_orders(self, since: datetime, until: datetime) -> int:
        """Every history order set up in [since, until] (`history/get_batch?group=*` by
        setup-time windows, none a full batch) upserted; answers rows written. What the
        follower missed while none ran, in the range a back-fill is given."""
        zone = await self.gateway.server_zone()
        convert = utc_converter(zone)
        written = 0
        async for window in windows_of(
            history_by_setup(self.gateway), zone, since, until, first=timedelta(hours=1),
            time_key="TimeSetup",
        ):  # fmt: skip
            lines = state_copy_text(HISTORY_ORDERS, self.server, window.records, convert)
            async with self._sessions.begin() as session:
                written += await self._state_store.merge_orders(await session.connection(), lines)
        return written

    @implements(follow_deals)
    async def follow_deals(self, request: FollowDeals) -> FollowedDeals:
        follower = Follower(self, await self._watermark(request.start_from))
        deadline = time.monotonic() + request.run_seconds
        pause = BUSY_POLL
        while time.monotonic() < deadline:
            try:
                written = await follower.poll()
            except Exception as exc:
                await self._record_error(exc)
                raise
            pause = BUSY_POLL if written else min(IDLE_POLL, pause * 2)
            await asyncio.sleep(pause)
        return FollowedDeals(
            deals=follower.deals, polls=follower.polls, watermark=follower.watermark
        )

    @implements(follow_trade_state)
    async def follow_trade_state(self, request: FollowTradeState) -> FollowedTradeState:
        async with self._sessions.begin() as session:
            state = await session.get(IngestionState, self.server)
        since = request.start_from
        if state is not None and state.orders_watermark is not None:
            since = state.orders_watermark
        follower = StateFollower(
            self,
            since,
            symbols_every=timedelta(seconds=request.symbols_every),
            symbols_at=None if state is None else state.symbols_at,
        )
        deadline = time.monotonic() + request.run_seconds
        while True:
            try:
                await follower.poll()
            except Exception as exc:
                await self._record_error(exc)
                raise
            if time.monotonic() + STATE_POLL >= deadline:
                break
            await asyncio.sleep(STATE_POLL)
        return FollowedTradeState(
            polls=follower.polls,
            positions=follower.positions,
            orders=follower.orders,
            accounts=follower.accounts,
            open_orders=follower.open_orders,
            symbols=follower.symbols,
        )

    async def save_state(self, session: AsyncSession, **values: object) -> None:
        """`ingestion_state` of this server updated with `values` (the row made if missing)."""
        values = {**values, "updated_at": now()}
        await session.execute(
            insert(IngestionState)
            .values(server=self.server, **values)
            .on_conflict_do_update(index_elements=["server"], set_=values)
        )

    async def _watermark(self, start_from: datetime) -> datetime:
        async with self._sessions.begin() as session:
            state = await session.get(IngestionState, self.server)
        if state is None or state.watermark is None:
            return start_from
        return state.watermark

    async def _record_error(self, exc: Exception) -> None:
        try:
            async with self._sessions.begin() as session:
                await session.execute(
                    insert(IngestionState)
                    .values(server=self.server, last_error=repr(exc)[:2000], last_error_at=now())
                    .on_conflict_do_update(
                        index_elements=["server"],
                        set_={"last_error": repr(exc)[:2000], "last_error_at": now()},
                    )
                )
        except Exception:  # the step's own failure is what counts; this is its note
            log.exception("could not record the ingestion error of %s", self.server)
        self.metrics.errors.add(1)

    async def merge_with_state(
        self, records: list[dict[str, str]], watermark: datetime, lag: timedelta, rate: Decimal
    ) -> None:
        """`records` upserted and the server's state moved on, in one transaction."""
        batch = await self._batch(records)
        async with self._sessions.begin() as session:
            await self._store.merge(await session.connection(), batch)
            values = {
                "watermark": watermark,
                "lag_seconds": seconds_of(lag),
                "rows_per_second": rate.quantize(Decimal("0.1")),
                "last_poll_at": now(),
                "updated_at": now(),
            }
            await session.execute(
                insert(IngestionState)
                .values(server=self.server, deals_ingested=batch.count, **values)
                .on_conflict_do_update(
                    index_elements=["server"],
                    set_={
                        **values,
                        "deals_ingested": IngestionState.deals_ingested + batch.count,
                    },
                )
            )


def seconds_of(span: timedelta) -> Decimal:
    """A span in seconds to the millisecond, exactly (no binary fraction on the way)."""
    micros = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
    return (Decimal(micros) / 1_000_000).quantize(Decimal("0.001"))


def rows_per_second(rows: int, elapsed_ns: int) -> Decimal:
    return Decimal(rows) * 1_000_000_000 / max(elapsed_ns, 1_000_000)


def now() -> datetime:
    return datetime.now(UTC)


class Follower:
    """The live loop's memory between polls: the watermark and the deals of the overlap as last
    written (a re-read that finds one unchanged does not write it again)."""

    def __init__(self, ingestion: DealIngestion, watermark: datetime) -> None:
        self.ingestion = ingestion
        self.watermark = watermark
        self.recent: dict[str, dict[str, str]] = {}
        self.deals = self.polls = 0
        self.started_ns = time.monotonic_ns()
        self.beaten = 0.0  # when `last_poll_at` was last written (monotonic)

    async def poll(self) -> int:
        """One poll (several windows when catching up); answers deals written."""
        self.polls += 1
        written = 0
        zone = await self.ingestion.gateway.server_zone()
        async for window in read_windows(
            self.ingestion.gateway,
            self.watermark - OVERLAP,
            now() + OPEN_END,
            first=None if self.deals else timedelta(hours=1),
        ):
            fresh = [r for r in window.records if self.recent.get(r["Deal"]) != r]
            latest = max((int(r["Time"]) for r in window.records), default=None)
            newest = self.watermark if latest is None else zone.moment(latest)
            watermark = max(self.watermark, newest)
            lag = now() - newest if fresh else timedelta(0)
            rate = rows_per_second(self.deals + len(fresh), time.monotonic_ns() - self.started_ns)
            beat_due = time.monotonic() - self.beaten >= HEARTBEAT_EVERY
            if fresh or watermark != self.watermark or beat_due:
                await self.ingestion.merge_with_state(fresh, watermark, lag, rate)
                self.beaten = time.monotonic()
            self.remember(fresh, watermark, zone)
            self.deals += len(fresh)
            written += len(fresh)
            self.ingestion.metrics.observe(watermark, lag, len(fresh))
        return written

    def remember(
        self, written: list[dict[str, str]], watermark: datetime, zone: ServerZone
    ) -> None:
        """Keep what was written, forgetting deals too old for the next poll to read again."""
        self.watermark = watermark
        for record in written:
            self.recent[record["Deal"]] = record
        horizon = zone.server_seconds(watermark - 2 * OVERLAP)
        if len(self.recent) > TARGET_DEALS:
            self.recent = {k: r for k, r in self.recent.items() if int(r["Time"]) >= horizon}


class StateFollower:
    """The trade-state loop: history orders by their watermark (the newest `TimeSetup`
    written), complete snapshots of positions, pending orders and account states, and now and
    then the symbols.

    History orders are read by setup time from `watermark - OVERLAP`; an order set up before
    that and filled or cancelled later (a pending order) is caught another way: it was in the
    last committed snapshot of pending orders (`open_orders`) and is open no longer, so it is
    read by ticket. The snapshot is in the database, not in this object: a new run, a restart
    after hours without a follower, or a retried poll compares with what the last commit saw.
    (Kept in memory, as it was, it was lost at each run's end: an order open at one run's last
    poll and closed before the next run's first was never read.) Positions, pending orders and
    account states are complete snapshots each poll (`group=*`, by login pages when a batch is
    full)."""

    def __init__(
        self,
        ingestion: DealIngestion,
        watermark: datetime,
        *,
        symbols_every: timedelta = timedelta(minutes=10),
        symbols_at: datetime | None = None,
    ) -> None:
        self.ingestion = ingestion
        self.gateway = ingestion.gateway
        self.watermark = watermark
        self.symbols_every = symbols_every
        self.symbols_at = symbols_at
        self.polls = self.positions = self.orders = self.accounts = 0
        self.open_orders = self.symbols = 0

    async def complete(self, command: str) -> list[dict[str, str]]:
        """Every record `command` has for the server's accounts: one `group=*` batch, or when
        that is full (the server answers at most a batch), by pages of accounts."""
        records = await self.gateway.records(command, {"group": ALL_GROUPS})
        if len(records) < MAX_DEAL_BATCH:
            return records
        records = []
        logins = await self.gateway.logins(ALL_GROUPS)
        for at in range(0, len(logins), MAX_LOGINS):
            chunk = ",".join(map(str, logins[at : at + MAX_LOGINS]))
            records += await self.gateway.records(command, {"login": chunk})
        return records

    async def history_orders(
        self, zone: ServerZone, was_open: set[str]
    ) -> tuple[list[dict[str, str]], list[dict[str, str]], datetime]:
        """The pending orders open now; history orders set up since the watermark (window by
        window if need be), and those of `was_open` (open at the last committed snapshot) that
        are open no longer; with the next watermark."""

        # Open orders first: one filled between the two reads is then in the history read, or
        # read by ticket at the next poll.
        open_now = await self.complete("order/get_batch")
        still_open = {r["Order"] for r in open_now}
        found: list[dict[str, str]] = []
        async for window in windows_of(
            history_by_setup(self.gateway), zone, self.watermark - OVERLAP, now() + OPEN_END,
            first=None, time_key="TimeSetup",
        ):  # fmt: skip
            found += window.records
        seen = {r["Order"] for r in found}
        gone = sorted(t for t in was_open - still_open if t not in seen)
        for at in range(0, len(gone), MAX_LOGINS):
            params = {"ticket": ",".join(gone[at : at + MAX_LOGINS])}
            found += await self.gateway.records("history/get_batch", params)
        setups = [int(r["TimeSetup"]) for r in found if r.get("TimeSetup") and r["Order"] in seen]
        newest = zone.moment(max(setups)) if setups else self.watermark
        return open_now, found, max(self.watermark, newest)

    def symbols_due(self, at: datetime) -> bool:
        return self.symbols_at is None or at - self.symbols_at >= self.symbols_every

    async def poll(self) -> None:
        self.polls += 1
        zone = await self.gateway.server_zone()
        convert = utc_converter(zone)
        server = self.ingestion.server
        async with self.ingestion._sessions.begin() as session:
            was_open = await open_order_tickets(await session.connection(), server)
        positions = await self.complete("position/get_batch")
        accounts = await self.complete("user/account/get_batch")
        pending, orders, watermark = await self.history_orders(zone, was_open)
        symbols: tuple[list[dict[str, Any]], bool] | None = None
        if self.symbols_due(now()):
            symbols = await self.gateway.symbol_records()
        taken = now()
        store = self.ingestion._state_store
        symbols_written = 0
        async with self.ingestion._sessions.begin() as session:
            connection = await session.connection()
            await store.replace_positions(
                connection, server, state_copy_text(POSITIONS, server, positions, convert), taken
            )
            await store.replace_open_orders(
                connection, server, state_copy_text(OPEN_ORDERS, server, pending, convert), taken
            )
            written = await store.merge_orders(
                connection, state_copy_text(HISTORY_ORDERS, server, orders, convert)
            )
            changed = await store.merge_accounts(
                connection, state_copy_text(ACCOUNT_STATES, server, accounts, convert), taken
            )
            stamps: dict[str, object] = {}
            if symbols is not None:
                records, complete = symbols
                symbols_written = await merge_symbols(
                    connection, server, records, taken, complete=complete
                )
                stamps["symbols_at"] = taken
            await self.ingestion.save_state(
                session,
                orders_watermark=watermark,
                positions_at=taken,
                accounts_at=taken,
                **stamps,
            )  # not `last_poll_at`: that is the deal follower's heartbeat
        self.watermark = watermark
        self.positions = len(positions)
        self.open_orders = len(pending)
        self.orders += written
        self.accounts += changed
        if symbols is not None:
            self.symbols_at = taken
            self.symbols += symbols_written


class Metrics:
    """Per server, on the worker's Prometheus endpoint (the Temporal runtime's meter, so the
    ingestion's figures sit beside the SDK's own): the watermark, the lag, deals written (their
    rate is rows per second) and failed polls."""

    def __init__(self, meter: MetricMeter, server: str) -> None:
        meter = meter.with_additional_attributes({"server": server})
        self.watermark = meter.create_gauge_float(
            "brokerflow_ingestion_watermark_seconds", "newest deal time ingested (Unix)", "s"
        )
        self.lag = meter.create_gauge_float(
            "brokerflow_ingestion_lag_seconds", "deal time to its commit, last poll", "s"
        )
        self.deals = meter.create_counter("brokerflow_ingestion_deals", "deals written")
        self.errors = meter.create_counter("brokerflow_ingestion_errors", "failed polls")

    def observe(self, watermark: datetime, lag: timedelta, written: int) -> None:
        self.watermark.set(watermark.timestamp())
        self.lag.set(lag.total_seconds())
        self.deals.add(written)
