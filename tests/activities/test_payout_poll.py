"""`poll_payout_status` against the real database: the processor's answer on a payout becomes the
event its webhook would bring (or none while pending); and an overdue payout's finance case is
opened once, with its alert, leaving the withdrawal where it is."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.ledger_steps import LedgerSteps
from activities.payments import PaymentSteps
from contracts.funds import MovementRef, OpenFinanceCase, PaymentRef
from contracts.withdrawal import withdrawal_workflow_id
from db.models import FinanceCase, Payment
from domain.money import Money
from domain.money_flows import MovementKind, reference_for
from domain.payment_checks import PaymentLimits
from domain.payments import (
    ComplianceStatus,
    FinanceCaseKind,
    PaymentDirection,
    PaymentEventKind,
    PaymentStatus,
    PayoutState,
)
from tests.activities.kyc_rows import add_client

Sessions = async_sessionmaker[AsyncSession]
USD_100 = Money(amount=Decimal("100.00"), currency="USD")
LIMITS = PaymentLimits(
    min_amount=Decimal("10"),
    max_amount=Decimal("50000"),
    daily_deposit_limit=Decimal("100000"),
    max_deposits_per_hour=10,
    payer_name_min_score=85,
    auto_approve_withdrawal_up_to=Decimal("1000"),
)


class Processor:
    """A processor that answers `payout_status` with `state` and records what it was asked."""

    name = "bankco"

    def __init__(self, state: PayoutState) -> None:
        self.state = state
        self.asked: list[str] = []

    async def payout_status(self, payout_id: str) -> PayoutState:
        self.asked.append(payout_id)
        return self.state


async def add_withdrawal(sessions: Sessions, provider_ref: str | None) -> Payment:
    client = await add_client(sessions, questionnaire=False)
    payment_id = uuid.uuid4()
    reference = reference_for(MovementKind.PAYMENT, payment_id)
    async with sessions.begin() as session:
        row = Payment(
            id=payment_id,
            client_id=client.id,
            direction=PaymentDirection.WITHDRAWAL.value,
            provider="bankco",
            reference=reference,
            status=PaymentStatus.PAYOUT_SENT.value,
            currency="USD",
            amount_minor=10000,
            requested_minor=10000,
            idempotency_key=reference,
            request_hash="-",
            workflow_id=withdrawal_workflow_id(payment_id),
            compliance_status=ComplianceStatus.CLEARED.value,
            risk_flags=[],
            provider_ref=provider_ref,
            beneficiary_name="Jane Roe",
            beneficiary_account="GB82WEST12345698765432",
        )
        session.add(row)
    return row


@pytest.mark.parametrize(
    ("state", "kind"),
    [
        (PayoutState.SETTLED, PaymentEventKind.PAYOUT_SETTLED),
        (PayoutState.FAILED, PaymentEventKind.PAYOUT_FAILED),
    ],
)
async def test_a_verdict_comes_back_as_the_webhooks_event(
    sessions: Sessions, state: PayoutState, kind: PaymentEventKind
) -> None:
    payment = await add_withdrawal(sessions, provider_ref="po_42")
    processor = Processor(state)
    steps = PaymentSteps(sessions, {"bankco": processor}, LIMITS)  # type: ignore[dict-item]

    verdict = await ActivityEnvironment().run(
        steps.poll_payout_status, PaymentRef(payment_id=payment.id)
    )

    assert processor.asked == ["po_42"]
    event = verdict.event
    assert event is not None
    assert (event.kind, event.provider, event.provider_ref, event.reference) == (
        kind,
        "bankco",
        "po_42",
        payment.reference,
    )
    assert event.event_id == f"bankco:poll:po_42:{state.value}"
    assert event.amount == USD_100


async def test_pending_or_no_payout_yet_is_no_event(sessions: Sessions) -> None:
    pending = await add_withdrawal(sessions, provider_ref="po_43")
    not_sent = await add_withdrawal(sessions, provider_ref=None)
    processor = Processor(PayoutState.PENDING)
    steps = PaymentSteps(sessions, {"bankco": processor}, LIMITS)  # type: ignore[dict-item]

    asked = await ActivityEnvironment().run(
        steps.poll_payout_status, PaymentRef(payment_id=pending.id)
    )
    unsent = await ActivityEnvironment().run(
        steps.poll_payout_status, PaymentRef(payment_id=not_sent.id)
    )

    assert asked.event is None and unsent.event is None
    assert processor.asked == ["po_43"]  # nothing to ask about a payout never made


async def test_an_overdue_payouts_case_is_opened_once_with_an_alert(
    sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    payment = await add_withdrawal(sessions, provider_ref="po_44")
    steps = LedgerSteps(sessions, fx_spread_bps=0)
    request = OpenFinanceCase(
        movement=MovementRef(kind=MovementKind.PAYMENT, id=payment.id),
        client_id=payment.client_id,
        reference=payment.reference,
        kind=FinanceCaseKind.PAYOUT_VERDICT_OVERDUE,
        amount=USD_100,
        reason="payout via bankco without a verdict 24 h after it was sent",
    )

    with caplog.at_level(logging.WARNING, logger="brokerflow.finance_cases"):
        await ActivityEnvironment().run(steps.open_finance_case, request)
        await ActivityEnvironment().run(steps.open_finance_case, request)  # a retried step

    async with sessions() as session:
        [case] = (
            await session.scalars(select(FinanceCase).where(FinanceCase.movement_id == payment.id))
        ).all()
        stored = await session.get(Payment, payment.id)
    assert (case.kind, case.amount_minor, case.not_undone) == ("payout_verdict_overdue", 10000, [])
    assert stored is not None and stored.status == PaymentStatus.PAYOUT_SENT.value
    alerts = [r for r in caplog.records if r.name == "brokerflow.finance_cases"]
    assert len(alerts) == 1
    assert payment.reference in alerts[0].getMessage()
