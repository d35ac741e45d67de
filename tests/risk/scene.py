"""A risk scene written straight into a test database, as the ingestion would have stored it:
two BrokerFlow accounts on one server, two symbols, open positions and account states.

Figures by hand (reporting USD; EURUSD quoted 1.1000 / 1.1002 by its positions, mid 1.1001;
XAUUSD 2010):
* 6100001 (DE, real\\B, no book set: B): buy 1 EURUSD, buy 1 XAUUSD @ 2000; equity 10000
* 6100002 (GB, real\\A, book A): sell 2 EURUSD; equity 50000
* EURUSD net -1 lot: long 100000 x 1.1001 = 110010, short 220020, net -110010.00
* XAUUSD (CFD leverage, ContractSize 100) 1 lot: 100 x 2010 = 201000.00
* total net 110010 + 201000 - 220020 = 90990.00; book B 311010.00, book A -220020.00
* margin 6100001: 1 x 100000 / 100 = 1000 EUR x 1.1002 (ask) = 1100.20 + 100 x 2000 / 100
  = 2000: 3100.20; 6100002: 2000 EUR x 1.1002 = 2200.40; all: 5300.60 / 60000 = 0.088343
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import (
    AccountApplication,
    AccountBook,
    AccountStateRow,
    Client,
    Mt5Account,
    PositionRow,
)
from db.models.trading import SymbolRow

D = Decimal
SERVER = "risk-1"
B_CLIENT, A_CLIENT, STRANGER = 6100001, 6100002, 6199999
SEEN = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def symbol(name: str, calc_mode: int, base: str, size: str, margin: str) -> SymbolRow:
    return SymbolRow(
        server=SERVER,
        symbol=name,
        path=f"test\\{name}",
        calc_mode=calc_mode,
        digits=5 if calc_mode == 0 else 2,
        spread=0,
        contract_size=D(size),
        point=D("0.00001") if calc_mode == 0 else D("0.01"),
        currency_base=base,
        currency_profit="USD",
        currency_margin=margin,
        margin_rate_initial=[D(1)],
        raw={"Symbol": name},
        seen_at=SEEN,
    )


def position(
    ticket: int, login: int, name: str, action: int, lots: str, opened: str, current: str
) -> PositionRow:
    return PositionRow(
        server=SERVER,
        position=ticket,
        login=login,
        symbol=name,
        action=action,
        reason=0,
        digits=5,
        digits_currency=2,
        time_create=SEEN,
        time_update=SEEN,
        time_create_msc=0,
        time_update_msc=0,
        contract_size=D(100000) if name == "EURUSD" else D(100),
        price_open=D(opened),
        price_current=D(current),
        price_sl=D(0),
        price_tp=D(0),
        volume=int(D(lots) * 10000),
        volume_ext=0,
        profit=D(0),
        storage=D(0),
        rate_profit=D(1),
        rate_margin=D(1),
        dealer=0,
        expert_id=0,
        external_id="",
        comment="",
        seen_at=SEEN,
    )


def state(login: int, equity: str) -> AccountStateRow:
    zero = D(0)
    return AccountStateRow(
        server=SERVER,
        login=login,
        currency_digits=2,
        balance=D(equity),
        credit=zero,
        equity=D(equity),
        margin=zero,
        margin_free=zero,
        margin_level=zero,
        profit=zero,
        storage=zero,
        floating=zero,
        taken_at=SEEN,
    )


async def account(
    session: AsyncSession, login: int, country: str, group: str, server: str = SERVER
) -> uuid.UUID:
    """A client with a live account BrokerFlow opened on `server` (its application and its
    `mt5_accounts` row: group, leverage 100, USD)."""
    client_id, application_id = uuid.uuid4(), uuid.uuid4()
    session.add(
        Client(
            id=client_id,
            email=f"risk-{login}-{uuid.uuid4().hex[:6]}@example.com",
            password_hash="x",
            full_name=f"Trader {login}",
            country=country,
            date_of_birth=date(1980, 1, 1),
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
            mt5_server=server,
            mt5_login=login,
        )
    )
    await session.flush()
    session.add(
        Mt5Account(
            client_id=client_id,
            application_id=application_id,
            server=server,
            login=login,
            group=group,
            leverage=100,
            currency="USD",
            kind="live",
        )
    )
    return client_id


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await account(session, B_CLIENT, "DE", "real\\B")
        await account(session, A_CLIENT, "GB", "real\\A")
        session.add(
            AccountBook(
                server=SERVER,
                login=A_CLIENT,
                book="A",
                a_share=None,
                set_by="test",
                updated_at=SEEN,
            )
        )
        session.add(symbol("EURUSD", 0, "EUR", "100000", "EUR"))
        session.add(symbol("XAUUSD", 4, "XAU", "100", "USD"))
        session.add_all(
            [
                position(1, B_CLIENT, "EURUSD", 0, "1", "1.1000", "1.1000"),
                position(2, A_CLIENT, "EURUSD", 1, "2", "1.1010", "1.1002"),
                position(3, B_CLIENT, "XAUUSD", 0, "1", "2000", "2010"),
                # A login BrokerFlow did not open: left out, named.
                position(4, STRANGER, "EURUSD", 0, "5", "1.1000", "1.1000"),
                state(B_CLIENT, "10000"),
                state(A_CLIENT, "50000"),
            ]
        )


async def set_gold_lots(sessions: async_sessionmaker[AsyncSession], lots: str) -> None:
    """The XAUUSD position's volume changed (0: closed) as the next snapshot would show it."""
    async with sessions.begin() as session:
        if D(lots) == 0:
            await session.execute(delete(PositionRow).where(PositionRow.position == 3))
            return
        await session.execute(
            update(PositionRow)
            .where(PositionRow.server == SERVER, PositionRow.position == 3)
            .values(volume=int(D(lots) * 10000))
        )
