"""IB payouts for finance (list, statement, decision through the payout's workflow) and the IB
portal (its tree, its clients masked, its commission rows with traces, its statements)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from api.ib.payouts_schemas import (
    Approver,
    AttributedClient,
    AttributionRequest,
    AttributionView,
    CommissionTotal,
    ConsolePayout,
    ConsolePayoutDetail,
    ConsolePayoutPage,
    FinancePayoutView,
    FraudFlagNote,
    PayoutDecisionEntry,
    PayoutDecisionRequest,
    PayoutDecisionResult,
    TreeMember,
)
from api.policy import Principal
from api.temporal import (
    UPDATE_TIMEOUT_SECONDS,
    TemporalConnector,
    execute_update,
    staff_update_id,
)
from contracts import TASK_QUEUE
from contracts.funds import StaffDecision
from contracts.ib_payout import (
    APPROVE_PAY_AGAIN,
    DECIDE,
    IB_PAYOUT_AGAIN,
    PayAgainInput,
    PayoutResult,
    PayoutStatus,
    ib_payout_again_workflow_id,
    ib_payout_workflow_id,
    ib_statement_copy_key,
)
from db import audit
from db.models import AuditEntry, Client, Mt5Account, StaffUser
from db.models.ib import IbAttribution, IbCommission, IbPayout, IntroducingBroker
from db.queries import ib as queries
from db.queries.ib_management import (
    fraud_flags_of_payout,
    open_attribution,
    open_fraud_flags_by_ib,
)
from domain.errors import Conflict, NotFound, ServiceUnavailable
from storage.documents import DocumentConflict, DocumentMissing, DocumentStore
from storage.pdf_marks import last_page_has
from storage.pdf_pages import without_trailing_section

DECIDABLE = (PayoutStatus.STATEMENT_READY.value,)
# The heading (and bookmark) of the statement's section for finance, its last pages
# (reports/templates/ib_statement.html): the IB's copy ends before it.
FINANCE_SECTION_TITLE = "For finance: open fraud flags of this IB"
# What each page of that section says in its margin (reports/templates/ib_statement.css).
FINANCE_PAGE_MARK = "for finance, not in the IB"
log = logging.getLogger("brokerflow.ib_payouts")
# What the console's payout page lists under "Decisions": finance's decisions, and for a payout
# MT5 refused, the refusal and each officer's request to pay it again (their audit rows).
DECISION_ACTIONS = (
    "ib_payout.approved",
    "ib_payout.rejected",
    "ib_payout.needs_attention",
    "ib_payout.pay_again_requested",
    "ib_payout.pay_again_approved",
)


async def decide(
    session: AsyncSession,
    temporal: TemporalConnector,
    staff: Principal,
    payout_id: uuid.UUID,
    request: PayoutDecisionRequest,
) -> PayoutDecisionResult:
    """The decision goes to the payout's workflow, which checks four-eyes and records it with
    its audit row (`ib_payout.approved` / `ib_payout.rejected`)."""
    payout = await queries.payout_or_not_found(session, payout_id)
    if payout.status not in DECIDABLE:
        raise Conflict(f"nothing to decide: the payout is {payout.status}")
    outcome = await execute_update(
        temporal,
        ib_payout_workflow_id(payout_id),
        DECIDE,
        StaffDecision(
            staff_id=staff.id,
            roles=tuple(sorted(role.value for role in staff.roles)),
            approve=request.approve,
            reason=request.reason,
            ip=staff.context.ip,
            request_id=staff.context.request_id,
        ),
        closed="nothing to decide: the payout's workflow has finished",
        update_id=staff_update_id(staff.id, staff.context.request_id),
    )
    return PayoutDecisionResult(
        payout_id=payout_id,
        status=outcome.status,
        approvals=outcome.approvals,
        needed=outcome.needed,
    )


async def pay_again(
    session: AsyncSession,
    temporal: TemporalConnector,
    staff: Principal,
    payout_id: uuid.UUID,
    reason: str,
    four_eyes_above: Decimal,
) -> PayoutDecisionResult:
    """A finance officer's approval of paying a `needs_attention` payout again: the first one
    starts the payout's `IbPayoutAgain` run, a later one (another officer, above the four-eyes
    threshold) joins it, in one call (update-with-start). The run records each approval with
    its audit row and pays once approved. The same request sent again (same `X-Request-ID`)
    gets the first answer; the same officer twice, or a payout not needing attention, a 409."""
    payout = await queries.payout_or_not_found(session, payout_id)
    if payout.status != PayoutStatus.NEEDS_ATTENTION.value:
        raise Conflict(
            f"the payout is {payout.status}: only one that needs attention is paid again"
        )
    decision = StaffDecision(
        staff_id=staff.id,
        roles=tuple(sorted(role.value for role in staff.roles)),
        approve=True,
        reason=reason,
        ip=staff.context.ip,
        request_id=staff.context.request_id,
    )
    start: WithStartWorkflowOperation[Any, PayoutResult] = WithStartWorkflowOperation(
        IB_PAYOUT_AGAIN.name,
        PayAgainInput(payout_id=payout_id, amount=payout.amount, four_eyes_above=four_eyes_above),
        id=ib_payout_again_workflow_id(payout_id),
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        result_type=PayoutResult,
    )
    client = await temporal.client()
    try:
        outcome = await asyncio.wait_for(
            client.execute_update_with_start_workflow(
                APPROVE_PAY_AGAIN.name,
                decision,
                start_workflow_operation=start,
                id=staff_update_id(staff.id, staff.context.request_id),
                result_type=APPROVE_PAY_AGAIN.result,
            ),
            UPDATE_TIMEOUT_SECONDS,
        )
    except WorkflowUpdateFailedError as error:
        raise Conflict(str(getattr(error.cause, "message", None) or error.cause)[:500]) from error
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError) as error:
        raise ServiceUnavailable(
            "the workflow engine did not answer; look at the payout before trying again"
        ) from error
    return PayoutDecisionResult(
        payout_id=payout_id,
        status=outcome.status,
        approvals=outcome.approvals,
        needed=outcome.needed,
    )


async def release_needing_attention(
    session: AsyncSession, staff: Principal, payout_id: uuid.UUID, reason: str
) -> IbPayout:
    """A payout MT5 refused (`needs_attention`, nothing booked, its workflow ended) is closed as
    rejected and its rows go back to the next cycle, which pays them to wherever the IB is paid
    by then (correct the destination first). Audited `ib_payout.released`."""
    payout = await queries.payout_or_not_found(session, payout_id, lock=True)
    if payout.status != PayoutStatus.NEEDS_ATTENTION.value:
        raise Conflict(
            f"the payout is {payout.status}: only one that needs attention is released here"
            " (a waiting payout is rejected through its decision)"
        )
    await queries.release_rows(session, payout.id)
    payout.status = PayoutStatus.REJECTED.value
    before_reason, payout.decision_reason = payout.decision_reason, reason
    audit.record(
        session,
        staff.actor(),
        audit.Change(
            action="ib_payout.released",
            entity_type="ib_payout",
            entity_id=str(payout.id),
            before={"status": PayoutStatus.NEEDS_ATTENTION.value, "reason": before_reason},
            after={"status": PayoutStatus.REJECTED.value, "rows": "back to the next cycle"},
            reason=reason,
        ),
    )
    return payout


async def finance_views(
    session: AsyncSession, payouts: Sequence[IbPayout], statement_url: str
) -> list[FinancePayoutView]:
    """Payouts as finance reads them, each with its IB's open fraud flags and their evidence
    (one query for all the IBs)."""
    flags = await open_fraud_flags_by_ib(session, {p.ib_id for p in payouts})
    views = []
    for payout in payouts:
        view = FinancePayoutView.model_validate(payout)
        if view.status != PayoutStatus.ACCRUED.value:
            view.statement_url = statement_url.format(id=view.id)
        view.fraud_flags = [FraudFlagNote.model_validate(f) for f in flags[payout.ib_id]]
        views.append(view)
    return views


async def statement(
    session: AsyncSession, documents: DocumentStore, payout_id: uuid.UUID, ib_id: uuid.UUID | None
) -> tuple[IbPayout, bytes]:
    """The payout's statement PDF; `ib_id` limits it to that IB's own payouts, and gives the
    IB's copy (without the section for finance)."""
    payout = await queries.payout_by_id(session, payout_id)
    if payout is None or (ib_id is not None and payout.ib_id != ib_id):
        raise NotFound(f"no IB payout {payout_id}")
    if payout.statement_key is None:
        raise NotFound(f"the statement of payout {payout_id} is not rendered yet")
    if ib_id is not None:
        return payout, await _ib_copy(documents, payout)
    try:
        content = await documents.get(payout.statement_key)
    except DocumentMissing as error:
        raise NotFound(f"the statement of payout {payout_id} is missing") from error
    return payout, content


