"""An FX rate has an age: a conversion refuses a rate older than the configured maximum, and one
stamped in the future beyond a small clock skew (`domain.wallets.require_fresh`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.wallets import (
    FX_CLOCK_SKEW,
    FxRate,
    FxRateStale,
    require_fresh,
)
from settings import PaymentRules

NOW = datetime(2026, 12, 4, 14, 30, tzinfo=UTC)


def rate_of(as_of: datetime) -> FxRate:
    return FxRate(base="EUR", quote="USD", bid=Decimal("1.08"), ask=Decimal("1.0802"), as_of=as_of)


ages = st.timedeltas(min_value=-timedelta(days=30), max_value=timedelta(days=30))
max_ages = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=7))


@given(age=ages, max_age=max_ages)
def test_a_rate_is_usable_exactly_when_its_age_is_within_the_limit(
    age: timedelta, max_age: timedelta
) -> None:
    usable = -FX_CLOCK_SKEW <= age <= max_age
    try:
        require_fresh(rate_of(NOW - age), NOW, max_age)
    except FxRateStale:
        assert not usable
    else:
        assert usable


@given(age=ages, max_age=max_ages, offset_hours=st.integers(-12, 14))
def test_the_time_zone_of_the_stamp_does_not_matter(
    age: timedelta, max_age: timedelta, offset_hours: int
) -> None:
    elsewhere = (NOW - age).astimezone(timezone(timedelta(hours=offset_hours)))
    outcomes = []
    for as_of in (NOW - age, elsewhere):
        try:
            require_fresh(rate_of(as_of), NOW, max_age)
            outcomes.append(True)
        except FxRateStale:
            outcomes.append(False)
    assert outcomes[0] == outcomes[1]


def test_the_refusal_says_which_rate_how_old_and_the_limit() -> None:
    with pytest.raises(FxRateStale) as refused:
        require_fresh(rate_of(NOW - timedelta(hours=2, minutes=5)), NOW, timedelta(hours=1))
    assert refused.value.detail == (
        "the newest EUR/USD rate (2026-12-04 12:25:00 UTC) is 2 h 5 min old; conversions use "
        "rates up to 1 h old: a newer rate is needed"
    )
    assert refused.value.status_code == 409


def test_a_rate_from_the_future_is_refused() -> None:
    with pytest.raises(FxRateStale, match="ahead"):
        require_fresh(rate_of(NOW + timedelta(minutes=10)), NOW, timedelta(hours=1))


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        require_fresh(rate_of(NOW.replace(tzinfo=None)), NOW, timedelta(hours=1))
    with pytest.raises(InvalidInput):
        require_fresh(rate_of(NOW), NOW.replace(tzinfo=None), timedelta(hours=1))


def test_the_setting_defaults_to_an_hour_and_reads_iso_durations() -> None:
    assert PaymentRules().fx_rate_max_age == timedelta(hours=1)
    assert PaymentRules.model_validate({"fx_rate_max_age": "PT15M"}).fx_rate_max_age == timedelta(
        minutes=15
    )
    with pytest.raises(ValueError):
        PaymentRules.model_validate({"fx_rate_max_age": "PT0S"})
