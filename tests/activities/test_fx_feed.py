"""The FX feed (issue 11): MT5's quotes stored as FX rates with their source and their own time,
through the real adapter (`tick/last`) against an MT5 simulator whose clock runs at UTC+2, into
the real database; the workflow run by a real Temporal server; the schedule built from settings.

Ground truth for the quotes is the simulator's own `/_sim/quotes` (set here) and its clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleActionStartWorkflow, ScheduleIntervalSpec
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.fx_feed import FxFeed
from activities.ledger_steps import newest_rate
from api.fx import service as fx_service
from api.fx.schemas import FxRateView
from contracts import mt5_task_queue
from contracts.fx_feed import FX_FEED, FeedSymbol, FxFeedInput, StoredFxQuotes, StoreFxQuotes
from contracts.steps import Mt5Step, implementations
from db.models import FxRateRow
from domain.wallets import FxRateStale, require_fresh
from mt5_adapter.quotes import utc_of_server_msc
from mt5_adapter.webapi import WebApiGateway
from schedules import all_schedules, fx_feed_schedule
from settings import FxFeedSettings, Mt5ServerSettings, Settings
from tests.support.mt5_utc_plus_2 import UTC_PLUS_2, gateway, simulator  # noqa: F401 (fixtures)
from tests.support.processes import Simulator
from workflows.fx_feed import FxFeedWorkflow

PAIRS = [
    FeedSymbol(symbol="EURUSD", base="EUR", quote="USD"),
    FeedSymbol(symbol="USDJPY", base="USD", quote="JPY"),
]


def set_quotes(simulator: Simulator, quotes: dict[str, list[str]]) -> datetime:  # noqa: F811
    """Move the simulator's prices; returns (to the millisecond) when, by its clock."""
    before = datetime.now(UTC)
    httpx.post(f"{simulator.base_url}/_sim/quotes", json=quotes).raise_for_status()
    return before


def request(*pairs: FeedSymbol, offset: int = UTC_PLUS_2, server: str = "demo") -> StoreFxQuotes:
    return StoreFxQuotes(
        server=server,
        symbols=list(pairs or PAIRS),
        server_clock_offset=offset,
        max_age=timedelta(hours=1),
    )


async def feed_rows(sessions: async_sessionmaker[AsyncSession]) -> list[FxRateRow]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(FxRateRow).where(FxRateRow.source != "staff").order_by(FxRateRow.source)
            )
        )


async def staff_rate(
    sessions: async_sessionmaker[AsyncSession], bid: str, ask: str, as_of: datetime
) -> None:
    """A USD/EUR rate as finance's route stores it (source left to its default: staff)."""
    async with sessions.begin() as session:
        session.add(
            FxRateRow(base="USD", quote="EUR", bid=Decimal(bid), ask=Decimal(ask), as_of=as_of)
        )


def test_a_ticks_server_time_is_read_back_as_utc() -> None:
    # 14:00:00.250 on a UTC+2 server's clock is 12:00:00.250 UTC.
    server = int(datetime(2026, 12, 7, 14, 0, 0, 250_000, tzinfo=UTC).timestamp() * 1000)
    assert utc_of_server_msc(server, UTC_PLUS_2) == datetime(2026, 12, 7, 12, 0, 0, 250_000, UTC)
    assert utc_of_server_msc(server, -3600) == datetime(2026, 12, 7, 15, 0, 0, 250_000, UTC)


