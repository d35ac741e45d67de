"""The client profiles page (/console/profiles): each account's profile with its classification
badge and explanation, and the dealer's accept / override forms (the same service as the API,
audited; the move to the MT5 group runs as a `BookMove` workflow)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep, SettingsDep, StateDep
from api.pages import back, check_csrf, render
from api.profiling import service
from api.profiling.schemas import ConsoleDecisionForm
from api.risk.policies import RISK_DESK, ConsoleRiskDesk, ConsoleRiskReader
from api.risk.schemas import SERVER_PATTERN, Login, ServerName
from domain.errors import BackOfficeError
from domain.profiling import Profile

router = APIRouter(prefix="/console/profiles", tags=["console"])
PAGE = "/console/profiles"
SHARE = re.compile(r"^0\.[0-9]{1,6}$")


@router.get("", response_class=HTMLResponse)
async def profiles_page(
    request: Request,
    staff: ConsoleRiskReader,
    session: SessionDep,
    server: Annotated[str | None, Query(pattern=SERVER_PATTERN)] = None,
    profile: Profile | None = None,
    notice: Annotated[str | None, Query(max_length=300)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    page = await service.profiles(
        session,
        server=server,
        profile=None if profile is None else profile.value,
        limit=200,
        offset=0,
    )
    return render(
        request,
        "console_profiles.html",
        staff,
        page=page,
        profiles_known=[p.value for p in Profile],
        selected=None if profile is None else profile.value,
        can_decide=staff.has_role(*RISK_DESK),
        notice=notice,
        error=error,
    )


@router.post("/{server}/{login}/accept")
async def accept_book_form(
    server: ServerName,
    login: Login,
    form: Annotated[ConsoleDecisionForm, Form()],
    staff: ConsoleRiskDesk,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> RedirectResponse:
    check_csrf(staff, form.csrf)
    reason = form.reason.replace("\x00", "").strip()[:500] or None
    try:
        decision = await service.decide(
            session, state.temporal, settings, staff, server, login, book=None, reason=reason
        )
    except BackOfficeError as exc:
        return back(PAGE, error=exc.detail[:300])
    return back(PAGE, notice=f"{login}: moving to book {decision.book} ({decision.target_group})")


@router.post("/{server}/{login}/override")
async def override_book_form(
    server: ServerName,
    login: Login,
    form: Annotated[ConsoleDecisionForm, Form()],
    staff: ConsoleRiskDesk,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> RedirectResponse:
    check_csrf(staff, form.csrf)
    reason = form.reason.replace("\x00", "").strip()[:500]
    share = form.a_share.strip()
    if not form.book or not reason:
        return back(PAGE, error="an override needs a book and a reason")
    if share and not SHARE.fullmatch(share):
        return back(PAGE, error='give the share as a decimal such as "0.25"')
    try:
        decision = await service.decide(
            session,
            state.temporal,
            settings,
            staff,
            server,
            login,
            book=form.book,
            a_share=Decimal(share) if share else None,
            reason=reason,
        )
    except BackOfficeError as exc:
        return back(PAGE, error=exc.detail[:300])
    return back(PAGE, notice=f"{login}: moving to book {decision.book} ({decision.target_group})")
