"""Finance and compliance views of payments, and staff decisions, which go to the payment's
workflow as an update: the workflow checks them (four-eyes, state) and records them with
their audit row, so the API writes nothing itself."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.finance.schemas import (
    DecisionRequest,
    DecisionResult,
    DecisionView,
    FinanceCaseView,
    FinancePaymentDetail,
    FinancePaymentView,
    PendingApproval,
    ResolvedCaseView,
    UnmatchedFundsView,
    WebhookEventView,
)
from api.policy import Principal
from api.schemas import decimal_text
from api.temporal import TemporalConnector, execute_update, staff_update_id, start_once
from contracts.funds import DECIDE, StaffDecision
from contracts.unmatched_funds import (
    RESOLVE_UNMATCHED,
    ResolveUnmatched,
    resolve_unmatched_workflow_id,
)
from db import audit
from db.models import (
    FinanceCase,
    Mt5Account,
    Payment,
    PaymentDecision,
    Transfer,
    UnmatchedFunds,
    WebhookEvent,
)
from db.queries import finance_cases as case_queries
from db.queries.clients import client_by_id
from domain.errors import Conflict, InvalidInput, NotFound
from domain.money_flows import Mt5AccountRef
from domain.payments import (
    FinanceCaseKind,
    FinanceCaseStatus,
    PaymentDirection,
    PaymentStatus,
    Provider,
    UnmatchedAction,
    UnmatchedStatus,
)

FINISHED = frozenset(
    {
        PaymentStatus.COMPLETED,
        PaymentStatus.REJECTED,
        PaymentStatus.FAILED,
        PaymentStatus.EXPIRED,
        PaymentStatus.NEEDS_ATTENTION,
    }
)


async def payments(
    session: AsyncSession,
    *,
    direction: PaymentDirection | None = None,
    status: PaymentStatus | None = None,
    provider: Provider | None = None,
    client_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Payment]:
    query = select(Payment).order_by(Payment.created_at.desc(), Payment.id)
    filters = {
        Payment.direction: direction,
        Payment.status: status,
        Payment.provider: provider,
        Payment.client_id: client_id,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    return list(await session.scalars(query.limit(limit).offset(offset)))


async def payment_detail(session: AsyncSession, payment_id: uuid.UUID) -> FinancePaymentDetail:
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(f"no payment {payment_id}")
    events = await session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.payment_id == payment_id)
        .order_by(WebhookEvent.received_at, WebhookEvent.id)
    )
    return FinancePaymentDetail(
        **FinancePaymentView.fields_of(payment),
        decisions=(await _decisions(session, [payment_id]))[payment_id],
        webhook_events=[WebhookEventView.model_validate(e) for e in events],
    )


async def pending_approvals(session: AsyncSession) -> list[PendingApproval]:
    """Withdrawals waiting for finance's four-eyes approval and deposits held for compliance,
    oldest first."""
    rows = list(
        await session.scalars(
            select(Payment)
            .where(
                or_(
                    and_(
                        Payment.direction == PaymentDirection.WITHDRAWAL,
                        Payment.status == PaymentStatus.PENDING_APPROVAL,
                    ),
                    and_(
                        Payment.direction == PaymentDirection.DEPOSIT,
                        Payment.status == PaymentStatus.HELD,
                    ),
                )
            )
            .order_by(Payment.created_at, Payment.id)
            .limit(500)
        )
    )
    decisions = await _decisions(session, [p.id for p in rows])
    return [
        PendingApproval(
            **FinancePaymentView.fields_of(p),
            waiting_for=(
                "finance (two different officers)"
                if p.direction == PaymentDirection.WITHDRAWAL
                else "compliance"
            ),
            approvals=sum(1 for d in decisions[p.id] if d.approve),
            decisions=decisions[p.id],
        )
        for p in rows
    ]


async def decide(
    session: AsyncSession,
    temporal: TemporalConnector,
    staff: Principal,
    payment_id: uuid.UUID,
    direction: PaymentDirection,
    request: DecisionRequest,
) -> DecisionResult:
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.direction != direction:
        raise NotFound(f"no {direction.value} {payment_id}")
    if payment.status in FINISHED:
        raise Conflict(f"nothing to decide: the {direction.value} is {payment.status}")
    decision = StaffDecision(
        staff_id=staff.id,
        roles=tuple(sorted(role.value for role in staff.roles)),
        approve=request.approve,
        reason=request.reason,
        ip=staff.context.ip,
        request_id=staff.context.request_id,
    )
    outcome = await execute_update(
        temporal,
        payment.workflow_id,
        DECIDE,
        decision,
        closed=f"nothing to decide: the {direction.value}'s workflow has finished",
        update_id=staff_update_id(staff.id, staff.context.request_id),
    )
    return DecisionResult(payment_id=payment_id, status=outcome.status, approvals=outcome.approvals)


async def webhook_events(
    session: AsyncSession,
    *,
    outcome: str | None,
    provider: Provider | None,
    limit: int,
    offset: int,
) -> list[WebhookEvent]:
    query = select(WebhookEvent).order_by(WebhookEvent.id.desc())
    if outcome is not None:
        query = query.where(WebhookEvent.outcome == outcome)
    if provider is not None:
        query = query.where(WebhookEvent.provider == provider)
    return list(await session.scalars(query.limit(limit).offset(offset)))


async def _decisions(
    session: AsyncSession, payment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[DecisionView]]:
    found: dict[uuid.UUID, list[DecisionView]] = defaultdict(list)
    if payment_ids:
        rows = await session.scalars(
            select(PaymentDecision)
            .where(PaymentDecision.payment_id.in_(payment_ids))
            .order_by(PaymentDecision.decided_at, PaymentDecision.id)
        )
        for row in rows:
            found[row.payment_id].append(DecisionView.model_validate(row))
    return found


async def finance_cases(
    session: AsyncSession,
    *,
    status: FinanceCaseStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[FinanceCase]:
    """Movements whose undoing stopped short, oldest first (the longest waiting on top)."""
    query = select(FinanceCase).order_by(FinanceCase.created_at, FinanceCase.id)
    if status is not None:
        query = query.where(FinanceCase.status == status.value)
    return list(await session.scalars(query.limit(limit).offset(offset)))


# A case of this kind is opened with its movement put in `needs_attention` (an unmatched-funds
# item left `crediting`); resolving it takes the movement on to where it ends.
SETTLES_ITS_MOVEMENT = FinanceCaseKind.COMPENSATION_INCOMPLETE
# The statuses a movement is undone into (`workflows/funds.py`, `Saga._undone`): its case's
# reason starts with the one its undoing was heading for (`rejected: rejected by finance: …`).
UNDONE_INTO = (PaymentStatus.REJECTED, PaymentStatus.CANCELLED, PaymentStatus.FAILED)


def settled_status(case: FinanceCase, movement: Payment | Transfer) -> PaymentStatus:
    """Where a movement its case left in `needs_attention` ends once finance has put it right:
    a deposit (MT5 refused its credit and would not give it back) `completed`, the client
    having the money; a withdrawal or transfer the status its undoing was heading for, named
    first in the case's reason (`failed` if the reason names none)."""
    if isinstance(movement, Payment) and movement.direction == PaymentDirection.DEPOSIT:
        return PaymentStatus.COMPLETED
    named = case.reason.partition(": ")[0]
    return next((s for s in UNDONE_INTO if s.value == named), PaymentStatus.FAILED)


