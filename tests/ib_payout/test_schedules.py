"""The payout cycle's Temporal Schedules (one per frequency) and the period each run pays."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import ScheduleActionStartWorkflow

from contracts.ib_payout import IB_PAYOUT_CYCLE, PayoutCycleInput, PayoutFrequency, last_full_period
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
        assert action.args == [PayoutCycleInput(frequency=frequency)]
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
