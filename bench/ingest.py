# ruff: noqa: S608  (SQL built from constants only)
"""Trade ingestion: deals per second from the MT5 simulator into PostgreSQL, against the floor
of the same pages, and the lag of the live follower under a sustained flow.

    python -m bench.ingest --size 1000000 [--lag-seconds 20] [--rate 1000]

Runs on embedded defaults: a throw-away PostgreSQL (migrated), the MT5 simulator as a process
with `--history SIZE` (its seeded generator; set-up, not measured), then every deal read once
(set-up, not measured: the simulator encodes a deal's JSON on its first read and caches it, a
cost that would otherwise fall on whichever phase reads first, the ingestion).

`cpu …` lines: CPU seconds of the worker side (this process), the simulator and PostgreSQL in
each phase; on a loaded machine they say more than the wall times.

- deals_per_s: SIZE / wall time of `DealIngestion.copy_range` over the whole history (the
  back-fill step: `deal/get_batch` pages of a few accounts each over the whole range, their
  number adapting to the deals a page held, COPY to staging, merge into the partitioned
  `deals`, the next page read while the last is written);
- ratio_to_floor: that time / the floor's, where the floor reads the same pages (same logins,
  same range) over HTTP, decodes the JSON, turns the records into COPY text and COPYs them into
  a bare table, one after the other, in the same run;
- lag_p50_s / lag_p99_s: a second simulator runs `--traders 200 --rate RATE` and the live
  follower (`follow_deals`, in an activity environment) runs for `--lag-seconds`; each deal's lag
  is its row's `created_at` (the writing transaction's start) minus the deal's time, over the
  deals after the first five seconds (the follower's start).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.trade_ingestion import DealIngestion, Window, read_by_logins, utc_converter
from bench._simulator import MANAGER, PASSWORD, start_simulator
from contracts.trade_ingestion import FollowDeals
from db.embedded import embedded_owner_url
from db.migrate import upgrade
from db.session import create_engine, create_sessionmaker
from db.trade_store import COLUMNS, copy_text, stage
from db.urls import app_database_url
from mt5_adapter.webapi import WebApiGateway, gateway_for
from settings import Mt5ServerSettings, Settings

# The generator writes the 30 days before today (UTC): the back-fill reads a little more.
SINCE = datetime.now(UTC) - timedelta(days=32)
FLOOR_TABLE = "floor_rows"
WARM_UP = timedelta(seconds=5)


class CpuMeter:
    """CPU seconds spent by this process (the worker's side), the simulator and PostgreSQL
    (the postmaster and its live backends): on a shared, loaded machine the wall times are
    noisy, the CPU each side needs much less so. On two idle cores a phase takes at least
    half their sum."""

    def __init__(self, simulator_pid: int, pgdata: Path) -> None:
        self.simulator = psutil.Process(simulator_pid)
        self.postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))

    def read(self) -> tuple[float, float, float]:
        def used(process: psutil.Process) -> float:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                return 0.0
            return float(times.user + times.system)

        database = used(self.postmaster) + sum(map(used, self.postmaster.children()))
        return time.process_time(), used(self.simulator), database

    @staticmethod
    def line(phase: str, start: tuple[float, ...], end: tuple[float, ...]) -> str:
        worker, simulator, database = (b - a for a, b in zip(start, end, strict=True))
        total = worker + simulator + database
        return (
            f"cpu {phase}: worker={worker:.1f}s simulator={simulator:.1f}s "
            f"postgres={database:.1f}s sum={total:.1f}s (two idle cores: >= {total / 2:.1f}s)"
        )


def bench_database(folder: Path) -> str:
    owner = embedded_owner_url(folder / "pg", stop_at_exit=True)
    engine = create_sync_engine(owner, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE DATABASE bench"))
    engine.dispose()
    return owner.replace("/postgres?", "/bench?")


def gateway_at(port: int) -> WebApiGateway:
    return gateway_for(
        Mt5ServerSettings(
            address=f"127.0.0.1:{port}",
            tls=False,
            manager_login=MANAGER,
            manager_password=PASSWORD,
            timeout_seconds=120,
        )
    )


async def warm_up(port: int) -> int:
    """Every deal read once before anything is measured: the simulator encodes a deal's JSON on
    its first read and keeps it, so without this the first measured phase (the ingestion)
    would pay that one-time cost of the simulator's and the floor, read second, would not."""
    gateway = gateway_at(port)
    try:
        read = 0
        async for page in read_by_logins(gateway, SINCE, datetime.now(UTC) + timedelta(days=1)):
            read += len(page.records)
        return read
    finally:
        await gateway.aclose()


async def ingest(
    sessions: async_sessionmaker[AsyncSession], port: int
) -> tuple[int, float, list[Window]]:
    gateway = gateway_at(port)
    windows: list[Window] = []
    try:
        ingestion = DealIngestion("bench", sessions, gateway)
        await gateway.server_zone()
        started = time.perf_counter()
        copied = await ingestion.copy_range(
            SINCE, datetime.now(UTC) + timedelta(days=1), first=timedelta(hours=1),
            on_window=lambda w: windows.append(Window(w.since, w.until, [], w.logins)),
        )  # fmt: skip
        return copied.deals, time.perf_counter() - started, windows
    finally:
        await gateway.aclose()


async def floor(engine: AsyncEngine, port: int, windows: list[Window]) -> tuple[int, float]:
    """The same windows: HTTP, JSON, COPY text, a bare COPY; nothing overlapped."""
    gateway = gateway_at(port)
    try:
        convert = utc_converter(await gateway.server_zone())
        rows = 0
        # One connection throughout: the table is temporary, its own.
        async with engine.connect() as connection:
            # The staging table's columns, without the staging table's emptying at commit.
            columns = ", ".join(COLUMNS)
            await connection.execute(
                text(
                    f"CREATE TEMP TABLE {FLOOR_TABLE} AS SELECT server, 0::bigint AS utc_msc,"
                    f" {columns} FROM deals WITH NO DATA"
                )
            )
            await connection.commit()
            started = time.perf_counter()
            for window in windows:
                records = await gateway.deal_records(
                    "*", window.since, window.until, logins=window.logins
                )
                lines, _, _ = copy_text("bench", records, convert)
                await stage(connection, lines, FLOOR_TABLE)
                await connection.commit()
                rows += len(records)
        return rows, time.perf_counter() - started
    finally:
        await gateway.aclose()


async def lag(
    sessions: async_sessionmaker[AsyncSession], port: int, seconds: float
) -> tuple[float, float, int]:
    gateway = gateway_at(port)
    try:
        ingestion = DealIngestion("flow", sessions, gateway)
        started = datetime.now(UTC)
        request = FollowDeals(start_from=started, run_seconds=seconds)
        await ActivityEnvironment().run(ingestion.follow_deals, request)
    finally:
        await gateway.aclose()
    async with sessions() as session:
        lags = (
            await session.execute(
                text(
                    "SELECT extract(epoch FROM created_at - time)::float FROM deals"
                    " WHERE server = 'flow' AND time > :after"
                ),
                {"after": started + WARM_UP},
            )
        ).scalars().all()  # fmt: skip
    cuts = statistics.quantiles(lags, n=100)
    return cuts[49], cuts[98], len(lags)


async def main(size: int, owner: str, lag_seconds: float, rate: float, pgdata: Path) -> None:
    settings = Settings(env="test", database_url=owner, log_json=False)
    upgrade(owner, settings)
    engine = create_engine(app_database_url(owner, settings), pool_size=4)
    sessions = create_sessionmaker(engine)
    history = max(1, size // 500)
    begun = time.perf_counter()
    simulator, port = start_simulator(
        "--history", str(size), "--history-accounts", str(history), "--seed", "14"
    )
    print(f"simulator generated {size} deals in {time.perf_counter() - begun:.1f} s", flush=True)
    try:
        begun = time.perf_counter()
        warmed = await warm_up(port)
        print(f"warm-up read {warmed} deals in {time.perf_counter() - begun:.1f} s", flush=True)
        meter = CpuMeter(simulator.pid, pgdata)
        before = meter.read()
        deals, seconds, windows = await ingest(sessions, port)
        print(f"ingested {deals} deals in {seconds:.2f} s over {len(windows)} pages", flush=True)
        between = meter.read()
        print(CpuMeter.line("ingest", before, between), flush=True)
        floor_rows, floor_seconds = await floor(engine, port, windows)
        print(f"floor: {floor_rows} rows in {floor_seconds:.2f} s", flush=True)
        print(CpuMeter.line("floor", between, meter.read()), flush=True)
    finally:
        simulator.terminate()
        simulator.wait()
    flow, flow_port = start_simulator("--traders", "200", "--rate", str(rate), "--seed", "3")
    try:
        p50, p99, sampled = await lag(sessions, flow_port, lag_seconds)
        print(f"lag over {sampled} deals at {rate:g}/s for {lag_seconds:g} s", flush=True)
    finally:
        flow.terminate()
        flow.wait()
        await engine.dispose()
    assert deals == floor_rows >= size, "ingestion and floor must read the same deals"
    print(
        f"RESULT deals_per_s={deals / seconds:.0f} ratio_to_floor={seconds / floor_seconds:.2f} "
        f"lag_p50_s={p50:.3f} lag_p99_s={p99:.3f} size={size}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1_000_000, help="history deals to ingest")
    parser.add_argument("--lag-seconds", type=float, default=20, help="live follower's run")
    parser.add_argument("--rate", type=float, default=1000, help="live flow, deals per second")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bf-bench-") as folder:
        database = bench_database(Path(folder))
        asyncio.run(
            main(
                arguments.size,
                database,
                arguments.lag_seconds,
                arguments.rate,
                Path(folder) / "pg",
            )
        )
