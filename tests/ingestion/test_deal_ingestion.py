"""Deals from the real MT5 simulator (a generated history plus a live trader flow) into real
PostgreSQL through the real Temporal workflows: every deal exactly once with its fields, a
re-read adds and changes nothing, the live follower's rows equal a back-fill's, and a trade
server killed and restarted mid-flow costs no deal and doubles none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.trade_ingestion import DealIngestion
from contracts import mt5_task_queue
from contracts.steps import Mt5Step, implementations
from contracts.trade_ingestion import (
    DEAL_BACKFILL,
    TRADE_INGESTION,
    BackfillInput,
    CopiedDeals,
    IngestionInput,
)
from db.trade_store import FIELDS
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.support.processes import (
    BIN,
    Child,
    Simulator,
    free_port,
    spawn,
    start_simulator,
    wait_for_log,
)
from tests.support.waiting import eventually
from workflows.trade_ingestion import DealBackfillWorkflow, TradeIngestionWorkflow

HISTORY = 2_000
SINCE = datetime.now(UTC) - timedelta(days=40)
# Far enough ahead for any deal the flow makes during the test.
UNTIL = datetime.now(UTC) + timedelta(days=2)
TEXT_COLUMNS = {"symbol", "external_id", "gateway", "comment"}
MONEY_COLUMNS = {
    "contract_size", "price", "price_position", "profit", "profit_raw", "storage",
    "commission", "fee", "rate_profit", "rate_margin", "market_bid", "market_ask",
    "price_gateway",
}  # fmt: skip


@pytest.fixture(scope="module")
def history_sim(artifacts_dir: Path) -> Iterator[Simulator]:
    """A generated history and a slow live flow of trades on top of it."""
    simulator = start_simulator(
        artifacts_dir / "logs",
        extra=[
            *("--history", str(HISTORY), "--history-accounts", "40", "--seed", "14"),
            *("--traders", "5", "--rate", "20"),
        ],
    )
    yield simulator
    simulator.child.stop()


@pytest.fixture
async def gateway(history_sim: Simulator) -> AsyncIterator[WebApiGateway]:
    opened = gateway_for(mt5_settings_for(history_sim))
    yield opened
    await opened.aclose()


async def ingestion_worker(
    stack: AsyncExitStack,
    client: Client,
    server: str,
    sessions: async_sessionmaker[AsyncSession],
    gateway: WebApiGateway,
) -> str:
    """Workers for one server name (its own queues: no other test's worker takes its tasks);
    answers the workflows' task queue."""
    queue = f"ingestion-{uuid.uuid4().hex[:8]}"
    steps = implementations(Mt5Step, DealIngestion(server, sessions, gateway))
    for worker in (
        Worker(
            client,
            task_queue=queue,
            workflows=[TradeIngestionWorkflow, DealBackfillWorkflow],
        ),
        Worker(client, task_queue=mt5_task_queue(server), activities=list(steps.values())),
    ):
        await stack.enter_async_context(worker)
    return queue


async def stored(sessions: async_sessionmaker[AsyncSession], server: str) -> dict[int, Any]:
    async with sessions() as session:
        rows = (
            await session.execute(text("SELECT * FROM deals WHERE server = :s"), {"s": server})
        ).mappings()
        found: dict[int, Any] = {}
        for row in rows:
            assert row["deal"] not in found, f"deal {row['deal']} stored twice"
            found[row["deal"]] = row
        return found


def assert_as_mt5_gave(row: Any, record: dict[str, str]) -> None:
    for column, key, default in FIELDS:
        value = record.get(key, default)
        if column in TEXT_COLUMNS:
            assert row[column] == value, (column, record)
        elif column in MONEY_COLUMNS:
            assert row[column] == Decimal(value), (column, record)
        else:
            assert row[column] == int(value), (column, record)


async def test_backfill_then_live_follower_store_every_deal_once(
    temporal_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    gateway: WebApiGateway,
) -> None:
    client = temporal_env.client
    backfilled, live = f"bf-{uuid.uuid4().hex[:6]}", f"live-{uuid.uuid4().hex[:6]}"
    async with AsyncExitStack() as stack:
        queue = await ingestion_worker(stack, client, backfilled, sessions, gateway)
        await ingestion_worker(stack, client, live, sessions, gateway)
        # The past, in three parallel children, up to the last whole second gone by (windows
        # are inclusive whole seconds: the flow still trades in the current one).
        cut = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        copied: CopiedDeals = await client.execute_workflow(
            DEAL_BACKFILL.name,
            BackfillInput(server=backfilled, since=SINCE, until=cut, parts=3),
            id=f"backfill-{backfilled}",
            task_queue=queue,
            result_type=CopiedDeals,
        )
        truth = {int(r["Deal"]): r for r in await gateway.deal_records("*", SINCE, cut)}
        assert copied.deals == len(truth) >= HISTORY
        rows = await stored(sessions, backfilled)
        assert rows.keys() == truth.keys()
        for ticket, record in truth.items():
            assert_as_mt5_gave(rows[ticket], record)

        # The same range again (as after a restart, or overlapping parts): nothing added or
        # rewritten.
        before = {t: r["updated_at"] for t, r in rows.items()}
        await client.execute_workflow(
            DEAL_BACKFILL.name,
            BackfillInput(server=backfilled, since=SINCE, until=cut, parts=2),
            id=f"backfill-again-{backfilled}",
            task_queue=queue,
            result_type=CopiedDeals,
        )
        again = await stored(sessions, backfilled)
        assert {t: r["updated_at"] for t, r in again.items()} == before

        # The live follower, from before the history, catches up and follows the flow.
        handle = await client.start_workflow(
            TRADE_INGESTION.name,
            IngestionInput(server=live, start_from=SINCE, run_seconds=3, runs_per_history=2),
            id=f"ingest-{live}",
            task_queue=queue,
        )
        mark = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)

        async def passed() -> bool:
            return datetime.now(UTC) > mark + timedelta(seconds=1)

        async def caught_up() -> bool:
            if not await passed():
                return False
            expected = {int(r["Deal"]) for r in await gateway.deal_records("*", SINCE, mark)}
            got = await stored(sessions, live)
            return expected <= got.keys() and len(expected) > len(truth)

        # Several runs: the follower continued as new at least once on the way.
        await eventually(caught_up, "the live follower has every deal up to the mark", 60)
        await handle.terminate()

        # Back-filling the same range gives the same rows as following it live.
        await client.execute_workflow(
            DEAL_BACKFILL.name,
            BackfillInput(
                server=backfilled, since=SINCE, until=mark - timedelta(seconds=1), parts=2
            ),
            id=f"backfill-to-mark-{backfilled}",
            task_queue=queue,
            result_type=CopiedDeals,
        )
    followed, filled = await stored(sessions, live), await stored(sessions, backfilled)
    limit = int(mark.timestamp())

    def payload(row: Any) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in {"server", "created_at", "updated_at"}}

    # The back-fill's `until` is inclusive to the second (mark - 1 s): a deal stamped at the
    # mark itself is the follower's only.
    followed_until_mark = {
        t: payload(r) for t, r in followed.items() if r["time"].timestamp() < limit
    }
    assert followed_until_mark == {t: payload(r) for t, r in filled.items()}
    async with sessions() as session:
        state = (
            await session.execute(
                text(
                    "SELECT watermark, deals_ingested, last_error FROM ingestion_state"
                    " WHERE server = :s"
                ),
                {"s": live},
            )
        ).one()
    assert state.watermark is not None and state.deals_ingested >= len(followed_until_mark)


