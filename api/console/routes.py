"""The finance console: server-rendered pages over the same services as the API.

Staff log in with password and TOTP code; the access token is kept in an HttpOnly,
SameSite=Strict cookie scoped to /console, and every form carries an anti-forgery value bound
to that token. The pages also accept the bearer header, as the API does.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import service as auth_service
from api.auth.schemas import StaffLoginRequest
from api.console.schemas import ConsoleDecision, ConsoleLogin
from api.deps import ContextDep, SessionDep, StateDep
from api.finance import service as finance_service
from api.finance.schemas import DecisionRequest, FinancePaymentView
from api.ledger import service as ledger_service
from api.ledger.schemas import LedgerAccountPage
from api.pages import templates
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
from api.throttle import TooManyAttempts
from domain.errors import BackOfficeError, Forbidden, NotAuthenticated
from domain.payments import PaymentDirection, PaymentStatus

router = APIRouter(prefix="/console", tags=["console"])
FINANCE_PAGE = "/console/finance"
ATTENTION = ("rejected", "unmatched", "needs_review")


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public)])
async def login_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "console_login.html", {})


@router.post(
    "/login", response_class=HTMLResponse, response_model=None, dependencies=[Depends(public)]
)
async def log_in(
    form: Annotated[ConsoleLogin, Form()],
    request: Request,
    session: SessionDep,
    state: StateDep,
    context: ContextDep,
) -> HTMLResponse | RedirectResponse:
    settings = state.settings
    try:
        credentials = StaffLoginRequest.model_validate(form.model_dump())
        token = await auth_service.log_in_staff(session, credentials, state, context)
    except ValidationError:
        return _login_refused(request, auth_service.WRONG_CREDENTIALS, 401)
    except TooManyAttempts as exc:
        refused = _login_refused(request, exc.detail, exc.status_code)
        refused.headers["Retry-After"] = str(exc.retry_after_seconds)
        return refused
    except (NotAuthenticated, Forbidden) as exc:
        return _login_refused(request, exc.detail, exc.status_code)
    response = RedirectResponse(FINANCE_PAGE, status_code=303)
    response.set_cookie(
        CONSOLE_COOKIE,
        token.access_token,
        max_age=token.expires_in,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or settings.env == "prod",
    )
    return response


@router.post("/logout", dependencies=[Depends(public)])
async def log_out(
    session: SessionDep,
    state: StateDep,
    context: ContextDep,
    console_token: ConsoleCookie = None,
) -> RedirectResponse:
    """End the console's session on the server (its token is refused from now on, wherever it
    was copied to) and drop the cookie."""
    if console_token:
        try:
            staff = await signed_in.authorise(console_token, session, state.settings, context)
        except (NotAuthenticated, Forbidden):
            staff = None  # an ended or foreign session: nothing to end, still drop the cookie
        if staff is not None:
            await auth_service.log_out(session, staff, everywhere=False, now=state.clock())
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(CONSOLE_COOKIE, path="/console")
    return response


@router.get("/finance", response_class=HTMLResponse)
async def finance_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    status: PaymentStatus | None = None,
    direction: PaymentDirection | None = None,
    notice: Annotated[str, Query(max_length=300)] = "",
    error: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:
    """Pending approvals with their forms, recent payments, webhooks that want a look."""
    payments = await finance_service.payments(
        session, status=status, direction=direction, limit=100
    )
    webhooks = [
        event
        for event in await finance_service.webhook_events(
            session, outcome=None, provider=None, limit=200, offset=0
        )
        if event.outcome in ATTENTION
    ][:20]
    return _page(
        request,
        "console_finance.html",
        staff,
        approvals=await finance_service.pending_approvals(session),
        payments=[FinancePaymentView.of(p) for p in payments],
        webhooks=webhooks,
        statuses=[s.value for s in PaymentStatus],
        directions=[d.value for d in PaymentDirection],
        status=status.value if status else "",
        direction=direction.value if direction else "",
        notice=notice,
        error=error,
    )


@router.get("/ledger", response_class=HTMLResponse)
async def ledger_page(
    request: Request,
    staff: ConsoleFinanceReader,
    session: SessionDep,
    code: Annotated[str | None, Query(min_length=3, max_length=200)] = None,
) -> HTMLResponse:
    """Ledger accounts with balances; with `code`, the entries touching that account."""
    if code:
        try:
            entries = await ledger_service.entries(session, code, limit=200, offset=0)
        except BackOfficeError as exc:
            accounts = await _all_accounts(session)
            return _page(request, "console_ledger.html", staff, accounts=accounts, error=exc.detail)
        return _page(request, "console_ledger.html", staff, entries=entries)
    return _page(request, "console_ledger.html", staff, accounts=await _all_accounts(session))


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
    if officer.csrf is not None and not hmac.compare_digest(form.csrf, officer.csrf):
        raise Forbidden("this form did not come from your console session; reload the page")
    try:
        request = DecisionRequest(approve=form.decision == "approve", reason=form.reason)
        result = await finance_service.decide(
            session, state.temporal, officer, payment_id, direction, request
        )
    except ValidationError:
        return _back(error="give a reason of at least 3 characters")
    except BackOfficeError as exc:
        return _back(error=exc.detail)
    return _back(
        notice=f"{direction.value} {payment_id}: {form.decision}d; now {result.status}"
        f" ({result.approvals} approval{'s' if result.approvals != 1 else ''})"
    )


def _back(**message: str) -> RedirectResponse:
    return RedirectResponse(f"{FINANCE_PAGE}?{urlencode(message)}", status_code=303)


def _login_refused(request: Request, reason: str, status: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "console_login.html", {"error": reason}, status_code=status
    )


async def _all_accounts(session: AsyncSession) -> LedgerAccountPage:
    return await ledger_service.accounts(
        session, kind=None, currency=None, code_prefix=None, limit=200, offset=0
    )


def _page(request: Request, name: str, staff: Principal, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "principal": staff,
            "roles": {role.value for role in staff.roles},
            "csrf": staff.csrf,
            **context,
        },
    )
