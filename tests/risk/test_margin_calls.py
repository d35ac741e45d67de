"""Margin-call and stop-out proximity in the live step (`record_live_exposure_point`): the trade
states of the logins with positions (`user/account/get_batch`) and each group's MarginCall /
MarginStopOut, read through a fake MT5; the accounts at risk in the point and the JSON the
dashboard reads; one alert per account and state, raised once, cleared when the account moves
on or has no position left.

tests/risk/scene.py's accounts, every group with MarginCall 100 %, MarginStopOut 50 %
(headroom 0.2: near at 120 %):
* 6100001: equity 3500, margin 3000: 116.67 % (near a margin call); then equity 1200: 40 %
  (stop out); then its positions closed;
* 6100002: equity 50000, margin 2200: 2272.73 %, fine;
* 6199999 (no BrokerFlow account; MT5 has its group): no trade state (13): nothing at risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.risk_exposure import ExposureMt5Reads, RiskExposureSteps, margin_alert_id
from api.risk.service import live_exposure
from contracts.risk_exposure import RecordExposurePoint
from db.models import ExposurePointRow, PositionRow, RiskAlert
from domain.exposure.margin_calls import MarginState
from mt5_adapter.terms import GroupTerms, TradeState, TradeStates, UserTerms
from tests.risk.scene import A_CLIENT, B_CLIENT, SEEN, SERVER, STRANGER, seed
from tests.risk.test_live_exposure import FakeMt5

D = Decimal
LINES = {"margin_call": D(100), "margin_stop_out": D(50), "margin_so_mode": 0}
GROUPS = {
    name: GroupTerms(name, "USD", mode, **LINES)  # type: ignore[arg-type]
    for name, mode in (("real\\A", 2), ("real\\B", 0), ("lp\\cover", 2))
}


class MarginMt5(FakeMt5):
    """The fake MT5 of tests/risk/test_live_exposure.py with trade states and margin lines."""

    def __init__(self, states: dict[int, tuple[str, str]], *, down: bool = False) -> None:
        super().__init__(down=down)
        self.states = states
        self.states_asked: list[list[int]] = []

    async def group_terms(self, group: str) -> GroupTerms:
        await super().group_terms(group)
        return GROUPS[group]

    async def user_terms(self, logins: Sequence[int]) -> list[UserTerms]:
        await super().user_terms(logins)
        return [UserTerms(STRANGER, "lp\\cover", 100, "")] if STRANGER in logins else []

    async def trade_states(self, logins: Sequence[int]) -> list[TradeState]:
        self.states_asked.append(list(logins))
        return [
            TradeState(login, D(equity), D(margin), D(0))
            for login, (equity, margin) in self.states.items()
            if login in logins
        ]


def live(sessions: async_sessionmaker[AsyncSession], mt5: MarginMt5) -> ExposureMt5Reads:
    return ExposureMt5Reads(SERVER, RiskExposureSteps(sessions, now=lambda: SEEN), mt5)


async def alerts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, RiskAlert]:
    async with sessions() as session:
        rows = await session.scalars(select(RiskAlert).where(RiskAlert.scope == "account"))
        return {a.metric: a for a in rows.all()}


async def test_accounts_at_risk_are_shown_and_alerted_once_per_state(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    request = RecordExposurePoint(server=SERVER)
    near = {B_CLIENT: ("3500", "3000"), A_CLIENT: ("50000", "2200")}
    mt5 = MarginMt5(near)
    assert isinstance(mt5, TradeStates)
    first = await live(sessions, mt5).record_live_exposure_point(request)
    assert first.error is None and first.mt5_errors == []
    assert mt5.states_asked == [[B_CLIENT, A_CLIENT, STRANGER]]  # the logins with positions
    assert first.raised == [f"account:{B_CLIENT}:near_margin_call"]
    async with sessions() as session:
        point = await session.get(ExposurePointRow, first.point_id)
        assert point is not None
        assert point.figures["margin_calls"] == [
            {
                "login": B_CLIENT,
                "group": "real\\B",
                "currency": "USD",
                "equity": "3500.00",
                "margin": "3000.00",
                "level": "116.67",
                "margin_call": "100",
                "stop_out": "50",
                "near_limit": "120",
                "so_mode": "percent",
                "state": "near_margin_call",
            }
        ]
    found = await alerts(sessions)
    alert = found["near_margin_call"]
    assert (alert.key, alert.status, alert.value, alert.raise_above) == (
        str(B_CLIENT),
        "open",
        D("116.67"),
        D("120.0"),
    )
    assert alert.threshold_id == margin_alert_id(B_CLIENT, MarginState.NEAR_MARGIN_CALL)
    assert first.raised_alert_ids == [str(alert.id)]

    # The same state again: nothing raised twice.
    again = await live(sessions, MarginMt5(near)).record_live_exposure_point(request)
    assert (again.raised, again.cleared, again.raised_alert_ids) == ([], [], [])

    # MT5 down: nothing is known of the trade states, so nothing changes either.
    down = await live(sessions, MarginMt5(near, down=True)).record_live_exposure_point(request)
    assert (down.raised, down.cleared) == ([], [])

    # Equity falls to 1200: 40 %, a stop out; the near alert clears.
    stop = {**near, B_CLIENT: ("1200", "3000")}
    worse = await live(sessions, MarginMt5(stop)).record_live_exposure_point(request)
    assert worse.raised == [f"account:{B_CLIENT}:stop_out"]
    assert worse.cleared == [f"account:{B_CLIENT}:near_margin_call"]
    found = await alerts(sessions)
    assert found["near_margin_call"].cleared_at == SEEN
    assert (found["stop_out"].value, found["stop_out"].raise_above) == (D("40.00"), D(50))
    async with sessions() as session:
        view = await live_exposure(session, SERVER)
    [row] = view.margin_calls
    assert (row.login, row.level, row.state, row.stop_out) == (B_CLIENT, "40.00", "stop_out", "50")
    assert {a.metric for a in view.alerts} == {"near_margin_call", "stop_out"}

    # The account's positions closed (MT5 stopped it out): nothing at risk, the alert clears.
    async with sessions.begin() as session:
        await session.execute(delete(PositionRow).where(PositionRow.login == B_CLIENT))
    flat = await live(sessions, MarginMt5(stop)).record_live_exposure_point(request)
    assert (flat.raised, flat.cleared) == ([], [f"account:{B_CLIENT}:stop_out"])
    async with sessions() as session:
        view = await live_exposure(session, SERVER)
    assert view.margin_calls == []


async def test_a_run_without_mt5_trade_states_shows_no_margin_calls(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    result = await live(sessions, FakeMt5()).record_live_exposure_point(  # type: ignore[arg-type]
        RecordExposurePoint(server=SERVER)
    )
    async with sessions() as session:
        point = await session.get(ExposurePointRow, result.point_id)
        assert point is not None and "margin_calls" not in point.figures
        view = await live_exposure(session, SERVER)
    assert view.margin_calls == []
