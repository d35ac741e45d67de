"""The ledger in PostgreSQL: exactly-once booking, balance enforced at commit, no edits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.ledger import balance, post_entry
from domain.errors import Conflict
from domain.ledger import reversal, transfer
from domain.money import Money

USD = "USD"


def deposit(key: str, amount: str) -> object:
    return transfer(
        key,
        "card deposit",
        "psp:cardco:USD",
        "wallet:c1:USD",
        Money(amount=Decimal(amount), currency=USD),
    )


async def test_an_entry_is_booked_once_per_key(sessions: async_sessionmaker[AsyncSession]) -> None:
    entry = deposit("dep-1", "100.00")
    async with sessions.begin() as session:
        first = await post_entry(session, entry)  # type: ignore[arg-type]
    async with sessions.begin() as session:
        again = await post_entry(session, entry)  # type: ignore[arg-type]
        assert again == first
        assert await balance(session, "wallet:c1:USD", USD) == Money(
            amount=Decimal("-100"), currency=USD
        )
        with pytest.raises(Conflict):
            await post_entry(session, deposit("dep-1", "99.00"))  # type: ignore[arg-type]


async def test_a_reversal_nets_to_zero(sessions: async_sessionmaker[AsyncSession]) -> None:
    entry = deposit("dep-2", "42.50")
    async with sessions.begin() as session:
        await post_entry(session, entry)  # type: ignore[arg-type]
        await post_entry(session, reversal(entry, "dep-2-reversal", "chargeback"))  # type: ignore[arg-type]
        assert (await balance(session, "psp:cardco:USD", USD)).amount == 0


async def test_the_database_refuses_an_unbalanced_entry_at_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await post_entry(session, deposit("dep-3", "10.00"))  # type: ignore[arg-type]
    with pytest.raises(DBAPIError, match="does not balance"):
        async with sessions.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount_minor, currency) "
                    "SELECT entry_id, account_id, 1, currency FROM postings LIMIT 1"
                )
            )
    async with sessions() as session:
        assert (await balance(session, "wallet:c1:USD", USD)).amount == Decimal("-10")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE postings SET amount_minor = amount_minor * 2",
        "DELETE FROM postings",
        "DELETE FROM journal_entries",
    ],
)
async def test_booked_entries_cannot_change(
    statement: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        await post_entry(session, deposit("dep-4", "5.00"))  # type: ignore[arg-type]
    with pytest.raises(DBAPIError):
        async with sessions.begin() as session:
            await session.execute(text(statement))
