"""Security headers: every answer says `nosniff` and sends no referrer; console pages get a
Content-Security-Policy (scripts only with the page's nonce, no framing, forms to this origin)
and are not cached (they show clients' personal data).

A plain ASGI middleware (not `BaseHTTPMiddleware`, which runs the rest of the app in a task of
its own with memory streams between them: a measurable share of the event loop per request). It
adds the headers to the `http.response.start` message, so streaming answers get them too; an
answer that already names a header keeps its own value.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import URL, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def _is_console(scope: Scope) -> bool:
    path: str = scope["path"]
    if not path.startswith(CONSOLE_PREFIX):
        return False
    path = URL(scope=scope).path  # as `request.url.path` reads it (cut at `?` or `#`)
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class SecurityHeaders:
    """Puts the page's CSP nonce in `request.state.csp_nonce` and the headers on the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        console = _is_console(scope)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if console:
                    # A download sets its own, stricter policy (sandboxed, nothing runs).
                    headers.setdefault("Content-Security-Policy", console_csp(nonce))
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
