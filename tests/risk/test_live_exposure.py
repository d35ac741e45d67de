"""The live step on the server's queue (`record_live_exposure_point`): what MT5 alone knows —
each group's currency and MarginMode, the accounts BrokerFlow did not open, the last ticks —
read once per run through `TradingTerms` (a fake here; the adapter is tested against the
simulator in tests/mt5/test_trading_terms.py) and counted in the point; MT5 down leaves the
point as the ingested state gives it.

The scene is tests/risk/scene.py's plus, here:
* 6199999 (the stranger, long 5 EURUSD) is the broker's `coverage` account in `lp\\cover`;
* 6199998, no BrokerFlow account, `real\\C` (EUR, hedging), leverage 200, MT5 country "fr",
  short 0.5 XAUUSD @ 2005, equity 20000;
* GBPUSD is listed but MT5 has no tick for it (a symbol deleted since the listing).
Ticks: EURUSD 1.1000 / 1.1004 (mid 1.1002), XAUUSD 2009 / 2011 (mid 2010). By hand (USD):
* EURUSD: 6100001 long 1 = 110020.00, 6100002 short 2 = 220040.00: net -110020.00
* XAUUSD: 6100001 long 1 = 100 x 2010 = 201000.00, 6199998 short 0.5 = 100500.00: net 100500.00
* clients' net -9520.00, gross 631560.00
* house: EURUSD coverage 5 x 100000 x 1.1002 = 550100 - B-book 110020 = 440080; XAUUSD
  0 - (201000 - 100500) = -100500: house net 339580.00
* 6100001 (real\\B, netting): 1000 EUR x 1.1004 (ask) = 1100.40 + 100 x 2000 / 100 = 2000:
  3100.40 / 10000 = 0.310040
* 6199998 (real\\C, EUR): 0.5 x 100 x 2005 / 200 = 501.25 USD / 1.1000 (1 / bid) =
  455.681818 EUR / 20000 = 0.022784
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.risk_exposure import ExposureMt5Reads, RiskExposureSteps
from contracts.risk_exposure import RecordExposurePoint
from db.models import AccountBook, ExposurePointRow
from mt5_adapter.errors import Mt5ConnectionError, Mt5NotFound
from mt5_adapter.terms import GroupTerms, Tick, UserTerms
from tests.risk.scene import (
    A_CLIENT,
    B_CLIENT,
    SEEN,
    SERVER,
    STRANGER,
    position,
    seed,
    state,
    symbol,
)

D = Decimal
OUTSIDER = 6199998
GROUPS = {
    "real\\A": GroupTerms("real\\A", "USD", 2),
    "real\\B": GroupTerms("real\\B", "USD", 0),
    "real\\C": GroupTerms("real\\C", "EUR", 2),
    "lp\\cover": GroupTerms("lp\\cover", "USD", 2),
}
USERS = {
    STRANGER: UserTerms(STRANGER, "lp\\cover", 100, ""),
    OUTSIDER: UserTerms(OUTSIDER, "real\\C", 200, "fr"),
}
TICKS = {
    "EURUSD": Tick("EURUSD", D("1.1000"), D("1.1004"), D(0), 1),
    "XAUUSD": Tick("XAUUSD", D("2009"), D("2011"), D(0), 1),
}


class FakeMt5:
    """`TradingTerms` answering from the tables above, counting what it was asked."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.groups_asked: list[str] = []
        self.users_asked: list[list[int]] = []

    async def group_terms(self, group: str) -> GroupTerms:
        self.groups_asked.append(group)
        if group not in GROUPS:
            raise Mt5NotFound(13, "Not found", "group/get")
        return GROUPS[group]

    async def user_terms(self, logins: Sequence[int]) -> list[UserTerms]:
        if self.down:
            raise Mt5ConnectionError("ConnectError", "user/get_batch", ambiguous=False)
        self.users_asked.append(list(logins))
        return [USERS[login] for login in logins if login in USERS]

    async def last_ticks(self, symbols: Sequence[str]) -> list[Tick]:
        if any(name not in TICKS for name in symbols):
            raise Mt5NotFound(13, "Not found", "tick/last")
        return [TICKS[name] for name in symbols]


