"""The payout cycle's Temporal Schedules (one per frequency) and the period each run pays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.client import ScheduleActionStartWorkflow

from contracts.ib_payout import (
    IB_PAYOUT_CYCLE,
    PayoutCycleInput,
    PayoutFrequency,
    cycle_period,
    last_full_period,
)
from schedules import all_schedules
from settings import Settings


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_one_schedule_per_frequency_starts_the_cycle() -> None:
    schedules = all_schedules(Settings(env="test", _env_file=None))
    for frequency in PayoutFrequency:
        schedule = schedules[f"ib-payouts-{frequency.value}"]
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == IB_PAYOUT_CYCLE.name
        assert action.args == [
            PayoutCycleInput(frequency=frequency, server_clock_offsets={"demo": 0})
        ]
        calendar = schedule.spec.calendars[0]
        weekly, monthly = calendar.day_of_week, calendar.day_of_month
        assert bool(weekly and weekly[0].start == 1) == (frequency is PayoutFrequency.WEEKLY)
        assert bool(monthly and monthly[0].start == 1) == (frequency is PayoutFrequency.MONTHLY)


def test_each_run_pays_the_last_whole_period() -> None:
    # Wednesday 2026-03-04 01:00: yesterday; the week from Monday 2026-02-23 to Monday
    # 2026-03-02; February (2026 is no leap year: 28 days).
    now = at("2026-03-04T01:00:00")
    assert last_full_period(PayoutFrequency.DAILY, now) == (
        at("2026-03-03T00:00:00"),
        at("2026-03-04T00:00:00"),
    )
    assert last_full_period(PayoutFrequency.WEEKLY, now) == (
        at("2026-02-23T00:00:00"),
        at("2026-03-02T00:00:00"),
    )
    assert last_full_period(PayoutFrequency.MONTHLY, now) == (
        at("2026-02-01T00:00:00"),
        at("2026-03-01T00:00:00"),
    )


def test_the_cycle_waits_until_the_period_has_ended_on_every_servers_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each server's own offset goes into the cycle; the period is read on the westmost clock,
    so it has ended on every server when it is paid (its bounds are server-clock seconds, the
    same numbers on each server)."""
    monkeypatch.setenv("BROKERFLOW_IB__SERVER_CLOCK_OFFSET", "7200")
    monkeypatch.setenv("BROKERFLOW_MT5__NAME", "live-1")
    monkeypatch.setenv("BROKERFLOW_MT5__SERVER_CLOCK_OFFSET", "10800")
    monkeypatch.setenv(
        "BROKERFLOW_MT5_SERVERS",
        '[{"name": "ny", "server_clock_offset": -18000}, {"name": "live-2"}]',
    )
    settings = Settings(env="test", _env_file=None)
    action = all_schedules(settings)["ib-payouts-daily"].action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [cycle] = action.args
    assert isinstance(cycle, PayoutCycleInput)
    assert cycle.server_clock_offsets == {"live-1": 10800, "ny": -18000, "live-2": 7200}
    # Tuesday 2026-03-03 01:00 UTC: 04:00 on live-1, 03:00 on live-2, but Monday 20:00 in New
    # York, where Monday has not ended: Sunday is paid.
    now = at("2026-03-03T01:00:00")
    assert cycle_period(cycle, now) == (at("2026-03-01T00:00:00"), at("2026-03-02T00:00:00"))
    # Without the New York server, Monday (ended on both others' clocks).
    east = cycle.model_copy(update={"server_clock_offsets": {"live-1": 10800, "live-2": 7200}})
    assert cycle_period(east, now) == (at("2026-03-02T00:00:00"), at("2026-03-03T00:00:00"))
    # A cycle started before the per-server offsets reads the one shared offset, as it did.
    shared = PayoutCycleInput(frequency=PayoutFrequency.DAILY, server_clock_offset=-18000)
    assert cycle_period(shared, now) == cycle_period(cycle, now)
    # A period given is the period paid.
    given = shared.model_copy(update={"period_start": 10, "period_end": 20})
    assert cycle_period(given, now) == (10, 20)
