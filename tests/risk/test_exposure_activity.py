"""The live exposure step against real PostgreSQL (tests/risk/scene.py has the figures by hand):
the point, retention, alerts with hysteresis and de-duplication; and one scheduled run through
Temporal, whose raised alert is mailed to the risk desk."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleActionStartWorkflow, ScheduleIntervalSpec
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.risk_exposure import ExposureMt5Reads, NoTradingTerms, RiskExposureSteps
from contracts import mt5_task_queue
from contracts.risk_exposure import (
    RISK_EXPOSURE,
    ExposurePointRecorded,
    RecordExposurePoint,
    RiskExposureInput,
)
from contracts.steps import Mt5Step, Step, implementations
from db.models import ExposurePointRow, RiskAlert, RiskThreshold, StaffUser
from db.models.trading import SymbolRow
from mailer.smtp import InMemoryMailer
from schedules import all_schedules
from settings import Mt5ServerSettings, RiskSettings, Settings
from tests.risk.scene import SEEN, SERVER, STRANGER, seed, set_gold_lots
from workflows.risk_exposure import RiskExposureWorkflow

D = Decimal


class Clock:
    def __init__(self) -> None:
        self.at = SEEN

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.at


async def points(sessions: async_sessionmaker[AsyncSession]) -> list[ExposurePointRow]:
    async with sessions() as session:
        return list(await session.scalars(select(ExposurePointRow).order_by(ExposurePointRow.at)))


async def alerts(sessions: async_sessionmaker[AsyncSession]) -> list[RiskAlert]:
    async with sessions() as session:
        return list(await session.scalars(select(RiskAlert).order_by(RiskAlert.raised_at)))


async def test_a_point_holds_the_figures_by_hand(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    steps = RiskExposureSteps(sessions, now=Clock())
    result = await steps.record_exposure_point(RecordExposurePoint(server=SERVER))
    assert (result.net_notional, result.positions, result.skipped_logins, result.error) == (
        "90990.00",
        3,
        [STRANGER],
        None,
    )
    [point] = await points(sessions)
    assert point.id == result.point_id
    assert (point.net_notional, point.gross_notional) == (D("90990.00"), D("531030.00"))
    assert point.margin_utilisation == D("0.088343")
    assert point.house_net_notional == D("-311010.00")
    figures = point.figures
    assert figures["by_symbol"]["EURUSD"]["net_notional"] == "-110010.00"
    assert figures["by_symbol"]["XAUUSD"]["net_notional"] == "201000.00"
    assert figures["by_book"]["A"]["net_notional"] == "-220020.00"
    assert figures["by_book"]["B"]["net_notional"] == "311010.00"
    assert set(figures["by_region"]) == {"eu", "uk"}
    assert figures["groups"]["real\\B"]["utilisation"] == "0.310020"  # 3100.20 / 10000


async def test_thresholds_raise_hold_clear_and_raise_the_same_alert_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions.begin() as session:
        gold = RiskThreshold(
            scope="symbol",
            key="XAUUSD",
            metric="net_notional",
            raise_above=D(200000),
            clear_below=D(150000),
            created_by="test",
        )
        moved = RiskThreshold(
            scope="total",
            key="*",
            metric="change",
            raise_above=D(50000),
            clear_below=D(10000),
            window_seconds=60,
            created_by="test",
        )
        session.add_all([gold, moved])
    clock = Clock()
    steps = RiskExposureSteps(sessions, now=clock)
    request = RecordExposurePoint(server=SERVER, retention=timedelta(minutes=10))

    first = await steps.record_exposure_point(request)  # gold 201000 > 200000
    assert (first.raised, first.cleared) == (["symbol:XAUUSD:net_notional"], [])

    clock.at += timedelta(seconds=30)
    await set_gold_lots(sessions, "0.8")  # 160800: in the band, held
    held = await steps.record_exposure_point(request)
    assert (held.raised, held.cleared) == ([], [])

    clock.at += timedelta(seconds=40)  # 70 s after the first point (201000 -> 100500)
    await set_gold_lots(sessions, "0.5")
    cleared = await steps.record_exposure_point(request)
    assert cleared.cleared == ["symbol:XAUUSD:net_notional"]
    assert cleared.raised == ["total:*:change"]  # |90990 - (90990 - 100500)| = 100500

    clock.at += timedelta(seconds=30)
    await set_gold_lots(sessions, "1.1")  # 221100: raised again, on the same unresolved alert
    again = await steps.record_exposure_point(request)
    assert again.raised == ["symbol:XAUUSD:net_notional"]
    rows = [a for a in await alerts(sessions) if a.metric == "net_notional"]
    [alert] = rows
    assert (alert.status, alert.raised_count, alert.cleared_at) == ("open", 2, None)
    assert (alert.value, alert.peak_value, alert.last_value) == (
        D("201000.00"),
        D("221100.00"),
        D("221100.00"),
    )

    # Retention: 10 minutes later only the newest point is kept with the one written then.
    clock.at += timedelta(minutes=10)
    await steps.record_exposure_point(request)
    assert len(await points(sessions)) == 2


async def test_an_unreadable_symbol_is_answered_not_raised(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions.begin() as session:
        row = await session.get(SymbolRow, (SERVER, "XAUUSD"))
        assert row is not None
        row.contract_size = D(0)  # not computable: its positions are left out
    result = await RiskExposureSteps(sessions, now=Clock()).record_exposure_point(
        RecordExposurePoint(server=SERVER)
    )
    assert (result.positions, result.net_notional) == (2, "-110010.00")


async def test_the_schedule_runs_the_step_through_temporal(
    temporal_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = Settings(
        env="dev",
        _env_file=None,
        mt5=Mt5ServerSettings(name=SERVER),
        risk=RiskSettings(interval=timedelta(seconds=5), currency="USD"),
    )
    schedule = all_schedules(settings)[f"risk-exposure-{SERVER}"]
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == RISK_EXPOSURE.name
    assert schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=5))]
    [request] = action.args
    assert request == RiskExposureInput(server=SERVER, currency="USD", retention=timedelta(days=2))
    assert f"risk-exposure-{SERVER}" not in all_schedules(
        settings.model_copy(update={"env": "test"})
    )

    await seed(sessions)
    async with sessions.begin() as session:
        session.add(
            RiskThreshold(
                scope="total",
                key="*",
                metric="gross_notional",
                raise_above=D(500000),
                clear_below=D(400000),
                created_by="test",
            )
        )
        for email, roles, active in (
            ("desk@example.com", ["risk"], True),
            ("gone@example.com", ["dealer"], False),
            ("money@example.com", ["finance"], True),
        ):
            session.add(
                StaffUser(
                    email=email,
                    full_name="Staff",
                    password_hash="x",
                    totp_secret_enc="x",
                    roles=roles,
                    ip_allowlist=["127.0.0.1/32"],
                    active=active,
                )
            )
    mailer = InMemoryMailer()
    queue = f"risk-{uuid.uuid4()}"
    database = RiskExposureSteps(sessions, mailer)
    steps = implementations(Step, database)
    # The point is taken on the server's own queue; a gateway that reads nothing from MT5
    # leaves the ingested state's figures (tests/risk/test_live_exposure.py reads MT5).
    live = implementations(Mt5Step, ExposureMt5Reads(SERVER, database, NoTradingTerms()))
    async with (
        Worker(
            temporal_env.client,
            task_queue=queue,
            workflows=[RiskExposureWorkflow],
            activities=list(steps.values()),
        ),
        Worker(
            temporal_env.client,
            task_queue=mt5_task_queue(SERVER),
            activities=list(live.values()),
        ),
    ):
        result = await temporal_env.client.execute_workflow(
            RISK_EXPOSURE.name,
            request,
            id=f"risk-exposure-test-{uuid.uuid4()}",
            task_queue=queue,
            result_type=ExposurePointRecorded,
        )
    assert result.net_notional == "90990.00"
    assert result.groups_unread == ["real\\A", "real\\B"]  # read as hedging
    assert result.raised == ["total:*:gross_notional"]  # 531030 > 500000
    [mail] = mailer.sent  # the active risk-desk member only
    assert mail.to == "desk@example.com" and SERVER in mail.subject
    assert "total *  gross_notional 531030.00 above 500000" in mail.text
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ExposurePointRow)) == 1
