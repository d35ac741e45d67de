"""Booking journal entries, exactly once per idempotency key."""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import JournalEntryRow, LedgerAccount, PostingRow
from domain.errors import Conflict, InvalidInput, NotFound
from domain.ledger import AccountKind, JournalEntry, Posting
from domain.money import Money


async def post_entry(session: AsyncSession, entry: JournalEntry) -> uuid.UUID:
    """Book `entry` in the caller's transaction; the database checks the balance at commit.

    Posting the same key again returns the entry already booked, if it is the same entry; the
    same key with other postings is refused (it would be a different business event).
    """
    booked = await session.scalar(
        insert(JournalEntryRow)
        .values(
            id=uuid.uuid4(),
            idempotency_key=entry.idempotency_key,
            description=entry.description,
            reverses_id=await _reversed_entry_id(session, entry.reverses),
        )
        .on_conflict_do_nothing(index_elements=[JournalEntryRow.idempotency_key])
        .returning(JournalEntryRow.id)
    )
    if booked is None:
        return await _same_entry_already_booked(session, entry)
    accounts = await _account_ids(
        session, [(posting.account, posting.amount.currency) for posting in entry.postings]
    )
    # One statement for the entry's postings (not an ORM flush per row): the rows are never
    # read back through this session.
    await session.execute(
        insert(PostingRow),
        [
            {
                "entry_id": booked,
                "account_id": accounts[posting.account],
                "amount_minor": posting.amount.to_minor_units(),
                "currency": posting.amount.currency,
            }
            for posting in entry.postings
        ],
    )
    return booked


async def balance(session: AsyncSession, code: str, currency: str) -> Money:
    """An account's balance, debit positive."""
    total = await session.scalar(
        select(func.coalesce(func.sum(PostingRow.amount_minor), 0))
        .join(LedgerAccount, LedgerAccount.id == PostingRow.account_id)
        .where(LedgerAccount.code == code, PostingRow.currency == currency)
    )
    return Money.from_minor_units(int(total or 0), currency)


async def _account_id(session: AsyncSession, code: str, currency: str) -> int:
    return (await _account_ids(session, [(code, currency)]))[code]


async def _account_ids(session: AsyncSession, accounts: list[tuple[str, str]]) -> dict[str, int]:
    """The ids of the ledger accounts named in `accounts` (code, currency of the posting),
    opened on first use. One look-up for them all; only an account not there yet costs an
    insert and a second look-up (the insert skips one a concurrent transaction opened)."""
    kinds = {code: _checked_kind(code, currency) for code, currency in accounts}
    currencies = dict(accounts)
    found = await _ids_of(session, list(currencies))
    missing = [code for code in currencies if code not in found]
    if missing:
        await session.execute(
            insert(LedgerAccount)
            .values(
                [
                    {"code": code, "kind": kinds[code], "currency": currencies[code]}
                    for code in missing
                ]
            )
            .on_conflict_do_nothing(index_elements=[LedgerAccount.code])
        )
        found |= await _ids_of(session, missing)
    assert set(found) >= set(currencies)
    return found


async def _ids_of(session: AsyncSession, codes: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(codes))
    )
    return {code: account_id for code, account_id in rows.tuples()}


def _checked_kind(code: str, currency: str) -> str:
    kind, _, suffix = code.partition(":")
    try:
        AccountKind(kind)
    except ValueError as exc:
        raise InvalidInput(f"ledger account {code!r} has no known kind") from exc
    if not suffix.endswith(f":{currency}"):
        raise InvalidInput(f"ledger account {code!r} does not hold {currency}")
    return kind


async def _reversed_entry_id(session: AsyncSession, key: str | None) -> uuid.UUID | None:
    if key is None:
        return None
    entry_id = await session.scalar(
        select(JournalEntryRow.id).where(JournalEntryRow.idempotency_key == key)
    )
    if entry_id is None:
        raise NotFound(f"no journal entry {key!r} to reverse")
    return entry_id


async def _same_entry_already_booked(session: AsyncSession, entry: JournalEntry) -> uuid.UUID:
    row = await session.scalar(
        select(JournalEntryRow).where(JournalEntryRow.idempotency_key == entry.idempotency_key)
    )
    assert row is not None
    stored = await session.execute(
        select(LedgerAccount.code, PostingRow.amount_minor, PostingRow.currency)
        .join(LedgerAccount, LedgerAccount.id == PostingRow.account_id)
        .where(PostingRow.entry_id == row.id)
    )
    wanted = Counter(
        (p.account, p.amount.to_minor_units(), p.amount.currency) for p in entry.postings
    )
    if Counter(tuple(r) for r in stored) != wanted:
        raise Conflict(
            f"idempotency key {entry.idempotency_key!r} was already used for other postings"
        )
    return row.id


async def locked_balance(session: AsyncSession, code: str, currency: str) -> Money:
    """The balance, with the account locked until the transaction ends: two withdrawals from
    one wallet cannot both spend the same money."""
    account_id = await _account_id(session, code, currency)
    # A transaction-scoped advisory lock keyed by the account's id: the app role may not lock
    # ledger rows (no UPDATE on them), and the lock is released at COMMIT or ROLLBACK.
    await session.execute(select(func.pg_advisory_xact_lock(account_id)))
    return await balance(session, code, currency)


async def booked_entry(session: AsyncSession, key: str) -> JournalEntry | None:
    """The entry booked under `key`, as the domain knows it, or None."""
    row = await session.scalar(
        select(JournalEntryRow).where(JournalEntryRow.idempotency_key == key)
    )
    if row is None:
        return None
    postings = await session.execute(
        select(LedgerAccount.code, PostingRow.amount_minor, PostingRow.currency)
        .join(LedgerAccount, LedgerAccount.id == PostingRow.account_id)
        .where(PostingRow.entry_id == row.id)
        .order_by(PostingRow.id)
    )
    reversed_key = None
    if row.reverses_id is not None:
        reversed_key = await session.scalar(
            select(JournalEntryRow.idempotency_key).where(JournalEntryRow.id == row.reverses_id)
        )
    return JournalEntry(
        idempotency_key=row.idempotency_key,
        description=row.description,
        postings=tuple(
            Posting(account=code, amount=Money.from_minor_units(minor, currency))
            for code, minor, currency in postings
        ),
        reverses=reversed_key,
    )
