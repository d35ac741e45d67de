from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from api.deps import SessionDep, StateDep
from api.idempotency import IdempotencyKey, own_request, requests_of
from api.payments import service
from api.payments.schemas import DepositRequest, PaymentView, WithdrawalRequest
from api.policy import ClientPrincipal
from api.problems import error_responses
from api.schemas import Limit, Offset
from db.models import Payment

router = APIRouter(prefix="/v1/me", tags=["client payments"])
REQUEST_ERRORS = {
    404: "no such MT5 account among yours",
    422: "invalid amount, currency, account or reused Idempotency-Key",
    503: "workflow engine down; nothing was recorded",
}


def _accepted(payment: PaymentView, response: Response) -> PaymentView:
    response.headers["Location"] = f"/v1/me/payments/{payment.id}"
    return payment


@router.post(
    "/deposits",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(REQUEST_ERRORS),
)
async def request_deposit(
    body: DepositRequest,
    key: IdempotencyKey,
    me: ClientPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> PaymentView:
    """Deposit through a processor into your wallet (or one of your live MT5 accounts). The
    answer carries the CardCo page to pay on (`redirect_url`) or the BankCo reference to quote on
    your transfer (`transfer_reference`), status `awaiting_funds`. If the processor was slow to
    give them, the answer has status `initiated` without them: read the payment until they are
    there. A repeated request (same `Idempotency-Key`) answers the payment as it now stands."""
    requested = await service.deposit_with_session(
        session, state.temporal, state.settings.payments, me, body, key
    )
    return _accepted(PaymentView.of(requested.payment), response)


@router.post(
    "/withdrawals",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses({**REQUEST_ERRORS, 409: "Insufficient funds in the wallet"}),
)
async def request_withdrawal(
    body: WithdrawalRequest,
    key: IdempotencyKey,
    me: ClientPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> PaymentView:
    """Withdraw from your wallet (or a live MT5 account) to a bank account through BankCo.
    Larger amounts wait for two finance officers' approval."""
    payment = await service.request_withdrawal(
        session, state.temporal, state.settings.payments, me, body, key
    )
    return _accepted(PaymentView.of(payment), response)


@router.get("/payments")
async def my_payments(
    me: ClientPrincipal, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> list[PaymentView]:
    """Your deposits and withdrawals, newest first."""
    return [PaymentView.of(p) for p in await requests_of(session, Payment, me.id, limit, offset)]


@router.get("/payments/{payment_id}", responses=error_responses({404: "not one of yours"}))
async def my_payment(payment_id: UUID, me: ClientPrincipal, session: SessionDep) -> PaymentView:
    return PaymentView.of(await own_request(session, Payment, me.id, payment_id))
