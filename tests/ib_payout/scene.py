"""An IB scene in a test's database: plans, the tree, clients' MT5 accounts, attribution, FX
rates and deals (written by the ingestion's own bulk store), as the accrual reads them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AccountApplication, Client, FxRateRow, Mt5Account
from db.models.ib import IbAttribution, IbPlan, IbPlanVersion, IntroducingBroker
from db.trade_store import Batch, DealStore, copy_text

SERVER = "demo"
T0 = 1767225600  # 2026-01-01 00:00 on the server's clock (docs/ib-commissions.md's example)


class Scene:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.deals = DealStore(sessions)

    async def plan(self, plan_id: str, *versions: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            session.add(IbPlan(id=plan_id, name=plan_id))
            await session.flush()
            for terms in versions:
                session.add(
                    IbPlanVersion(
                        plan_id=plan_id,
                        version=terms["version"],
                        effective_from=terms["from"],
                        terms=terms,
                    )
                )

    async def ib(
        self,
        name: str,
        plan: str,
        parent: uuid.UUID | None = None,
        frequency: str = "weekly",
    ) -> uuid.UUID:
        ib_id = uuid.uuid4()
        async with self.sessions.begin() as session:
            session.add(
                IntroducingBroker(
                    id=ib_id,
                    email=f"{name.lower()}-{ib_id.hex[:6]}@example.com",
                    password_hash="x",
                    name=name,
                    referral_code=f"{name}{ib_id.hex[:8]}",
                    parent_id=parent,
                    plan_id=plan,
                    payout_frequency=frequency,
                )
            )
        return ib_id

    async def account(
        self, login: int, currency: str = "USD", group: str = "real\\standard"
    ) -> None:
        client_id, application_id = uuid.uuid4(), uuid.uuid4()
        async with self.sessions.begin() as session:
            session.add(
                Client(
                    id=client_id,
                    email=f"c{login}-{client_id.hex[:6]}@example.com",
                    password_hash="x",
                    full_name=f"Client {login}",
                    country="DE",
                    date_of_birth=date(1990, 1, 1),
                    status="active",
                )
            )
            await session.flush()
            session.add(
                AccountApplication(
                    id=application_id,
                    client_id=client_id,
                    account_type="standard",
                    kind="live",
                    status="completed",
                    workflow_id=f"account-opening-{application_id}",
                    mt5_server=SERVER,
                    mt5_login=login,
                )
            )
            await session.flush()
            session.add(
                Mt5Account(
                    client_id=client_id,
                    application_id=application_id,
                    server=SERVER,
                    login=login,
                    group=group,
                    leverage=100,
                    currency=currency,
                    kind="live",
                )
            )

    async def attribute(
        self, login: int, ib: uuid.UUID, start: int, end: int | None = None
    ) -> None:
        async with self.sessions.begin() as session:
            session.add(
                IbAttribution(
                    server=SERVER,
                    login=login,
                    ib_id=ib,
                    effective_from=start,
                    effective_to=end,
                    source="staff",
                )
            )

    async def rate(self, base: str, quote: str, mid: str) -> None:
        async with self.sessions.begin() as session:
            session.add(
                FxRateRow(
                    base=base,
                    quote=quote,
                    bid=Decimal(mid),
                    ask=Decimal(mid),
                    as_of=datetime.now(UTC),
                )
            )

    async def write_deals(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Deals as the Web API gives them (strings), written by the ingestion's bulk store;
        server time is taken as UTC here."""
        lines, low, high = copy_text(
            SERVER,
            [{key: str(value) for key, value in r.items()} for r in records],
            lambda msc: msc,
        )
        batch = Batch(lines, lines.count("\n"), low, high)
        async with self.sessions.begin() as session:
            connection = await session.connection()
            await self.deals.merge(connection, batch)


def trade(
    deal: int,
    time: int,
    action: int,
    entry: int,
    volume: int,
    price: str,
    position: int,
    *,
    login: int = 1001,
    closed: int = 0,
    commission: str = "0",
    profit: str = "0",
) -> dict[str, Any]:
    return {
        "Deal": deal,
        "Login": login,
        "Time": time,
        "Symbol": "EURUSD",
        "Action": action,
        "Entry": entry,
        "Volume": volume,
        "VolumeClosed": closed,
        "Price": price,
        "PositionID": position,
        "Commission": commission,
        "Profit": profit,
        "ContractSize": "100000",
        "Digits": 5,
    }


def deposit(deal: int, time: int, amount: str, *, login: int = 1001) -> dict[str, Any]:
    return {"Deal": deal, "Login": login, "Time": time, "Action": 2, "Profit": amount}


def version(
    number: int, start: int, lot_rate: str, cpa: str, *, payout_currency: str | None = None
) -> dict[str, Any]:
    """Per lot on EURUSD, round turn, differential, minimum hold 60 s, CPA from 100 deposited."""
    terms: dict[str, Any] = {
        "version": number,
        "from": start,
        "currency": "USD",
        "counting": "round_turn",
        "tiers": {"model": "differential"},
        "min_hold_seconds": 60,
        "rules": [
            {"basis": "per_lot", "symbols": ["EURUSD"], "rate": lot_rate},
            {"basis": "cpa", "rate": cpa, "min_deposit": "100"},
        ],
    }
    if payout_currency is not None:
        terms["payout_currency"] = payout_currency
    return terms


async def example_scene(sessions: async_sessionmaker[AsyncSession]) -> dict[str, uuid.UUID]:
    """docs/ib-commissions.md's worked example: M (top) → S → D, login 1001 D's client."""
    scene = Scene(sessions)
    await scene.plan("master", version(1, T0, "10", "200", payout_currency="EUR"))
    await scene.plan("sub", version(1, T0, "7", "150"))
    await scene.plan("direct", version(1, T0, "4", "100"), version(2, T0 + 3500, "5", "100"))
    m = await scene.ib("M", "master")
    s = await scene.ib("S", "sub", m)
    d = await scene.ib("D", "direct", s)
    await scene.account(1001)
    await scene.attribute(1001, d, T0)
    await scene.rate("USD", "EUR", "0.9")
    await scene.write_deals(EXAMPLE_DEALS)
    return {"M": m, "S": s, "D": d}


EXAMPLE_DEALS = [
    deposit(1, T0 + 100, "500.00"),
    trade(2, T0 + 1000, 0, 0, 10000, "1.10000", 7001, commission="-3.00"),
    trade(3, T0 + 2000, 1, 1, 4000, "1.10100", 7001, closed=4000, profit="40.00"),
    trade(4, T0 + 3000, 1, 2, 15000, "1.10200", 7001, closed=6000, profit="120.00"),
    trade(5, T0 + 3030, 0, 1, 9000, "1.10190", 7001, closed=9000, profit="9.00"),
    trade(6, T0 + 4000, 0, 0, 5000, "1.10000", 7006),
    trade(7, T0 + 5000, 1, 1, 5000, "1.10050", 7006, closed=5000, profit="25.00"),
]
