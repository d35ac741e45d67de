"""Symbols and pending orders from the MT5 simulator into PostgreSQL (issues 14, 15): the
symbols as `symbol/next` gives them, a change and a deletion in MT5 picked up by the next
read; the pending orders a snapshot that an order leaving empties; and a pending order set up
before the orders' watermark and cancelled while no follower ran read all the same, by the
next run and by a back-fill."""

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
from contracts.trade_ingestion import DealRange, FollowTradeState
from db.queries.trading import open_orders_of, symbol_of, symbols_of
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.support.processes import Simulator, start_simulator

SINCE = datetime.now(UTC) - timedelta(days=1)
CANCELED = 2  # order state (reference 4.4)
BUY_LIMIT = 2


@pytest.fixture(scope="module")
def bare_sim(artifacts_dir: Path) -> Iterator[Simulator]:
    """No history, no flow: the tests make every order themselves, and move its clock (a
    server of their own: a shared one would see its clock stop and jump)."""
    simulator = start_simulator(artifacts_dir / "logs", tls=False)
    yield simulator
    simulator.child.kill()  # its books are thrown away: no need to wait for a clean stop


@pytest.fixture
async def gateway(bare_sim: Simulator) -> AsyncIterator[WebApiGateway]:
    opened = gateway_for(mt5_settings_for(bare_sim))
    yield opened
    await opened.aclose()


async def poll(ingestion: DealIngestion, symbols_every: float = 600.0) -> None:
    request = FollowTradeState(start_from=SINCE, run_seconds=0, symbols_every=symbols_every)
    await ActivityEnvironment().run(ingestion.follow_trade_state, request)


async def rows(sessions: async_sessionmaker[AsyncSession], sql: str) -> list[Any]:
    async with sessions() as session:
        return list((await session.execute(text(sql))).mappings())


async def call(gateway: WebApiGateway, command: str, body: dict[str, Any]) -> Any:
    return (await gateway._call(command, {}, body, write=True)).get("answer")


async def request(gateway: WebApiGateway, **fields: Any) -> dict[str, str]:
    """A dealer request that must be done (10009); its result."""
    sent = await call(gateway, "dealer/send_request", fields)
    answer = await gateway._call("dealer/get_request_result", {"id": sent["id"]})
    result = dict(answer["answer"]["result"])
    assert result["Retcode"].startswith("10009 "), result
    return result


async def trader(gateway: WebApiGateway, login: int) -> int:
    record = {
        "Login": str(login), "Group": "demo\\standard", "Name": f"Trader {login}",
        "Leverage": "100", "PassMain": "Main#Pass1", "PassInvestor": "Inv#Pass1",
    }  # fmt: skip
    await call(gateway, "user/add", record)
    await gateway._call(
        "trade/balance", {"login": str(login), "type": "2", "balance": "100000", "comment": "in"}
    )
    return login


async def freeze(simulator: Simulator, utc: datetime | None) -> None:
    """The trade server's clock stopped at `utc` (None: running with the wall clock again)."""
    async with httpx.AsyncClient(verify=False) as admin:
        url = f"{simulator.base_url}/_sim/time"
        if utc is None:
            answer = await admin.delete(url)
        else:
            answer = await admin.post(url, json={"utc_msc": int(utc.timestamp() * 1000)})
        answer.raise_for_status()


