"""The database itself refuses a client wallet below zero (trigger `wallet_not_below_zero`,
migration 0007), whoever books the posting: the application's balance check and its advisory
lock are not the only guard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.ledger import balance, post_entry
from db.models import PostingRow
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.ledger import JournalEntry, transfer
from domain.money import Money
from domain.wallets import credit_deposit, hold_account, wallet
from settings import Settings

Sessions = async_sessionmaker[AsyncSession]
CLIENT = "c-guard"
WALLET = wallet(CLIENT, "USD")
HOLD = hold_account(CLIENT, "USD")


@pytest.fixture
async def wide_sessions(settings: Settings) -> AsyncIterator[Sessions]:
    """Sessions on a pool wide enough for 20 transactions at once."""
    assert settings.database_url
    engine = create_engine(app_database_url(settings.database_url, settings), pool_size=20)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def fund(sessions: Sessions, amount: str) -> None:
    async with sessions.begin() as session:
        funding = credit_deposit("funding", CLIENT, "cardco", Money.of(amount, "USD"))
        await post_entry(session, funding)


def take(key: str, amount: str) -> JournalEntry:
    """Money out of the wallet into the hold, with no balance check at all."""
    return transfer(key, "hold, unchecked", WALLET, HOLD, Money.of(amount, "USD"))


async def wallet_balance(sessions: Sessions) -> Money:
    async with sessions() as session:
        return await balance(session, WALLET, "USD")


async def test_a_posting_that_overdraws_a_wallet_is_refused_at_commit(sessions: Sessions) -> None:
    await fund(sessions, "100.00")
    with pytest.raises(DBAPIError, match=r"would go .* below zero") as refused:
        async with sessions.begin() as session:
            await post_entry(session, take("overdraw", "100.01"))
    assert getattr(refused.value.orig, "diag").constraint_name == "wallet_not_below_zero"
    assert (await wallet_balance(sessions)) == Money.of("-100.00", "USD")


async def test_raw_sql_cannot_overdraw_a_wallet_either(sessions: Sessions) -> None:
    await fund(sessions, "100.00")
    async with sessions.begin() as session:
        await post_entry(session, take("exact", "100.00"))
    with pytest.raises(DBAPIError, match="below zero"):
        async with sessions.begin() as session:
            # One more cent out of the (now empty) wallet, balanced against the hold.
            await session.execute(
                text(
                    "WITH e AS (INSERT INTO journal_entries (id, idempotency_key, description) "
                    "VALUES (gen_random_uuid(), 'raw', 'raw') RETURNING id) "
                    "INSERT INTO postings (entry_id, account_id, amount_minor, currency) "
                    "SELECT e.id, a.id, CASE a.code WHEN :wallet THEN 1 ELSE -1 END, 'USD' "
                    "FROM e, ledger_accounts a WHERE a.code IN (:wallet, :hold)"
                ),
                {"wallet": WALLET, "hold": HOLD},
            )
    assert (await wallet_balance(sessions)).amount == 0


async def test_credits_and_other_accounts_are_not_checked(sessions: Sessions) -> None:
    # The processor's clearing account is an asset: its debit balance is normal.
    await fund(sessions, "5.00")
    async with sessions.begin() as session:
        await post_entry(session, take("all", "5.00"))
        # Back into the wallet (a credit) is always allowed.
        await post_entry(session, transfer("back", "release", HOLD, WALLET, Money.of("5", "USD")))
    assert (await wallet_balance(sessions)) == Money.of("-5.00", "USD")


async def test_concurrent_unchecked_debits_cannot_both_spend_the_same_money(
    wide_sessions: Sessions,
) -> None:
    """No application lock here: the trigger's own lock makes the 20 debits take turns."""
    await fund(wide_sessions, "100.00")

    async def one(index: int) -> bool:
        try:
            async with wide_sessions.begin() as session:
                await post_entry(session, take(f"race-{index}", "100.00"))
        except DBAPIError as error:
            assert "below zero" in str(error)
            return False
        return True

    outcomes = await asyncio.gather(*(one(i) for i in range(20)))

    assert outcomes.count(True) == 1
    assert (await wallet_balance(wide_sessions)).amount == 0
    async with wide_sessions() as session:
        total = await session.scalar(select(func.sum(PostingRow.amount_minor)))
    assert total == 0
