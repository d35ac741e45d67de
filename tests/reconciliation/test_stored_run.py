"""The scheduled run's matching step on the database: the ledger side read from real postings
(booked by `db.ledger.post_entry`), the MT5 and processor snapshots from the run's tables, the
breaks stored with the run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.reconciliation import match_run
from db.ledger import post_entry
from db.models import JournalEntryRow
from db.models.reconciliation import (
    ReconciliationBreak,
    ReconciliationMt5Deal,
    ReconciliationPspRow,
    ReconciliationRun,
)
from db.queries.reconciliation import run_sides
from domain.ledger import JournalEntry, Posting
from domain.money import Money
from domain.reconciliation.ledger import ledger_sides
from domain.wallets import capture_hold


def entry(key: str, debit: str, credit: str, amount: str) -> JournalEntry:
    return JournalEntry(
        idempotency_key=key,
        description="reconciliation test",
        postings=(
            Posting(account=debit, amount=Money.of(amount, "USD")),
            Posting(account=credit, amount=Money.of(f"-{amount}", "USD")),
        ),
    )


async def test_a_run_reads_the_ledger_and_its_snapshots(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ok, lost = "BF" + "1" * 20, "BF" + "2" * 20
    async with sessions.begin() as session:
        for reference in (ok, lost):
            await post_entry(
                session,
                entry(f"{reference}:received", "psp:cardco:USD", "suspense:incoming:USD", "100.00"),
            )
            await post_entry(
                session,
                # the mirror credited for money onto MT5, as domain.funds.into_mt5 books it
                entry(f"{reference}:to-mt5", "hold:c:USD", "mt5:demo-5000001:USD", "100.00"),
            )
        await post_entry(  # another server's mirror: not this run's
            session, entry("BF3:to-mt5", "hold:c:USD", "mt5:other-5000001:USD", "5.00")
        )
    async with sessions() as session:
        booked = await session.scalar(
            select(JournalEntryRow.booked_at).where(
                JournalEntryRow.idempotency_key == f"{ok}:to-mt5"
            )
        )
    assert booked is not None
    start = datetime.combine(booked.astimezone(UTC).date(), time(0, tzinfo=UTC))
    run_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            ReconciliationRun(
                id=run_id,
                server="demo",
                day=start.date(),
                period_start=start,
                period_end=start + timedelta(days=1),
                window_seconds=0,
                match_window_seconds=0,
                status="loading",
            )
        )
        await session.flush()
        session.add_all(
            [
                ReconciliationMt5Deal(
                    run_id=run_id,
                    deal=1,
                    login=5000001,
                    time=booked,
                    action=2,
                    amount_minor=10_000,
                    currency="USD",
                    comment=f"dep {ok}",
                ),
                ReconciliationPspRow(
                    run_id=run_id,
                    provider="cardco",
                    provider_ref="pi_1",
                    reference=ok,
                    kind="charge",
                    day=start.date(),
                    gross_minor=10_000,
                    fee_minor=320,
                    net_minor=9_680,
                    currency="USD",
                ),
                ReconciliationPspRow(
                    run_id=run_id,
                    provider="cardco",
                    provider_ref="pi_2",
                    reference=lost,
                    kind="charge",
                    day=start.date(),
                    gross_minor=10_000,
                    fee_minor=320,
                    net_minor=9_680,
                    currency="USD",
                ),
            ]
        )
    result = await match_run(sessions, run_id)
    assert result.matched == 3
    async with sessions() as session:
        stored = (
            await session.scalars(
                select(ReconciliationBreak).where(ReconciliationBreak.run_id == run_id)
            )
        ).all()
        run = await session.get(ReconciliationRun, run_id)
    assert [(b.type, b.key, b.amount_minor) for b in stored] == [
        ("missing_in_mt5", f"mt5:5000001:{lost}:in", 10_000)
    ]
    assert run is not None and (run.status, run.breaks, run.matched) == ("matched", 1, 3)


# The postings as the matching's Python parser reads them (entry key, booked at, code, amount,
# currency), to check the SQL that parses them for the scheduled run.
RAW_POSTINGS = text(
    "SELECT e.idempotency_key, e.booked_at, a.code, p.amount_minor, p.currency"
    " FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
    " JOIN ledger_accounts a ON a.id = p.account_id"
    " WHERE a.kind IN ('mt5', 'psp', 'fees') AND e.booked_at >= :since AND e.booked_at < :until"
)


async def test_the_ledger_side_parsed_in_sql_is_the_domains(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    server = f"s{uuid.uuid4().hex[:8]}"
    ref = f"BF{uuid.uuid4().hex[:20].upper()}"
    payout = uuid.uuid4()
    cases = [  # entry key, debit, credit
        (f"{ref}:to-mt5", "hold:c:USD", f"mt5:{server}-5000001:USD"),  # as into_mt5
        (f"{ref}:to-mt5:reversal", f"mt5:{server}-5000001:USD", "hold:c:USD"),
        (f"ib-payout:{payout}", "hold:c:USD", f"mt5:{server}-007:USD"),
        (f"{ref}x:to-mt5", "hold:c:USD", f"mt5:{server}-12x:USD"),  # not a login
        (f"{ref}y:to-mt5", "hold:c:USD", f"mt5:{server}x-5:USD"),  # another server
        (f"{ref}:received", f"psp:pp{server}:USD", "suspense:incoming:USD"),
        (f"{ref}:paid-out", "hold:c:USD", f"psp:pp{server}:USD"),
        (f"{ref}:returned", "hold:c:USD", f"psp:pp{server}:USD"),
        (f"{ref}:refund", "hold:c:USD", f"psp:pp{server}:USD"),
        (f"{ref}:chargeback", "hold:c:USD", f"psp:pp{server}:USD"),
        (f"{ref}:received:reversal", "hold:c:USD", f"psp:pp{server}:USD"),
        (f"{ref}:other", "hold:c:USD", f"psp:pp{server}:USD"),
        (f"{ref}z", f"psp:pp{server}:USD", "hold:c:USD"),  # no step
        (f"ib-payout:{ref}:a-b-c", f"psp:pp{server}:USD", "hold:c:USD"),
    ]
    fee = Money.of("0.75", "USD")
    async with sessions.begin() as session:
        for key, debit, credit in cases:
            await post_entry(session, entry(key, debit, credit, "1.25"))
        # a payout whose processor fee is booked as an expense: the clearing account pays 2.00
        await post_entry(
            session,
            capture_hold(f"{ref}f:paid-out", "c", f"pp{server}", Money.of("1.25", "USD"), fee),
        )
    now = datetime.now(UTC)
    start = datetime.combine(now.date(), time(0, tzinfo=UTC))
    run = ReconciliationRun(
        id=uuid.uuid4(),
        server=server,
        day=start.date(),
        period_start=start,
        period_end=start + timedelta(days=1),
        window_seconds=300,
        match_window_seconds=3600,
        status="loading",
    )
    margin = timedelta(seconds=3900)
    async with sessions() as session:
        sides = await run_sides(session, run)
        raw = (
            await session.execute(
                RAW_POSTINGS, {"since": start - margin, "until": start + timedelta(days=1) + margin}
            )
        ).tuples()
        mt5, psp = ledger_sides(list(raw), server)
    assert sorted(sides.ledger_mt5) == sorted(mt5)
    assert sorted(sides.ledger_psp) == sorted(psp)
    assert sorted((m.reference, m.login, m.amount_minor) for m in mt5) == sorted(
        [(ref, 5000001, 125), (ref, 5000001, -125), (payout.hex[:24], 7, 125)]
    )
    assert len([m for m in psp if m.provider == f"pp{server}"]) == 10
    (paid,) = [m for m in psp if m.key == f"{ref}f:paid-out"]
    assert (paid.amount_minor, paid.fee_minor) == (-125, 75)  # the gross and the fee booked
