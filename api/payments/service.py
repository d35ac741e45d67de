"""Deposits and withdrawals as clients ask for them: checked at the door, recorded with their
audit row, and handed to their workflow (which does everything else).

A deposit is started with an update (update-with-start, `contracts.deposit.PAYMENT_SESSION`) that
answers the processor's payment page or transfer reference: the request waits for it (at most
`SESSION_WAIT_SECONDS`), stores it on the payment's row (status `awaiting_funds`, with its audit
entry) and hands it back in its own answer, so the client does not poll for it. The row is
committed after that answer, which is why the workflow asks the processor from its input; its
`record_payment_session` step waits for this request's commit (an advisory lock the request holds
from before the start, `db.queries.movements`) and finds the answer stored, or stores it when
the request answered without it.

Everything a client can get wrong is refused here, before any row is written or any workflow
started. A withdrawal from the wallet takes its hold here, in the request's transaction, with the
wallet locked: two requests that together exceed the balance get one 202 and one 409, never two
acceptances. (From an MT5 account the workflow checks free margin, which only MT5 knows.)
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.idempotency import earlier_request, first_request, request_hash, start_request
from api.me import service as me_service
from api.payments.schemas import DepositRequest, WithdrawalRequest
from api.policy import Principal
from api.schemas import supported_money
from api.temporal import TemporalConnector
from api.wallets.service import hold_at_request, lock_available
from contracts import TASK_QUEUE
from contracts.deposit import (
    DEPOSIT,
    PAYMENT_SESSION,
    DepositInput,
    SessionWanted,
    deposit_workflow_id,
)
from contracts.funds import MovementResult
from contracts.withdrawal import WITHDRAWAL, WithdrawalInput, withdrawal_workflow_id
from db import audit
from db.models import Mt5Account, Payment
from db.queries.movements import hold_until_committed, store_session
from domain.errors import ServiceUnavailable
from domain.money import Money
from domain.money_flows import MovementKind, Mt5AccountRef, Pocket, reference_for
from domain.payment_checks import check_amount_within
from domain.payments import (
    ComplianceStatus,
    PaymentDirection,
    PaymentSession,
    PaymentStatus,
    Provider,
    UnsupportedByProvider,
)
from settings import PaymentRules

# How long a deposit request waits for the processor's page or reference. Later than that (a
# slow processor, no worker polling), it is answered without them, as before this existed: the
# client reads the payment until they are there.
SESSION_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class RequestedDeposit:
    """A deposit as the request left it, with the processor's page or reference when they came
    in time (None: a repeated request, or not in time; the payment's row has them later)."""

    payment: Payment
    session: PaymentSession | None = None


async def request_deposit(
    session: AsyncSession,
    temporal: TemporalConnector,
    rules: PaymentRules,
    me: Principal,
    request: DepositRequest,
    key: str,
) -> Payment:
    """The deposit's row (`deposit_with_session` without the processor's answer)."""
    return (await deposit_with_session(session, temporal, rules, me, request, key)).payment


async def deposit_with_session(
    session: AsyncSession,
    temporal: TemporalConnector,
    rules: PaymentRules,
    me: Principal,
    request: DepositRequest,
    key: str,
) -> RequestedDeposit:
    digest = request_hash("deposit", request)
    earlier = await earlier_request(session, Payment, me.id, key, digest)
    if earlier is not None:
        return RequestedDeposit(earlier)
    amount = supported_money(request.amount, request.currency)
    check_amount_within(amount, rules.min_deposit, rules.max_deposit, "deposit")
    account = await _live_account(session, me.id, request.mt5_login, amount.currency)
    payment_id = uuid.uuid4()
    payment, created = await first_request(
        session,
        Payment,
        _payment(
            payment_id,
            me.id,
            PaymentDirection.DEPOSIT,
            request.provider,
            amount,
            account,
            key,
            digest,
            deposit_workflow_id(payment_id),
        ),
    )
    if not created:
        return RequestedDeposit(payment)
    _audit(session, me, payment, "payment.deposit_requested")
    await session.flush()
    # Until this request commits: the workflow's `record_payment_session` waits for it there.
    await hold_until_committed(session, payment.id)
    opened = await _start_with_session(
        temporal,
        payment.workflow_id,
        DepositInput(
            payment_id=payment.id,
            client_id=me.id,
            reference=payment.reference,
            provider=payment.provider,
            amount=amount,
            destination=_pocket(amount.currency, account),
            timers=rules.timers(),
        ),
    )
    if opened is None:
        await session.refresh(payment)
        return RequestedDeposit(payment)
    # The answer on the row in this transaction (as `record_payment_session` stores it, with the
    # same audit entry), so the client's first read shows it and that step finds it stored.
    stored = await store_session(session, payment.id, opened)
    assert stored is not None  # inserted by this request, and locked until it commits
    return RequestedDeposit(stored, opened)


async def _start_with_session(
    temporal: TemporalConnector, workflow_id: str, argument: DepositInput
) -> PaymentSession | None:
    """Start the deposit with its `payment_session` update (before the request's commit, like
    every start: a refused start rolls the request back, 503) and return the processor's answer;
    None when the processor refused or did not answer in time (the deposit is started all the
    same, and the client reads the payment as before)."""
    client = await temporal.client()
    start: WithStartWorkflowOperation[Any, MovementResult] = WithStartWorkflowOperation(
        DEPOSIT.name,
        argument,
        id=workflow_id,
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        result_type=MovementResult,
    )
    # Its outcome is also the start's: read here, so an abandoned wait logs no unread exception.
    asyncio.ensure_future(start.workflow_handle()).add_done_callback(_read)
    try:
        opened: PaymentSession = await asyncio.wait_for(
            client.execute_update_with_start_workflow(
                PAYMENT_SESSION.name,
                SessionWanted(),
                start_workflow_operation=start,
                result_type=PAYMENT_SESSION.result,
            ),
            SESSION_WAIT_SECONDS,
        )
        return opened
    except (WorkflowUpdateFailedError, WorkflowAlreadyStartedError):
        return None  # started; the processor refused (the workflow says why), or started before
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        pass
    # No answer in time: the request is answered without the page if the deposit was started.
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ServiceUnavailable(
                "the workflow engine did not accept the request; try again"
            ) from exc
        raise ServiceUnavailable("the workflow engine is not reachable; try again shortly") from exc
    return None


def _read(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def request_withdrawal(
    session: AsyncSession,
    temporal: TemporalConnector,
    rules: PaymentRules,
    me: Principal,
    request: WithdrawalRequest,
    key: str,
) -> Payment:
    digest = request_hash("withdrawal", request)
    earlier = await earlier_request(session, Payment, me.id, key, digest)
    if earlier is not None:
        return earlier
    if request.provider is not Provider.BANKCO:
        raise UnsupportedByProvider(
            "CardCo pays money back only as refunds of card payments; withdraw through bankco",
            field="provider",
        )
    amount = supported_money(request.amount, request.currency)
    check_amount_within(amount, rules.min_withdrawal, rules.max_withdrawal, "withdrawal")
    account = await _live_account(session, me.id, request.mt5_login, amount.currency)
    # Locked until the commit: a concurrent request of the same wallet waits and sees our hold.
    wallet_has = await lock_available(session, me.id, amount) if account is None else None
    payment_id = uuid.uuid4()
    row = _payment(
        payment_id,
        me.id,
        PaymentDirection.WITHDRAWAL,
        request.provider,
        amount,
        account,
        key,
        digest,
        withdrawal_workflow_id(payment_id),
    )
    row.beneficiary_name = request.beneficiary_name
    row.beneficiary_account = request.beneficiary_account
    payment, created = await first_request(session, Payment, row)
    if not created:
        return payment
    if wallet_has is not None:
        await hold_at_request(session, me.id, f"{payment.reference}:hold", amount, wallet_has)
    _audit(session, me, payment, "payment.withdrawal_requested")
    return await start_request(
        session,
        temporal,
        payment,
        WITHDRAWAL,
        WithdrawalInput(
            payment_id=payment.id,
            client_id=me.id,
            reference=payment.reference,
            provider=payment.provider,
            amount=amount,
            source=_pocket(amount.currency, account),
            timers=rules.timers(),
        ),
    )


async def _live_account(
    session: AsyncSession, client_id: uuid.UUID, login: int | None, currency: str
) -> Mt5Account | None:
    if login is None:
        return None
    return await me_service.own_live_account(session, client_id, login, currency, "mt5_login")


def _pocket(currency: str, account: Mt5Account | None) -> Pocket:
    mt5 = Mt5AccountRef(server=account.server, login=account.login) if account else None
    return Pocket(currency=currency, mt5=mt5)


def _payment(
    payment_id: uuid.UUID,
    client_id: uuid.UUID,
    direction: PaymentDirection,
    provider: str,
    amount: Money,
    account: Mt5Account | None,
    key: str,
    digest: str,
    workflow_id: str,
) -> Payment:
    return Payment(
        id=payment_id,
        client_id=client_id,
        direction=direction.value,
        provider=provider,
        reference=reference_for(MovementKind.PAYMENT, payment_id),
        status=PaymentStatus.INITIATED.value,
        currency=amount.currency,
        amount_minor=amount.to_minor_units(),
        requested_minor=amount.to_minor_units(),
        idempotency_key=key,
        request_hash=digest,
        workflow_id=workflow_id,
        compliance_status=ComplianceStatus.NOT_CHECKED.value,
        risk_flags=[],
        mt5_server=account.server if account else None,
        mt5_login=account.login if account else None,
    )


def _audit(session: AsyncSession, me: Principal, payment: Payment, action: str) -> None:
    after: dict[str, object] = {
        "reference": payment.reference,
        "provider": payment.provider,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "mt5_server": payment.mt5_server,
        "mt5_login": payment.mt5_login,
        "idempotency_key": payment.idempotency_key,
    }
    if payment.beneficiary_account:
        # The full IBAN is on the payment; the trail needs only to recognise it.
        after["beneficiary_name"] = payment.beneficiary_name
        after["beneficiary_account"] = f"****{payment.beneficiary_account[-4:]}"
    audit.record(
        session,
        me.actor(),
        audit.Change(action=action, entity_type="payment", entity_id=str(payment.id), after=after),
    )
