"""`open_finance_case` against the real database: the case, its audit row and the movement's
`needs_attention` status in one transaction, once per movement however often the step runs."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.ledger_steps import LedgerSteps
from contracts.funds import Compensation, MarkMovement, MovementRef, OpenFinanceCase
from contracts.transfer import transfer_workflow_id
from db.models import AuditEntry, FinanceCase, Transfer
from domain.money import Money
from domain.money_flows import MovementKind, reference_for
from domain.payments import FinanceCaseKind, FinanceCaseStatus, PaymentStatus
from tests.activities.kyc_rows import add_client

Sessions = async_sessionmaker[AsyncSession]
USD_100 = Money(amount=Decimal("100.00"), currency="USD")
EUR_90 = Money(amount=Decimal("90.00"), currency="EUR")


async def add_transfer(sessions: Sessions, client_id: uuid.UUID) -> Transfer:
    transfer_id = uuid.uuid4()
    reference = reference_for(MovementKind.TRANSFER, transfer_id)
    async with sessions.begin() as session:
        row = Transfer(
            id=transfer_id,
            client_id=client_id,
            reference=reference,
            status=PaymentStatus.FUNDS_RESERVED.value,
            currency="USD",
            amount_minor=10000,
            idempotency_key=reference,
            request_hash="-",
            workflow_id=transfer_workflow_id(transfer_id),
            destination_currency="EUR",
            destination_server="demo",
            destination_login=7001,
        )
        session.add(row)
    return row


def case_for(transfer: Transfer) -> OpenFinanceCase:
    movement = MovementRef(kind=MovementKind.TRANSFER, id=transfer.id)
    ref = transfer.reference
    return OpenFinanceCase(
        movement=movement,
        client_id=transfer.client_id,
        reference=ref,
        amount=USD_100,
        reason="failed: undone after a fault",
        undone=(
            Compensation(
                step="reverse_entry_if_booked", what=f"reverse the entry {ref}:fx", amount=USD_100
            ),
            Compensation(
                step="reverse_entry_if_booked", what=f"reverse the entry {ref}:hold", amount=USD_100
            ),
        ),
        not_undone=(
            Compensation(
                step="mt5_reverse_if_applied",
                what=f"undo 'tri {ref}' on MT5 demo 7001 with 'rev {ref}'",
                amount=EUR_90,
                error="Mt5AccountDisabled: account disabled",
            ),
        ),
        then=MarkMovement(
            movement=movement, status=PaymentStatus.NEEDS_ATTENTION, reason="not undone: MT5"
        ),
    )


async def test_opening_the_case_twice_for_one_movement_stores_one_case(sessions: Sessions) -> None:
    client = await add_client(sessions, questionnaire=False)
    transfer = await add_transfer(sessions, client.id)
    steps = LedgerSteps(sessions, fx_spread_bps=0)
    request = case_for(transfer)

    await ActivityEnvironment().run(steps.open_finance_case, request)
    await ActivityEnvironment().run(steps.open_finance_case, request)  # a retried step

    async with sessions() as session:
        [case] = (
            await session.scalars(select(FinanceCase).where(FinanceCase.movement_id == transfer.id))
        ).all()
        stored = await session.get(Transfer, transfer.id)
        opened = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "finance_case.opened", AuditEntry.entity_id == str(case.id))
        )
        marked = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.action == "transfer.needs_attention",
                AuditEntry.entity_id == str(transfer.id),
            )
        )

    assert (case.movement_kind, case.reference, case.client_id) == (
        "transfer",
        transfer.reference,
        client.id,
    )
    assert (case.kind, case.status) == (
        FinanceCaseKind.COMPENSATION_INCOMPLETE.value,
        FinanceCaseStatus.OPEN.value,
    )
    assert (case.currency, case.amount_minor) == ("USD", 10000)
    assert case.undone == [
        {
            "step": "reverse_entry_if_booked",
            "what": f"reverse the entry {transfer.reference}:fx",
            "amount": "100.00",
            "currency": "USD",
        },
        {
            "step": "reverse_entry_if_booked",
            "what": f"reverse the entry {transfer.reference}:hold",
            "amount": "100.00",
            "currency": "USD",
        },
    ]
    [kept] = case.not_undone
    assert (kept["amount"], kept["currency"], kept["error"]) == (
        "90.00",
        "EUR",
        "Mt5AccountDisabled: account disabled",
    )
    assert stored is not None
    assert stored.status == PaymentStatus.NEEDS_ATTENTION.value
    assert stored.failure_reason == "not undone: MT5"
    assert (opened, marked) == (1, 1)
