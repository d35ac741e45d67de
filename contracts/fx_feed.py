"""The FX feed (`FxFeed`, run by the `fx-feed` Temporal Schedule every `fx_feed.interval`): the
last quote of each configured MT5 symbol stored as an FX rate (`fx_rates`, source
`mt5:<server>:<symbol>`), stamped with the quote's own time in UTC, beside the rates finance
enters. Conversions use the newest rate of a pair whatever its source (docs/payments.md)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from temporalio.common import RetryPolicy

from contracts.policies import Policy
from contracts.process import Process
from contracts.steps import Mt5Step
from domain.frozen import Frozen as Contract

FX_FEED_SCHEDULE = "fx-feed"
# A run that has not finished in this long is stuck (MT5 unreachable): the schedule's next run
# takes over, so one run never holds the others back (overlapping runs are skipped).
FX_FEED_RUN_TIMEOUT = timedelta(minutes=5)


def fx_rate_source(server: str, symbol: str) -> str:
    """The `fx_rates.source` of a quote of `symbol` on MT5 server `server`."""
    return f"mt5:{server}:{symbol}"


class FeedSymbol(Contract):
    """An MT5 symbol whose quote is the rate of base/quote (units of quote per one base)."""

    symbol: str
    base: str
    quote: str


class FxFeedInput(Contract):
    """The schedule's argument (written by `schedules.py` from `settings.fx_feed`)."""

    server: str
    symbols: list[FeedSymbol] = Field(default_factory=list)
    # The server's clock minus UTC in seconds: a tick's `DatetimeMsc` is on that clock.
    server_clock_offset: int = 0
    # A quote older than this when it is read is not stored (`payments.fx_rate_max_age`).
    max_age: timedelta = timedelta(hours=1)


class StoreFxQuotes(Contract):
    server: str
    symbols: list[FeedSymbol]
    server_clock_offset: int = 0
    max_age: timedelta = timedelta(hours=1)


class StoredFxQuotes(Contract):
    """What one read did, by symbol: quote stored; already stored (an unchanged quote, or a
    retried attempt); not stored because it is older than `max_age`, stamped ahead of now
    beyond the clock skew, or no price (`stale`); unknown to MT5."""

    stored: list[str] = Field(default_factory=list)
    already_stored: list[str] = Field(default_factory=list)
    stale: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)


FX_FEED = Process("FxFeed", FxFeedInput, StoredFxQuotes)

# Reading quotes is worth a few quick tries; beyond that the schedule's next run is the retry
# (a rate read late is no use: the next run reads a newer one).
FEED_READ = Policy(
    timeout=timedelta(seconds=20),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
    ),
)

# Reads the symbols' last ticks from the server and stores each fresh one as a rate, in one
# transaction; a retried attempt stores a quote already stored once (unique per source and time).
store_fx_quotes = Mt5Step("store_fx_quotes", StoreFxQuotes, StoredFxQuotes, FEED_READ)
