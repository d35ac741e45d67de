"""Security headers: every answer says `nosniff` and sends no referrer; console pages get a
Content-Security-Policy (scripts only with the page's nonce, no framing, forms to this origin)
and are not cached (they show clients' personal data)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

CONSOLE_PREFIX = "/console"


def console_csp(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    console = request.url.path == CONSOLE_PREFIX or request.url.path.startswith(
        CONSOLE_PREFIX + "/"
    )
    nonce = secrets.token_urlsafe(16)
    request.state.csp_nonce = nonce
    response = await call_next(request)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if console:
        # A download sets its own, stricter policy (sandboxed, nothing runs).
        headers.setdefault("Content-Security-Policy", console_csp(nonce))
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cache-Control", "no-store")
    return response
