from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Response, status

from api.deps import SessionDep, SettingsDep, StateDep
from api.policy import FinanceOfficer, FinanceReader
from api.problems import error_responses
from api.reconciliation import service
from api.reconciliation.schemas import (
    AdjustmentRequest,
    ApproveRequest,
    AssignRequest,
    BackfillAccepted,
    BackfillRequest,
    CaseDetail,
    CasePage,
    CommentRequest,
    RejectRequest,
    ReopenRequest,
    ResolveRequest,
    RunPage,
    RunView,
    ServerName,
    SignOffRequest,
)
from api.schemas import CurrencyCode, Limit, Offset
from db.queries.reconciliation_cases import CaseFilter
from domain.reconciliation.records import BreakType

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])

CaseStatus = Literal["unresolved", "open", "proposed", "resolved", "auto_closed"]
NO_RUN = error_responses({404: "no such reconciliation run"})
CASE_ERRORS = error_responses(
    {404: "no such break case", 409: "the case is closed", 422: "no such staff user"}
)
PDF_REPORT: dict[int | str, dict[str, Any]] = {
    200: {"description": "the run's report", "content": {"application/pdf": {}}},
    **NO_RUN,
}
CSV_REPORT: dict[int | str, dict[str, Any]] = {
    200: {"description": "the run's breaks", "content": {"text/csv": {}}},
    **NO_RUN,
}


@router.get("/runs")
async def list_runs(
    _: FinanceReader,
    session: SessionDep,
    server: ServerName | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunPage:
    """Reconciliation runs, the newest day first: counts, open cases, sign-off, report links."""
    return await service.runs(session, server, limit, offset)


@router.post(
    "/runs",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        {422: "an unknown server, or a day not begun", 503: "workflow engine down: nothing started"}
    ),
)
async def backfill_run(
    body: BackfillRequest,
    officer: FinanceOfficer,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> BackfillAccepted:
    """Reconcile one server's broker day now (any past day, or today's so far): a new run
    with today's settings; audited as `reconciliation_run.requested`."""
    return await service.backfill(session, state.temporal, settings, officer, body)


@router.get("/runs/{run_id}", responses=NO_RUN)
async def get_run(run_id: UUID, _: FinanceReader, session: SessionDep) -> RunView:
    return await service.run(session, run_id)


@router.get("/runs/{run_id}/report.pdf", response_class=Response, responses=PDF_REPORT)
async def run_report_pdf(
    run_id: UUID, _: FinanceReader, session: SessionDep, state: StateDep
) -> Response:
    """The run's report as a PDF: counts, breaks by type, every break with its case; the copy
    stored at the end of the run (or at its sign-off)."""
    content = await service.run_report_pdf(session, run_id, state.documents)
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="reconciliation-{run_id}.pdf"'},
    )


@router.get("/runs/{run_id}/report.csv", response_class=Response, responses=CSV_REPORT)
async def run_report_csv(
    run_id: UUID, _: FinanceReader, session: SessionDep, state: StateDep
) -> Response:
    """The run's breaks as CSV, one row per break with its case's status and age; the copy
    stored at the end of the run (or at its sign-off)."""
    content = await service.run_report_csv(session, run_id, state.documents)
    return Response(
        content,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="reconciliation-{run_id}.csv"'},
    )


