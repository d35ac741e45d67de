"""Dealer revenue end to end against the MT5 simulator's dealer plugin (its engine in process,
no server): its deals, as the Web API answers them, through the what-if command and through
ingestion's store, the incremental computation, the revenue API (the mirrored rules audited,
the mirror check flagging a wrong markup) and the analytics report's markup.

Hand figures (simulator defaults: `real\\standard` 10 points, 30 on XAUUSD, B-book;
`real\\pro` raw and A-book via LP-Prime):
* 1 (standard) buys 1 EURUSD at 1.09988/1.10000 + 10 points = 1.10010: markup 10.00 USD
* 1 sells it at 1.10100/1.10112 - 10 points = 1.10090: markup 10.00, client +80.00, house -80.00
* 1 buys 0.01 XAUUSD at 1999.75/2000.00 + 30 points = 2000.30: markup 0.30 (0.01 x 100 x 0.30)
* 2 (pro) sells 2 EURUSD at the raw bid 1.10100: A-book, markup 0, LP price = client price
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.analytics import AnalyticsSteps
from contracts.analytics import RefreshAggregates
from db.models import AccountApplication, AuditEntry, Client, Mt5Account
from db.queries import revenue as queries
from db.sealed import SecretBox
from db.trade_store import (
    HISTORY_ORDERS,
    Batch,
    DealStore,
    TradeStateStore,
    copy_text,
    state_copy_text,
)
from domain.roles import StaffRole
from revenue.deal import main, run
from settings import Settings
from simulators.mt5.commands import deal_record
from simulators.mt5.engine import BUY, DEFAULT_DEALER_RULES, SELL, Engine
from simulators.mt5.state import Books, User
from tests.support.people import People

D = Decimal
SERVER = "rev-1"
STANDARD, PRO = 7100001, 7100002
NOW_MSC = 1_796_115_600_000  # 2026-12-01 09:00 UTC, the simulator's clock frozen there
GROUPS = {STANDARD: "real\\standard", PRO: "real\\pro"}


def simulated() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The simulator's deals and history orders, as its Web API answers them."""
    books = Books()
    for login, group in GROUPS.items():
        books.users[login] = User(
            login=login, group=group, name="Rev", password_main="x", password_investor="x",
            leverage=100, balance="100000",
        )  # fmt: skip
    engine = Engine(books)
    engine.clock.frozen_msc = NOW_MSC
    engine.set_quote("EURUSD", D("1.09988"), D("1.10000"))
    engine.set_quote("XAUUSD", D("1999.75"), D("2000.00"))
    [opening] = engine.market(STANDARD, "EURUSD", BUY, 10_000)
    engine.clock.frozen_msc = NOW_MSC + 60_000
    engine.set_quote("EURUSD", D("1.10100"), D("1.10112"))
    engine.market(STANDARD, "EURUSD", SELL, 10_000, position_id=opening.position_id)
    engine.market(STANDARD, "XAUUSD", BUY, 100)
    engine.market(PRO, "EURUSD", SELL, 20_000)
    deals = [deal_record(d, engine.clock) for d in books.deals if d.symbol]
    orders = [
        {"Order": str(o.order), "Login": str(o.login), "Symbol": o.symbol, "Type": str(o.type),
         "State": str(o.state), "PriceOrder": o.price_order,
         "TimeSetupMsc": str(engine.clock.to_server(o.time_setup_msc)),
         "TimeDoneMsc": str(engine.clock.to_server(o.time_done_msc)),
         "VolumeInitial": str(o.volume_initial), "PositionID": str(o.position_id)}
        for o in books.history_orders
    ]  # fmt: skip
    return deals, orders


def mirror(**changes: Any) -> list[dict[str, Any]]:
    """The simulator's default rules, as staff would copy them (one rule's field changed)."""
    rules = [asdict(r) for r in DEFAULT_DEALER_RULES]
    for rule in rules:
        if rule["symbol_mask"] == changes.get("symbol_mask", object()):
            rule.update(changes)
    return rules


