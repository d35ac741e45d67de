"""The compliance console: the KYC review queue and the case view, over the same service as the
API (`api.kyc.service`).

Same log-in, cookie and anti-forgery scheme as the finance console (`api.console.routes`). A
refused action (the same officer approving twice, a closed case) comes back to the case page
as an error message, never as an error page.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.audit.schemas import AuditView
from api.console import lookups
from api.console.list_pages import (
    NO_CONTROLS,
    Filter,
    Listing,
    Message,
    Offset,
    PageSize,
    Search,
    choice,
    render_list,
)
from api.console.schemas import ConsoleCaseDecision, ConsoleHitReview
from api.deps import SessionDep, StateDep, documents_of
from api.kyc import service
from api.kyc.schemas import CaseDecisionRequest, HitReview
from api.pages import back, check_csrf, render
from api.policy import (
    ConsoleComplianceOfficer,
    ConsoleComplianceReader,
    ConsoleKycDocumentReader,
)
from domain.errors import BackOfficeError
from domain.kyc import CaseStatus

router = APIRouter(prefix="/console", tags=["console"])
QUEUE_PAGE = "/console/compliance"
CONSOLE_DOCUMENT = "/console/compliance/documents/{document_id}"
ACTION_WORDS = {
    "approve": "approved",
    "reject": "rejected",
    "request_info": "information requested",
}


def sla_text(seconds: int | None) -> str:
    """ "due in 3h 12m", "OVERDUE by 2h 5m"; "" when the case has no due time."""
    if seconds is None:
        return ""
    span = abs(seconds)
    days, rest = divmod(span, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        amount = f"{days}d {hours}h"
    elif hours:
        amount = f"{hours}h {minutes}m"
    elif minutes:
        amount = f"{minutes}m {secs}s"
    else:
        amount = f"{secs}s"
    return f"due in {amount}" if seconds >= 0 else f"OVERDUE by {amount}"


@router.get("/compliance", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    staff: ConsoleComplianceReader,
    session: SessionDep,
    listing: Listing,
    status: Filter = "",
    escalated: Annotated[str, Query(max_length=8, pattern=NO_CONTROLS)] = "",
) -> HTMLResponse:
    """The review queue, escalated cases and the case due first on top, with a live SLA
    countdown per case; searchable by the client's name, email or country, a page at a time."""
    wanted = choice(CaseStatus, status)
    only_escalated = {"true": True, "false": False}.get(escalated.lower())
    if status and wanted is None and not listing.error:
        listing = replace(listing, error=f"unknown status {status!r}: showing the open cases")
    items, paging = await lookups.queue_page(
        session,
        status=wanted,
        escalated=only_escalated,
        search=listing.q,
        limit=listing.limit,
        offset=listing.offset,
    )
    return render_list(
        request,
        "console_kyc_queue.html",
        staff,
        listing,
        paging,
        filters={"status": wanted},
        choices={"statuses": CaseStatus},
        items=items,
        escalated=only_escalated,
        **_clock(),
    )


@router.get("/compliance/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    case_id: UUID,
    request: Request,
    staff: ConsoleComplianceReader,
    session: SessionDep,
    audit_q: Search = "",
    audit_offset: Offset = 0,
    audit_limit: PageSize = 25,
    notice: Message = "",
    error: Message = "",
) -> HTMLResponse:
    """One case: documents, screening hits, risk breakdown, questionnaire and the leverage the
    account gets, history with names, and the decision forms for compliance officers (no
    Approve for an officer who approved in this round already)."""
    case = await service.case_detail(session, case_id, download_url=CONSOLE_DOCUMENT)
    names = await lookups.people(
        session,
        [d.officer_id for d in case.decisions]
        + [e.actor_id for e in case.audit]
        + [e.on_behalf_of for e in case.audit],
    )
    # Newest first, as a trail is read; searched by what happened, who did it and why.
    trail = list(reversed(case.audit))
    if audit_q.strip():
        needle = audit_q.strip().casefold()

        def matches(entry: AuditView) -> bool:
            who = names.get(entry.actor_id or "")
            texts = [entry.action, entry.entity_type, entry.reason or "", entry.actor_kind]
            if who is not None:
                texts += [who.name, who.email]
            return any(needle in text.casefold() for text in texts)

        trail = [e for e in trail if matches(e)]
    audit, audit_paging = lookups.page_of(trail, audit_offset, audit_limit)
    officer = "compliance" in {role.value for role in staff.roles}
    return render(
        request,
        "console_kyc_case.html",
        staff,
        **_clock(),
        case=case,
        names=names,
        audit=audit,
        audit_paging=audit_paging,
        audit_q=audit_q,
        leverage=await lookups.leverage_of_case(
            session, case.client.id, case.account_type, case.risk.level
        ),
        can_decide=officer and not case.closed,
        approved_already=any(a == staff.id for a in case.approvals),
        notice=notice,
        error=error,
    )


@router.post("/compliance/cases/{case_id}/decision")
async def decide_case(
    case_id: UUID,
    form: Annotated[ConsoleCaseDecision, Form()],
    officer: ConsoleComplianceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    to = f"{QUEUE_PAGE}/cases/{case_id}"
    try:
        decision = CaseDecisionRequest(
            action=form.action,
            reason=form.reason,
            info_needed=form.info_needed.strip() or None,
            enhanced_due_diligence=form.enhanced_due_diligence(),
        )
    except ValidationError as exc:
        return back(to, error=_form_error(exc))
    try:
        result = await service.decide(session, state.temporal, officer, case_id, decision)
    except BackOfficeError as exc:
        return back(to, error=exc.detail)
    approvals = f" ({result.approvals} approval{'s' if result.approvals != 1 else ''})"
    return back(
        to,
        notice=f"{ACTION_WORDS[form.action]}: the case is now {result.status.value}"
        + (approvals if form.action == "approve" else ""),
    )


@router.post("/compliance/hits/{hit_id}")
async def review_hit(
    hit_id: UUID,
    form: Annotated[ConsoleHitReview, Form()],
    officer: ConsoleComplianceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    to = f"{QUEUE_PAGE}/cases/{form.case_id}" if form.case_id else QUEUE_PAGE
    try:
        review = HitReview(status=form.status, reason=form.reason)
    except ValidationError as exc:
        return back(to, error=_form_error(exc))
    try:
        hit = await service.review_hit(session, officer, hit_id, review)
    except BackOfficeError as exc:
        return back(to, error=exc.detail)
    return back(
        f"{QUEUE_PAGE}/cases/{hit.case_id}",
        notice=f"hit {hit.listed_name} ({hit.source}) marked {hit.status}",
    )


@router.get("/compliance/documents/{document_id}", response_class=Response)
async def download_document(
    document_id: UUID, officer: ConsoleKycDocumentReader, session: SessionDep, state: StateDep
) -> Response:
    """The decrypted document as an attachment; audited as `client_document.viewed`."""
    document = await service.view_document(session, documents_of(state), officer, document_id)
    return Response(document.content, media_type=document.content_type, headers=document.headers())


def _form_error(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        reasons.append(f"{where}: {message}" if where else message)
    return "; ".join(reasons)[:300] or "the form is not valid"


def _clock() -> dict[str, object]:
    """What the pages' SLA countdowns read: the formatter and the time the page was made."""
    return {"sla_text": sla_text, "rendered_at": datetime.now().astimezone()}
