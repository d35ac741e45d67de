from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.deps import SessionDep, StateDep
from api.finance import service
from api.finance.schemas import (
    CreditUnmatchedRequest,
    DecisionRequest,
    DecisionResult,
    FinanceCaseView,
    FinancePaymentDetail,
    FinancePaymentView,
    PaymentPage,
    PendingApproval,
    ResolveCaseRequest,
    ResolvedCaseView,
    ReturnUnmatchedRequest,
    UnmatchedFundsView,
    WebhookEventView,
)
from api.policy import FinanceOfficer, FinanceReader
from api.problems import PAYMENT_DECISION_ERRORS, error_responses
from api.schemas import Limit, Offset
from api.webhooks.schemas import WebhookOutcome
from domain.payments import (
    FinanceCaseStatus,
    PaymentDirection,
    PaymentStatus,
    Provider,
    UnmatchedAction,
    UnmatchedStatus,
)

router = APIRouter(prefix="/v1/finance", tags=["finance"])
UNMATCHED_ERRORS = error_responses(
    {
        404: "no such unmatched payment",
        409: "already being resolved, or resolved",
        422: "a missing reason, or no such client to credit",
        503: "workflow engine down: nothing changed",
    }
)


@router.get("/payments")
async def list_payments(
    _: FinanceReader,
    session: SessionDep,
    direction: PaymentDirection | None = None,
    status: PaymentStatus | None = None,
    provider: Provider | None = None,
    client_id: UUID | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PaymentPage:
    """Deposits and withdrawals, newest first, with both references, checks and risk flags."""
    rows = await service.payments(
        session,
        direction=direction,
        status=status,
        provider=provider,
        client_id=client_id,
        limit=limit,
        offset=offset,
    )
    return PaymentPage(items=[FinancePaymentView.of(p) for p in rows], limit=limit, offset=offset)


@router.get("/payments/{payment_id}", responses=error_responses({404: "no such payment"}))
async def get_payment(
    payment_id: UUID, _: FinanceReader, session: SessionDep
) -> FinancePaymentDetail:
    """One payment with the staff decisions on it and every webhook that named it."""
    return await service.payment_detail(session, payment_id)


@router.get("/approvals")
async def pending_approvals(_: FinanceReader, session: SessionDep) -> list[PendingApproval]:
    """Withdrawals pending four-eyes approval and deposits held for compliance, oldest first."""
    return await service.pending_approvals(session)


@router.post("/withdrawals/{payment_id}/decision", responses=PAYMENT_DECISION_ERRORS)
async def decide_withdrawal(
    payment_id: UUID,
    body: DecisionRequest,
    officer: FinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> DecisionResult:
    """Approve or reject a withdrawal pending approval; two different finance officers must
    approve before it is paid out, one rejection stops it."""
    return await service.decide(
        session, state.temporal, officer, payment_id, PaymentDirection.WITHDRAWAL, body
    )


@router.get("/webhook-events")
async def list_webhook_events(
    _: FinanceReader,
    session: SessionDep,
    outcome: WebhookOutcome | None = None,
    provider: Provider | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[WebhookEventView]:
    """Every stored webhook, newest first: rejected, unmatched and needs_review ones want a look."""
    rows = await service.webhook_events(
        session, outcome=outcome, provider=provider, limit=limit, offset=offset
    )
    return [WebhookEventView.model_validate(e) for e in rows]


@router.get("/cases")
async def list_finance_cases(
    _: FinanceReader,
    session: SessionDep,
    status: FinanceCaseStatus | None = FinanceCaseStatus.OPEN,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[FinanceCaseView]:
    """Withdrawals and transfers left `needs_attention` because an undo step failed for good:
    what was undone, what was not (with the error) and the amounts, oldest first. Open cases
    unless `status` says otherwise."""
    rows = await service.finance_cases(session, status=status, limit=limit, offset=offset)
    return [FinanceCaseView.of(case) for case in rows]


@router.post(
    "/cases/{case_id}/resolve",
    responses=error_responses(
        {404: "no such finance case", 409: "resolved already", 422: "a missing reason"}
    ),
)
async def resolve_finance_case(
    case_id: UUID, body: ResolveCaseRequest, officer: FinanceOfficer, session: SessionDep
) -> ResolvedCaseView:
    """Mark an open case resolved once finance has made MT5, the books and the processor
    agree by hand, `reason` saying what was done; audited as `finance_case.resolved`. A
    `compensation_incomplete` case's movement leaves `needs_attention` in the same transaction
    (a deposit `completed`, a withdrawal or transfer the status its undoing was heading for;
    an unmatched-funds item `credited`), audited too; `movement_status` says where it went."""
    return await service.resolve_case(session, officer, case_id, body.reason)


@router.get("/unmatched")
async def list_unmatched_funds(
    _: FinanceReader,
    session: SessionDep,
    status: UnmatchedStatus | None = UnmatchedStatus.OPEN,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[UnmatchedFundsView]:
    """Verified payments no deposit booked (a second payment on a reference, one for a deposit
    that had expired, failed or been cancelled, or for an unknown reference), oldest first.
    Open items unless `status` says otherwise."""
    rows = await service.unmatched_funds(session, status=status, limit=limit, offset=offset)
    return [UnmatchedFundsView.of(item) for item in rows]


@router.post(
    "/unmatched/{item_id}/return",
    status_code=status.HTTP_202_ACCEPTED,
    responses=UNMATCHED_ERRORS,
)
async def return_unmatched_funds(
    item_id: UUID,
    body: ReturnUnmatchedRequest,
    officer: FinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> UnmatchedFundsView:
    """Send an open item back to the payer through its processor (a CardCo refund, a BankCo
    return to the sending account); the item is `returning` until the processor took it."""
    return await service.resolve_unmatched(
        session, state.temporal, officer, item_id, UnmatchedAction.RETURN, body.reason
    )


@router.post(
    "/unmatched/{item_id}/credit",
    status_code=status.HTTP_202_ACCEPTED,
    responses=UNMATCHED_ERRORS,
)
async def credit_unmatched_funds(
    item_id: UUID,
    body: CreditUnmatchedRequest,
    officer: FinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> UnmatchedFundsView:
    """Credit an open item to a client's wallet in its currency (booked processor → suspense →
    wallet), or with `mt5_login` straight to one of the client's live MT5 accounts in that
    currency (suspense → hold → MT5; if MT5 refuses, the wallet); the item is `crediting` until
    the books have it."""
    return await service.resolve_unmatched(
        session,
        state.temporal,
        officer,
        item_id,
        UnmatchedAction.CREDIT,
        body.reason,
        client_id=body.client_id,
        mt5_login=body.mt5_login,
    )
