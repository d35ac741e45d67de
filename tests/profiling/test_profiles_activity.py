"""The profiling step against the real database: deals inserted as the ingestion stores them,
quotes from a fake `tick/history`; one stored profile per account, written again by a retry."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleActionStartWorkflow, ScheduleIntervalSpec
from temporalio.testing import ActivityEnvironment

from activities.client_profiling import ClientProfiling, windows_around
from contracts.client_profiling import (
    CLIENT_PROFILING,
    ClientProfilingInput,
    ProfileServerInput,
    client_profiling_schedule_id,
)
from db.models import ClientProfileRow
from schedules import all_schedules
from settings import Mt5ServerSettings, ProfilingSettings, Settings
from tests.profiling.profiles_scene import ARBITRAGEUR, LOSER, SERVER, START, UNTIL, seed


async def test_profiles_are_computed_from_stored_deals_and_stored_once_per_account(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ticks = await seed(sessions)
    steps = ClientProfiling(SERVER, sessions, ticks, now=lambda: UNTIL)
    request = ProfileServerInput(server=SERVER, window=timedelta(days=1), until=UNTIL)

    stored = await ActivityEnvironment().run(steps.profile_server_accounts, request)

    assert (stored.accounts, stored.deals) == (2, 48)
    assert stored.by_profile == {"latency_arbitrage": 1, "losing_directional": 1}
    assert stored.truncated_symbols == []
    # Quotes were read around the entries only: one window per entry cluster, never the day.
    assert all(until - since <= timedelta(minutes=40) for _, since, until in ticks.asked)
    async with sessions() as session:
        rows = {r.login: r for r in await session.scalars(select(ClientProfileRow))}
    arbitrage, loser = rows[ARBITRAGEUR], rows[LOSER]
    assert (arbitrage.profile, arbitrage.suggested_book) == ("latency_arbitrage", "A")
    assert arbitrage.explanation.startswith("latency_arbitrage (stale_quote_share = 1 >= 0.5")
    assert arbitrage.metrics["stale_quote_share"] == "1"
    assert arbitrage.conditions[0] == {
        "metric": "stale_quote_share",
        "value": "1",
        "comparison": ">=",
        "threshold": "0.5",
        "met": True,
    }
    assert (loser.profile, loser.suggested_book, loser.trades) == ("losing_directional", "B", 12)
    assert str(loser.net_profit) == "-60.00"
    assert (arbitrage.window_from, arbitrage.window_to) == (UNTIL - timedelta(days=1), UNTIL)

    # A retried (or the next) run replaces the rows: still one per account.
    again = await ActivityEnvironment().run(steps.profile_server_accounts, request)
    assert again.by_profile == stored.by_profile
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ClientProfileRow)) == 2


def test_quote_windows_surround_each_entry_and_merge_when_close() -> None:
    near = [START, START + timedelta(minutes=3)]
    far = START + timedelta(hours=1)
    windows = windows_around([*near, far])
    assert len(windows) == 2
    (first_from, first_to), (second_from, second_to) = windows
    assert first_from < START and first_to > near[1] + timedelta(seconds=60)
    assert second_from < far < second_to


def test_each_server_is_profiled_on_its_own_schedule_outside_tests() -> None:
    settings = Settings(
        env="dev",
        mt5=Mt5ServerSettings(name=SERVER),
        profiling=ProfilingSettings(interval=timedelta(minutes=30), window=timedelta(days=2)),
        _env_file=None,
    )
    schedule = all_schedules(settings)[client_profiling_schedule_id(SERVER)]
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == CLIENT_PROFILING.name
    assert schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=30))]
    assert action.args == [ClientProfilingInput(server=SERVER, window=timedelta(days=2))]
    testing = settings.model_copy(update={"env": "test"})
    assert client_profiling_schedule_id(SERVER) not in all_schedules(testing)
    assert settings.profiling.group_for(SERVER, "A") == "real\\a-book"
