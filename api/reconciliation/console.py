"""The finance console's reconciliation pages: runs (with the back-fill form), one run (its
counts, sign-off, report PDF and CSV, its cases), the break cases with filters, and one case
(assign, comment, propose, approve or reject its adjusting entry, resolve it without one,
reopen it once closed; its proposals and history). Over the same service as the API,
so each action is checked and audited once; a refused action comes back to the page as an
error message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import TypeAdapter, ValidationError

from api.deps import SessionDep, SettingsDep, StateDep
from api.pages import back, check_csrf, pdf_response, render
from api.policy import ConsoleFinanceOfficer, ConsoleFinanceReader, Principal
from api.reconciliation import service
from api.reconciliation.schemas import (
    AdjustmentRequest,
    BackfillRequest,
    CommentRequest,
    ConsoleAdjustmentForm,
    ConsoleApproveForm,
    ConsoleAssignForm,
    ConsoleBackfillForm,
    ConsoleCommentForm,
    ConsoleNoteForm,
    SignOffRequest,
)
from api.schemas import Reason
from db.queries.reconciliation_cases import CaseFilter
from domain.errors import BackOfficeError
from domain.reconciliation.records import BreakType

router = APIRouter(prefix="/console/reconciliation", tags=["console"])
RUNS_PAGE = "/console/reconciliation"
CASES_PAGE = "/console/reconciliation/cases"
Text = Annotated[str, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]
Message = Annotated[str, Query(max_length=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
PAGE = 25
STATUSES = ["unresolved", "open", "proposed", "resolved", "auto_closed"]
NOTE: TypeAdapter[str] = TypeAdapter(Reason)  # a reason or an explanation, as the API checks it


def _back(page: str, **message: str) -> RedirectResponse:
    return back(page, **{name: text[:300] for name, text in message.items()})


async def _acted(page: str, action: Awaitable[object], notice: str) -> RedirectResponse:
    """Back to `page` with `notice` once `action` (a service call) is done, or with its
    refusal as the page's error."""
    try:
        await action
    except BackOfficeError as exc:
        return _back(page, error=exc.detail)
    return _back(page, notice=notice)


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _is_officer(staff: object) -> bool:
    return "finance" in {r.value for r in getattr(staff, "roles", ())}


@router.get("", response_class=HTMLResponse)
async def runs_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    settings: SettingsDep,
    server: Text = "",
    offset: Offset = 0,
    notice: Message = "",
    error: Message = "",
) -> HTMLResponse:
    """Runs, the newest day first: counts, open cases, sign-off, and the back-fill form."""
    page = await service.runs(session, server or None, PAGE, offset)
    names = await service.staff_names(session, [r.signed_off_by for r in page.items])
    alerted = await service.cases(session, CaseFilter(status="unresolved"), 1, 0)
    return render(
        request,
        "console_reconciliation.html",
        staff,
        runs=page.items,
        total=page.total,
        offset=offset,
        page_size=PAGE,
        names=names,
        servers=[s.name for s in settings.mt5_fleet()],
        server=server,
        unresolved=alerted.total,
        can_act=_is_officer(staff),
        notice=notice,
        error=error,
    )


