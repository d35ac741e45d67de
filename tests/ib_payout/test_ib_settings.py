"""The four-eyes threshold and the trade server's clock offset are settings, carried by the
payout schedules into each cycle (and by the cycle into each payout)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError
from temporalio.client import ScheduleActionStartWorkflow

from contracts.ib_payout import PayoutCycleInput, PayoutFrequency
from schedules import all_schedules
from settings import IbRules, Settings


def test_the_schedules_carry_the_ib_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKERFLOW_IB__FOUR_EYES_ABOVE", "250.50")
    monkeypatch.setenv("BROKERFLOW_IB__SERVER_CLOCK_OFFSET", "7200")
    settings = Settings(env="test", _env_file=None)
    assert settings.ib == IbRules(four_eyes_above=Decimal("250.50"), server_clock_offset=7200)
    action = all_schedules(settings)["ib-payouts-daily"].action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.args == [
        PayoutCycleInput(
            frequency=PayoutFrequency.DAILY,
            four_eyes_above=Decimal("250.50"),
            server_clock_offset=7200,
            # The sign-up server has no offset of its own: the shared one.
            server_clock_offsets={"demo": 7200},
        )
    ]


def test_an_offset_beyond_any_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError):
        IbRules(server_clock_offset=15 * 3600)
    with pytest.raises(ValidationError):
        IbRules(four_eyes_above=Decimal("-1"))
