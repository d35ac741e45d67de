"""Open positions, history orders and account states from the MT5 simulator (a generated
history and a live trader flow) into PostgreSQL: each poll's snapshot equals what the server
answers (a closed position leaves the table), history orders are stored once by ticket with
their fields as MT5 gave them, and an account's history gains a row only when it changed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.trade_ingestion import DealIngestion
from contracts.trade_ingestion import FollowTradeState
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.support.processes import Simulator, start_simulator
from tests.support.waiting import eventually

SINCE = datetime.now(UTC) - timedelta(days=40)


@pytest.fixture(scope="module")
def flow_sim(artifacts_dir: Path) -> Iterator[Simulator]:
    simulator = start_simulator(
        artifacts_dir / "logs",
        extra=[
            *("--history", "300", "--history-accounts", "8", "--seed", "21"),
            *("--traders", "6", "--rate", "30"),
        ],
    )
    yield simulator
    simulator.child.stop()


@pytest.fixture
async def gateway(flow_sim: Simulator) -> AsyncIterator[WebApiGateway]:
    opened = gateway_for(mt5_settings_for(flow_sim))
    yield opened
    await opened.aclose()


async def set_flow(simulator: Simulator, running: bool) -> None:
    async with httpx.AsyncClient(verify=False) as admin:
        answer = await admin.post(
            f"https://{simulator.address}/_sim/flow", json={"running": running}
        )
        answer.raise_for_status()


async def rows(sessions: async_sessionmaker[AsyncSession], sql: str) -> list[Any]:
    async with sessions() as session:
        return list((await session.execute(text(sql))).mappings())


async def poll(ingestion: DealIngestion) -> None:
    request = FollowTradeState(start_from=SINCE, run_seconds=0)
    await ActivityEnvironment().run(ingestion.follow_trade_state, request)


async def test_positions_orders_and_account_states(
    flow_sim: Simulator, gateway: WebApiGateway, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ingestion = DealIngestion("state", sessions, gateway)
    window = await gateway.window(SINCE, datetime.now(UTC) + timedelta(days=1))

    async def orders_traded() -> bool:
        return len(await gateway.records("history/get_batch", {"group": "*", **window})) >= 5

    await eventually(orders_traded, "the flow's first orders", timeout=60)
    # Both reads see the same books while the flow stands still.
    await set_flow(flow_sim, False)
    try:
        positions = await gateway.records("position/get_batch", {"group": "*"})
        accounts = await gateway.records("user/account/get_batch", {"group": "*"})
        orders = await gateway.records("history/get_batch", {"group": "*", **window})
        await poll(ingestion)
    finally:
        await set_flow(flow_sim, True)

    stored = {r["position"]: r for r in await rows(sessions, "SELECT * FROM positions")}
    assert set(stored) == {int(p["Position"]) for p in positions}
    for p in positions:
        row = stored[int(p["Position"])]
        assert row["login"] == int(p["Login"]) and row["symbol"] == p["Symbol"]
        assert row["volume"] == int(p["Volume"]) and row["price_open"] == Decimal(p["PriceOpen"])
        assert row["time_create_msc"] == int(p["TimeCreateMsc"])
    saved = {r["login"]: r for r in await rows(sessions, "SELECT * FROM account_states")}
    assert set(saved) == {int(a["Login"]) for a in accounts}
    for a in accounts:
        row = saved[int(a["Login"])]
        for column, field in (
            ("balance", "Balance"), ("equity", "Equity"), ("margin", "Margin"),
            ("margin_free", "MarginFree"), ("margin_level", "MarginLevel"),
        ):  # fmt: skip
            assert row[column] == Decimal(a[field]), (column, a)
    kept = {r["order_ticket"]: r for r in await rows(sessions, "SELECT * FROM history_orders")}
    assert {int(o["Order"]) for o in orders} <= set(kept)
    for o in orders:
        row = kept[int(o["Order"])]
        assert row["state"] == int(o["State"]) and row["type"] == int(o["Type"])
        assert row["price_order"] == Decimal(o["PriceOrder"])
        assert row["volume_initial"] == int(o["VolumeInitial"])
        assert row["position_id"] == int(o["PositionID"])
    history = await rows(sessions, "SELECT count(*) AS n FROM account_state_history")
    assert history[0]["n"] == len(accounts)  # the first read of each
    [state] = await rows(sessions, "SELECT * FROM ingestion_state WHERE server = 'state'")
    assert state["positions_at"] is not None and state["orders_watermark"] is not None

    # The flow trades on: the next poll's snapshot is the server's again (closed positions
    # gone), new orders join, and only accounts that changed gain a history row.
    before = {r["order_ticket"] for r in await rows(sessions, "SELECT * FROM history_orders")}

    async def more_orders() -> bool:
        found = await gateway.records("history/get_batch", {"group": "*", **window})
        return len({int(o["Order"]) for o in found} - before) >= 3

    await eventually(more_orders, "more orders", timeout=60)
    await set_flow(flow_sim, False)
    try:
        positions = await gateway.records("position/get_batch", {"group": "*"})
        orders = await gateway.records("history/get_batch", {"group": "*", **window})
        accounts = await gateway.records("user/account/get_batch", {"group": "*"})
        await poll(ingestion)
        # Nothing changed since: a poll writes no history row and no order again.
        counted = await rows(sessions, "SELECT count(*) AS n FROM account_state_history")
        await poll(ingestion)
        assert await rows(sessions, "SELECT count(*) AS n FROM account_state_history") == counted
    finally:
        await set_flow(flow_sim, True)
    stored = {r["position"]: r for r in await rows(sessions, "SELECT * FROM positions")}
    assert set(stored) == {int(p["Position"]) for p in positions}
    kept = {r["order_ticket"]: r for r in await rows(sessions, "SELECT * FROM history_orders")}
    assert {int(o["Order"]) for o in orders} <= set(kept)
    assert counted[0]["n"] > len(accounts)  # some accounts traded between the polls


async def test_a_dealers_correction_is_picked_up_by_a_backfill(
    gateway: WebApiGateway, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """MT5 has no "changed since" for deals: a correction older than the follower's overlap is
    picked up by a back-fill of its range, which rewrites that deal and nothing else."""
    ingestion = DealIngestion("corrected", sessions, gateway)
    until = datetime.now(UTC) - timedelta(hours=1)  # the generated history, not the flow
    copied = await ingestion.copy_range(SINCE, until)
    assert copied.deals >= 300
    before = {
        r["deal"]: r for r in await rows(sessions, "SELECT * FROM deals WHERE server = 'corrected'")
    }
    target = next(r for r in before.values() if r["action"] in (0, 1))
    corrected = {"Deal": str(target["deal"]), "Commission": "-9.99", "Comment": "dealer fix"}
    await gateway._call("deal/update", {}, corrected, write=True)

    await ingestion.copy_range(SINCE, until)
    after = {
        r["deal"]: r for r in await rows(sessions, "SELECT * FROM deals WHERE server = 'corrected'")
    }
    assert after.keys() == before.keys()
    fixed = after[target["deal"]]
    assert fixed["commission"] == Decimal("-9.99") and fixed["comment"] == "dealer fix"
    assert fixed["updated_at"] > target["updated_at"]
    unchanged = {t: r["updated_at"] for t, r in after.items() if t != target["deal"]}
    assert unchanged == {t: r["updated_at"] for t, r in before.items() if t != target["deal"]}