async def _ib_copy(documents: DocumentStore, payout: IbPayout) -> bytes:
    """The IB's copy: the statement's pages without the section for finance (its fraud flags
    and their evidence, other people's data among them). Stored when the statement is rendered
    (`render_ib_statement`), written without that section. A payout rendered before that has
    only finance's copy: it is cut before the section's bookmark once, checked for the
    section's page mark (a changed bookmark title would cut nothing: refused, never served
    whole) and stored, so later downloads read the stored copy."""
    key = ib_statement_copy_key(payout.id)
    try:
        return await documents.get(key)
    except DocumentMissing:
        pass
    assert payout.statement_key is not None
    try:
        finance = await documents.get(payout.statement_key)
    except DocumentMissing as error:
        raise NotFound(f"the statement of payout {payout.id} is missing") from error
    content = await asyncio.to_thread(without_trailing_section, finance, FINANCE_SECTION_TITLE)
    if await asyncio.to_thread(last_page_has, content, FINANCE_PAGE_MARK):
        log.error(
            "IB payout %s: the statement's section for finance was not found by its bookmark;"
            " the IB's copy is refused",
            payout.id,
        )
        raise NotFound(f"the IB's copy of the statement of payout {payout.id} is not available")
    try:
        await documents.put(key, content)
    except DocumentConflict:
        return await documents.get(key)  # stored meanwhile by another download
    return content


