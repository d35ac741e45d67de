from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from api.deps import SecretBoxDep, SessionDep
from api.me import service
from api.me.schemas import (
    ApplicationView,
    ClientProfile,
    Mt5AccountView,
    Mt5Credentials,
    NotificationView,
)
from api.policy import ClientPrincipal
from api.problems import error_responses
from api.schemas import Limit, Mt5Login, Offset

router = APIRouter(prefix="/v1/me", tags=["client self-service"])
NOT_YOURS = error_responses({404: "no such object among yours"})


@router.get("")
async def my_profile(me: ClientPrincipal, session: SessionDep) -> ClientProfile:
    return ClientProfile.model_validate(await service.profile(session, me.id))


@router.get("/accounts")
async def my_accounts(me: ClientPrincipal, session: SessionDep) -> list[Mt5AccountView]:
    """Your MT5 accounts; a new demo account appears here once its workflow has finished."""
    return await service.account_views(session, await service.accounts(session, me.id))


@router.get("/accounts/{login}", responses=NOT_YOURS)
async def my_account(login: Mt5Login, me: ClientPrincipal, session: SessionDep) -> Mt5AccountView:
    [view] = await service.account_views(
        session, [await service.own_account(session, me.id, login)]
    )
    return view


@router.post(
    "/accounts/{login}/credentials",
    responses=error_responses({404: "no such object among yours", 410: "already handed over"}),
)
async def reveal_my_credentials(
    login: Mt5Login, me: ClientPrincipal, session: SessionDep, box: SecretBoxDep, response: Response
) -> Mt5Credentials:
    """The MT5 passwords of a new account, shown exactly once (never cached on the way)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return await service.reveal_credentials_once(session, me, login, box)


@router.get("/applications")
async def my_applications(me: ClientPrincipal, session: SessionDep) -> list[ApplicationView]:
    return [ApplicationView.model_validate(a) for a in await service.applications(session, me.id)]


@router.get("/applications/{application_id}", responses=NOT_YOURS)
async def my_application(
    application_id: UUID, me: ClientPrincipal, session: SessionDep
) -> ApplicationView:
    return ApplicationView.model_validate(
        await service.own_application(session, me.id, application_id)
    )


@router.get("/notifications")
async def my_notifications(
    me: ClientPrincipal, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> list[NotificationView]:
    """Messages about your payments and transfers, newest first."""
    rows = await service.notifications(session, me.id, limit, offset)
    return [NotificationView.model_validate(n) for n in rows]