def document(deals: list[dict[str, str]], orders: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "deals": deals,
        "orders": orders,
        "accounts": [
            {"Login": login, "Group": g, "Currency": "USD"} for login, g in GROUPS.items()
        ],
        "positions": [
            {"Position": 1, "Login": STANDARD, "Symbol": "XAUUSD", "Profit": "-0.55"},
            {"Position": 2, "Login": PRO, "Symbol": "EURUSD", "Profit": "4.00"},
        ],
        "dealer_rules": mirror(),
    }


def test_the_what_if_shows_the_plugins_markup_and_flags_a_wrong_mirror(tmp_path: Path) -> None:
    deals, orders = simulated()
    doc = document(deals, orders)
    doc["positions"][1]["Position"] = int(deals[-1]["PositionID"])  # the A-book position
    answer = run(json.loads(json.dumps(doc)))
    rows = [
        (d["login"], d["symbol"], d["book"], d["markup_points"], d["markup"])
        for d in answer["deals"]
    ]
    assert rows == [
        (STANDARD, "EURUSD", "B", "10", "10"),
        (STANDARD, "EURUSD", "B", "10", "10"),
        (STANDARD, "XAUUSD", "B", "30", "0.3"),
        (PRO, "EURUSD", "A", "0", "0"),
    ]
    assert answer["deals"][1]["b_book_pnl"] == "-80"
    assert (answer["deals"][3]["gateway"], answer["deals"][3]["a_book_cost"]) == ("LP-Prime", "0")
    assert answer["floating_b_book_pnl"] == [{"currency": "USD", "amount": "0.55"}]
    assert [m["flagged"] for m in answer["mirror"]] == [False, False, False]
    assert {(s["key"], s["exact"]) for s in answer["slippage"]["symbol"]} == {
        ("EURUSD", 3),
        ("XAUUSD", 1),
    }

    doc["dealer_rules"] = mirror(symbol_mask="XAUUSD", markup_points=20)
    flagged = [m for m in run(doc)["mirror"] if m["flagged"]]
    assert [(m["group"], m["symbol"], m["observed_min_points"]) for m in flagged] == [
        ("real\\standard", "XAUUSD", "30")
    ]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"deals": [{"Deal": 1}]}))
    assert main([str(bad)]) == 2


async def open_account(session: AsyncSession, login: int, group: str) -> None:
    client_id, application_id = uuid.uuid4(), uuid.uuid4()
    session.add(
        Client(id=client_id, email=f"rev-{login}-{uuid.uuid4().hex[:6]}@example.com",
               password_hash="x", full_name=f"Trader {login}", country="DE",
               date_of_birth=date(1980, 1, 1), status="active")
    )  # fmt: skip
    await session.flush()
    session.add(
        AccountApplication(id=application_id, client_id=client_id, account_type="standard",
                           kind="live", status="completed",
                           workflow_id=f"account-opening-{application_id}", mt5_server=SERVER,
                           mt5_login=login)
    )  # fmt: skip
    await session.flush()
    session.add(
        Mt5Account(client_id=client_id, application_id=application_id, server=SERVER, login=login,
                   group=group, leverage=100, currency="USD", kind="live")
    )  # fmt: skip