async def tree_of(session: AsyncSession, ib_id: uuid.UUID) -> list[TreeMember]:
    tree = await queries.ib_tree(session)
    if ib_id not in tree:
        raise NotFound("IB not found")
    members, levels = [], {ib_id: 0}
    for member in queries.subtree(tree, ib_id):
        node = tree[member]
        if member != ib_id and node.parent is not None:
            levels[member] = levels[node.parent] + 1
        members.append(
            TreeMember(id=member, name=node.name, parent_id=node.parent, level=levels[member])
        )
    return members


def mask_name(full_name: str) -> str:
    """ "Erika Mustermann" → "E. M.": enough to tell clients apart, not to identify one."""
    return " ".join(f"{part[0]}." for part in full_name.split() if part)


async def clients_of(session: AsyncSession, ib_id: uuid.UUID) -> list[AttributedClient]:
    """The logins attributed to the IB or to any IB below it, with masked names."""
    members = queries.subtree(await queries.ib_tree(session), ib_id)
    rows = await session.execute(
        select(IbAttribution, Client.full_name)
        .outerjoin(
            Mt5Account,
            (Mt5Account.server == IbAttribution.server) & (Mt5Account.login == IbAttribution.login),
        )
        .outerjoin(Client, Client.id == Mt5Account.client_id)
        .where(IbAttribution.ib_id.in_(members))
        .order_by(IbAttribution.server, IbAttribution.login, IbAttribution.effective_from)
    )
    return [
        AttributedClient(
            server=a.server,
            login=a.login,
            ib_id=a.ib_id,
            name=mask_name(name) if name else "",
            effective_from=a.effective_from,
            effective_to=a.effective_to,
        )
        for a, name in rows
    ]


