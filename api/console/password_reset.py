"""The console's "forgot password" and "set new password" pages, for staff (`/console/...`) and
introducing brokers (`/console/ib/...`): forms over the API's own reset service (same answers
for known and unknown addresses, same throttle, same audit), refusals shown on the page again.

The mailed link carries its token in the fragment (`#token=`), which the browser never sends:
the page's script (under the page's CSP nonce) copies it into the form's hidden field.

A refusal is the form again with the reason, at the refusal's status (429 with Retry-After);
every one comes before anything is written but the throttle's own count (kept in a transaction
of its own). A failure of the server (503) is a problem, as from the API, and keeps nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.auth import password_reset
from api.auth.schemas import (
    ConsoleResetConfirm,
    ConsoleResetRequest,
    PasswordResetConfirm,
    PasswordResetDone,
    PasswordResetRequest,
    StaffPasswordResetConfirm,
)
from api.deps import ContextDep, SessionDep, StateDep
from api.pages import templates
from api.policy import public
from api.throttle import TooManyAttempts
from domain.errors import BackOfficeError

router = APIRouter(prefix="/console", tags=["console"], dependencies=[Depends(public)])

_PAGE_AGAIN: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
REQUEST_REFUSALS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "a malformed email: the form again, with the reason",
        "content": _PAGE_AGAIN,
    },
    429: {
        "description": "too many requests: the form again, with the reason",
        "content": _PAGE_AGAIN,
    },
}
CONFIRM_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "staff: an address outside the staff user's allowlist: the form again",
        "content": _PAGE_AGAIN,
    },
    422: {
        "description": "the token is not valid, expired or used, the one-time code is wrong, or "
        "the new password breaks the rules: the form again, with the reason",
        "content": _PAGE_AGAIN,
    },
    429: {
        "description": "too many refused tokens: the form again, with the reason",
        "content": _PAGE_AGAIN,
    },
}
SENT = (
    "if an account has this address, a mail with a link to choose a new password is on its way; "
    "the link works once"
)


def _add_pages(prefix: str, audience: password_reset.Audience) -> None:
    """The two pages and their forms of one kind of principal, under `prefix`."""
    staff = audience is password_reset.STAFF
    who = "a staff account" if staff else "an IB account"

    @router.get(
        f"{prefix}/forgot-password",
        response_class=HTMLResponse,
        description=f"Ask for a reset link by mail ({who}).",
    )
    async def forgot_page(request: Request) -> HTMLResponse:
        return _forgot(request, staff=staff)

    @router.post(
        f"{prefix}/forgot-password",
        response_class=HTMLResponse,
        responses=REQUEST_REFUSALS,
        description=f"The same page and answer whether or not the address has {who}.",
    )
    async def forgot(
        form: Annotated[ConsoleResetRequest, Form()],
        request: Request,
        session: SessionDep,
        state: StateDep,
        context: ContextDep,
    ) -> HTMLResponse:
        async def ask() -> object:
            body = PasswordResetRequest(email=form.email)
            return await password_reset.request_reset(session, body, state, context, audience)

        return await _ask(request, staff, ask)

    @router.get(
        f"{prefix}/reset-password",
        response_class=HTMLResponse,
        description="The mailed link's page: the new password"
        + (" and a current one-time code." if staff else "."),
    )
    async def reset_page(request: Request) -> HTMLResponse:
        return _reset(request, staff=staff)

    @router.post(
        f"{prefix}/reset-password",
        response_class=HTMLResponse,
        responses=CONFIRM_REFUSALS,
        description="Set the new password with the mailed token"
        + (" and a current one-time code" if staff else "")
        + "; every session of the account ends.",
    )
    async def reset(
        form: Annotated[ConsoleResetConfirm, Form()],
        request: Request,
        session: SessionDep,
        state: StateDep,
        context: ContextDep,
    ) -> HTMLResponse:
        async def confirm() -> PasswordResetDone:
            body = (
                StaffPasswordResetConfirm.model_validate(form.model_dump())
                if staff
                else PasswordResetConfirm.model_validate(form.model_dump(exclude={"totp_code"}))
            )
            return await password_reset.confirm_reset(session, body, state, context, audience)

        return await _set(request, staff, form.token, confirm)


_add_pages("", password_reset.STAFF)
_add_pages("/ib", password_reset.IBS)


def _forgot(request: Request, *, staff: bool, status: int = 200, **context: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "console_forgot_password.html",
        {"staff": staff, "login": _login(staff), **context},
        status_code=status,
    )


def _reset(request: Request, *, staff: bool, status: int = 200, **context: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "console_reset_password.html",
        {"staff": staff, "login": _login(staff), **context},
        status_code=status,
    )


def _login(staff: bool) -> str:
    return "/console/login" if staff else "/console/ib/login"


async def _ask(request: Request, staff: bool, ask: Callable[[], Awaitable[object]]) -> HTMLResponse:
    try:
        await ask()
    except ValidationError:
        return _forgot(request, staff=staff, status=422, error="give a valid email address")
    except BackOfficeError as refused:
        if refused.status_code >= 500:
            raise  # nothing is kept (the request rolls back): a problem, as from the API
        page = _forgot(request, staff=staff, status=refused.status_code, error=refused.detail)
        return _refused(page, refused)
    return _forgot(request, staff=staff, notice=SENT, sent="yes")


async def _set(
    request: Request,
    staff: bool,
    token: str,
    confirm: Callable[[], Awaitable[PasswordResetDone]],
) -> HTMLResponse:
    """The form again on a refusal, carrying the token back (the page is never cached), so a
    mistyped code or a refused password does not need the link again."""
    try:
        done = await confirm()
    except ValidationError as invalid:
        reason = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in invalid.errors()
        )
        return _reset(request, staff=staff, status=422, error=reason, token=token)
    except BackOfficeError as refused:
        if refused.status_code >= 500:
            raise
        # Every refusal comes before anything is changed: the request's transaction keeps nothing.
        page = _reset(
            request, staff=staff, status=refused.status_code, error=refused.detail, token=token
        )
        return _refused(page, refused)
    ended = done.sessions_ended
    notice = (
        f"your new password is set; {ended} session{'s' if ended != 1 else ''} ended. "
        "Log in with it."
    )
    return _reset(request, staff=staff, notice=notice, done="yes")


def _refused(page: HTMLResponse, refused: BackOfficeError) -> HTMLResponse:
    if isinstance(refused, TooManyAttempts):
        page.headers["Retry-After"] = str(refused.retry_after_seconds)
    return page