async def test_follower_survives_a_simulator_killed_and_restarted(
    temporal_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    """SIGKILL the trade server mid-flow, start it again on its books: the follower records
    the error, retries, and ends with every deal once."""
    port = free_port()
    args = [
        *(str(BIN / "python"), "-m", "simulators.mt5", "--port", str(port)),
        *("--manager", "1000", "--password", "Manager#1", "--market-hours", "always"),
        *("--state-file", str(tmp_path / "books.json"), "--traders", "3", "--rate", "20"),
    ]

    def start(first: bool) -> Child:
        history = ["--history", "300", "--history-accounts", "10", "--seed", "2"] if first else []
        child = spawn("mt5-sim", [*args, *history], {}, artifacts_dir / "logs")
        wait_for_log(child, "MT5 simulator listening")
        return child

    simulator = start(first=True)
    address = Simulator(simulator, port, 1000, "Manager#1", tls=False)
    gateway = gateway_for(mt5_settings_for(address))
    server = f"restart-{uuid.uuid4().hex[:6]}"
    try:
        async with AsyncExitStack() as stack:
            queue = await ingestion_worker(stack, temporal_env.client, server, sessions, gateway)
            handle = await temporal_env.client.start_workflow(
                TRADE_INGESTION.name,
                IngestionInput(server=server, start_from=SINCE, run_seconds=5),
                id=f"ingest-{server}",
                task_queue=queue,
            )

            async def ingested() -> int:
                return len(await stored(sessions, server))

            await eventually(ingested, "the history ingested", 30)
            simulator.kill()

            async def error_seen() -> bool:
                async with sessions() as session:
                    state = await session.execute(
                        text("SELECT last_error FROM ingestion_state WHERE server = :s"),
                        {"s": server},
                    )
                    return state.scalar_one_or_none() is not None

            await eventually(error_seen, "the follower noted the lost server", 30)
            simulator = start(first=False)
            mark = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)

            async def caught_up() -> bool:
                if datetime.now(UTC) <= mark + timedelta(seconds=1):
                    return False
                expected = {int(r["Deal"]) for r in await gateway.deal_records("*", SINCE, mark)}
                return expected <= (await stored(sessions, server)).keys()

            await eventually(caught_up, "every deal up to the mark, after the restart", 60)
            await handle.terminate()
        truth = {int(r["Deal"]) for r in await gateway.deal_records("*", SINCE, mark)}
        rows = await stored(sessions, server)  # raises on a deal stored twice
        assert {
            t for t, r in rows.items() if int(r["time"].timestamp()) <= int(mark.timestamp())
        } == truth
    finally:
        await gateway.aclose()
        simulator.stop()
