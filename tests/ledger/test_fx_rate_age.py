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
    FxRateSource,
    FxRateStale,
    rate_from_quote,
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


class QuoteFeed:
    """A feed as the MT5 server's quotes would give it: symbol -> (bid, ask, quoted at)."""

    def __init__(self, ticks: dict[str, tuple[str, str, datetime]]) -> None:
        self._ticks = ticks

    async def latest(self, base: str, quote: str) -> FxRate | None:
        for symbol in (base + quote, quote + base):
            if symbol in self._ticks:
                bid, ask, at = self._ticks[symbol]
                return rate_from_quote(symbol, Decimal(bid), Decimal(ask), at)
        return None


async def test_a_feeds_quote_is_a_rate_judged_by_the_time_it_was_quoted() -> None:
    source: FxRateSource = QuoteFeed({"EURUSD": ("1.08001", "1.08013", NOW - timedelta(seconds=5))})

    rate = await source.latest("USD", "EUR")

    assert rate is not None
    assert (rate.base, rate.quote, rate.mid) == ("EUR", "USD", Decimal("1.08007"))
    require_fresh(rate, NOW, timedelta(minutes=1))
    with pytest.raises(FxRateStale):
        require_fresh(rate, NOW + timedelta(minutes=2), timedelta(minutes=1))
    assert await source.latest("USD", "GBP") is None


@pytest.mark.parametrize("symbol", ["EURUSD", "EURUSD.r", "eurusdm"])
def test_suffixed_fx_symbols_are_rates(symbol: str) -> None:
    rate = rate_from_quote(symbol, Decimal("1.08"), Decimal("1.09"), NOW)
    assert (rate.base, rate.quote, rate.as_of) == ("EUR", "USD", NOW)


@pytest.mark.parametrize(
    ("symbol", "bid", "ask", "at"),
    [
        ("XAUUSD", "2000", "2001", NOW),  # gold is not a currency the broker books
        ("US500", "5000", "5001", NOW),
        ("EURUSD", "1.09", "1.08", NOW),  # ask below bid
        ("EURUSD", "1.08", "1.09", NOW.replace(tzinfo=None)),
    ],
)
def test_what_is_not_a_rate_is_refused(symbol: str, bid: str, ask: str, at: datetime) -> None:
    with pytest.raises(InvalidInput):
        rate_from_quote(symbol, Decimal(bid), Decimal(ask), at)
