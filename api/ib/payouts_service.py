"""IB payouts for finance (list, statement, decision through the payout's workflow) and the IB
portal (its tree, its clients masked, its commission rows with traces, its statements)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.ib.payouts_schemas import (
    AttributedClient,
    AttributionRequest,
    AttributionView,
    PayoutDecisionRequest,
    PayoutDecisionResult,
    TreeMember,
)
from api.policy import Principal
from api.temporal import TemporalConnector, execute_update, staff_update_id
from contracts.funds import StaffDecision
from contracts.ib_payout import DECIDE, PayoutStatus, ib_payout_workflow_id
from db import audit
from db.models import Client, Mt5Account
from db.models.ib import IbAttribution, IbCommission, IbPayout, IntroducingBroker
from db.queries import ib as queries
from domain.errors import Conflict, NotFound
from storage.documents import DocumentMissing, DocumentStore

DECIDABLE = (PayoutStatus.STATEMENT_READY.value,)


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


async def statement(
    session: AsyncSession, documents: DocumentStore, payout_id: uuid.UUID, ib_id: uuid.UUID | None
) -> tuple[IbPayout, bytes]:
    """The payout's statement PDF; `ib_id` limits it to that IB's own payouts."""
    payout = await queries.payout_by_id(session, payout_id)
    if payout is None or (ib_id is not None and payout.ib_id != ib_id):
        raise NotFound(f"no IB payout {payout_id}")
    if payout.statement_key is None:
        raise NotFound(f"the statement of payout {payout_id} is not rendered yet")
    try:
        return payout, await documents.get(payout.statement_key)
    except DocumentMissing as error:
        raise NotFound(f"the statement of payout {payout_id} is missing") from error


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
    login = (IbAttribution.server == request.server) & (IbAttribution.login == request.login)
    accrued_until = await session.scalar(
        select(func.max(IbCommission.deal_time)).where(
            IbCommission.server == request.server, IbCommission.login == request.login
        )
    )
    if accrued_until is not None and request.effective_from <= accrued_until:
        raise Conflict(
            f"login {request.login} has commissions on deals up to {accrued_until}:"
            " a reassignment starts after them"
        )
    current = await session.scalar(
        select(IbAttribution).where(login, IbAttribution.effective_to.is_(None)).with_for_update()
    )
    before = None
    if current is not None:
        if current.effective_from >= request.effective_from:
            raise Conflict(
                f"login {request.login} is attributed from {current.effective_from}:"
                " a reassignment starts after that"
            )
        before = {"ib_id": str(current.ib_id), "effective_from": current.effective_from}
        current.effective_to = request.effective_from
    row = IbAttribution(
        server=request.server,
        login=request.login,
        ib_id=request.ib_id,
        effective_from=request.effective_from,
        source="staff",
    )
    session.add(row)
    await session.flush()
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
