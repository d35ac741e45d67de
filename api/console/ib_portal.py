"""The IB portal's pages: an introducing broker logs in (email and password, as
`POST /v1/auth/ib/login`) and sees its tree, its clients (names masked), its commission rows
with their calculation traces, and its payouts with their statements, its own only.

The same session machinery as the staff console: a server-side session (`api.sessions`), its
access token in the HttpOnly, SameSite=Strict cookie scoped to /console. The pages only read;
the one form (log-out) is the console's.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import service as auth_service
from api.auth.schemas import LoginRequest
from api.console.schemas import LOGIN_REFUSALS, ConsoleIbLogin
from api.deps import ContextDep, SessionDep, StateDep, documents_of
from api.ib import payouts_service as service
from api.ib.payouts_schemas import CommissionRowView
from api.ib.service import own_profile
from api.pages import console_log_in, pdf_response, render, signed_in, templates
from api.policy import ConsolePolicy, Principal, public
from api.schemas import BeforeId

router = APIRouter(prefix="/console/ib", tags=["console"])
HOME = "/console/ib"
COMMISSIONS_PER_PAGE = 50

# Introducing brokers only, from the console cookie (or the bearer header, as every console page).
console_ibs = ConsolePolicy("console: introducing brokers", ibs=True)
ConsoleIb = Annotated[Principal, Depends(console_ibs)]


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public)])
async def login_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "console_ib_login.html", {})


@router.post(
    "/login",
    response_class=HTMLResponse,
    response_model=None,
    dependencies=[Depends(public)],
    responses=LOGIN_REFUSALS,
)
async def log_in(
    form: Annotated[ConsoleIbLogin, Form()],
    request: Request,
    session: SessionDep,
    state: StateDep,
    context: ContextDep,
) -> HTMLResponse | RedirectResponse:
    """The API's IB log-in (same throttle, same session), its token kept in the console cookie."""
    token = await console_log_in(
        lambda: auth_service.log_in_ib(
            session, LoginRequest.model_validate(form.model_dump()), state, context
        ),
        lambda reason, status: _refused(request, reason, status),
    )
    if isinstance(token, HTMLResponse):
        return token
    return signed_in(HOME, token.access_token, token.expires_in, request, state.settings)


@router.get("", response_class=HTMLResponse)
async def home(request: Request, me: ConsoleIb, session: SessionDep) -> HTMLResponse:
    """The IB, what it has earned per currency, and its tree: itself and every sub-IB."""
    return render(
        request,
        "console_ib_home.html",
        me,
        ib=await own_profile(session, me.id),
        tree=service.outline(await service.tree_of(session, me.id)),
        totals=await service.commission_totals(session, me.id),
    )


@router.get("/clients", response_class=HTMLResponse)
async def clients(request: Request, me: ConsoleIb, session: SessionDep) -> HTMLResponse:
    """The MT5 logins attributed to the IB's tree, names masked, with the IB each belongs to."""
    tree = await service.tree_of(session, me.id)
    return render(
        request,
        "console_ib_clients.html",
        me,
        clients=await service.clients_of(session, me.id),
        names={member.id: member.name for member in tree},
    )


@router.get("/commissions", response_class=HTMLResponse)
async def commissions(
    request: Request,
    me: ConsoleIb,
    session: SessionDep,
    before_id: BeforeId = None,
) -> HTMLResponse:
    """The IB's commission rows, newest first, a page at a time (older: `before_id`), each
    with its calculation trace."""
    rows = await service.commissions_of(session, me.id, COMMISSIONS_PER_PAGE + 1, before_id)
    shown = [CommissionRowView.model_validate(r) for r in rows[:COMMISSIONS_PER_PAGE]]
    return render(
        request,
        "console_ib_commissions.html",
        me,
        rows=shown,
        older=shown[-1].id if len(rows) > COMMISSIONS_PER_PAGE else None,
        paged=before_id is not None,
    )


@router.get("/payouts", response_class=HTMLResponse)
async def payouts(
    request: Request, me: ConsoleIb, session: SessionDep, state: StateDep
) -> HTMLResponse:
    own = await service.own_payouts(session, me.id, state.settings.ib.four_eyes_above)
    return render(request, "console_ib_statements.html", me, payouts=own)


@router.get("/payouts/{payout_id}/statement", response_class=Response)
async def statement(
    payout_id: UUID, me: ConsoleIb, session: SessionDep, state: StateDep, download: bool = True
) -> Response:
    """The IB's own statement (another IB's payout is a 404), as a download by default."""
    _payout, content = await service.statement(session, documents_of(state), payout_id, me.id)
    return pdf_response(content, f"ib-statement-{payout_id}.pdf", download=download)


def _refused(request: Request, reason: str, status: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "console_ib_login.html", {"error": reason}, status_code=status
    )