async def commissions_of(
    session: AsyncSession, ib_id: uuid.UUID, limit: int, before_id: int | None
) -> list[IbCommission]:
    return await queries.commissions_of_ib(session, ib_id, limit=limit, before_id=before_id)


async def attribute(
    session: AsyncSession, staff: Principal, request: AttributionRequest
) -> AttributionView:
    """The login is the IB's client from `effective_from`: its open period (if any) is closed
    there. A time at or before a deal the ledger already holds for the login is refused, so a
    reassignment never moves a deal that was accrued or paid. Audited."""
    if await session.get(IntroducingBroker, request.ib_id) is None:
        raise NotFound(f"no IB {request.ib_id}")
    opened = await open_attribution(
        session,
        server=request.server,
        login=request.login,
        ib_id=request.ib_id,
        effective_from=request.effective_from,
        source="staff",
    )
    row, current = opened.row, opened.closed
    before = (
        {"ib_id": str(current.ib_id), "effective_from": current.effective_from}
        if current is not None
        else None
    )
    audit.record(
        session,
        staff.actor(),
        audit.Change(
            action="ib_attribution.assigned",
            entity_type="mt5_login",
            entity_id=f"{request.server}:{request.login}",
            before=before,
            after={"ib_id": str(request.ib_id), "effective_from": request.effective_from},
            reason=request.reason,
        ),
    )
    return AttributionView.model_validate(row)


# -- the console's views --------------------------------------------------------------------------


def approvals_needed(amount: Decimal, four_eyes_above: Decimal) -> int:
    """As `IbPayout` decides it: two different finance officers above the threshold (the
    schedules start every payout with `settings.ib.four_eyes_above`, the value given here)."""
    return 2 if amount > four_eyes_above else 1


def _console_payout(
    payout: IbPayout, ib: IntroducingBroker, four_eyes_above: Decimal
) -> ConsolePayout:
    return ConsolePayout(
        id=payout.id,
        ib_id=payout.ib_id,
        ib_name=ib.name,
        ib_email=ib.email,
        period_start=payout.period_start,
        period_end=payout.period_end,
        amount=payout.amount,
        currency=payout.currency,
        rows=payout.rows,
        status=payout.status,
        approvals=len(payout.approved_by),
        needed=approvals_needed(payout.amount, four_eyes_above),
        four_eyes_above=four_eyes_above,
        decision_reason=payout.decision_reason,
        ledger_key=payout.ledger_key,
        created_at=payout.created_at,
        has_statement=payout.statement_key is not None,
    )


