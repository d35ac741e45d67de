"""IB commission accrual: `--size` deals (default 1,000,000) of `--size / 50` logins over
`--size / 200` IBs five levels deep (5,000 at full size), through the accrual the payout cycle
runs (`activities.ib_payout.accrue`: deals read, `domain.ib` computes, rows stored with traces).

    python -m bench.commissions --size 20000

Baseline, in the same run over the same deals: one SQL aggregation of closed volume per IB
(the deals joined to their attribution), what a report without per-row traces would cost.
The accrual computes in a pool of worker processes from 4 batches of logins on; the line
before the result gives the CPU time it used here and in the workers (the machine is shared:
the wall time depends on what else runs).
Runs on a throw-away embedded PostgreSQL. Last line:
`RESULT seconds=… ratio_to_sql=… rows=… size=…`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ib_payout import accrue
from bench.account_opening import bench_database
from contracts.ib_payout import AccrualRequest
from db.migrate import upgrade
from db.models import AccountApplication, Client, Mt5Account
from db.models.ib import IbAttribution, IbCommission, IbPlan, IbPlanVersion, IntroducingBroker
from db.session import create_engine, create_sessionmaker
from db.trade_store import Batch, DealStore, copy_text
from db.urls import app_database_url
from settings import Settings

SERVER = "demo"
START = 1767225600  # 2026-01-01 00:00 on the server's clock
MONTH = 31 * 86400
DEPTH = 5
RATES = ("10", "8", "6", "4", "2")  # per lot, top level first
DEALS_PER_LOGIN = 50
COPY_BATCH = 100_000
# The aggregation a report without traces would run: closed lots per IB over the period.
SQL_BASELINE = text(
    "SELECT a.ib_id, sum(CASE WHEN d.entry = 2 THEN d.volume_closed ELSE d.volume END)"
    " FROM deals d JOIN ib_attributions a ON a.server = d.server AND a.login = d.login"
    " AND d.time_server >= a.effective_from"
    " AND (a.effective_to IS NULL OR d.time_server < a.effective_to)"
    " WHERE d.server = :server AND d.time_server >= :start AND d.time_server < :end"
    " AND d.action IN (0, 1) AND d.entry IN (1, 2, 3) GROUP BY a.ib_id"
)


def level_sizes(total: int) -> list[int]:
    """Five levels, each about 5.6 times the one above (5, 28, 157, 878, 3932 for 5,000)."""
    weights = [5.6**k for k in range(DEPTH)]
    sizes = [max(1, round(total * w / sum(weights))) for w in weights]
    sizes[-1] = max(1, total - sum(sizes[:-1]))
    return sizes


def plan_terms(level: int) -> dict[str, Any]:
    return {
        "version": 1,
        "from": START - MONTH,
        "currency": "USD",
        "counting": "round_turn",
        "tiers": {"model": "differential"},
        "min_hold_seconds": 60,
        "rules": [{"basis": "per_lot", "rate": RATES[level]}],
    }


async def seed(sessions: async_sessionmaker[AsyncSession], size: int, rng: random.Random) -> None:
    ib_count = max(DEPTH, size // 200)
    logins = max(1, size // DEALS_PER_LOGIN)
    async with sessions.begin() as session:
        for level in range(DEPTH):
            session.add(IbPlan(id=f"L{level + 1}", name=f"level {level + 1}"))
        await session.flush()
        for level in range(DEPTH):
            session.add(
                IbPlanVersion(
                    plan_id=f"L{level + 1}",
                    version=1,
                    effective_from=START - MONTH,
                    terms=plan_terms(level),
                )
            )
        levels: list[list[uuid.UUID]] = []
        for level, count in enumerate(level_sizes(ib_count)):
            ids = [uuid.uuid4() for _ in range(count)]
            await session.execute(
                insert(IntroducingBroker),
                [
                    {
                        "id": ib,
                        "email": f"ib-{ib.hex}@example.com",
                        "password_hash": "x",
                        "name": f"IB {level + 1}-{n}",
                        "referral_code": ib.hex[:24],
                        "parent_id": rng.choice(levels[-1]) if levels else None,
                        "plan_id": f"L{level + 1}",
                    }
                    for n, ib in enumerate(ids)
                ],
            )
            levels.append(ids)
        clients = [uuid.uuid4() for _ in range(logins)]
        applications = [uuid.uuid4() for _ in range(logins)]
        await session.execute(
            insert(Client),
            [
                {
                    "id": c,
                    "email": f"c-{c.hex}@example.com",
                    "password_hash": "x",
                    "full_name": "Bench Client",
                    "country": "DE",
                    "date_of_birth": date(1990, 1, 1),
                }
                for c in clients
            ],
        )
        await session.execute(
            insert(AccountApplication),
            [
                {
                    "id": a,
                    "client_id": c,
                    "account_type": "standard",
                    "kind": "live",
                    "status": "completed",
                    "workflow_id": f"bench-{a}",
                    "mt5_server": SERVER,
                    "mt5_login": 100000 + n,
                }
                for n, (a, c) in enumerate(zip(applications, clients, strict=True))
            ],
        )
        await session.execute(
            insert(Mt5Account),
            [
                {
                    "client_id": c,
                    "application_id": a,
                    "server": SERVER,
                    "login": 100000 + n,
                    "group": "real\\standard",
                    "leverage": 100,
                    "currency": "USD",
                    "kind": "live",
                }
                for n, (a, c) in enumerate(zip(applications, clients, strict=True))
            ],
        )
        # Clients sit with the two lowest levels' IBs.
        lower = levels[-1] + levels[-2]
        await session.execute(
            insert(IbAttribution),
            [
                {
                    "server": SERVER,
                    "login": 100000 + n,
                    "ib_id": rng.choice(lower),
                    "effective_from": START - MONTH,
                    "source": "referral",
                }
                for n in range(logins)
            ],
        )
    store = DealStore(sessions)
    records: list[dict[str, str]] = []
    # Round trips: an IN at a random time of the month, its OUT 30 s to an hour later (some
    # under the one-minute minimum hold), alternately long and short.
    for trip in range(size // 2):
        login = 100000 + (trip * 2 // DEALS_PER_LOGIN) % logins
        opened_at = START + rng.randrange(0, MONTH - 3600)
        volume = str(rng.choice((1000, 5000, 10000)))
        side = trip % 2
        for leg, at in enumerate((opened_at, opened_at + rng.randrange(30, 3600))):
            records.append(
                {
                    "Deal": str(2 * trip + leg + 1),
                    "Login": str(login),
                    "Time": str(at),
                    "Symbol": "EURUSD",
                    "Action": str(side if leg == 0 else 1 - side),
                    "Entry": str(leg),
                    "Volume": volume,
                    "VolumeClosed": volume if leg else "0",
                    "Price": "1.10050" if leg else "1.10000",
                    "PositionID": str(trip + 1),
                    "ContractSize": "100000",
                    "Digits": "5",
                }
            )
        if len(records) >= COPY_BATCH or trip == size // 2 - 1:
            lines, low, high = copy_text(SERVER, records, lambda msc: msc)
            async with sessions.begin() as session:
                connection = await session.connection()
                await store.merge(connection, Batch(lines, len(records), low, high))
            records = []


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


_TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int, *, without: int = 0) -> float:
    """CPU seconds (user + system) of `root` and its live descendants, each with the children
    it waited for, but not `without`'s: the accrual's process and its workers (which are the
    fork server's children, so not in this process's RUSAGE_CHILDREN), or PostgreSQL's
    postmaster and its backends."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text_ = stat.read_text()
        except OSError:
            continue
        fields = text_[text_.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(f) for f in fields[11:15]) / _TICKS
    total, queue = 0.0, [root]
    while queue:
        pid = queue.pop()
        total += times.get(pid, 0.0)
        queue += [c for c, parent in parents.items() if parent == pid and c != without]
    return total


