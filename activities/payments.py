"""Payment steps: asking processors for payment pages and payouts, recording what they report,
and the checks and staff decisions in between. Each step is idempotent: Temporal may run any of
them again, and a processor call always carries the payment's reference as its idempotency key.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.movements import as_business_failure, load_payment, missing, reading
from contracts import deposit, funds, withdrawal
from contracts.deposit import (
    DepositAssessment,
    OpenPaymentSession,
    PaymentReceived,
    ProcessorEvents,
    RecordPaymentSession,
)
from contracts.funds import PaymentRef, RecordDecision
from contracts.steps import implements
from contracts.withdrawal import PayoutVerdict, WithdrawalAssessment
from db import audit
from db.ledger import post_entry
from db.models import Client, Payment, PaymentDecision
from db.queries.movements import (
    move,
    move_row,
    payment_with_client,
    store_session,
    wait_until_committed,
)
from domain.errors import BackOfficeError
from domain.funds import accept_in_transit, receive_payment, return_payment
from domain.money import Money
from domain.money_flows import MovementKind
from domain.payment_checks import (
    DepositFacts,
    KycStatus,
    PaymentLimits,
    ScreeningStatus,
    WithdrawalFacts,
    assess_deposit,
    assess_withdrawal,
)
from domain.payments import (
    ComplianceStatus,
    PaymentDirection,
    PaymentEvent,
    PaymentEventKind,
    PaymentSession,
    PaymentStatus,
    PayoutState,
)
from psp_adapter.gateway import PaymentProvider

T = TypeVar("T")
log = logging.getLogger("brokerflow.unmatched_funds")
# What a payout's state, when asked, means for the withdrawal: the event its webhook would bring.
VERDICTS = {
    PayoutState.SETTLED: PaymentEventKind.PAYOUT_SETTLED,
    PayoutState.FAILED: PaymentEventKind.PAYOUT_FAILED,
}
# Deposits that count towards the daily limit and velocity: everything the processor collected.
COLLECTED = [
    PaymentStatus.RECEIVED,
    PaymentStatus.HELD,
    PaymentStatus.CREDITING,
    PaymentStatus.COMPLETED,
]


async def processor_call(call: Awaitable[T]) -> T:
    """Processors' 4xx answers are final (the request is wrong); anything else is retried."""
    try:
        return await call
    except httpx.HTTPStatusError as error:
        status = error.response.status_code
        if 400 <= status < 500 and status not in (408, 409, 429):
            raise ApplicationError(
                f"the processor refused the request ({status}): {error.response.text[:300]}",
                type="ProcessorRefused",
                non_retryable=True,
            ) from error
        raise


def amount_of(payment: Payment) -> Money:
    return Money.from_minor_units(payment.amount_minor, payment.currency)