async def payout_queue(
    session: AsyncSession,
    *,
    status: PayoutStatus | None,
    page: int,
    per_page: int,
    four_eyes_above: Decimal,
) -> ConsolePayoutPage:
    """One page of payouts with their IB's name, newest period first; `status=None` is all."""
    where = [] if status is None else [IbPayout.status == status.value]
    total = await session.scalar(select(func.count()).select_from(IbPayout).where(*where)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    rows = await session.execute(
        select(IbPayout, IntroducingBroker)
        .join(IntroducingBroker, IntroducingBroker.id == IbPayout.ib_id)
        .where(*where)
        .order_by(IbPayout.period_end.desc(), IbPayout.created_at.desc(), IbPayout.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return ConsolePayoutPage(
        items=[_console_payout(payout, ib, four_eyes_above) for payout, ib in rows.tuples()],
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
    )


async def payout_detail(
    session: AsyncSession, payout_id: uuid.UUID, four_eyes_above: Decimal
) -> ConsolePayoutDetail:
    """A payout for finance's review: its IB (and the IB above it), who approved so far by
    name, every decision from the audit log, and the IB's open fraud flags."""
    payout = await queries.payout_or_not_found(session, payout_id)
    ib = await session.get(IntroducingBroker, payout.ib_id)
    if ib is None:  # the foreign key makes this impossible; a clear 404 all the same
        raise NotFound(f"the IB of payout {payout_id} is gone")
    parent = await session.get(IntroducingBroker, ib.parent_id) if ib.parent_id else None
    entries = list(
        await session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.entity_type == "ib_payout",
                AuditEntry.entity_id == str(payout_id),
                AuditEntry.action.in_(DECISION_ACTIONS),
            )
            .order_by(AuditEntry.id)
        )
    )
    staff = await _staff_by_id(
        session, [*payout.approved_by, *(e.actor_id for e in entries if e.actor_id)]
    )

    def name_of(staff_id: str) -> tuple[str, str]:
        member = staff.get(staff_id)
        return (member.full_name, member.email) if member else (f"staff {staff_id}", "")

    return ConsolePayoutDetail(
        **_console_payout(payout, ib, four_eyes_above).model_dump(),
        approvers=[
            Approver(staff_id=s, name=name_of(s)[0], email=name_of(s)[1])
            for s in payout.approved_by
        ],
        decisions=[
            PayoutDecisionEntry(
                at=e.occurred_at,
                action=e.action,
                staff_id=e.actor_id,
                name=name_of(e.actor_id)[0] if e.actor_id else e.actor_kind,
                reason=e.reason,
            )
            for e in entries
        ],
        ib_parent_name=parent.name if parent else None,
        fraud_flags=[
            FraudFlagNote.model_validate(flag)
            for flag in await fraud_flags_of_payout(session, payout_id)
        ],
        mt5_ticket=payout.mt5_ticket,
    )


async def _staff_by_id(session: AsyncSession, ids: list[str]) -> dict[str, StaffUser]:
    wanted = set()
    for value in ids:
        try:
            wanted.add(uuid.UUID(value))
        except ValueError:
            continue  # not a staff id (a system actor): shown as it is
    if not wanted:
        return {}
    found = await session.scalars(select(StaffUser).where(StaffUser.id.in_(wanted)))
    return {str(member.id): member for member in found}


async def own_payouts(
    session: AsyncSession, ib_id: uuid.UUID, four_eyes_above: Decimal
) -> list[ConsolePayout]:
    """The IB's own payouts for its portal, newest period first."""
    ib = await session.get(IntroducingBroker, ib_id)
    if ib is None:
        raise NotFound("IB not found")
    return [
        _console_payout(payout, ib, four_eyes_above)
        for payout in await queries.payouts_newest_first(session, ib_id=ib_id)
    ]


def outline(members: list[TreeMember]) -> list[TreeMember]:
    """The tree in reading order: each IB followed by its own sub-IBs (depth first), so the
    portal can indent it by level."""
    children: dict[uuid.UUID | None, list[TreeMember]] = {}
    for member in members:
        children.setdefault(member.parent_id, []).append(member)
    ordered: list[TreeMember] = []
    stack = [m for m in members if m.level == 0][::-1]
    while stack:
        member = stack.pop()
        ordered.append(member)
        stack.extend(sorted(children.get(member.id, []), key=lambda m: m.name, reverse=True))
    return ordered


async def commission_totals(session: AsyncSession, ib_id: uuid.UUID) -> list[CommissionTotal]:
    """What the IB has earned per currency: in all, and the part no payout holds yet."""
    rows = await session.execute(
        select(
            IbCommission.currency,
            func.count(),
            func.sum(IbCommission.amount),
            func.sum(IbCommission.amount).filter(IbCommission.payout_id.is_(None)),
        )
        .where(IbCommission.ib_id == ib_id)
        .group_by(IbCommission.currency)
        .order_by(IbCommission.currency)
    )
    return [
        CommissionTotal(
            currency=currency, rows=count, total=total or Decimal(0), unpaid=unpaid or Decimal(0)
        )
        for currency, count, total, unpaid in rows.tuples()
    ]