async def ingest(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The simulator's deals and orders stored as the ingestion stores them (server on UTC)."""
    deals, orders = simulated()
    lines, low, high = copy_text(SERVER, deals, lambda msc: msc)
    async with sessions.begin() as session:
        connection = await session.connection()
        await DealStore(sessions).merge(connection, Batch(lines, len(deals), low, high))
        await TradeStateStore(sessions).merge_orders(
            connection, state_copy_text(HISTORY_ORDERS, SERVER, orders, lambda msc: msc)
        )
        for login, group in GROUPS.items():
            await open_account(session, login, group)


@pytest.fixture
def people(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, api: httpx.AsyncClient
) -> People:
    return People(sessions, SecretBox(settings.secrets_key), api)


async def test_ingested_simulator_deals_to_the_revenue_api_and_the_report(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    dealer = await people.staff(StaffRole.DEALER)
    finance = await people.staff(StaffRole.FINANCE)
    await ingest(sessions)
    at = datetime(2026, 12, 2, tzinfo=UTC)
    async with sessions.begin() as session:
        assert await queries.refresh_deal_revenue(session, SERVER, at) == (4, True)
    async with sessions.begin() as session:  # again: the 30 s overlap (3 deals), nothing new
        assert await queries.refresh_deal_revenue(session, SERVER, at) == (3, True)
    base = f"/v1/revenue/servers/{SERVER}"
    window = {"first": "2026-12-01", "last": "2026-12-01"}

    put = await api.put(
        f"{base}/dealer-rules",
        json={"rules": mirror(), "reason": "copied from the plugin"},
        headers={**dealer.headers, "X-Request-ID": "req-rev-1"},
    )
    assert put.status_code == 200, put.text
    assert [r["markup_points"] for r in put.json()] == [0, 30, 10, 0]
    async with sessions() as session:
        [row] = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "revenue.dealer_rules_set")
            )
        ).all()
    assert (row.entity_id, row.before, row.request_id, row.reason) == (
        SERVER, {"rules": []}, "req-rev-1", "copied from the plugin",
    )  # fmt: skip
    assert row.after is not None and len(row.after["rules"]) == 4
    refused = await api.put(
        f"{base}/dealer-rules",
        json={"rules": [{"group_mask": "x", "markup_points": -1}]},
        headers=dealer.headers,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"

    deals = (await api.get(f"{base}/deals", params=window, headers=finance.headers)).json()
    figures = [(d["symbol"], d["book"], D(d["markup_points"]), D(d["markup"])) for d in deals]
    assert figures == [
        ("EURUSD", "A", D(0), D(0)),
        ("XAUUSD", "B", D(30), D("0.3")),
        ("EURUSD", "B", D(10), D(10)),
        ("EURUSD", "B", D(10), D(10)),
    ]
    assert [D(d["b_book_pnl"]) for d in deals] == [0, 0, -80, 0]

    summary = (await api.get(f"{base}/summary", params=window, headers=finance.headers)).json()
    totals = {
        t["book"]: (t["deals"], D(t["markup"]), D(t["b_book_pnl"])) for t in summary["totals"]
    }
    assert totals == {"A": (1, D(0), D(0)), "B": (3, D("20.3"), D(-80))}

    check = (await api.get(f"{base}/mirror", params=window, headers=dealer.headers)).json()
    assert [r["flagged"] for r in check["rows"]] == [False, False, False]
    await api.put(
        f"{base}/dealer-rules",
        json={"rules": mirror(symbol_mask="XAUUSD", markup_points=20)},
        headers=dealer.headers,
    )
    check = (await api.get(f"{base}/mirror", params=window, headers=dealer.headers)).json()
    assert [(r["symbol"], r["flagged"]) for r in check["rows"] if r["flagged"]] == [
        ("XAUUSD", True)
    ]
    slippage = (await api.get(f"{base}/slippage", params=window, headers=dealer.headers)).json()
    assert [(r["key"], r["deals"], r["exact"]) for r in slippage["by_gateway"]] == [
        ("(B-book)", 3, 3),
        ("LP-Prime", 1, 1),
    ]
    assert [r["key"] for r in slippage["by_hour"]] == ["09"]

    # The analytics report's markup column, from the same figures.
    await AnalyticsSteps(sessions).run(RefreshAggregates(servers=[SERVER]))
    report = await api.get(
        "/v1/analytics/revenue",
        params={"by": "symbol", "first": "2026-12-01", "last": "2026-12-01"},
        headers=finance.headers,
    )
    assert report.status_code == 200, report.text
    markups = {r["key"]: D(r["markup"]) for r in report.json()["rows"]}
    assert markups == {"EURUSD": 20, "XAUUSD": D("0.3")}
    assert D(report.json()["totals"][0]["markup"]) == D("20.3")
    async with sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM deal_revenue")) == 4