def _postmaster(folder: Path) -> int:
    return int(next(folder.rglob("postmaster.pid")).read_text().split()[0])


async def main(size: int, owner: str, folder: Path) -> None:
    settings = Settings(env="test", database_url=owner, log_json=False)
    upgrade(owner, settings)
    engine = create_engine(app_database_url(owner, settings))
    sessions = create_sessionmaker(engine)
    try:
        await seed(sessions, size, random.Random(14))
        async with sessions.begin() as session:
            await session.execute(text("ANALYZE"))
        request = AccrualRequest(start=START, end=START + MONTH, history_from=START - MONTH)
        postmaster = _postmaster(folder)
        own_before = _cpu(resource.getrusage(resource.RUSAGE_SELF))
        tree_before = _tree_cpu(os.getpid(), without=postmaster)
        pg_before = _tree_cpu(postmaster)
        load = os.getloadavg()[0]
        begun = time.perf_counter()
        summary = await accrue(sessions, request)
        seconds = time.perf_counter() - begun
        own = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - own_before
        workers = _tree_cpu(os.getpid(), without=postmaster) - tree_before - own
        database = _tree_cpu(postmaster) - pg_before
        load = max(load, os.getloadavg()[0])
        async with sessions() as session:
            begun = time.perf_counter()
            per_ib = (
                await session.execute(
                    SQL_BASELINE, {"server": SERVER, "start": START, "end": START + MONTH}
                )
            ).all()
            sql_seconds = time.perf_counter() - begun
            rows = await session.scalar(select(func.count()).select_from(IbCommission))
        print(
            f"accrual: {summary.rows} rows, {summary.unattributed} unattributed; CPU {own:.1f} s"
            f" in this process, {workers:.1f} s in its workers, {database:.1f} s in PostgreSQL"
            f" ({own + workers + database:.1f} s in all); load average {load:.1f};"
            f" SQL baseline: {len(per_ib)} IBs in {sql_seconds:.3f} s"
        )
        print(
            f"RESULT seconds={seconds:.2f} ratio_to_sql={seconds / sql_seconds:.1f}"
            f" rows={rows} size={size}"
        )
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="deals")
    args = parser.parse_args()
    # A large run leaves the stopped server's WAL being removed as the folder goes: not an error.
    with tempfile.TemporaryDirectory(
        prefix="bf-bench-commissions-", ignore_cleanup_errors=True
    ) as folder:
        asyncio.run(main(args.size, bench_database(Path(folder)), Path(folder)))