class PaymentSteps:
    """Processor and payment-record steps, on the main task queue."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: dict[str, PaymentProvider],
        limits: PaymentLimits,
    ) -> None:
        self._sessions = sessions
        self._providers = providers
        self._limits = limits

    @implements(deposit.start_processor_deposit)
    async def start_processor_deposit(self, request: PaymentRef) -> PaymentSession:
        """Deposits started before `workflows.deposit.SESSION_IN_ANSWER`: the processor asked
        from the payment's row, its answer stored on it."""
        async with self._sessions() as session:
            found = await payment_with_client(session, request.payment_id)
        if found is None:
            raise missing(MovementKind.PAYMENT, request.payment_id)
        payment, client = found
        if payment.provider_ref is not None:
            return _session_of(payment)
        opened = await self._open_session(
            payment.provider, payment.reference, amount_of(payment), client.full_name
        )
        return await self.record_payment_session(
            RecordPaymentSession(payment_id=request.payment_id, session=opened)
        )

    @implements(deposit.open_payment_session)
    async def open_payment_session(self, request: OpenPaymentSession) -> PaymentSession:
        """The processor's page or transfer reference from the request's own data: the payment's
        row may not be committed yet (the API waits for this answer inside its transaction)."""
        async with reading(self._sessions) as session:
            payer = await session.scalar(
                select(Client.full_name).where(Client.id == request.client_id)
            )
        return await self._open_session(
            request.provider, request.reference, request.amount, payer or ""
        )

    @implements(deposit.record_payment_session)
    async def record_payment_session(self, request: RecordPaymentSession) -> PaymentSession:
        """The processor's answer on the payment (once), which then awaits its funds. Usually
        the API has stored it already, in the request that inserted the payment: this step waits
        for that request's commit (a lock it holds until then, `db.queries.movements`; no
        polling) and finds it there. When the request answered without it (the processor was
        slow), the step stores it."""
        async with reading(self._sessions) as session:
            await wait_until_committed(session, request.payment_id)
            payment = await session.get(Payment, request.payment_id)
        if payment is None:
            raise missing(MovementKind.PAYMENT, request.payment_id)  # rolled back, or not yet
        if payment.provider_ref is not None:
            return _session_of(payment)
        async with self._sessions.begin() as session:
            stored = await store_session(session, request.payment_id, request.session)
        # None: stored meanwhile by another attempt, which stored the same (keyed) answer.
        return request.session if stored is None else _session_of(stored)

    async def _open_session(
        self, provider: str, reference: str, amount: Money, payer: str
    ) -> PaymentSession:
        # Keyed by the payment's reference: asking again gives the same page or reference.
        return await processor_call(
            self._providers[provider].start_deposit(reference, amount, payer, reference)
        )

    @implements(deposit.record_payment_received)
    async def record_payment_received(self, request: PaymentReceived) -> None:
        """The processor collected the money: book it into suspense until the checks pass."""
        async with self._sessions.begin() as session:
            await self._book_received(session, request)

    @implements(deposit.assess_deposit)
    async def assess_deposit(self, request: PaymentRef) -> DepositAssessment:
        async with self._sessions.begin() as session:
            return await self._assess(session, request.payment_id)

    @implements(deposit.receive_deposit)
    async def receive_deposit(self, request: PaymentReceived) -> DepositAssessment:
        """The money booked into suspense and checked, in one transaction: a retry finds either
        both done or neither."""
        async with self._sessions.begin() as session:
            if request.session is not None:  # nothing written when the request stored it
                await store_session(session, request.payment_id, request.session)
            await self._book_received(session, request)
            assessment = await self._assess(session, request.payment_id)
            transit = request.in_transit
            if (
                transit is None
                or assessment.flags
                or assessment.amount.currency != transit.currency
            ):
                return assessment
            # Idempotent by its key: a retry finds it booked (the same entry) and adds nothing.
            await post_entry(
                session, accept_in_transit(transit.key, str(transit.client_id), assessment.amount)
            )
            return assessment.model_copy(update={"in_transit": True})

    @staticmethod
    async def _book_received(session: AsyncSession, request: PaymentReceived) -> None:
        event = request.event
        try:
            payment = await move_row(
                session,
                Payment,
                request.payment_id,
                PaymentStatus.RECEIVED,
                values={
                    "amount_minor": event.amount.to_minor_units(),
                    "currency": event.amount.currency,
                    "payer_name": event.payer_name or None,
                    "provider_ref": event.provider_ref,
                },
                where=(Payment.status == PaymentStatus.AWAITING_FUNDS,),
                details={
                    "amount": f"{event.amount.amount} {event.amount.currency}",
                    "event_id": event.event_id,
                },
            )
            if payment is None:
                # Recorded already (a retry), or not awaiting funds; absent: not committed.
                await load_payment(session, request.payment_id)
                return
            await post_entry(
                session,
                receive_payment(f"{payment.reference}:received", payment.provider, event.amount),
            )
        except BackOfficeError as error:
            raise as_business_failure(error) from error

    async def _assess(self, session: AsyncSession, payment_id: uuid.UUID) -> DepositAssessment:
        payment, client = await _with_client(session, payment_id)
        if payment.compliance_status == ComplianceStatus.NOT_CHECKED:
            since_day, since_hour = _windows()
            deposited_last_24h, deposits_last_hour = await self._earlier_collected(
                session, payment, since_day, since_hour
            )
            assessment = assess_deposit(
                DepositFacts(
                    amount=amount_of(payment),
                    requested=Money.from_minor_units(payment.requested_minor, payment.currency),
                    kyc=KycStatus(client.kyc_status),
                    screening=ScreeningStatus(client.screening_status),
                    client_name=client.full_name,
                    payer_name=payment.payer_name or "",
                    deposited_last_24h=deposited_last_24h,
                    deposits_last_hour=deposits_last_hour,
                ),
                self._limits,
            )
            payment.risk_flags = [flag.value for flag in assessment.flags]
            payment.compliance_status = (
                ComplianceStatus.PENDING if assessment.held else ComplianceStatus.CLEARED
            )
            move(
                session,
                payment,
                PaymentStatus.HELD if assessment.held else PaymentStatus.CREDITING,
                details={"risk_flags": payment.risk_flags},
            )
        return DepositAssessment(flags=tuple(payment.risk_flags), amount=amount_of(payment))

    @staticmethod
    async def _earlier_collected(
        session: AsyncSession, payment: Payment, since_day: datetime, since_hour: datetime
    ) -> tuple[Decimal, int]:
        """The client's other collected deposits in the payment's currency: their sum over the
        last 24 hours and their number over the last hour, in one query."""
        total, count = (
            await session.execute(
                select(
                    func.coalesce(func.sum(Payment.amount_minor), 0),
                    func.count().filter(Payment.created_at >= since_hour),
                ).where(
                    Payment.client_id == payment.client_id,
                    Payment.direction == PaymentDirection.DEPOSIT,
                    Payment.currency == payment.currency,
                    Payment.status.in_(COLLECTED),
                    Payment.created_at >= since_day,
                    Payment.id != payment.id,
                )
            )
        ).one()
        return Money.from_minor_units(int(total or 0), payment.currency).amount, int(count or 0)

    @implements(withdrawal.assess_withdrawal)
    async def assess_withdrawal(self, request: PaymentRef) -> WithdrawalAssessment:
        async with self._sessions.begin() as session:
            payment, client = await _with_client(session, request.payment_id)
            if payment.compliance_status == ComplianceStatus.NOT_CHECKED:
                assessment = assess_withdrawal(
                    WithdrawalFacts(
                        amount=amount_of(payment),
                        kyc=KycStatus(client.kyc_status),
                        screening=ScreeningStatus(client.screening_status),
                        client_name=client.full_name,
                        beneficiary_name=payment.beneficiary_name or "",
                    ),
                    self._limits,
                )
                payment.risk_flags = [flag.value for flag in assessment.flags]
                payment.compliance_status = (
                    ComplianceStatus.PENDING if assessment.held else ComplianceStatus.CLEARED
                )
                if assessment.held:
                    move(
                        session,
                        payment,
                        PaymentStatus.PENDING_APPROVAL,
                        details={"risk_flags": payment.risk_flags},
                    )
            return WithdrawalAssessment(flags=tuple(payment.risk_flags))

    @implements(funds.record_decision)
    async def record_decision(self, request: RecordDecision) -> None:
        """A staff decision, with its audit entry naming the officer, in one transaction."""
        decision = request.decision
        async with self._sessions.begin() as session:
            payment = await load_payment(session, request.payment_id)
            role = "compliance" if payment.direction == PaymentDirection.DEPOSIT else "finance"
            stored = await session.scalar(
                insert(PaymentDecision)
                .values(
                    payment_id=payment.id,
                    staff_id=decision.staff_id,
                    role=role,
                    approve=decision.approve,
                    reason=decision.reason,
                )
                .on_conflict_do_nothing()
                .returning(PaymentDecision.id)
            )
            if stored is None:
                return  # a retry of a decision already recorded
            staff = audit.Actor(
                kind="staff",
                id=str(decision.staff_id),
                roles=decision.roles,
                ip=decision.ip,
                request_id=decision.request_id,
            )
            verdict = ComplianceStatus.APPROVED if decision.approve else ComplianceStatus.REJECTED
            if request.final:
                payment.compliance_status = verdict
            if request.new_status is not None:
                move(
                    session,
                    payment,
                    request.new_status,
                    actor=staff,
                    details={"compliance_status": payment.compliance_status},
                    reason=decision.reason,
                )
                return
            audit.record(
                session,
                staff,
                audit.Change(
                    action=f"payment.{role}_{'approved' if decision.approve else 'rejected'}",
                    entity_type="payment",
                    entity_id=str(payment.id),
                    after={
                        "approve": decision.approve,
                        "compliance_status": payment.compliance_status,
                    },
                    reason=decision.reason,
                ),
            )

    @implements(withdrawal.send_payout)
    async def send_payout(self, request: PaymentRef) -> str:
        async with self._sessions() as session:
            payment = await load_payment(session, request.payment_id)
        if payment.provider_ref is not None:
            return payment.provider_ref
        payout_id = await processor_call(
            self._providers[payment.provider].payout(
                payment.reference,
                amount_of(payment),
                payment.beneficiary_name or "",
                payment.beneficiary_account or "",
                payment.reference,
            )
        )
        async with self._sessions.begin() as session:
            payment = await load_payment(session, request.payment_id)
            if payment.provider_ref is None:
                payment.provider_ref = payout_id
                move(session, payment, PaymentStatus.PAYOUT_SENT, details={"payout": payout_id})
        return payout_id

    @implements(withdrawal.poll_payout_status)
    async def poll_payout_status(self, request: PaymentRef) -> PayoutVerdict:
        """Ask the processor where the payout stands (its verdict webhook is late or lost). A
        settled or failed payout comes back as the event the webhook would have brought, with
        an event id of its own (`<provider>:poll:<payout id>:<state>`), so that the workflow
        takes it the one way it takes a webhook; a pending one as no event."""
        async with self._sessions() as session:
            payment = await load_payment(session, request.payment_id)
        if payment.provider_ref is None:
            return PayoutVerdict()  # no payout was made (yet): nothing to ask about
        try:
            state = await processor_call(
                self._providers[payment.provider].payout_status(payment.provider_ref)
            )
        except BackOfficeError as error:
            raise as_business_failure(error) from error
        kind = VERDICTS.get(state)
        if kind is None:
            return PayoutVerdict()
        return PayoutVerdict(
            event=PaymentEvent(
                provider=payment.provider,
                event_id=f"{payment.provider}:poll:{payment.provider_ref}:{state.value}",
                kind=kind,
                provider_ref=payment.provider_ref,
                reference=payment.reference,
                amount=amount_of(payment),
                payer_name=payment.beneficiary_name or "",
                sent_at=datetime.now(UTC),
            )
        )

    @implements(deposit.ask_processor_for_payment_events)
    async def ask_processor_for_payment_events(self, request: PaymentRef) -> ProcessorEvents:
        """What the processor sent about the deposit (its webhook is late or lost), as the
        events with their own ids: the workflow takes them the one way it takes webhooks."""
        async with self._sessions() as session:
            payment = await load_payment(session, request.payment_id)
        if payment.provider_ref is None:
            return ProcessorEvents()  # no payment page or reference yet: nothing to ask about
        events = await processor_call(
            self._providers[payment.provider].payment_events(payment.provider_ref)
        )
        return ProcessorEvents(events=tuple(events))

    @implements(deposit.return_payment_to_payer)
    async def return_payment_to_payer(self, request: PaymentRef) -> None:
        """A rejected deposit goes back where it came from, and out of the books' suspense."""
        async with self._sessions() as session:
            payment = await load_payment(session, request.payment_id)
        assert payment.provider_ref is not None
        await processor_call(
            self._providers[payment.provider].refund(
                payment.provider_ref,
                payment.reference,
                amount_of(payment),
                payment.payer_name or "",
                f"{payment.reference}:return",
            )
        )
        async with self._sessions.begin() as session:
            payment = await load_payment(session, request.payment_id)
            await post_entry(
                session,
                return_payment(
                    f"{payment.reference}:returned", payment.provider, amount_of(payment)
                ),
            )
            if payment.status != PaymentStatus.REJECTED:
                move(session, payment, PaymentStatus.REJECTED, reason="returned to the payer")


def _session_of(payment: Payment) -> PaymentSession:
    return PaymentSession(
        provider=payment.provider,
        provider_ref=payment.provider_ref or "",
        redirect_url=payment.redirect_url,
        transfer_reference=payment.transfer_reference,
    )


async def _with_client(session: AsyncSession, payment_id: uuid.UUID) -> tuple[Payment, Client]:
    """The payment, locked until the transaction ends, and its client, in one query."""
    found = await payment_with_client(session, payment_id)
    if found is None:
        raise missing(MovementKind.PAYMENT, payment_id)
    return found


def _windows() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=1), now - timedelta(hours=1)