def live(sessions: async_sessionmaker[AsyncSession], mt5: FakeMt5) -> ExposureMt5Reads:
    return ExposureMt5Reads(SERVER, RiskExposureSteps(sessions, now=lambda: SEEN), mt5)


async def outside_accounts(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        session.add(
            AccountBook(
                server=SERVER, login=STRANGER, book="coverage", set_by="test", updated_at=SEEN
            )
        )
        session.add(symbol("GBPUSD", 0, "GBP", "100000", "GBP"))
        session.add(position(5, OUTSIDER, "XAUUSD", 1, "0.5", "2005", "2011"))
        session.add(state(OUTSIDER, "20000"))


async def test_groups_outside_accounts_and_ticks_from_mt5_count_in_the_point(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    await outside_accounts(sessions)
    mt5 = FakeMt5()
    result = await live(sessions, mt5).record_live_exposure_point(
        RecordExposurePoint(server=SERVER)
    )
    assert (result.error, result.skipped_logins, result.mt5_errors) == (None, [], [])
    assert result.mt5_logins == [OUTSIDER, STRANGER]
    assert (result.tick_quotes, result.position_quotes, result.groups_unread) == (2, 0, [])
    # Each group once in the run; the outside logins in one batch.
    assert sorted(mt5.groups_asked) == sorted(GROUPS)
    assert mt5.users_asked == [[OUTSIDER, STRANGER]]

    async with sessions() as session:
        point = await session.get(ExposurePointRow, result.point_id)
    assert point is not None
    figures = point.figures
    assert (point.net_notional, point.gross_notional) == (D("-9520.00"), D("631560.00"))
    assert figures["by_symbol"]["EURUSD"]["net_notional"] == "-110020.00"
    assert figures["by_symbol"]["XAUUSD"]["net_notional"] == "100500.00"
    assert point.house_net_notional == D("339580.00")
    assert figures["groups"]["real\\B"]["utilisation"] == "0.310040"
    assert figures["groups"]["real\\C"]["utilisation"] == "0.022784"
    # The coverage account's margin is its group's; no equity stored for it: no utilisation.
    assert figures["groups"]["lp\\cover"]["utilisation"] is None
    assert set(figures["by_region"]) == {"eu", "uk"}  # FR from MT5's "fr"


async def test_a_netting_account_with_both_sides_is_read_as_hedging_and_named(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions.begin() as session:  # real\\B nets: MT5 would never hold this
        session.add(position(6, B_CLIENT, "EURUSD", 1, "1", "1.1000", "1.1000"))
    result = await live(sessions, FakeMt5()).record_live_exposure_point(
        RecordExposurePoint(server=SERVER)
    )
    assert result.error is None and result.point_id is not None
    assert result.mt5_errors == [
        f"login {B_CLIENT}: a netting group, but a buy and a sell in one symbol; read as hedging"
    ]


async def test_mt5_down_leaves_the_point_of_the_ingested_state(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    result = await live(sessions, FakeMt5(down=True)).record_live_exposure_point(
        RecordExposurePoint(server=SERVER, retention=timedelta(days=1))
    )
    # tests/risk/scene.py's figures, as the database step computes them.
    assert (result.net_notional, result.skipped_logins) == ("90990.00", [STRANGER])
    assert result.mt5_errors == [
        "MT5 reads stopped (Mt5ConnectionError: user/get_batch: 0 ConnectError)"
    ]
    assert result.groups_unread == ["real\\A", "real\\B"]
    assert (result.tick_quotes, result.position_quotes, result.mt5_logins) == (0, 2, [])
    assert A_CLIENT not in result.skipped_logins