@router.post(
    "/runs/{run_id}/sign-off",
    responses=error_responses(
        {404: "no such reconciliation run", 409: "not matched yet, or signed off already"}
    ),
)
async def sign_off_run(
    run_id: UUID,
    body: SignOffRequest,
    officer: FinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RunView:
    """Finance signs the run's report off (once; the signed report is stored as the run's);
    audited as `reconciliation_run.signed_off`."""
    return await service.sign_off(session, officer, run_id, body.note, state.documents)


@router.get("/cases")
async def list_cases(
    _: FinanceReader,
    session: SessionDep,
    server: ServerName | None = None,
    status: CaseStatus | None = "unresolved",
    type: BreakType | None = None,
    assignee_id: UUID | None = None,
    run_id: UUID | None = None,
    currency: CurrencyCode | None = None,
    opened_on_or_before: date | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CasePage:
    """Break cases, the oldest first, with their age in days; unresolved ones (open or with
    an adjusting entry proposed) unless `status` says otherwise."""
    wanted = CaseFilter(
        server=server,
        status=status,
        type=type.value if type else None,
        assignee_id=assignee_id,
        run_id=run_id,
        currency=currency,
        opened_before=opened_on_or_before,
    )
    return await service.cases(session, wanted, limit, offset)


@router.get("/cases/{case_id}", responses=error_responses({404: "no such break case"}))
async def get_case(case_id: UUID, _: FinanceReader, session: SessionDep) -> CaseDetail:
    return await service.case_detail(session, case_id)


@router.post("/cases/{case_id}/assign", responses=CASE_ERRORS)
async def assign_case(
    case_id: UUID, body: AssignRequest, officer: FinanceOfficer, session: SessionDep
) -> CaseDetail:
    """Give an open case to a staff user; audited as `reconciliation_case.assigned`."""
    return await service.assign(session, officer, case_id, body.staff_id)


@router.post(
    "/cases/{case_id}/comments",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses({404: "no such break case"}),
)
async def comment_case(
    case_id: UUID, body: CommentRequest, officer: FinanceOfficer, session: SessionDep
) -> CaseDetail:
    """Add a comment to a case; audited as `reconciliation_case.commented`."""
    return await service.comment(session, officer, case_id, body.body)


@router.post(
    "/cases/{case_id}/adjustment",
    responses=error_responses(
        {
            404: "no such break case",
            409: "the case is closed",
            422: "an account of no known kind or of another currency, or an amount too fine",
        }
    ),
)
async def propose_adjustment(
    case_id: UUID, body: AdjustmentRequest, officer: FinanceOfficer, session: SessionDep
) -> CaseDetail:
    """Propose the adjusting entry that resolves the case (the first of two officers); it is
    posted when another finance officer approves it. Audited."""
    return await service.propose_adjustment(session, officer, case_id, body)


@router.post(
    "/cases/{case_id}/adjustment/approve",
    responses=error_responses(
        {
            404: "no such break case",
            409: "nothing waiting (none proposed, or it was rejected, replaced or lapsed),"
            " not the proposal read, proposed by the same officer (four-eyes), or a wallet short",
            422: "the entry cannot be posted",
        }
    ),
)
async def approve_adjustment(
    case_id: UUID,
    officer: FinanceOfficer,
    session: SessionDep,
    body: ApproveRequest | None = None,
) -> CaseDetail:
    """Approve (a second, different finance officer) and post the proposed entry through the
    ledger; the case is resolved. With `proposal`, only if that is still the one waiting.
    Audited as `reconciliation_case.adjustment_approved`."""
    expected = body.proposal if body is not None else None
    return await service.approve_adjustment(session, officer, case_id, expected)


@router.post(
    "/cases/{case_id}/adjustment/reject",
    responses=error_responses(
        {404: "no such break case", 409: "no adjusting entry waits for a decision on the case"}
    ),
)
async def reject_adjustment(
    case_id: UUID, body: RejectRequest, officer: FinanceOfficer, session: SessionDep
) -> CaseDetail:
    """Reject the proposed entry (withdraw it, when its proposer does): kept as `rejected`
    with the reason, never posted nor approvable; the case is open again for a new proposal.
    Audited as `reconciliation_case.adjustment_rejected`."""
    return await service.reject_adjustment(session, officer, case_id, body.reason)


@router.post(
    "/cases/{case_id}/reopen",
    responses=error_responses(
        {
            404: "no such break case",
            409: "the case is not closed, or another case is open on its break key",
        }
    ),
)
async def reopen_case(
    case_id: UUID, body: ReopenRequest, officer: FinanceOfficer, session: SessionDep
) -> CaseDetail:
    """Reopen a closed case (resolved, with or without an entry, or auto-closed): open again,
    its earlier resolution kept in its history; an entry posted stays posted (undoing it is a
    new proposal). Audited as `reconciliation_case.reopened`."""
    return await service.reopen(session, officer, case_id, body.reason)


@router.post(
    "/cases/{case_id}/resolve",
    responses=error_responses(
        {404: "no such case", 409: "the case is closed already, or has a proposed entry"}
    ),
)
async def resolve_case(
    case_id: UUID, body: ResolveRequest, officer: FinanceOfficer, session: SessionDep
) -> CaseDetail:
    """Resolve the case without an adjusting entry: explained, nothing to book (the
    explanation is kept as its resolution); audited as `reconciliation_case.resolved`."""
    return await service.resolve_explained(session, officer, case_id, body.explanation)
