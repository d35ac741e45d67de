"""The finance console's finance cases and unmatched-funds queue: lists (paged, searchable,
filtered, people by name), a page per case or item, and the forms finance acts with there
(resolve a case; credit unmatched funds to a client's wallet or live MT5 account, or return
them to the payer), over the same service as the API (`api.finance.service`), so each action
is checked and audited once.

Same log-in, cookie and anti-forgery scheme as the rest of the console. A refused action comes
back to the page as an error message, never as an error page.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api.console.list_pages import Filter, Listing, Message, choice, render_list
from api.console.lookups import people
from api.deps import SessionDep, StateDep
from api.finance import console_lookups as lookups
from api.finance import service
from api.finance.schemas import (
    ConsoleCreditForm,
    ConsoleReasonForm,
    FinanceCaseView,
    ResolveCaseRequest,
    ReturnUnmatchedRequest,
    UnmatchedFundsView,
)
from api.pages import back, check_csrf, render
from api.policy import ConsoleFinanceOfficer, ConsoleFinanceReader
from api.schemas import BIGINT_END
from db.models import FinanceCase, Payment, UnmatchedFunds
from db.queries.clients import client_by_email
from domain.errors import BackOfficeError, NotFound
from domain.payments import (
    FinanceCaseKind,
    FinanceCaseStatus,
    UnmatchedAction,
    UnmatchedReason,
    UnmatchedStatus,
)

router = APIRouter(prefix="/console/finance", tags=["console"])
CASES_PAGE = "/console/finance/cases"
UNMATCHED_PAGE = "/console/finance/unmatched"
REASON_NEEDED = "give a reason of at least 3 characters"


# -- finance cases -------------------------------------------------------------------------------


@router.get("/cases", response_class=HTMLResponse)
async def cases_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    listing: Listing,
    status: Filter = "open",
    kind: Filter = "",
) -> HTMLResponse:
    """Movements finance has to put right by hand, oldest first: the client by name, the
    amount, why, and what was and was not undone; open ones unless the filter says otherwise."""
    wanted_status = choice(FinanceCaseStatus, status)
    wanted_kind = choice(FinanceCaseKind, kind)
    cases, paging, names = await lookups.cases_page(
        session,
        status=wanted_status,
        kind=wanted_kind,
        search=listing.q,
        limit=listing.limit,
        offset=listing.offset,
    )
    return render_list(
        request,
        "console_finance_cases.html",
        staff,
        listing,
        paging,
        filters={"status": wanted_status, "kind": wanted_kind},
        choices={"statuses": FinanceCaseStatus, "kinds": FinanceCaseKind},
        cases=[FinanceCaseView.of(c) for c in cases],
        names=names,
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
    """One case: the movement and its client, the amounts, what was undone and what was not
    (with the errors), its history with names, and the resolve form for finance officers."""
    case = await session.get(FinanceCase, case_id)
    if case is None:
        raise NotFound(f"no finance case {case_id}")
    history = await lookups.trail(session, "finance_case", case.id)
    names = await people(session, [case.client_id] + [e.actor_id for e in history])
    return render(
        request,
        "console_finance_case.html",
        staff,
        case=FinanceCaseView.of(case),
        movement_link=await _movement_link(session, case),
        names=names,
        history=history,
        can_resolve="finance" in {r.value for r in staff.roles}
        and case.status == FinanceCaseStatus.OPEN,
        notice=notice,
        error=error,
    )


@router.post("/cases/{case_id}/resolve")
async def resolve_case(
    case_id: UUID,
    form: Annotated[ConsoleReasonForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    page = f"{CASES_PAGE}/{case_id}"
    try:
        body = ResolveCaseRequest(reason=form.reason)
    except ValidationError:
        return _back(page, error=REASON_NEEDED)
    try:
        case = await service.resolve_case(session, officer, case_id, body.reason)
    except BackOfficeError as exc:
        return _back(page, error=exc.detail)
    moved = f"; the {case.movement_kind} is now {case.movement_status}"
    return _back(
        page,
        notice=f"case {case.reference} ({case.kind}) resolved"
        + (moved if case.movement_status else ""),
    )


async def _movement_link(session: SessionDep, case: FinanceCase) -> tuple[str | None, str]:
    """Where the case's movement is shown in the console (None: no page of its own yet), and
    how it is named there."""
    if case.movement_kind == "unmatched_funds":
        return f"{UNMATCHED_PAGE}/{case.movement_id}", f"unmatched funds {case.reference}"
    payment = await session.get(Payment, case.movement_id)
    if case.movement_kind == "payment" and payment is not None:
        return f"/console/finance?q={payment.reference}", f"{payment.direction} {case.reference}"
    return None, f"{case.movement_kind} {case.reference}"


def _back(page: str, **message: str) -> RedirectResponse:
    """Back to `page` with a notice or an error short enough for its query."""
    return back(page, **{name: text[:300] for name, text in message.items()})


# -- unmatched funds -----------------------------------------------------------------------------


@router.get("/unmatched", response_class=HTMLResponse)
async def unmatched_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    listing: Listing,
    status: Filter = "open",
    reason: Filter = "",
) -> HTMLResponse:
    """Money the processors collected that no deposit booked, oldest first: the amount, the
    payer, the reference quoted, why it is unmatched, and who it went to once resolved."""
    wanted_status = choice(UnmatchedStatus, status)
    wanted_reason = choice(UnmatchedReason, reason)
    items, paging, names = await lookups.unmatched_page(
        session,
        status=wanted_status,
        reason=wanted_reason,
        search=listing.q,
        limit=listing.limit,
        offset=listing.offset,
    )
    deposits = await lookups.deposits_of(session, [i.payment_id for i in items if i.payment_id])
    return render_list(
        request,
        "console_unmatched_funds.html",
        staff,
        listing,
        paging,
        filters={"status": wanted_status, "reason": wanted_reason},
        choices={"statuses": UnmatchedStatus, "reasons": UnmatchedReason},
        items=[UnmatchedFundsView.of(i) for i in items],
        deposits=deposits,
        names=names,
    )


@router.get("/unmatched/{item_id}", response_class=HTMLResponse)
async def unmatched_item_page(
    item_id: UUID,
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    notice: Message = "",
    error: Message = "",
) -> HTMLResponse:
    """One item: the processor's event, the payer, the deposit its reference named and that
    deposit's client (the likely owner), the resolution so far, its history with names, and
    for finance officers the credit (wallet or a live MT5 account) and return forms."""
    item = await session.get(UnmatchedFunds, item_id)
    if item is None:
        raise NotFound(f"no unmatched funds {item_id}")
    deposit = await session.get(Payment, item.payment_id) if item.payment_id else None
    history = await lookups.trail(session, "unmatched_funds", item.id)
    names = await people(
        session,
        [item.credited_client_id, item.resolved_by]
        + ([deposit.client_id] if deposit else [])
        + [e.actor_id for e in history]
        + [e.on_behalf_of for e in history],
    )
    likely = names.get(str(deposit.client_id)) if deposit else None
    accounts = (
        await lookups.live_accounts(session, deposit.client_id, item.currency) if deposit else []
    )
    return render(
        request,
        "console_unmatched_item.html",
        staff,
        item=UnmatchedFundsView.of(item),
        deposit=deposit,
        likely=likely,
        accounts=accounts,
        names=names,
        history=history,
        can_resolve="finance" in {r.value for r in staff.roles}
        and item.status == UnmatchedStatus.OPEN,
        notice=notice,
        error=error,
    )


@router.post("/unmatched/{item_id}/credit")
async def credit_unmatched(
    item_id: UUID,
    form: Annotated[ConsoleCreditForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    page = f"{UNMATCHED_PAGE}/{item_id}"
    try:
        body = ReturnUnmatchedRequest(reason=form.reason)
    except ValidationError:
        return _back(page, error=REASON_NEEDED)
    client = await client_by_email(session, form.client_email.strip())
    if client is None:
        return _back(page, error=f"no client with the email {form.client_email.strip()!r}")
    login = form.mt5_login.strip()
    if login and not (login.isdigit() and 0 < int(login) < BIGINT_END):
        return _back(page, error=f"{login!r} is not an MT5 login")
    try:
        view = await service.resolve_unmatched(
            session,
            state.temporal,
            officer,
            item_id,
            UnmatchedAction.CREDIT,
            body.reason,
            client_id=client.id,
            mt5_login=int(login) if login else None,
        )
    except BackOfficeError as exc:
        return _back(page, error=exc.detail)
    where = f"MT5 account {login}" if login else "wallet"
    return _back(
        page,
        notice=f"{view.amount} {view.currency} of {view.reference} are being credited to "
        f"{client.full_name}'s {where}",
    )


@router.post("/unmatched/{item_id}/return")
async def return_unmatched(
    item_id: UUID,
    form: Annotated[ConsoleReasonForm, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    page = f"{UNMATCHED_PAGE}/{item_id}"
    try:
        body = ReturnUnmatchedRequest(reason=form.reason)
    except ValidationError:
        return _back(page, error=REASON_NEEDED)
    try:
        view = await service.resolve_unmatched(
            session, state.temporal, officer, item_id, UnmatchedAction.RETURN, body.reason
        )
    except BackOfficeError as exc:
        return _back(page, error=exc.detail)
    return _back(
        page,
        notice=f"{view.amount} {view.currency} of {view.reference} are being returned to the payer",
    )
