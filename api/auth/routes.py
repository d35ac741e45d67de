from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import service
from api.auth.schemas import AccessToken, LoginRequest, StaffLoginRequest
from api.deps import ContextDep, SecretBoxDep, SessionDep, SettingsDep
from api.policy import public
from api.problems import error_responses

router = APIRouter(prefix="/v1/auth", tags=["auth"], dependencies=[Depends(public)])
UNAUTHENTICATED = error_responses({401: "wrong credentials", 403: "blocked"})


@router.post("/client/login", responses=UNAUTHENTICATED)
async def log_in_client(
    body: LoginRequest, session: SessionDep, settings: SettingsDep
) -> AccessToken:
    return await service.log_in_client(session, body, settings)


@router.post("/ib/login", responses=UNAUTHENTICATED)
async def log_in_ib(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> AccessToken:
    return await service.log_in_ib(session, body, settings)


@router.post("/staff/login", responses=UNAUTHENTICATED)
async def log_in_staff(
    body: StaffLoginRequest,
    session: SessionDep,
    settings: SettingsDep,
    box: SecretBoxDep,
    context: ContextDep,
) -> AccessToken:
    """Staff log in with password and TOTP code, from an address in their allowlist."""
    return await service.log_in_staff(session, body, settings, box, context)
