"""The finance console: server-rendered pages over the same services as the API.

Staff log in with password and TOTP code; the access token is kept in an HttpOnly,
SameSite=Strict cookie scoped to /console, and every form carries an anti-forgery value bound
to that token. The pages also accept the bearer header, as the API does.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import service as auth_service
from api.auth.schemas import StaffLoginRequest
from api.console import lookups
from api.console.list_pages import (
    NO_CONTROLS,
    PAGE_SIZES,
    Filter,
    Listing,
    Offset,
    PageSize,
    Search,
    choice,
    render_list,
)
from api.console.schemas import LOGIN_REFUSALS, ConsoleDecision, ConsoleLogin
from api.deps import ContextDep, SessionDep, StateDep
from api.finance import service as finance_service
from api.finance.schemas import DecisionRequest, FinancePaymentView
from api.pages import check_csrf, console_log_in, render, templates
from api.pages import signed_in as signed_in_page
from api.policy import (
    CONSOLE_COOKIE,
    ConsoleComplianceOfficer,
    ConsoleCookie,
    ConsoleFinanceOfficer,
    ConsoleFinanceReader,
    Principal,
    public,
    signed_in,
)
from api.state import AppState
from domain.errors import BackOfficeError, Forbidden, NotAuthenticated
from domain.ledger import AccountKind
from domain.payments import PaymentDirection, PaymentStatus
from domain.roles import PrincipalKind

router = APIRouter(prefix="/console", tags=["console"])
NextPage = Annotated[str, Query(max_length=500)]
FINANCE_PAGE = "/console/finance"
IB_LOGIN_PAGE = "/console/ib/login"
ATTENTION = ("rejected", "unmatched", "needs_review")


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public)])
async def login_page(request: Request, next: NextPage = "") -> HTMLResponse:
    """The log-in form; `next` is the console page that sent the visitor here."""
    return templates.TemplateResponse(request, "console_login.html", {"next": _safe_next(next)})


@router.post(
    "/login",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(public)],
    responses=LOGIN_REFUSALS,
)
async def log_in(
    form: Annotated[ConsoleLogin, Form()],
    request: Request,
    session: SessionDep,
    state: StateDep,
    context: ContextDep,
    next: NextPage = "",
) -> HTMLResponse | RedirectResponse:
    settings = state.settings
    token = await console_log_in(
        lambda: auth_service.log_in_staff(
            session, StaffLoginRequest.model_validate(form.model_dump()), state, context
        ),
        lambda reason, status: _login_refused(request, reason, status),
    )
    if isinstance(token, HTMLResponse):
        return token
    landing = _safe_next(next) or FINANCE_PAGE
    return signed_in_page(landing, token.access_token, token.expires_in, request, settings)


@router.post("/logout", dependencies=[Depends(public)])
async def log_out(
    session: SessionDep,
    state: StateDep,
    context: ContextDep,
    console_token: ConsoleCookie = None,
) -> RedirectResponse:
    """End the console's session on the server (its token is refused from now on, wherever it
    was copied to) and drop the cookie; back to the log-in page of the one who left."""
    leave_to = "/console/login"
    if console_token:
        try:
            staff = await signed_in.authorise(console_token, session, state.settings, context)
        except (NotAuthenticated, Forbidden):
            staff = None  # an ended or foreign session: nothing to end, still drop the cookie
        if staff is not None:
            await auth_service.log_out(session, staff, everywhere=False, now=state.clock())
            if staff.kind is PrincipalKind.IB:
                leave_to = IB_LOGIN_PAGE
    response = RedirectResponse(leave_to, status_code=303)
    response.delete_cookie(CONSOLE_COOKIE, path="/console")
    return response


@router.get("/finance", response_class=HTMLResponse)
async def finance_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    state: StateDep,
    listing: Listing,
    status: Filter = "",
    direction: Filter = "",
    approvals_direction: Filter = "",
    approvals_q: Search = "",
    approvals_offset: Offset = 0,
    approvals_limit: PageSize = 25,
) -> HTMLResponse:
    """Pending approvals with their forms, payments, webhooks that want a look: each list
    paged, searchable by client name or email and reference, and filtered. Finance cases have
    their own page (`/console/finance/cases`), linked from here with the open ones counted."""
    wanted_status = choice(PaymentStatus, status)
    wanted_direction = choice(PaymentDirection, direction)
    approvals, approvals_paging, approval_names = await lookups.approvals_page(
        session,
        direction=choice(PaymentDirection, approvals_direction),
        search=approvals_q.strip(),
        limit=approvals_limit,
        offset=approvals_offset,
    )
    payments, payments_paging, payment_names = await lookups.payments_page(
        session,
        status=wanted_status,
        direction=wanted_direction,
        search=listing.q,
        limit=listing.limit,
        offset=listing.offset,
    )
    on_mt5 = [(p.mt5_server, p.mt5_login) for p in approvals]
    on_mt5 += [(p.mt5_server, p.mt5_login) for p in payments]
    accounts = await lookups.account_labels(
        session, state.settings, [(server, login) for server, login in on_mt5 if server and login]
    )
    webhooks = [
        event
        for event in await finance_service.webhook_events(
            session, outcome=None, provider=None, limit=200, offset=0
        )
        if event.outcome in ATTENTION
    ][:20]
    return render_list(
        request,
        "console_finance.html",
        staff,
        listing,
        payments_paging,
        filters={"status": wanted_status, "direction": wanted_direction},
        choices={"statuses": PaymentStatus, "directions": PaymentDirection},
        approvals=approvals,
        approvals_paging=approvals_paging,
        approvals_direction=approvals_direction,
        approvals_q=approvals_q,
        payments=[FinancePaymentView.of(p) for p in payments],
        open_cases=await lookups.open_finance_cases(session),
        names={**approval_names, **payment_names},
        accounts={f"{server}/{login}": label for (server, login), label in accounts.items()},
        decided_by_me={
            str(p.id)
            for p in approvals
            if any(d.staff_id == staff.id and d.approve for d in p.decisions)
        },
        webhooks=webhooks,
    )


@router.get("/ledger", response_class=HTMLResponse)
async def ledger_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    state: StateDep,
    code: Annotated[str | None, Query(min_length=3, max_length=200, pattern=NO_CONTROLS)] = None,
    kind: Filter = "",
    currency: Annotated[str, Query(max_length=3, pattern=NO_CONTROLS)] = "",
    q: Search = "",
    offset: Offset = 0,
    limit: PageSize = 50,
) -> HTMLResponse:
    """Ledger accounts with whose they are, what they are for and their balance on its debit
    or credit side; with `code`, the entries touching that account, a page at a time."""
    settings = state.settings
    wanted_kind = choice(AccountKind, kind)
    wanted_currency = currency.upper() if len(currency) == 3 and currency.isalpha() else ""
    context: dict[str, object] = {
        "kinds": [k.value for k in AccountKind],
        "kind": wanted_kind.value if wanted_kind else "",
        "currency": wanted_currency,
        "q": q,
        "page_sizes": PAGE_SIZES,
    }
    if code:
        try:
            account, entries, paging = await lookups.ledger_entries(
                session, settings, code, limit=limit, offset=offset
            )
        except BackOfficeError as exc:
            context["error"] = exc.detail
        else:
            return render(
                request,
                "console_ledger.html",
                staff,
                account=account,
                entries=entries,
                paging=paging,
                code=code,
                **context,
            )
    accounts, paging = await lookups.ledger_page(
        session,
        settings,
        kind=wanted_kind,
        currency=wanted_currency or None,
        search=q.strip(),
        limit=limit,
        offset=0 if code else offset,
    )
    return render(
        request, "console_ledger.html", staff, accounts=accounts, paging=paging, **context
    )


@router.post("/withdrawals/{payment_id}/decision")
async def decide_withdrawal(
    payment_id: UUID,
    form: Annotated[ConsoleDecision, Form()],
    officer: ConsoleFinanceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    return await _decide(session, state, officer, payment_id, PaymentDirection.WITHDRAWAL, form)


@router.post("/deposits/{payment_id}/decision")
async def decide_deposit(
    payment_id: UUID,
    form: Annotated[ConsoleDecision, Form()],
    officer: ConsoleComplianceOfficer,
    session: SessionDep,
    state: StateDep,
) -> RedirectResponse:
    return await _decide(session, state, officer, payment_id, PaymentDirection.DEPOSIT, form)


async def _decide(
    session: AsyncSession,
    state: AppState,
    officer: Principal,
    payment_id: UUID,
    direction: PaymentDirection,
    form: ConsoleDecision,
) -> RedirectResponse:
    check_csrf(officer, form.csrf)
    try:
        request = DecisionRequest(approve=form.decision == "approve", reason=form.reason)
        result = await finance_service.decide(
            session, state.temporal, officer, payment_id, direction, request
        )
    except ValidationError:
        return _back(error="give a reason of at least 3 characters")
    except BackOfficeError as exc:
        return _back(error=exc.detail)
    return _back(notice=lookups.decision_notice(direction, form.decision == "approve", result))


def _back(**message: str) -> RedirectResponse:
    return RedirectResponse(f"{FINANCE_PAGE}?{urlencode(message)}", status_code=303)


def _safe_next(path: str) -> str:
    """A page of this console to return to after the log-in, or "": never another site
    (`//host`, a scheme) and never the log-in or log-out itself."""
    if not path.startswith("/console/") or path.startswith("//") or "\\" in path:
        return ""
    if path.split("?")[0] in ("/console/login", "/console/logout"):
        return ""
    return path


def _login_refused(request: Request, reason: str, status: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "console_login.html", {"error": reason}, status_code=status
    )
