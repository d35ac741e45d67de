"""The FX feed's step: an MT5 server's last quotes of the configured symbols into `fx_rates`.

Each quote becomes a rate of its configured pair, stamped with the quote's own time (the tick's
`DatetimeMsc`, server clock, less the server's clock offset: UTC), with the source
`mt5:<server>:<symbol>`. A quote already older than the maximum age when it is read (the market
is closed: the last quote is Friday's) or stamped ahead of now beyond the clock skew (a wrong
clock offset) is **not stored**: it could never be converted at, and storing it would make it
the pair's newest row without being a rate anyone may use (docs/payments.md). The rows of one
read go in with one statement; a quote already stored (same pair, source and time: a retried
attempt, or an unchanged quote read again) is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.mt5_errors import raise_for_temporal
from contracts.fx_feed import StoredFxQuotes, StoreFxQuotes, fx_rate_source, store_fx_quotes
from contracts.steps import implements
from db.models import FxRateRow
from domain.wallets import FxRate, FxRateStale, require_fresh
from mt5_adapter.errors import Mt5Error, Mt5NotFound
from mt5_adapter.quotes import Quote, QuoteFeed, utc_of_server_msc

log = logging.getLogger("brokerflow.fx_feed")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NoQuoteFeed:
    """Where a server's gateway reads no quotes (a test's fake gateway): the step is refused."""

    async def last_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        raise ApplicationError(
            "this MT5 gateway reads no quotes", type="NoQuoteFeed", non_retryable=True
        )


def quote_feed_of(gateway: object) -> QuoteFeed:
    """`gateway` itself when it reads quotes (`WebApiGateway` does), else `NoQuoteFeed`."""
    return gateway if isinstance(gateway, QuoteFeed) else NoQuoteFeed()


class FxFeed:
    """The FX feed of one MT5 server (registered on that server's task queue)."""

    def __init__(
        self,
        server: str,
        sessions: async_sessionmaker[AsyncSession],
        feed: QuoteFeed,
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._server = server
        self._sessions = sessions
        self._feed = feed
        self._now = now

    @implements(store_fx_quotes)
    async def store_fx_quotes(self, request: StoreFxQuotes) -> StoredFxQuotes:
        if request.server != self._server:
            raise ApplicationError(
                f"quotes of {request.server} asked of {self._server}'s feed",
                type="WrongServer",
                non_retryable=True,
            )
        pairs = {s.symbol: s for s in request.symbols}
        quotes, unknown = await self._read(sorted(pairs))
        now = self._now()
        stale: list[str] = []
        rates: dict[str, FxRate] = {}
        for quote in quotes:
            pair = pairs.get(quote.symbol)
            if pair is None:
                continue
            try:
                rate = FxRate(
                    base=pair.base,
                    quote=pair.quote,
                    bid=quote.bid,
                    ask=quote.ask,
                    as_of=utc_of_server_msc(quote.server_msc, request.server_clock_offset),
                )
                require_fresh(rate, now, request.max_age)
            except FxRateStale as refused:
                log.info("FX feed %s %s not stored: %s", self._server, quote.symbol, refused)
                stale.append(quote.symbol)
                continue
            except ValueError as unusable:  # no price, or ask below bid
                log.warning("FX feed %s %s not a rate: %s", self._server, quote.symbol, unusable)
                stale.append(quote.symbol)
                continue
            rates[quote.symbol] = rate
        stored = await self._store(rates)
        return StoredFxQuotes(
            stored=sorted(stored),
            already_stored=sorted(set(rates) - stored),
            stale=sorted(stale),
            unknown=sorted(unknown),
        )

    async def _read(self, symbols: list[str]) -> tuple[list[Quote], list[str]]:
        """Every symbol's last quote in one request; when MT5 knows one of them not (13 for
        the whole request), each is asked alone so the others are still read."""
        try:
            return await self._feed.last_quotes(symbols), []
        except Mt5NotFound:
            pass
        except Mt5Error as error:
            raise_for_temporal(error)
        quotes: list[Quote] = []
        unknown: list[str] = []
        for symbol in symbols:
            try:
                quotes += await self._feed.last_quotes([symbol])
            except Mt5NotFound:
                log.warning("FX feed %s: MT5 does not know the symbol %s", self._server, symbol)
                unknown.append(symbol)
            except Mt5Error as error:
                raise_for_temporal(error)
        return quotes, unknown

    async def _store(self, rates: dict[str, FxRate]) -> set[str]:
        """Insert the rates, each once per pair, source and time; the symbols inserted now."""
        if not rates:
            return set()
        sources = {fx_rate_source(self._server, symbol): symbol for symbol in rates}
        statement = (
            insert(FxRateRow)
            .values(
                [
                    {
                        "base": rate.base,
                        "quote": rate.quote,
                        "bid": rate.bid,
                        "ask": rate.ask,
                        "as_of": rate.as_of,
                        "source": fx_rate_source(self._server, symbol),
                    }
                    for symbol, rate in rates.items()
                ]
            )
            .on_conflict_do_nothing(
                index_elements=["base", "quote", "source", "as_of"],
                index_where=text("source <> 'staff'"),
            )
            .returning(FxRateRow.source)
        )
        async with self._sessions.begin() as session:
            inserted = (await session.scalars(statement)).all()
        return {sources[source] for source in inserted}
