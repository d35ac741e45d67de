"""The finance console's IB payouts: the queue, a payout with its statement PDF embedded, the
approve / reject forms, and the pay-again form of a payout MT5 refused, over the same service as
the API (`api.ib.payouts_service`).

Same log-in, cookie and anti-forgery scheme as the rest of the console. A decision goes to the
payout's `IbPayout` workflow, a pay-again request to its `IbPayoutAgain` workflow (as
`POST /v1/finance/ib-payouts/{id}/pay-again` does); each workflow checks four-eyes (two different
finance officers above the threshold) and writes the audit rows; a refusal comes back to the
payout page as an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.console.schemas import ConsoleDecision, ConsolePayAgain
from api.deps import SessionDep, StateDep, documents_of
from api.headers import console_csp
from api.ib import payouts_service as service
from api.ib.payouts_schemas import (
    PayoutDecisionEntry,
    PayoutDecisionRequest,
    PayoutDecisionResult,
    PayoutPayAgain,
)
from api.pages import back, check_csrf, pdf_response, render
from api.policy import ConsoleFinanceOfficer, ConsoleFinanceReader
from contracts.ib_payout import PAY_AGAIN_WAIT, PayoutStatus
from domain.errors import BackOfficeError

router = APIRouter(prefix="/console/ib-payouts", tags=["console"])
QUEUE_PAGE = "/console/ib-payouts"
PER_PAGE = 25
# The queue's default: what waits for a decision. "all" lifts the filter.
WAITING = PayoutStatus.STATEMENT_READY.value
ALL = "all"
ASKED_AGAIN = "ib_payout.pay_again_requested"
# After these, no request to pay the payout again is waiting for its second officer.
PAY_AGAIN_RESETS = ("ib_payout.needs_attention", "ib_payout.pay_again_approved")


@router.get("", response_class=HTMLResponse)
async def queue_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    state: StateDep,
    # Text, not the enum: an unknown value is shown as an error on the page, not a 422.
    status: Annotated[str, Query(max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$")] = WAITING,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    notice: Annotated[str, Query(max_length=300)] = "",
    error: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:
    """Payouts, newest period first, with the IB's name, the amount, the period and the
    approvals so far; by default those whose statement waits for finance."""
    wanted = next((s for s in PayoutStatus if s.value == status), None)
    if status not in (ALL, "") and wanted is None:
        error = error or f"unknown status {status!r}: showing every payout"
    four_eyes_above = state.settings.ib.four_eyes_above
    payouts = await service.payout_queue(
        session, status=wanted, page=page, per_page=PER_PAGE, four_eyes_above=four_eyes_above
    )
    return render(
        request,
        "console_ib_payouts.html",
        staff,
        payouts=payouts,
        statuses=[s.value for s in PayoutStatus],
        status=wanted.value if wanted else ALL,
        four_eyes_above=four_eyes_above,
        notice=notice,
        error=error,
    )


@router.get("/{payout_id}", response_class=HTMLResponse)
async def payout_page(
    payout_id: UUID,
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    state: StateDep,
    notice: Annotated[str, Query(max_length=500)] = "",
    error: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    """One payout: the statement PDF embedded (and to download), who approved already, and
    the decision forms for finance officers while it waits (the pay-again form while it needs
    attention)."""
    payout = await service.payout_detail(session, payout_id, state.settings.ib.four_eyes_above)
    waiting_again = pending_pay_again(payout.decisions, state.clock())
    page = render(
        request,
        "console_ib_payout.html",
        staff,
        payout=payout,
        is_officer="finance" in {role.value for role in staff.roles},
        decidable=payout.status in service.DECIDABLE,
        approved_already=str(staff.id) in {a.staff_id for a in payout.approvers},
        pay_again=payout.status == PayoutStatus.NEEDS_ATTENTION.value,
        waiting_again=waiting_again,
        asked_again_already=waiting_again is not None and waiting_again.staff_id == str(staff.id),
        pay_again_wait_days=PAY_AGAIN_WAIT.days,
        notice=notice,
        error=error,
    )
    # The console's policy frames nothing; this page frames its own statement, same origin.
    page.headers["Content-Security-Policy"] = (
        console_csp(request.state.csp_nonce) + "; frame-src 'self'"
    )
    return page


@router.get("/{payout_id}/statement", response_class=Response)
async def payout_statement(
    payout_id: UUID,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    state: StateDep,
    download: bool = False,
) -> Response:
    """The statement PDF: inline for the payout page's frame, or as a download."""
    _payout, content = await service.statement(session, documents_of(state), payout_id, None)
    return pdf_response(content, f"ib-statement-{payout_id}.pdf", download=download)


@router.post("/{payout_id}/decision")
async def decide(
    payout_id: UUID,
    form: Annotated[ConsoleDecision, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    page = f"{QUEUE_PAGE}/{payout_id}"
    try:
        request = PayoutDecisionRequest(approve=form.decision == "approve", reason=form.reason)
    except ValidationError:
        return back(page, error="give a reason of at least 3 characters")
    try:
        result = await service.decide(session, state.temporal, officer, payout_id, request)
    except BackOfficeError as exc:
        return back(page, error=exc.detail)
    if form.decision == "reject":
        return back(page, notice=f"rejected: the payout is now {result.status.value}")
    waiting = result.status is PayoutStatus.STATEMENT_READY
    return back(
        page,
        notice=f"approved ({result.approvals} of {result.needed}): "
        + (
            "a second, different finance officer must approve"
            if waiting
            else f"the payout is {result.status.value} and is credited to the IB's wallet"
        ),
    )


@router.post("/{payout_id}/pay-again")
async def pay_again_form(
    payout_id: UUID,
    form: Annotated[ConsolePayAgain, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    """The payout page's pay-again form: `payouts_service.pay_again`, as the API's route."""
    check_csrf(officer, form.csrf)
    page = f"{QUEUE_PAGE}/{payout_id}"
    try:
        reason = PayoutPayAgain(reason=form.reason).reason
    except ValidationError:
        return back(page, error="give a reason of at least 3 characters")
    try:
        result = await service.pay_again(
            session, state.temporal, officer, payout_id, reason, state.settings.ib.four_eyes_above
        )
    except BackOfficeError as exc:
        return back(page, error=exc.detail)
    return back(page, notice=pay_again_notice(result))


def pay_again_notice(result: PayoutDecisionResult) -> str:
    counted = f"({result.approvals} of {result.needed})"
    if result.status is PayoutStatus.NEEDS_ATTENTION:
        return (
            f"asked to pay it again {counted}: it needs a second approver, a different finance"
            " officer, before anything is paid"
        )
    return (
        f"paying it again is approved {counted}: the payout is {result.status.value} and is"
        " paid where the IB is paid now (reload to see it paid, or needing attention again)"
    )


def pending_pay_again(
    decisions: list[PayoutDecisionEntry], now: datetime
) -> PayoutDecisionEntry | None:
    """The request to pay the payout again that still waits for a second officer, from the
    payout's audit rows: the last one since MT5's refusal or the last approved pay-again, unless
    its `IbPayoutAgain` run has lapsed (`PAY_AGAIN_WAIT`)."""
    pending = None
    for entry in decisions:
        if entry.action in PAY_AGAIN_RESETS:
            pending = None
        elif entry.action == ASKED_AGAIN:
            pending = entry
    return pending if pending is not None and now - pending.at < PAY_AGAIN_WAIT else None