async def test_symbols_are_read_whole_and_changes_picked_up(
    gateway: WebApiGateway, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ingestion = DealIngestion("symbols", sessions, gateway)
    await poll(ingestion)  # the first poll reads them (never read before)

    listed, complete = await gateway.symbol_records()
    assert complete
    async with sessions() as session:
        stored = {s.symbol: s for s in await symbols_of(session, "symbols")}
    assert set(stored) == {r["Symbol"] for r in listed}
    for record in listed:
        row = stored[record["Symbol"]]
        assert row.path == record["Path"] and row.calc_mode == int(record["CalcMode"])
        assert row.contract_size == Decimal(record["ContractSize"])
        assert row.digits == int(record["Digits"]) and row.point == Decimal(record["Point"])
        assert row.spread == int(record["Spread"])
        assert (row.currency_base, row.currency_profit, row.currency_margin) == (
            record["CurrencyBase"], record["CurrencyProfit"], record["CurrencyMargin"],
        )  # fmt: skip
        assert row.margin_initial == Decimal(record["MarginInitial"])
        assert row.margin_maintenance == Decimal(record["MarginMaintenance"])
        assert row.margin_hedged == Decimal(record["MarginHedged"])
        assert row.margin_rate_initial == [Decimal(r) for r in record["MarginRateInitial"]]
        assert row.margin_rate_maintenance == [Decimal(r) for r in record["MarginRateMaintenance"]]
        assert row.tick_size == Decimal(record["TickSize"])
        assert row.tick_value == Decimal(record["TickValue"])
        assert row.spread_balance is None  # the simulator does not give it
        assert row.raw == record
    es = stored["ES"]  # a future: exact decimals, its own tick
    assert (es.tick_size, es.tick_value, es.margin_initial) == (
        Decimal("0.25"), Decimal("12.5"), Decimal("12000"),
    )  # fmt: skip

    # A dealer widens a spread and removes a symbol: not read again before `symbols_every`,
    # then picked up; the other symbols' rows are left as they were.
    eurusd = {**stored["EURUSD"].raw, "Spread": "30"}
    await call(gateway, "symbol/add", eurusd)
    await gateway._call("symbol/delete", {"Symbol": "NZDUSD"})
    await poll(ingestion)
    async with sessions() as session:
        unchanged = await symbol_of(session, "symbols", "EURUSD")
    assert unchanged is not None and unchanged.spread == 12
    await poll(ingestion, symbols_every=0)
    async with sessions() as session:
        after = {s.symbol: s for s in await symbols_of(session, "symbols")}
    assert after["EURUSD"].spread == 30 and after["EURUSD"].raw["Spread"] == "30"
    assert after["EURUSD"].updated_at > stored["EURUSD"].updated_at
    assert "NZDUSD" not in after
    assert {n: s.updated_at for n, s in after.items() if n != "EURUSD"} == {
        n: s.updated_at for n, s in stored.items() if n not in ("EURUSD", "NZDUSD")
    }
    [state] = await rows(sessions, "SELECT * FROM ingestion_state WHERE server = 'symbols'")
    assert state["symbols_at"] is not None


async def test_pending_orders_are_a_snapshot(
    gateway: WebApiGateway, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ingestion = DealIngestion("pending", sessions, gateway)
    login = await trader(gateway, 5_100_001)
    limit = {"Action": 201, "Login": login, "Symbol": "EURUSD", "Type": BUY_LIMIT}
    placed = [
        await request(gateway, **limit, Volume=10_000, PriceOrder=price)
        for price in ("1.05000", "1.04000")
    ]
    await poll(ingestion)

    server_side = await gateway.records("order/get_batch", {"login": str(login)})
    async with sessions() as session:
        mine = await open_orders_of(session, "pending", login=login)
    stored = {o.order_ticket: o for o in mine}
    assert (
        set(stored) == {int(p["Order"]) for p in placed} == {int(o["Order"]) for o in server_side}
    )
    for order in server_side:
        row = stored[int(order["Order"])]
        assert row.login == login and row.symbol == "EURUSD" and row.type == BUY_LIMIT
        assert row.price_order == Decimal(order["PriceOrder"])
        assert row.volume_initial == row.volume_current == 10_000
        assert row.time_setup_msc == int(order["TimeSetupMsc"])
        assert row.contract_size is None  # not in the simulator's order record

    cancelled = int(placed[0]["Order"])
    await request(gateway, Action=203, Login=login, Order=cancelled)
    await poll(ingestion)
    async with sessions() as session:
        left = [o.order_ticket for o in await open_orders_of(session, "pending", login=login)]
    assert left == [int(placed[1]["Order"])]
    [history] = await rows(
        sessions, f"SELECT * FROM history_orders WHERE order_ticket = {cancelled}"
    )
    assert history["state"] == CANCELED


async def test_an_order_that_left_while_no_follower_ran_is_read(
    bare_sim: Simulator, gateway: WebApiGateway, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A pending order set up before the orders' watermark, cancelled between two runs of the
    follower: the run after reads it by ticket, from the pending orders the last one stored.
    (Before, the open tickets were kept in the run's memory: the next run never read it.)"""
    login = await trader(gateway, 5_100_002)
    start = datetime.now(UTC).replace(microsecond=0)
    try:
        await freeze(bare_sim, start)
        pending = await request(
            gateway, Action=201, Login=login, Symbol="GBPUSD", Type=BUY_LIMIT,
            Volume=10_000, PriceOrder="1.20000",
        )  # fmt: skip
        # A minute later a market order: the orders' watermark moves past the pending one.
        await freeze(bare_sim, start + timedelta(minutes=1))
        market = await request(
            gateway, Action=200, Login=login, Symbol="GBPUSD", Type=0, Volume=10_000
        )
        await poll(DealIngestion("gap", sessions, gateway))  # one run: open, watermark moved
        [state] = await rows(sessions, "SELECT * FROM ingestion_state WHERE server = 'gap'")
        assert state["orders_watermark"] >= start + timedelta(minutes=1)

        await freeze(bare_sim, start + timedelta(minutes=2))
        await request(gateway, Action=203, Login=login, Order=int(pending["Order"]))
    finally:
        await freeze(bare_sim, None)
    await poll(DealIngestion("gap", sessions, gateway))  # the next run (a restarted worker)

    kept = {
        r["order_ticket"]: r
        for r in await rows(sessions, "SELECT * FROM history_orders WHERE server = 'gap'")
    }
    assert kept[int(pending["Order"])]["state"] == CANCELED
    assert kept[int(pending["Order"])]["time_setup"] == start
    still_open = await rows(sessions, "SELECT order_ticket FROM open_orders WHERE server = 'gap'")
    assert int(pending["Order"]) not in {r["order_ticket"] for r in still_open}

    # A back-fill of the range copies the history orders set up in it, deals or not.
    backfill = DealIngestion("backfilled", sessions, gateway)
    copied = await ActivityEnvironment().run(
        backfill.copy_deal_range,
        DealRange(since=start - timedelta(minutes=1), until=start + timedelta(minutes=3)),
    )
    filled = await rows(sessions, "SELECT * FROM history_orders WHERE server = 'backfilled'")
    assert {int(pending["Order"]), int(market["Order"])} <= {r["order_ticket"] for r in filled}
    assert copied.orders == len(filled)
