"""The Jinja2 environment of the server-rendered pages (the staff console and the IB portal),
shared by every module that renders one, and the helpers their route modules share."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from api.auth.schemas import AccessToken
from api.auth.service import WRONG_CREDENTIALS
from api.policy import CONSOLE_COOKIE, Principal
from api.throttle import TooManyAttempts
from domain.errors import Forbidden, NotAuthenticated

if TYPE_CHECKING:
    from settings import Settings

CENTS = Decimal("0.01")

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def server_time(seconds: int | None) -> str:
    """Trade-server-clock Unix seconds (IB periods, deal times) as the server's wall time: the
    same digits MT5 shows, with no time zone (it is the broker's day, not UTC)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def money(amount: Decimal) -> str:
    """An amount with thousands separators, at least two decimals and no more than it has
    (commission rows keep their exact sub-cent part; rounding is the payout's business)."""
    exact = amount.normalize()
    shown = amount.quantize(CENTS) if exact.as_tuple().exponent > -2 else exact  # type: ignore[operator]
    return f"{shown:,f}"


templates.env.filters["server_time"] = server_time
templates.env.filters["money"] = money


def render(request: Request, name: str, principal: Principal, **context: object) -> HTMLResponse:
    """A console page for a signed-in principal: the navigation reads its kind and roles, and
    forms carry its anti-forgery value."""
    return templates.TemplateResponse(
        request,
        name,
        {
            "principal": principal,
            "roles": {role.value for role in principal.roles},
            "csrf": principal.csrf,
            **context,
        },
    )


def check_csrf(principal: Principal, value: str) -> None:
    """A console form must echo the session's anti-forgery value (a bearer caller has none)."""
    if principal.csrf is not None and not hmac.compare_digest(value, principal.csrf):
        raise Forbidden("this form did not come from your console session; reload the page")


def back(path: str, **message: str) -> RedirectResponse:
    """After a form: back to `path` with a notice or an error to show (post/redirect/get)."""
    return RedirectResponse(f"{path}?{urlencode(message)}", status_code=303)


def pdf_response(content: bytes, filename: str, *, download: bool) -> Response:
    """A PDF under /console: inline for a page's frame or as a download. Framed by this
    origin's pages only (the console's own policy forbids any framing), never cached, never
    sniffed as anything else; its own policy runs nothing."""
    disposition = "attachment" if download else "inline"
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )


def signed_in(
    location: str, access_token: str, expires_in: int, request: Request, settings: Settings
) -> RedirectResponse:
    """After a console log-in (staff or IB): the session's access token in an HttpOnly,
    SameSite=Strict cookie scoped to /console, and on to `location`."""
    response = RedirectResponse(location, status_code=303)
    response.set_cookie(
        CONSOLE_COOKIE,
        access_token,
        max_age=expires_in,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or settings.env == "prod",
    )
    return response


def page_url(request: Request, **changes: object) -> str:
    """This page's address with some query parameters changed (paging links keep the
    filters and the other lists' pages); a change to None drops the parameter."""
    query = dict(request.query_params)
    for name in ("notice", "error"):
        query.pop(name, None)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = str(value)
    return f"{request.url.path}?{urlencode(query)}" if query else request.url.path


templates.env.globals["page_url"] = page_url


async def console_log_in(
    log_in: Callable[[], Awaitable[AccessToken]],
    refused: Callable[[str, int], HTMLResponse],
) -> AccessToken | HTMLResponse:
    """A console log-in is the API's (same throttle, same server-side session); its refusals are
    the log-in page again with the reason, and `Retry-After` while throttled."""
    try:
        return await log_in()
    except ValidationError:
        return refused(WRONG_CREDENTIALS, 401)
    except TooManyAttempts as exc:
        page = refused(exc.detail, exc.status_code)
        page.headers["Retry-After"] = str(exc.retry_after_seconds)
        return page
    except (NotAuthenticated, Forbidden) as exc:
        return refused(exc.detail, exc.status_code)
