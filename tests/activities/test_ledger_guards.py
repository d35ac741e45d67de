"""The ledger steps against the real database: 20 withdrawals racing for a wallet that covers
one, the database's own wallet guard surfacing as a business refusal, and FX rates that are too
old to convert at."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger_steps import LedgerSteps
from contracts.funds import Booking, ConvertHeld, ReserveFromWallet
from db.ledger import balance, booked_entry, post_entry
from db.models import FxRateRow, PostingRow
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.ledger import transfer
from domain.money import Money
from domain.wallets import available, credit_deposit, hold_account, place_hold, wallet
from settings import Settings

Sessions = async_sessionmaker[AsyncSession]
USD_100 = Money.of("100.00", "USD")


@pytest.fixture
async def wide_sessions(settings: Settings) -> AsyncIterator[Sessions]:
    """Sessions on a pool wide enough for 20 activities at once."""
    assert settings.database_url
    engine = create_engine(app_database_url(settings.database_url, settings), pool_size=20)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def funded_client(sessions: Sessions, amount: Money) -> uuid.UUID:
    client_id = uuid.uuid4()
    async with sessions.begin() as session:
        await post_entry(session, credit_deposit("funding", str(client_id), "cardco", amount))
    return client_id


async def books_of(sessions: Sessions, client_id: uuid.UUID, currency: str) -> tuple[Money, Money]:
    """(wallet available, held), both as the client sees them."""
    async with sessions() as session:
        in_wallet = await balance(session, wallet(str(client_id), currency), currency)
        held = await balance(session, hold_account(str(client_id), currency), currency)
    return available(in_wallet), available(held)


async def ledger_total(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            select(PostingRow.currency, func.sum(PostingRow.amount_minor)).group_by(
                PostingRow.currency
            )
        )
    return {currency: int(total) for currency, total in rows}


async def test_twenty_concurrent_withdrawals_from_a_wallet_covering_one(
    wide_sessions: Sessions,
) -> None:
    client_id = await funded_client(wide_sessions, USD_100)
    steps = LedgerSteps(wide_sessions, fx_spread_bps=0)

    async def withdraw(index: int) -> ApplicationError | None:
        request = ReserveFromWallet(key=f"wd-{index}:hold", client_id=client_id, amount=USD_100)
        try:
            await ActivityEnvironment().run(steps.reserve_from_wallet, request)
        except ApplicationError as refusal:
            return refusal
        return None

    outcomes = await asyncio.gather(*(withdraw(i) for i in range(20)))

    refusals = [o for o in outcomes if o is not None]
    assert len(refusals) == 19
    for refusal in refusals:
        # A business refusal the saga ends on, not a fault Temporal would retry.
        assert (refusal.type, refusal.non_retryable) == ("InsufficientFunds", True)
    assert await books_of(wide_sessions, client_id, "USD") == (Money.of("0", "USD"), USD_100)
    assert await ledger_total(wide_sessions) == {"USD": 0}


async def test_the_databases_refusal_is_a_business_refusal_not_a_retried_fault(
    sessions: Sessions,
) -> None:
    """A hold booked without the application's check (as a bug might) is refused by the
    database at commit; the step ends for good with `InsufficientFunds`."""
    client_id = await funded_client(sessions, USD_100)
    client = str(client_id)
    unchecked = transfer(
        "wd-unchecked:hold",
        "hold for withdrawal",
        wallet(client, "USD"),
        hold_account(client, "USD"),
        Money.of("100.01", "USD"),
    )
    steps = LedgerSteps(sessions, fx_spread_bps=0)

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(steps.book_entry, Booking(entry=unchecked))

    assert (refused.value.type, refused.value.non_retryable) == ("InsufficientFunds", True)
    assert "below zero" in refused.value.message
    async with sessions() as session:
        assert await booked_entry(session, "wd-unchecked:hold") is None
    assert await books_of(sessions, client_id, "USD") == (USD_100, Money.of("0", "USD"))


async def held_usd(sessions: Sessions, amount: Money) -> uuid.UUID:
    client_id = await funded_client(sessions, amount)
    async with sessions.begin() as session:
        await post_entry(session, place_hold("tr:hold", str(client_id), amount, amount))
    return client_id


async def store_rate(sessions: Sessions, age: timedelta) -> None:
    async with sessions.begin() as session:
        session.add(
            FxRateRow(
                base="EUR",
                quote="USD",
                bid=Decimal("1.0800"),
                ask=Decimal("1.0802"),
                as_of=datetime.now(UTC) - age,
            )
        )


class TestFxRateAge:
    async def test_a_rate_older_than_the_maximum_is_refused(self, sessions: Sessions) -> None:
        client_id = await held_usd(sessions, Money.of("108.01", "USD"))
        await store_rate(sessions, timedelta(minutes=31))
        steps = LedgerSteps(sessions, fx_spread_bps=50, fx_rate_max_age=timedelta(minutes=30))
        request = ConvertHeld(
            key="tr:fx", client_id=client_id, sell=Money.of("108.01", "USD"), into="EUR"
        )

        with pytest.raises(ApplicationError) as refused:
            await ActivityEnvironment().run(steps.convert_held, request)

        assert (refused.value.type, refused.value.non_retryable) == ("FxRateStale", True)
        assert "EUR/USD" in refused.value.message
        assert "up to 30 min old" in refused.value.message
        async with sessions() as session:
            assert await booked_entry(session, "tr:fx") is None
        assert await books_of(sessions, client_id, "USD") == (
            Money.of("0", "USD"),
            Money.of("108.01", "USD"),
        )

    async def test_a_fresh_rate_converts(self, sessions: Sessions) -> None:
        client_id = await held_usd(sessions, Money.of("108.01", "USD"))
        await store_rate(sessions, timedelta(minutes=29))
        steps = LedgerSteps(sessions, fx_spread_bps=50, fx_rate_max_age=timedelta(minutes=30))
        request = ConvertHeld(
            key="tr:fx", client_id=client_id, sell=Money.of("108.01", "USD"), into="EUR"
        )

        received = await ActivityEnvironment().run(steps.convert_held, request)

        # 108.01 USD at mid 1.0801 is 100.00 EUR; the 0.5 % spread leaves 99.50 EUR.
        assert received == Money.of("99.50", "EUR")
        assert await books_of(sessions, client_id, "EUR") == (
            Money.of("0", "EUR"),
            Money.of("99.50", "EUR"),
        )
        assert await ledger_total(sessions) == {"USD": 0, "EUR": 0}

    async def test_a_retry_after_booking_keeps_the_conversion_however_old_the_rate_is(
        self, sessions: Sessions
    ) -> None:
        client_id = await held_usd(sessions, Money.of("108.01", "USD"))
        await store_rate(sessions, timedelta(minutes=1))
        request = ConvertHeld(
            key="tr:fx", client_id=client_id, sell=Money.of("108.01", "USD"), into="EUR"
        )
        first = await ActivityEnvironment().run(
            LedgerSteps(sessions, fx_spread_bps=50).convert_held, request
        )
        # The answer was lost; by the retry the (one-minute-old) rate is past a tighter limit.
        strict = LedgerSteps(sessions, fx_spread_bps=50, fx_rate_max_age=timedelta(seconds=30))

        assert await ActivityEnvironment().run(strict.convert_held, request) == first