async def test_quotes_are_stored_once_with_their_source_and_utc_time(
    simulator: Simulator,  # noqa: F811
    gateway: WebApiGateway,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    quoted = set_quotes(simulator, {"EURUSD": ["1.08012", "1.08025"]})
    feed = FxFeed("demo", sessions, gateway)

    first = await feed.store_fx_quotes(request())
    # A retried attempt (or the next run before the quote moved) reads the same EURUSD tick.
    again = await feed.store_fx_quotes(request(PAIRS[0]))

    assert first.stored == ["EURUSD", "USDJPY"] and first.stale == first.unknown == []
    assert again == StoredFxQuotes(already_stored=["EURUSD"])
    eur, jpy = await feed_rows(sessions)
    assert (eur.source, eur.base, eur.quote) == ("mt5:demo:EURUSD", "EUR", "USD")
    assert (eur.bid, eur.ask) == (Decimal("1.08012"), Decimal("1.08025"))
    # The tick's time is the quote's, server time (UTC+2) read back as UTC.
    assert quoted - timedelta(seconds=1) <= eur.as_of <= datetime.now(UTC)
    assert (jpy.source, jpy.base, jpy.quote) == ("mt5:demo:USDJPY", "USD", "JPY")


async def test_a_stale_quote_or_one_from_the_future_is_not_stored_an_unknown_one_skipped(
    simulator: Simulator,  # noqa: F811
    gateway: WebApiGateway,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    set_quotes(simulator, {"EURUSD": ["1.08100", "1.08110"]})
    # Read two hours later (the market closed meanwhile): older than the hour a rate may be.
    later = FxFeed("demo", sessions, gateway, now=lambda: datetime.now(UTC) + timedelta(hours=2))
    stale = await later.store_fx_quotes(request(PAIRS[0]))
    # The server's clock offset set to UTC while the server runs at UTC+2: two hours ahead.
    ahead = await FxFeed("demo", sessions, gateway).store_fx_quotes(request(PAIRS[0], offset=0))

    assert stale == ahead == StoredFxQuotes(stale=["EURUSD"])
    assert await feed_rows(sessions) == []
    # A symbol MT5 does not know is reported; the others are still read.
    nope = FeedSymbol(symbol="EURUSD.nope", base="EUR", quote="USD")
    result = await FxFeed("demo", sessions, gateway).store_fx_quotes(request(nope, PAIRS[1]))
    assert (result.stored, result.unknown) == (["USDJPY"], ["EURUSD.nope"])


async def test_the_newest_rate_wins_whatever_its_source_and_keeps_its_age(
    simulator: Simulator,  # noqa: F811
    gateway: WebApiGateway,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    set_quotes(simulator, {"EURUSD": ["1.09000", "1.09010"]})
    # Staff's USD/EUR (the same pair, quoted the other way round), five minutes old.
    await staff_rate(sessions, "0.91", "0.92", datetime.now(UTC) - timedelta(minutes=5))
    await FxFeed("demo", sessions, gateway).store_fx_quotes(request(PAIRS[0]))

    async with sessions() as session:
        newest = await newest_rate(session, "USD", "EUR")
        assert (newest.base, newest.bid) == ("EUR", Decimal("1.09000"))
        listed = {
            (v.base, v.quote): v for v in map(FxRateView.of, await fx_service.latest_rates(session))
        }
    assert listed["EUR", "USD"].source == "mt5:demo:EURUSD"
    assert listed["USD", "EUR"].source == "staff"
    # Staff enters a newer rate: it wins.
    await staff_rate(sessions, "0.915", "0.916", datetime.now(UTC))
    async with sessions() as session:
        newest = await newest_rate(session, "EUR", "USD")
    assert (newest.base, newest.bid) == ("USD", Decimal("0.915"))
    # Whatever the source, a conversion an hour later refuses it.
    with pytest.raises(FxRateStale):
        require_fresh(newest, datetime.now(UTC) + timedelta(hours=1, minutes=1), timedelta(hours=1))


async def test_the_scheduled_run_stores_the_quotes_through_temporal(
    temporal_env: WorkflowEnvironment,
    simulator: Simulator,  # noqa: F811
    gateway: WebApiGateway,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    server = f"fx-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        env="dev",
        _env_file=None,
        mt5=Mt5ServerSettings(name=server, server_clock_offset=UTC_PLUS_2),
        fx_feed=FxFeedSettings(symbols={"EURUSD": "EUR/USD"}, interval=timedelta(seconds=30)),
    )
    schedule = all_schedules(settings)["fx-feed"]
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == FX_FEED.name
    assert schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=30))]
    [feed_input] = action.args
    assert feed_input == FxFeedInput(
        server=server,
        symbols=[PAIRS[0]],
        server_clock_offset=UTC_PLUS_2,
        max_age=settings.payments.fx_rate_max_age,
    )
    assert "fx-feed" not in all_schedules(settings.model_copy(update={"env": "test"}))

    set_quotes(simulator, {"EURUSD": ["1.07000", "1.07010"]})
    client = temporal_env.client
    queue = f"fx-feed-{uuid.uuid4()}"
    steps = implementations(Mt5Step, FxFeed(server, sessions, gateway))
    async with (
        Worker(client, task_queue=queue, workflows=[FxFeedWorkflow]),
        Worker(client, task_queue=mt5_task_queue(server), activities=list(steps.values())),
    ):
        result = await client.execute_workflow(
            FX_FEED.name,
            feed_input,
            id=f"fx-feed-test-{uuid.uuid4()}",
            task_queue=queue,
            result_type=StoredFxQuotes,
        )
    assert result == StoredFxQuotes(stored=["EURUSD"])
    [row] = await feed_rows(sessions)
    assert (row.source, row.bid) == (f"mt5:{server}:EURUSD", Decimal("1.07000"))


def test_the_feed_settings_refuse_what_is_not_a_pair() -> None:
    with pytest.raises(ValueError, match="EURUSD"):
        FxFeedSettings(symbols={"EURUSD": "EURUSD"})
    with pytest.raises(ValueError, match="XAU"):
        FxFeedSettings(symbols={"XAUUSD": "XAU/USD"})
    with pytest.raises(ValueError, match="not a configured MT5 server"):
        fx_feed_schedule(Settings(_env_file=None, fx_feed=FxFeedSettings(server="nowhere")))
