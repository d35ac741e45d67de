"""`record_payment_session` against the real database. The API stores the processor's answer on
the payment in the request that inserts it, and commits only after the workflow answered; the
step waits for that commit on the lock the request holds (no retries) and then finds the answer
stored, writing nothing; when the request answered without it, the step stores it, once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.payments import PaymentSteps
from contracts.deposit import RecordPaymentSession, deposit_workflow_id
from db.models import AuditEntry, Payment
from db.queries.movements import (
    UNCOMMITTED_PAYMENT_LOCKS,
    hold_until_committed,
    store_session,
)
from domain.money_flows import MovementKind, reference_for
from domain.payments import ComplianceStatus, PaymentDirection, PaymentSession, PaymentStatus
from tests.activities.kyc_rows import add_client
from tests.activities.test_payout_poll import LIMITS
from tests.support.waiting import eventually

Sessions = async_sessionmaker[AsyncSession]
OPENED = PaymentSession(provider="bankco", provider_ref="bt_1", transfer_reference="BT-REF-1")


async def new_deposit(sessions: Sessions) -> Payment:
    client = await add_client(sessions, questionnaire=False)
    payment_id = uuid.uuid4()
    reference = reference_for(MovementKind.PAYMENT, payment_id)
    return Payment(
        id=payment_id,
        client_id=client.id,
        direction=PaymentDirection.DEPOSIT.value,
        provider="bankco",
        reference=reference,
        status=PaymentStatus.INITIATED.value,
        currency="USD",
        amount_minor=10000,
        requested_minor=10000,
        idempotency_key=reference,
        request_hash="-",
        workflow_id=deposit_workflow_id(payment_id),
        compliance_status=ComplianceStatus.NOT_CHECKED.value,
        risk_flags=[],
    )


def record(sessions: Sessions, payment: Payment) -> asyncio.Task[PaymentSession]:
    steps = PaymentSteps(sessions, {}, LIMITS)
    request = RecordPaymentSession(payment_id=payment.id, session=OPENED)
    return asyncio.ensure_future(ActivityEnvironment().run(steps.record_payment_session, request))


async def moves(sessions: Sessions, payment: Payment) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).where(
                    AuditEntry.entity_id == str(payment.id),
                    AuditEntry.action == "payment.awaiting_funds",
                )
            )
            or 0
        )


async def test_the_step_waits_for_the_requests_commit_and_finds_the_answer_stored(
    sessions: Sessions,
) -> None:
    payment = await new_deposit(sessions)
    async with sessions.begin() as request:  # the API's request, as it goes
        request.add(payment)
        await request.flush()
        await hold_until_committed(request, payment.id)
        step = record(sessions, payment)
        await eventually(lambda: _blocked(sessions), "the step waiting for the commit", 10)
        assert not step.done()
        assert await store_session(request, payment.id, OPENED) is not None
    assert await asyncio.wait_for(step, 10) == OPENED
    async with sessions() as session:
        stored = await session.get(Payment, payment.id)
    assert stored is not None
    assert (stored.status, stored.provider_ref, stored.transfer_reference) == (
        "awaiting_funds",
        "bt_1",
        "BT-REF-1",
    )
    assert await moves(sessions, payment) == 1  # the request's, not the step's


async def test_a_request_answered_without_it_leaves_the_step_to_store_it_once(
    sessions: Sessions,
) -> None:
    payment = await new_deposit(sessions)
    async with sessions.begin() as request:
        request.add(payment)
    assert await record(sessions, payment) == OPENED
    assert await record(sessions, payment) == OPENED
    async with sessions() as session:
        stored = await session.get(Payment, payment.id)
    assert stored is not None and (stored.status, stored.provider_ref) == ("awaiting_funds", "bt_1")
    assert await moves(sessions, payment) == 1


async def test_a_request_rolled_back_leaves_no_row_to_store_it_on(sessions: Sessions) -> None:
    payment = await new_deposit(sessions)
    with pytest.raises(ApplicationError) as refused:
        await record(sessions, payment)
    assert refused.value.type == "MovementNotFound" and not refused.value.non_retryable


async def _blocked(sessions: Sessions) -> bool:
    """Whether a session waits for one of the payments' commit locks (two-key advisory locks)."""
    async with sessions() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objsubid = 2 AND classid = :space"
            ),
            {"space": UNCOMMITTED_PAYMENT_LOCKS},
        )
    return bool(waiting)
