"""A BankCo deposit reconciles: its `incoming` settlement row quotes BankCo's own deposit
reference (`BF` + 8 hex, `payments.transfer_reference`), the ledger's entry is keyed by
BrokerFlow's payment reference (`<reference>:received`); the settlement step stores the row
under the payment's reference, so the two match."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.reconciliation import ReconciliationSteps, match_run
from contracts.reconciliation import FetchSettlements
from db.ledger import post_entry
from db.models import JournalEntryRow
from db.models.reconciliation import ReconciliationPspRow, ReconciliationRun
from domain.funds import receive_payment
from domain.money import Money
from domain.payments import SettlementLine
from tests.reconciliation.test_run_balances import payment


class BankCo:
    """BankCo's settlement report as the test says it."""

    name = "bankco"

    def __init__(self, lines: list[SettlementLine]) -> None:
        self.lines = lines

    async def settlement(self, day: date) -> list[SettlementLine]:
        return [line for line in self.lines if line.day == day]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def test_a_bank_deposit_is_matched_by_its_payment_reference(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reference = "BF" + uuid.uuid4().hex[:20].upper()
    quoted = "BF" + uuid.uuid4().hex[:8].upper()  # as BankCo hands it out
    # quoted on a transfer BrokerFlow never asked for
    stranger = "BF" + uuid.uuid4().hex[:8].upper()
    # the bank deposit BrokerFlow asked BankCo for, quoting BankCo's reference
    await payment(
        sessions,
        reference,
        25_000,
        datetime.now(UTC),
        direction="deposit",
        status="completed",
        transfer_reference=quoted,
    )
    async with sessions.begin() as session:
        await post_entry(
            session, receive_payment(f"{reference}:received", "bankco", Money.of("250.00", "USD"))
        )
    async with sessions() as session:
        booked = await session.scalar(
            select(JournalEntryRow.booked_at).where(
                JournalEntryRow.idempotency_key == f"{reference}:received"
            )
        )
    assert booked is not None
    day = booked.astimezone(UTC).date()
    start = datetime.combine(day, time(0, tzinfo=UTC))
    processor = BankCo(
        [
            SettlementLine(
                day=day, provider_ref="tr_1", reference=quoted, kind="incoming",
                gross=usd("250.00"), fee=usd("0.50"), net=usd("249.50"),
            ),
            SettlementLine(
                day=day, provider_ref="tr_2", reference=stranger, kind="incoming",
                gross=usd("40.00"), fee=usd("0.08"), net=usd("39.92"),
            ),
        ]
    )  # fmt: skip
    run_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            ReconciliationRun(
                id=run_id, server="demo", day=day, period_start=start,
                period_end=start + timedelta(days=1), window_seconds=0, match_window_seconds=0,
                status="loading",
            )
        )  # fmt: skip
    steps = ReconciliationSteps(sessions, {"bankco": processor})  # type: ignore[dict-item]
    stored = await ActivityEnvironment().run(
        steps.fetch_settlement_reports, FetchSettlements(run_id=run_id, day=day)
    )
    assert stored.rows == 2
    async with sessions() as session:
        rows = await session.execute(
            select(ReconciliationPspRow.provider_ref, ReconciliationPspRow.reference).where(
                ReconciliationPspRow.run_id == run_id
            )
        )
        # BrokerFlow's reference where the payment is known; the quoted one otherwise
        assert sorted(rows.tuples()) == [("tr_1", reference), ("tr_2", stranger)]

    result = await match_run(sessions, run_id)
    assert [(b.type.value, b.key) for b in result.breaks] == [
        ("missing_in_ledger", f"psp:bankco:{stranger}:collection")
    ]
    assert result.matched == 1