async def resolve_case(
    session: AsyncSession, staff: Principal, case_id: uuid.UUID, note: str
) -> ResolvedCaseView:
    """A finance officer has made MT5, the books and the processor agree by hand (`note`
    says what was done): the case is resolved and, for a `compensation_incomplete` case, its
    movement leaves `needs_attention` for where it ends (`settled_status`; an unmatched-funds
    item left `crediting` ends `credited`), in this one transaction, each change with its
    audit row (the officer, before/after, the note). A case resolved already is a 409 and
    changes nothing; a movement found in any other status is left as it is."""
    case = await case_queries.case_by_id(session, case_id, lock=True)
    if case is None:
        raise NotFound(f"no finance case {case_id}")
    if case.status != FinanceCaseStatus.OPEN:
        raise Conflict(f"finance case {case.reference} ({case.kind}) is already {case.status}")
    moved: tuple[str, str] | None = None
    if case.kind == SETTLES_ITS_MOVEMENT:
        movement = await case_queries.movement_of(session, case, lock=True)
        if movement is not None:
            moved = _settle_movement(session, staff, case, movement, note)
    case.status = FinanceCaseStatus.RESOLVED.value
    audit.record(
        session,
        staff.actor(),
        audit.Change(
            action="finance_case.resolved",
            entity_type="finance_case",
            entity_id=str(case.id),
            before={
                "status": FinanceCaseStatus.OPEN.value,
                **({"movement_status": moved[0]} if moved else {}),
            },
            after={
                "status": case.status,
                "movement": f"{case.movement_kind} {case.movement_id}",
                "reference": case.reference,
                "kind": case.kind,
                **({"movement_status": moved[1]} if moved else {}),
            },
            reason=note,
        ),
    )
    await session.flush()
    await session.refresh(case)
    before, after = moved or (None, None)
    return ResolvedCaseView(
        **FinanceCaseView.of(case).model_dump(),
        movement_status_before=before,
        movement_status=after,
    )


