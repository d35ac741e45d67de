"""The unmatched-funds steps against the real database: queued once per processor event with one
audit row; a credit books processor → suspense → wallet in balanced entries; a return goes
through the processor; a refused resolution reopens the item."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.unmatched_funds import UnmatchedFundsSteps
from contracts.unmatched_funds import (
    RESOLVE_UNMATCHED,
    QueueUnmatchedFunds,
    ReopenUnmatched,
    ResolveUnmatched,
    UnmatchedOutcome,
    resolve_unmatched_workflow_id,
)
from db.ledger import balance
from db.models import AuditEntry, UnmatchedFunds
from domain.funds import incoming_suspense, psp_clearing
from domain.money import Money
from domain.payments import (
    PaymentEvent,
    PaymentEventKind,
    UnmatchedAction,
    UnmatchedReason,
    UnmatchedStatus,
)
from domain.wallets import wallet
from tests.activities.kyc_rows import add_client
from tests.workflows.money_fakes import start_environment
from workflows.unmatched_funds import ResolveUnmatchedFundsWorkflow

Sessions = async_sessionmaker[AsyncSession]
USD_500 = Money(amount=Decimal("500.00"), currency="USD")


class FakeBank:
    name = "bankco"

    def __init__(self) -> None:
        self.refunds: list[tuple[Any, ...]] = []

    async def refund(
        self, provider_ref: str, reference: str, amount: Money, payer: str, idempotency_key: str
    ) -> str:
        self.refunds.append((provider_ref, reference, amount, payer, idempotency_key))
        return "po_return_1"


def steps(sessions: Sessions, bank: FakeBank | None = None) -> UnmatchedFundsSteps:
    return UnmatchedFundsSteps(sessions, {"bankco": bank or FakeBank()})  # type: ignore[dict-item]


def second_transfer() -> PaymentEvent:
    event_id = f"bk_{uuid.uuid4().hex[:8]}"
    return PaymentEvent(
        provider="bankco",
        event_id=event_id,
        kind=PaymentEventKind.TRANSFER_RECEIVED,
        provider_ref=f"tr_{event_id}",
        reference="BKREF-TWO",
        amount=USD_500,
        payer_name="Jane Payer",
        sent_at=datetime.now(UTC),
    )


async def queue_one(sessions: Sessions) -> UnmatchedFunds:
    event = second_transfer()
    request = QueueUnmatchedFunds(event=event, reason=UnmatchedReason.SECOND_PAYMENT)
    await ActivityEnvironment().run(steps(sessions).queue_unmatched_funds, request)
    async with sessions() as session:
        item = await session.scalar(
            select(UnmatchedFunds).where(UnmatchedFunds.event_id == event.event_id)
        )
    assert item is not None
    return item


async def mark(sessions: Sessions, item: UnmatchedFunds, status: UnmatchedStatus) -> None:
    async with sessions.begin() as session:
        row = await session.get(UnmatchedFunds, item.id)
        assert row is not None
        row.status = status.value


async def audits(sessions: Sessions, item: UnmatchedFunds, action: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.entity_id == str(item.id), AuditEntry.action == action)
        )
    return int(count or 0)


async def test_queued_once_per_event_with_one_audit_row(sessions: Sessions) -> None:
    event = second_transfer()
    request = QueueUnmatchedFunds(event=event, reason=UnmatchedReason.SECOND_PAYMENT)
    await ActivityEnvironment().run(steps(sessions).queue_unmatched_funds, request)
    await ActivityEnvironment().run(steps(sessions).queue_unmatched_funds, request)  # retried
    async with sessions() as session:
        [item] = (
            await session.scalars(
                select(UnmatchedFunds).where(UnmatchedFunds.event_id == event.event_id)
            )
        ).all()
    assert (item.status, item.reason, item.amount_minor) == ("open", "second_payment", 50_000)
    assert await audits(sessions, item, "unmatched_funds.opened") == 1


async def test_a_credit_books_it_into_the_clients_wallet_once(sessions: Sessions) -> None:
    client = await add_client(sessions, questionnaire=False)
    item = await queue_one(sessions)
    await mark(sessions, item, UnmatchedStatus.CREDITING)
    async with sessions() as session:
        psp_before = await balance(session, psp_clearing("bankco", "USD"), "USD")
        suspense_before = await balance(session, incoming_suspense("USD"), "USD")
    request = ResolveUnmatched(
        item_id=item.id,
        action=UnmatchedAction.CREDIT,
        staff_id=uuid.uuid4(),
        client_id=client.id,
        note="the client's second transfer",
    )
    outcome = await ActivityEnvironment().run(steps(sessions).resolve_unmatched_funds, request)
    again = await ActivityEnvironment().run(steps(sessions).resolve_unmatched_funds, request)

    assert outcome.status is UnmatchedStatus.CREDITED and again.status is UnmatchedStatus.CREDITED
    async with sessions() as session:
        stored = await session.get(UnmatchedFunds, item.id)
        in_wallet = await balance(session, wallet(str(client.id), "USD"), "USD")
        psp_after = await balance(session, psp_clearing("bankco", "USD"), "USD")
        suspense_after = await balance(session, incoming_suspense("USD"), "USD")
    assert stored is not None
    assert (stored.status, stored.credited_client_id) == ("credited", client.id)
    assert stored.resolved_at is not None
    assert in_wallet.amount == Decimal("-500.00")  # a liability: credit balance
    assert psp_after.amount - psp_before.amount == Decimal("500.00")
    assert suspense_after.amount == suspense_before.amount
    assert await audits(sessions, item, "unmatched_funds.credited") == 1


async def test_a_return_goes_through_the_processor(sessions: Sessions) -> None:
    bank = FakeBank()
    item = await queue_one(sessions)
    await mark(sessions, item, UnmatchedStatus.RETURNING)
    request = ResolveUnmatched(
        item_id=item.id, action=UnmatchedAction.RETURN, staff_id=uuid.uuid4(), note="back"
    )
    outcome = await ActivityEnvironment().run(
        steps(sessions, bank).resolve_unmatched_funds, request
    )

    assert outcome.status is UnmatchedStatus.RETURNED
    assert bank.refunds == [
        (item.provider_ref, item.reference, USD_500, "Jane Payer", f"{item.reference}:return")
    ]
    async with sessions() as session:
        stored = await session.get(UnmatchedFunds, item.id)
    assert stored is not None and (stored.status, stored.return_ref) == ("returned", "po_return_1")
    assert await audits(sessions, item, "unmatched_funds.returned") == 1


async def test_a_resolution_not_asked_for_is_refused_and_a_refused_one_reopens(
    sessions: Sessions,
) -> None:
    item = await queue_one(sessions)
    request = ResolveUnmatched(
        item_id=item.id, action=UnmatchedAction.RETURN, staff_id=uuid.uuid4(), note="back"
    )
    with pytest.raises(Exception, match="is open, not returning"):
        await ActivityEnvironment().run(steps(sessions).resolve_unmatched_funds, request)

    await mark(sessions, item, UnmatchedStatus.RETURNING)
    reopen = ReopenUnmatched(item_id=item.id, error="ProcessorRefused: account closed")
    await ActivityEnvironment().run(steps(sessions).reopen_unmatched_funds, reopen)
    await ActivityEnvironment().run(steps(sessions).reopen_unmatched_funds, reopen)  # retried
    async with sessions() as session:
        stored = await session.get(UnmatchedFunds, item.id)
    assert stored is not None and (stored.status, stored.error) == ("open", reopen.error)
    assert await audits(sessions, item, "unmatched_funds.reopened") == 1


class RefusingBank(FakeBank):
    async def refund(
        self, provider_ref: str, reference: str, amount: Money, payer: str, idempotency_key: str
    ) -> str:
        request = httpx.Request("POST", "http://bankco/api/payouts")
        response = httpx.Response(422, text="origin account closed", request=request)
        raise httpx.HTTPStatusError("refused", request=request, response=response)


async def run_resolution(
    sessions: Sessions, bank: FakeBank, request: ResolveUnmatched
) -> UnmatchedOutcome:
    """The `ResolveUnmatchedFunds` workflow with the real steps on the real database."""
    env = await start_environment()
    try:
        payment_steps = steps(sessions, bank)
        queue = f"test-{uuid.uuid4()}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[ResolveUnmatchedFundsWorkflow],
            activities=[
                payment_steps.resolve_unmatched_funds,
                payment_steps.reopen_unmatched_funds,
            ],
        ):
            outcome: UnmatchedOutcome = await env.client.execute_workflow(
                RESOLVE_UNMATCHED.name,
                request,
                id=resolve_unmatched_workflow_id(request.item_id, uuid.uuid4()),
                task_queue=queue,
                result_type=UnmatchedOutcome,
            )
        return outcome
    finally:
        await env.shutdown()


async def test_the_workflow_credits_through_the_real_steps(sessions: Sessions) -> None:
    client = await add_client(sessions, questionnaire=False)
    item = await queue_one(sessions)
    await mark(sessions, item, UnmatchedStatus.CREDITING)
    request = ResolveUnmatched(
        item_id=item.id,
        action=UnmatchedAction.CREDIT,
        staff_id=uuid.uuid4(),
        client_id=client.id,
        note="the client's second transfer",
    )
    outcome = await run_resolution(sessions, FakeBank(), request)
    assert outcome.status is UnmatchedStatus.CREDITED
    async with sessions() as session:
        in_wallet = await balance(session, wallet(str(client.id), "USD"), "USD")
    assert in_wallet.amount == Decimal("-500.00")


async def test_a_return_the_processor_refuses_reopens_the_item(sessions: Sessions) -> None:
    item = await queue_one(sessions)
    await mark(sessions, item, UnmatchedStatus.RETURNING)
    request = ResolveUnmatched(
        item_id=item.id, action=UnmatchedAction.RETURN, staff_id=uuid.uuid4(), note="back"
    )
    outcome = await run_resolution(sessions, RefusingBank(), request)
    assert outcome.status is UnmatchedStatus.OPEN
    assert "origin account closed" in (outcome.error or "")
    async with sessions() as session:
        stored = await session.get(UnmatchedFunds, item.id)
    assert stored is not None and stored.status == "open"
    assert "ProcessorRefused" in (stored.error or "")
    assert await audits(sessions, item, "unmatched_funds.reopened") == 1