@router.post("/runs")
async def backfill(
    form: Annotated[ConsoleBackfillForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    try:
        body = BackfillRequest(server=form.server, day=date.fromisoformat(form.day))
    except (ValidationError, ValueError):
        return _back(RUNS_PAGE, error="give a server and a day (YYYY-MM-DD)")
    try:
        started = await service.backfill(session, state.temporal, settings, officer, body)
    except BackOfficeError as exc:
        return _back(RUNS_PAGE, error=exc.detail)
    return _back(RUNS_PAGE, notice=f"reconciliation of {started.server} {started.day} started")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    run_id: UUID,
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    status: Text = "",
    type: Text = "",
    offset: Offset = 0,
    notice: Message = "",
    error: Message = "",
) -> HTMLResponse:
    """One run: its counts and period, the sign-off (or its form), the report (PDF shown, CSV
    to download) and the cases it found, filtered."""
    run = await service.run(session, run_id)
    wanted = CaseFilter(
        run_id=run_id,
        status=status if status in STATUSES else None,
        type=type if type in {t.value for t in BreakType} else None,
    )
    cases = await service.cases(session, wanted, PAGE, offset)
    names = await service.staff_names(
        session, [run.signed_off_by, *[c.assignee_id for c in cases.items]]
    )
    return render(
        request,
        "console_reconciliation_run.html",
        staff,
        run=run,
        cases=cases.items,
        total=cases.total,
        offset=offset,
        page_size=PAGE,
        names=names,
        statuses=STATUSES,
        types=[t.value for t in BreakType],
        status=status,
        type=type,
        can_act=_is_officer(staff),
        notice=notice,
        error=error,
    )


@router.get(
    "/runs/{run_id}/report.pdf",
    response_class=Response,
    responses={200: {"description": "the run's report", "content": {"application/pdf": {}}}},
)
async def run_report_pdf(
    run_id: UUID,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    state: StateDep,
    download: bool = False,
) -> Response:
    run = await service.run(session, run_id)
    content = await service.run_report_pdf(session, run_id, state.documents)
    return pdf_response(content, service.report_filename(run, "pdf"), download=download)


@router.get(
    "/runs/{run_id}/report.csv",
    response_class=Response,
    responses={200: {"description": "the run's breaks", "content": {"text/csv": {}}}},
)
async def run_report_csv(
    run_id: UUID, staff: ConsoleFinanceReader, session: SessionDep, state: StateDep
) -> Response:
    run = await service.run(session, run_id)
    content = await service.run_report_csv(session, run_id, state.documents)
    filename = service.report_filename(run, "csv")
    return Response(
        content,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/runs/{run_id}/sign-off")
async def sign_off(
    run_id: UUID,
    form: Annotated[ConsoleNoteForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    page = f"{RUNS_PAGE}/runs/{run_id}"
    try:
        body = SignOffRequest(note=form.note)
    except ValidationError:
        return _back(page, error="give a note of at least 3 characters")
    return await _acted(
        page,
        service.sign_off(session, officer, run_id, body.note, state.documents),
        "run signed off",
    )


@router.get("/cases", response_class=HTMLResponse)
async def cases_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    settings: SettingsDep,
    status: Text = "unresolved",
    type: Text = "",
    server: Text = "",
    assignee: Text = "",
    offset: Offset = 0,
    notice: Message = "",
    error: Message = "",
) -> HTMLResponse:
    """Break cases, the oldest first, with their age; unresolved ones unless filtered."""
    wanted = CaseFilter(
        server=server or None,
        status=status if status in STATUSES else None,
        type=type if type in {t.value for t in BreakType} else None,
        assignee_id=_uuid(assignee),
    )
    cases = await service.cases(session, wanted, PAGE, offset)
    choices = await service.finance_staff(session)
    return render(
        request,
        "console_reconciliation_cases.html",
        staff,
        cases=cases.items,
        total=cases.total,
        offset=offset,
        page_size=PAGE,
        names={str(c.id): c.name for c in choices},
        staff_choices=choices,
        statuses=STATUSES,
        types=[t.value for t in BreakType],
        servers=[s.name for s in settings.mt5_fleet()],
        status=status,
        type=type,
        server=server,
        assignee=assignee,
        notice=notice,
        error=error,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    case_id: UUID,
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    notice: Message = "",
    error: Message = "",
) -> HTMLResponse:
    """One case: the break, its age and history of runs, comments, and the forms."""
    case = await service.case_detail(session, case_id)
    choices = await service.finance_staff(session)
    adjustment = case.adjustment
    names = await service.staff_names(
        session,
        [
            case.assignee_id,
            case.reopened_by,
            *[c.staff_id for c in case.comments],
            *[p.proposed_by for p in case.proposals],
            *[p.decided_by for p in case.proposals],
            *[_uuid(e.actor_id or "") for e in case.history if e.actor_kind == "staff"],
        ],
    )
    officer = _is_officer(staff)
    waiting = (
        adjustment is not None and adjustment.status == "proposed" and case.status == "proposed"
    )
    return render(
        request,
        "console_reconciliation_case.html",
        staff,
        case=case,
        names=names,
        staff_choices=choices,
        can_act=officer and case.status in ("open", "proposed"),
        can_approve=officer
        and waiting
        and adjustment is not None
        and adjustment.proposed_by != staff.id,
        can_reject=officer and waiting,
        can_reopen=officer and case.status not in ("open", "proposed"),
        notice=notice,
        error=error,
    )


def _case_page(case_id: UUID) -> str:
    return f"{CASES_PAGE}/{case_id}"


@router.post("/cases/{case_id}/assign")
async def assign(
    case_id: UUID,
    form: Annotated[ConsoleAssignForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    staff_id = _uuid(form.staff_id)
    if staff_id is None:
        return _back(_case_page(case_id), error="choose whom to assign the case to")
    return await _acted(
        _case_page(case_id), service.assign(session, officer, case_id, staff_id), "case assigned"
    )


@router.post("/cases/{case_id}/comment")
async def comment(
    case_id: UUID,
    form: Annotated[ConsoleCommentForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    try:
        body = CommentRequest(body=form.body)
    except ValidationError:
        return _back(_case_page(case_id), error="write a comment of at least 3 characters")
    return await _acted(
        _case_page(case_id), service.comment(session, officer, case_id, body.body), "comment added"
    )


@router.post("/cases/{case_id}/adjustment")
async def propose(
    case_id: UUID,
    form: Annotated[ConsoleAdjustmentForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    try:
        body = AdjustmentRequest(
            debit_account=form.debit_account.strip(),
            credit_account=form.credit_account.strip(),
            amount=form.amount.strip(),
            currency=form.currency.strip().upper(),
            reason=form.reason,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return _back(_case_page(case_id), error=f"the entry is not valid: {problems}")
    return await _acted(
        _case_page(case_id),
        service.propose_adjustment(session, officer, case_id, body),
        "adjusting entry proposed: a second officer approves",
    )


@router.post("/cases/{case_id}/approve")
async def approve(
    case_id: UUID,
    form: Annotated[ConsoleApproveForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    # The proposal the page showed: refused if another replaced it meanwhile.
    expected = int(form.proposal) if form.proposal.isdecimal() else None
    return await _acted(
        _case_page(case_id),
        service.approve_adjustment(session, officer, case_id, expected),
        "adjusting entry approved and posted: case resolved",
    )


async def _noted(
    case_id: UUID,
    officer: Principal,
    form: ConsoleNoteForm,
    act: Callable[[str], Awaitable[object]],
    notice: str,
    *,
    refused: str = "say why in at least 3 characters",
) -> RedirectResponse:
    """A case page's form of one note (a reason, an explanation): checked as the API checks
    it, then `act(note)`; back to the case page with `notice` or the refusal."""
    check_csrf(officer, form.csrf)
    try:
        note = NOTE.validate_python(form.note)
    except ValidationError:
        return _back(_case_page(case_id), error=refused)
    return await _acted(_case_page(case_id), act(note), notice)


@router.post("/cases/{case_id}/reject")
async def reject(
    case_id: UUID,
    form: Annotated[ConsoleNoteForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    return await _noted(
        case_id,
        officer,
        form,
        lambda reason: service.reject_adjustment(session, officer, case_id, reason),
        "proposed entry rejected: the case is open for a new proposal",
    )


@router.post("/cases/{case_id}/reopen")
async def reopen(
    case_id: UUID,
    form: Annotated[ConsoleNoteForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    return await _noted(
        case_id,
        officer,
        form,
        lambda reason: service.reopen(session, officer, case_id, reason),
        "case reopened",
    )


@router.post("/cases/{case_id}/resolve")
async def resolve(
    case_id: UUID,
    form: Annotated[ConsoleNoteForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    return await _noted(
        case_id,
        officer,
        form,
        lambda explanation: service.resolve_explained(session, officer, case_id, explanation),
        "case resolved: explained, nothing booked",
        refused="explain the break in at least 3 characters",
    )
