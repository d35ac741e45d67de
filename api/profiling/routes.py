"""Client profiles: list and detail with the explanation (dealers, risk, admins and the
auditor), and the dealer's decision: accept the suggested book or override it (dealers, risk
and admins; audited with the book before and after)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import SessionDep, SettingsDep, StateDep
from api.problems import error_responses
from api.profiling import service
from api.profiling.schemas import AcceptBook, DecisionView, OverrideBook, ProfileDetail, ProfilePage
from api.risk.policies import RiskDesk, RiskReader
from api.risk.schemas import SERVER_PATTERN, Login, ServerName
from domain.profiling import Profile

router = APIRouter(prefix="/v1/profiles", tags=["profiling"])

DECISION_ERRORS = error_responses(
    {
        404: "no profile of that account",
        409: "an earlier decision is still moving the account",
        503: "workflow engine down: nothing decided",
    }
)


@router.get("")
async def list_profiles(
    _: RiskReader,
    session: SessionDep,
    server: Annotated[str | None, Query(pattern=SERVER_PATTERN)] = None,
    profile: Profile | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ProfilePage:
    """The latest profile of each account, the most recently computed first."""
    return await service.profiles(
        session,
        server=server,
        profile=None if profile is None else profile.value,
        limit=limit,
        offset=offset,
    )


@router.get("/{server}/{login}", responses=error_responses({404: "no profile of that account"}))
async def get_profile(
    server: ServerName, login: Login, _: RiskReader, session: SessionDep
) -> ProfileDetail:
    """One account's profile: the conditions that made it, its metrics, its book now and the
    dealer's decisions on it."""
    return await service.profile(session, server, login)


@router.post(
    "/{server}/{login}/accept", status_code=status.HTTP_202_ACCEPTED, responses=DECISION_ERRORS
)
async def accept_book(
    server: ServerName,
    login: Login,
    body: AcceptBook,
    staff: RiskDesk,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> DecisionView:
    """Accept the suggested book: the account moves to that book's MT5 group (`moving`, then
    `applied`, or `failed` with MT5's reason)."""
    return await service.decide(
        session, state.temporal, settings, staff, server, login, book=None, reason=body.reason
    )


@router.post(
    "/{server}/{login}/override", status_code=status.HTTP_202_ACCEPTED, responses=DECISION_ERRORS
)
async def override_book(
    server: ServerName,
    login: Login,
    body: OverrideBook,
    staff: RiskDesk,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> DecisionView:
    """Another book than the suggestion, with the reason: the account moves to its group."""
    return await service.decide(
        session,
        state.temporal,
        settings,
        staff,
        server,
        login,
        book=body.book,
        a_share=body.a_share,
        reason=body.reason,
    )
