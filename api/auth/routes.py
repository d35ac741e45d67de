from __future__ import annotations

from fastapi import APIRouter, Depends, status

from api.auth import password_reset, service
from api.auth.schemas import (
    AccessToken,
    LoggedOut,
    LoginRequest,
    LogoutRequest,
    PasswordResetConfirm,
    PasswordResetDone,
    PasswordResetRequest,
    PasswordResetRequested,
    RefreshRequest,
    StaffLoginRequest,
    StaffPasswordResetConfirm,
)
from api.deps import ContextDep, SessionDep, StateDep
from api.policy import SignedIn, public
from api.problems import error_responses

router = APIRouter(prefix="/v1/auth", tags=["auth"], dependencies=[Depends(public)])
UNAUTHENTICATED = error_responses(
    {
        401: "wrong credentials",
        403: "blocked",
        429: "too many failed attempts for this account or from this address (Retry-After)",
    }
)


@router.post("/client/login", responses=UNAUTHENTICATED)
async def log_in_client(
    body: LoginRequest, session: SessionDep, state: StateDep, context: ContextDep
) -> AccessToken:
    return await service.log_in_client(session, body, state, context)


@router.post("/ib/login", responses=UNAUTHENTICATED)
async def log_in_ib(
    body: LoginRequest, session: SessionDep, state: StateDep, context: ContextDep
) -> AccessToken:
    return await service.log_in_ib(session, body, state, context)


@router.post("/staff/login", responses=UNAUTHENTICATED)
async def log_in_staff(
    body: StaffLoginRequest, session: SessionDep, state: StateDep, context: ContextDep
) -> AccessToken:
    """Staff log in with password and TOTP code, from an address in their allowlist."""
    return await service.log_in_staff(session, body, state, context)


@router.post(
    "/refresh",
    responses=error_responses(
        {401: "refresh token not valid, expired, already used (which ends the session) or revoked"}
    ),
)
async def refresh(body: RefreshRequest, state: StateDep) -> AccessToken:
    """A new access token and a new refresh token for the session; the one presented stops
    working, and presenting it again ends the session."""
    return await service.refresh(body.refresh_token, state)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        {
            422: "the email is missing or malformed",
            429: "too many reset requests for this email or from this address (Retry-After)",
            503: "workflow engine down; nothing was recorded",
        }
    ),
)
async def request_password_reset(
    body: PasswordResetRequest, session: SessionDep, state: StateDep, context: ContextDep
) -> PasswordResetRequested:
    """A client who forgot their password asks for a link by mail. The answer is the same
    whether or not the address has an account; the link works once, for a limited time."""
    return await password_reset.request_reset(session, body, state, context)


@router.post(
    "/password-reset/confirm",
    responses=error_responses(
        {
            422: "the token is not valid, expired or already used, or the new password breaks "
            "the password rules (12-128 characters, three of lower, upper, digit, other)",
            429: "too many refused tokens from this address or for this account (Retry-After)",
        }
    ),
)
async def confirm_password_reset(
    body: PasswordResetConfirm, session: SessionDep, state: StateDep, context: ContextDep
) -> PasswordResetDone:
    """Choose a new password with the mailed token: the token is spent and every session of the
    account ends (log in again with the new password)."""
    return await password_reset.confirm_reset(session, body, state, context)


RESET_REQUESTED = error_responses(
    {
        422: "the email is missing or malformed",
        429: "too many reset requests for this email or from this address (Retry-After)",
        503: "workflow engine down; nothing was recorded",
    }
)


@router.post(
    "/staff/password-reset", status_code=status.HTTP_202_ACCEPTED, responses=RESET_REQUESTED
)
async def request_staff_password_reset(
    body: PasswordResetRequest, session: SessionDep, state: StateDep, context: ContextDep
) -> PasswordResetRequested:
    """A staff user who forgot their password asks for a link by mail (the same answer whether
    or not the address has an account); setting the new password also needs their TOTP code."""
    return await password_reset.request_reset(session, body, state, context, password_reset.STAFF)


@router.post(
    "/staff/password-reset/confirm",
    responses=error_responses(
        {
            403: "the confirmation comes from an address outside the staff user's allowlist",
            422: "the token is not valid, expired or already used, the one-time code is wrong, "
            "or the new password breaks the password rules (12-128 characters, three of lower, "
            "upper, digit, other)",
            429: "too many refused tokens or codes from this address or for this account "
            "(Retry-After)",
        }
    ),
)
async def confirm_staff_password_reset(
    body: StaffPasswordResetConfirm, session: SessionDep, state: StateDep, context: ContextDep
) -> PasswordResetDone:
    """Choose a new password with the mailed token and a current code of your authenticator app:
    the token is spent and every session of the account ends (log in again)."""
    return await password_reset.confirm_reset(session, body, state, context, password_reset.STAFF)


@router.post("/ib/password-reset", status_code=status.HTTP_202_ACCEPTED, responses=RESET_REQUESTED)
async def request_ib_password_reset(
    body: PasswordResetRequest, session: SessionDep, state: StateDep, context: ContextDep
) -> PasswordResetRequested:
    """An introducing broker who forgot their password asks for a link by mail (the same answer
    whether or not the address has an account)."""
    return await password_reset.request_reset(session, body, state, context, password_reset.IBS)


@router.post(
    "/ib/password-reset/confirm",
    responses=error_responses(
        {
            422: "the token is not valid, expired or already used, or the new password breaks "
            "the password rules (12-128 characters, three of lower, upper, digit, other)",
            429: "too many refused tokens from this address or for this account (Retry-After)",
        }
    ),
)
async def confirm_ib_password_reset(
    body: PasswordResetConfirm, session: SessionDep, state: StateDep, context: ContextDep
) -> PasswordResetDone:
    """Choose a new password with the mailed token: the token is spent and every session of the
    account ends (log in again)."""
    return await password_reset.confirm_reset(session, body, state, context, password_reset.IBS)


session_router = APIRouter(prefix="/v1/auth", tags=["auth"])


@session_router.post("/logout", responses=error_responses({401: "not logged in"}))
async def log_out(
    body: LogoutRequest, me: SignedIn, session: SessionDep, state: StateDep
) -> LoggedOut:
    """End this session (`everywhere: false`) or every session of yours (`true`): their access
    and refresh tokens are refused from the next request on."""
    return await service.log_out(session, me, body.everywhere, state.clock())
