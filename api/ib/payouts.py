"""IB payouts over HTTP: finance lists payouts, reads statements and decides; an IB reads its
tree, its clients (masked), its commission rows with their traces and its statements."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response

from api.deps import SessionDep, SettingsDep, StateDep, documents_of
from api.ib import payouts_service as service
from api.ib.payouts_schemas import (
    AttributedClient,
    AttributionRequest,
    AttributionView,
    CommissionRowView,
    FinancePayoutView,
    IbPayoutView,
    PayoutDecisionRequest,
    PayoutDecisionResult,
    PayoutPayAgain,
    PayoutRelease,
    TreeMember,
)
from api.policy import AdminPrincipal, FinanceOfficer, FinanceReader, IbPrincipal
from api.problems import error_responses
from api.schemas import BeforeId, Limit
from contracts.ib_payout import PayoutStatus
from db.queries import ib as queries

finance_router = APIRouter(prefix="/v1/finance/ib-payouts", tags=["IB payouts (finance)"])
portal_router = APIRouter(prefix="/v1/ib", tags=["IB self-service"])
attribution_router = APIRouter(prefix="/v1/ib-attributions", tags=["introducing brokers (staff)"])

STATEMENT_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "the statement", "content": {"application/pdf": {}}},
    **error_responses({404: "no such payout, or no statement yet"}),
}


def _pdf(payout_id: UUID, content: bytes) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="ib-statement-{payout_id}.pdf"'},
    )


def _view(payout: object, url: str) -> IbPayoutView:
    view = IbPayoutView.model_validate(payout)
    if view.status != PayoutStatus.ACCRUED.value:
        view.statement_url = url.format(id=view.id)
    return view


FINANCE_STATEMENT_URL = "/v1/finance/ib-payouts/{id}/statement"


@finance_router.get("")
async def list_ib_payouts(
    _: FinanceReader, session: SessionDep, status: PayoutStatus | None = None, limit: Limit = 100
) -> list[FinancePayoutView]:
    """Payouts, newest period first; `status=statement_ready` is what waits for a decision.
    Each carries its IB's open fraud flags with their evidence (they never block a payout)."""
    payouts = await queries.payouts_newest_first(
        session, status=status.value if status else None, limit=limit
    )
    return await service.finance_views(session, payouts, FINANCE_STATEMENT_URL)


@finance_router.get("/{payout_id}", responses=error_responses({404: "no such payout"}))
async def get_ib_payout(
    payout_id: UUID, _: FinanceReader, session: SessionDep
) -> FinancePayoutView:
    """One payout with its IB's open fraud flags and their evidence."""
    payout = await queries.payout_or_not_found(session, payout_id)
    [view] = await service.finance_views(session, [payout], FINANCE_STATEMENT_URL)
    return view


@finance_router.get("/{payout_id}/statement", response_class=Response, responses=STATEMENT_ERRORS)
async def finance_statement(
    payout_id: UUID, _: FinanceReader, session: SessionDep, state: StateDep
) -> Response:
    _payout, content = await service.statement(session, documents_of(state), payout_id, None)
    return _pdf(payout_id, content)


@finance_router.post(
    "/{payout_id}/decision",
    responses=error_responses(
        {404: "no such payout", 409: "nothing to decide, or this officer approved already"}
    ),
)
async def decide_ib_payout(
    payout_id: UUID,
    body: PayoutDecisionRequest,
    officer: FinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> PayoutDecisionResult:
    """Approve or reject a payout whose statement is ready. Above the four-eyes threshold two
    different finance officers approve; one rejection stops it (its rows go to the next cycle)."""
    return await service.decide(session, state.temporal, officer, payout_id, body)


@finance_router.post(
    "/{payout_id}/release",
    responses=error_responses({404: "no such payout", 409: "the payout does not need attention"}),
)
async def release_ib_payout(
    payout_id: UUID, body: PayoutRelease, officer: FinanceOfficer, session: SessionDep
) -> IbPayoutView:
    """Close a payout MT5 refused (`needs_attention`) as rejected: its rows return to the next
    cycle, paid to the IB's destination as it is then. Audited."""
    payout = await service.release_needing_attention(session, officer, payout_id, body.reason)
    return _view(payout, FINANCE_STATEMENT_URL)


@finance_router.post(
    "/{payout_id}/pay-again",
    responses=error_responses(
        {
            404: "no such payout",
            409: "the payout does not need attention, or this officer approved already",
            503: "the workflow engine did not answer",
        }
    ),
)
async def pay_ib_payout_again(
    payout_id: UUID,
    body: PayoutPayAgain,
    officer: FinanceOfficer,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> PayoutDecisionResult:
    """Pay again a payout left `needs_attention`, where the IB is paid now (correct its
    destination first). Above the four-eyes threshold two different finance officers ask;
    the payout's `IbPayoutAgain` workflow records each approval (audited) and pays it once,
    or leaves it `needs_attention` with the new reason."""
    return await service.pay_again(
        session, state.temporal, officer, payout_id, body.reason, settings.ib.four_eyes_above
    )


@portal_router.get("/tree")
async def my_tree(me: IbPrincipal, session: SessionDep) -> list[TreeMember]:
    """The IB and every sub-IB below it, with their level under it."""
    return await service.tree_of(session, me.id)


@portal_router.get("/attributed-clients")
async def my_attributed_clients(me: IbPrincipal, session: SessionDep) -> list[AttributedClient]:
    """The MT5 logins attributed to the IB or its sub-IBs, names masked, with their dates."""
    return await service.clients_of(session, me.id)


@portal_router.get("/commissions")
async def my_commissions(
    me: IbPrincipal,
    session: SessionDep,
    limit: Limit = 100,
    before_id: BeforeId = None,
) -> list[CommissionRowView]:
    """The IB's commission rows, newest first, each with its calculation trace."""
    rows = await service.commissions_of(session, me.id, limit, before_id)
    return [CommissionRowView.model_validate(r) for r in rows]


@portal_router.get("/payouts")
async def my_payouts(me: IbPrincipal, session: SessionDep) -> list[IbPayoutView]:
    payouts = await queries.payouts_newest_first(session, ib_id=me.id)
    return [_view(p, "/v1/ib/payouts/{id}/statement") for p in payouts]


@portal_router.get(
    "/payouts/{payout_id}/statement", response_class=Response, responses=STATEMENT_ERRORS
)
async def my_statement(
    payout_id: UUID, me: IbPrincipal, session: SessionDep, state: StateDep
) -> Response:
    _payout, content = await service.statement(session, documents_of(state), payout_id, me.id)
    return _pdf(payout_id, content)


@attribution_router.post(
    "",
    status_code=201,
    responses=error_responses(
        {404: "no such IB", 409: "the time is not after the login's accrued deals or period"}
    ),
)
async def assign_login(
    body: AttributionRequest, admin: AdminPrincipal, session: SessionDep
) -> AttributionView:
    """Attribute an MT5 login to an IB from `effective_from` (server-clock seconds), closing its
    current attribution there; never before a deal already accrued. Audited."""
    return await service.attribute(session, admin, body)
