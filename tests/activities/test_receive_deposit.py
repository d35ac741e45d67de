"""`receive_deposit` and a booking that carries the client's notice, against the real database.

Since `workflows.deposit.FEWER_LOCAL_STEPS` a deposit records the money's arrival and checks it
in one step, and tells the client of the credit with its last booking: each in one transaction,
so a retry (a local step is re-run after a worker dies) finds all of it done or none of it."""

from __future__ import annotations

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger_steps import LedgerSteps
from activities.payments import PaymentSteps
from contracts.deposit import InTransit, PaymentReceived
from contracts.funds import Booking, MarkMovement, MovementRef, Notify
from db.ledger import balance
from db.models import AuditEntry, Client, JournalEntryRow, Notification, Payment
from domain.funds import accept_into_wallet
from domain.money_flows import MovementKind
from domain.payments import PaymentEventKind, PaymentStatus
from domain.wallets import hold_account
from tests.activities.kyc_rows import add_client
from tests.activities.test_payment_session_steps import OPENED, new_deposit
from tests.activities.test_payout_poll import LIMITS
from tests.workflows.money_fakes import payment_event, usd

Sessions = async_sessionmaker[AsyncSession]


async def awaiting_funds(sessions: Sessions) -> Payment:
    payment = await new_deposit(sessions)
    payment.status = PaymentStatus.AWAITING_FUNDS.value
    async with sessions.begin() as session:
        session.add(payment)
    return payment


async def count(sessions: Sessions, model: type[object], *where: ColumnElement[bool]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def audit_actions(sessions: Sessions, payment: Payment) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == str(payment.id))
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def test_the_money_is_booked_and_checked_once_in_one_step(sessions: Sessions) -> None:
    payment = await awaiting_funds(sessions)
    steps = PaymentSteps(sessions, {}, LIMITS)
    event = payment_event(PaymentEventKind.PAYMENT_SUCCEEDED, payment.reference, usd("100.00"))
    request = PaymentReceived(payment_id=payment.id, event=event)

    first = await ActivityEnvironment().run(steps.receive_deposit, request)
    again = await ActivityEnvironment().run(steps.receive_deposit, request)  # a re-run step

    assert again == first
    assert first.amount == usd("100.00")
    async with sessions() as session:
        stored = await session.get(Payment, payment.id)
    assert stored is not None
    checked = PaymentStatus.HELD if first.flags else PaymentStatus.CREDITING
    assert stored.status == checked.value
    assert tuple(stored.risk_flags) == first.flags
    assert await audit_actions(sessions, payment) == [
        "payment.received",
        f"payment.{checked.value}",
    ]
    received = f"{payment.reference}:received"
    assert await count(sessions, JournalEntryRow, JournalEntryRow.idempotency_key == received) == 1


async def cleared(sessions: Sessions, payment: Payment) -> None:
    """The payment's client passes every check (KYC approved, screened clear, payer's name)."""
    async with sessions.begin() as session:
        client = await session.get(Client, payment.client_id)
        assert client is not None
        client.kyc_status, client.screening_status = "approved", "clear"
        client.full_name = "Jane Doe"


@pytest.mark.parametrize("passes", [True, False], ids=["cleared", "held"])
async def test_a_cleared_deposit_to_mt5_is_booked_in_transit_in_the_same_step(
    sessions: Sessions, passes: bool
) -> None:
    payment = await awaiting_funds(sessions)
    if passes:
        await cleared(sessions, payment)
    steps = PaymentSteps(sessions, {}, LIMITS)
    event = payment_event(PaymentEventKind.PAYMENT_SUCCEEDED, payment.reference, usd("100.00"))
    transit = InTransit(
        key=f"{payment.reference}:transit", client_id=payment.client_id, currency="USD"
    )
    request = PaymentReceived(payment_id=payment.id, event=event, in_transit=transit)

    first = await ActivityEnvironment().run(steps.receive_deposit, request)
    again = await ActivityEnvironment().run(steps.receive_deposit, request)  # a re-run step

    assert again == first
    assert (first.flags == (), first.in_transit) == (passes, passes)
    booked = JournalEntryRow.idempotency_key == transit.key
    assert await count(sessions, JournalEntryRow, booked) == int(passes)
    if passes:
        hold = hold_account(str(payment.client_id), "USD")
        async with sessions() as session:
            assert await balance(session, hold, "USD") == usd("-100.00")


async def test_money_arriving_before_the_answer_was_stored_stores_it_in_the_same_step(
    sessions: Sessions,
) -> None:
    payment = await new_deposit(sessions)  # the request answered without the processor's answer
    async with sessions.begin() as session:
        session.add(payment)
    steps = PaymentSteps(sessions, {}, LIMITS)
    event = payment_event(PaymentEventKind.PAYMENT_SUCCEEDED, payment.reference, usd("100.00"))
    request = PaymentReceived(payment_id=payment.id, event=event, session=OPENED)

    first = await ActivityEnvironment().run(steps.receive_deposit, request)
    again = await ActivityEnvironment().run(steps.receive_deposit, request)  # a re-run step

    assert again == first
    async with sessions() as session:
        stored = await session.get(Payment, payment.id)
    assert stored is not None
    checked = PaymentStatus.HELD if first.flags else PaymentStatus.CREDITING
    assert stored.status == checked.value
    assert stored.transfer_reference == OPENED.transfer_reference
    assert await audit_actions(sessions, payment) == [
        "payment.awaiting_funds",
        "payment.received",
        f"payment.{checked.value}",
    ]


async def test_a_booking_tells_the_client_once_and_only_if_it_is_booked(
    sessions: Sessions,
) -> None:
    client = await add_client(sessions, questionnaire=False)
    payment = await awaiting_funds(sessions)
    steps = LedgerSteps(sessions, fx_spread_bps=0)
    key = f"{payment.reference}:wallet"
    amount = usd("100.00")
    notice = Notify(
        client_id=payment.client_id, key=f"{key}:notice", kind="deposit_completed", message="done"
    )
    booking = Booking(
        entry=accept_into_wallet(key, str(payment.client_id), amount),
        then=MarkMovement(
            movement=MovementRef(kind=MovementKind.PAYMENT, id=payment.id),
            status=PaymentStatus.COMPLETED,
            credited=amount,
        ),
        notice=notice,
    )
    # The same key with other postings is another business event: refused, and nobody is told.
    other = booking.model_copy(
        update={
            "entry": accept_into_wallet(key, str(client.id), amount),
            "notice": replace_key(notice, f"{key}:other"),
        }
    )
    await ActivityEnvironment().run(steps.book_entry, booking)
    await ActivityEnvironment().run(steps.book_entry, booking)  # a re-run step
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(steps.book_entry, other)

    assert await count(sessions, Notification, Notification.key == notice.key) == 1
    assert await count(sessions, Notification, Notification.key == f"{key}:other") == 0
    assert await count(sessions, JournalEntryRow, JournalEntryRow.idempotency_key == key) == 1


def replace_key(notice: Notify, key: str) -> Notify:
    return notice.model_copy(update={"key": key})