def _settle_movement(
    session: AsyncSession,
    staff: Principal,
    case: FinanceCase,
    movement: Payment | Transfer | UnmatchedFunds,
    note: str,
) -> tuple[str, str] | None:
    """Move the case's movement on from where the case left it, with its audit row (the
    officer); (before, after), or None when it is no longer there (nothing changed)."""
    now = datetime.now(UTC)
    before = movement.status
    details: dict[str, object] = {"finance_case": str(case.id)}
    if isinstance(movement, UnmatchedFunds):
        if before != UnmatchedStatus.CREDITING:
            return None
        entity = "unmatched_funds"
        movement.status = UnmatchedStatus.CREDITED.value
        movement.resolved_at = now
        details["client_id"] = str(movement.credited_client_id)
    else:
        if before != PaymentStatus.NEEDS_ATTENTION:
            return None
        entity = "payment" if isinstance(movement, Payment) else "transfer"
        status = settled_status(case, movement)
        movement.status = status.value
        if status is PaymentStatus.COMPLETED:
            movement.completed_at = now
        # What it was not carried out for (or the deposit's refusal), and what finance did.
        why = case.reason.removeprefix(f"{status.value}: ")
        movement.failure_reason = f"{why}; put right by finance: {note}"[:2000]
    audit.record(
        session,
        staff.actor(),
        audit.Change(
            action=f"{entity}.{movement.status}",
            entity_type=entity,
            entity_id=str(movement.id),
            before={"status": before},
            after={"status": movement.status, **details},
            reason=note,
        ),
    )
    return before, movement.status


async def unmatched_funds(
    session: AsyncSession,
    *,
    status: UnmatchedStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[UnmatchedFunds]:
    """Payments no deposit booked, oldest first (the longest waiting on top)."""
    query = select(UnmatchedFunds).order_by(UnmatchedFunds.created_at, UnmatchedFunds.id)
    if status is not None:
        query = query.where(UnmatchedFunds.status == status.value)
    return list(await session.scalars(query.limit(limit).offset(offset)))


async def resolve_unmatched(
    session: AsyncSession,
    temporal: TemporalConnector,
    staff: Principal,
    item_id: uuid.UUID,
    action: UnmatchedAction,
    note: str,
    client_id: uuid.UUID | None = None,
    mt5_login: int | None = None,
) -> UnmatchedFundsView:
    """Finance asks for an open item to be credited to a client (its wallet, or with
    `mt5_login` one of its live MT5 accounts in the item's currency) or returned to the payer:
    the item moves to crediting/returning with its audit row (the officer, before/after) and
    its workflow starts in the same request; the workflow books or returns it and marks it
    credited/returned. An item already being resolved, or resolved, is a 409."""
    item = await session.get(UnmatchedFunds, item_id, with_for_update=True)
    if item is None:
        raise NotFound(f"no unmatched funds {item_id}")
    if item.status != UnmatchedStatus.OPEN:
        raise Conflict(f"unmatched funds {item.reference} is already {item.status}")
    mt5: Mt5AccountRef | None = None
    if action is UnmatchedAction.CREDIT:
        client = await client_by_id(session, client_id) if client_id is not None else None
        if client is None:
            raise InvalidInput(f"no client {client_id} to credit", field="client_id")
        if mt5_login is not None:
            mt5 = await _live_account(session, client.id, mt5_login, item.currency)
    before = {"status": item.status}
    item.status = (
        UnmatchedStatus.CREDITING if action is UnmatchedAction.CREDIT else UnmatchedStatus.RETURNING
    ).value
    item.resolution = action.value
    item.resolved_by = staff.id
    item.credited_client_id = client_id if action is UnmatchedAction.CREDIT else None
    item.resolution_note = note
    item.error = None
    audit.record(
        session,
        staff.actor(),
        audit.Change(
            action=f"unmatched_funds.{item.status}",
            entity_type="unmatched_funds",
            entity_id=str(item.id),
            before=before,
            after={
                "status": item.status,
                "client_id": str(client_id) if action is UnmatchedAction.CREDIT else None,
                "amount": f"{decimal_text(item.amount_minor, item.currency)} {item.currency}",
                **({"mt5": f"{mt5.server}/{mt5.login}"} if mt5 is not None else {}),
            },
            reason=note,
        ),
    )
    await session.flush()
    roles = tuple(sorted(role.value for role in staff.roles))
    await start_once(
        temporal,
        RESOLVE_UNMATCHED,
        ResolveUnmatched(
            item_id=item.id,
            action=action,
            staff_id=staff.id,
            roles=roles,
            client_id=item.credited_client_id,
            mt5=mt5,
            note=note,
            ip=staff.context.ip,
            request_id=staff.context.request_id,
        ),
        resolve_unmatched_workflow_id(item.id, uuid.uuid4()),
    )
    await session.refresh(item)
    return UnmatchedFundsView.of(item)


async def _live_account(
    session: AsyncSession, client_id: uuid.UUID, login: int, currency: str
) -> Mt5AccountRef:
    """The client's own live, active MT5 account `login` in `currency`, or a 422 saying why
    not (a demo account, another client's, a closed one, another currency)."""
    account = await session.scalar(
        select(Mt5Account).where(Mt5Account.client_id == client_id, Mt5Account.login == login)
    )
    if account is None or account.kind != "live":
        raise InvalidInput(
            f"the client has no live MT5 account {login} to credit", field="mt5_login"
        )
    if account.status != "active":
        raise InvalidInput(f"MT5 account {login} is {account.status}", field="mt5_login")
    if account.currency != currency:
        raise InvalidInput(
            f"MT5 account {login} is in {account.currency}, the money is {currency}: credit"
            " the wallet and let the client transfer it",
            field="mt5_login",
        )
    return Mt5AccountRef(server=account.server, login=account.login)
