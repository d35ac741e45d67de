"""Every error leaves as `application/problem+json` (RFC 9457) with a reason a person can act on."""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from domain.errors import BackOfficeError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _business_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackOfficeError)
    if (
        exc.status_code in (401, 403)
        and request.url.path.startswith("/console/")
        and "text/html" in request.headers.get("accept", "")
    ):
        if exc.status_code == 401 and request.method == "GET":
            return _to_login(request)
        return _console_refusal(exc)
    retry_after = getattr(exc, "retry_after_seconds", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return problem(exc.status_code, exc.title, exc.detail, headers, **exc.extra)


def _to_login(request: Request) -> RedirectResponse:
    """A console page asked for without a session: to the log-in page (the IB portal's for its
    pages), which comes back to the page asked for once logged in."""
    path = request.url.path
    portal = path == "/console/ib" or path.startswith("/console/ib/")
    login = "/console/ib/login" if portal else "/console/login"
    back = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{login}?{urlencode({'next': back})}", status_code=303)


def _console_refusal(exc: BackOfficeError) -> HTMLResponse:
    """A person in a browser gets a page with the way to the log-in, same status."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>BrokerFlow console: {html.escape(exc.title)}</title></head><body>"
        f"<h1>{html.escape(exc.title)}</h1><p>{html.escape(exc.detail)}</p>"
        '<p><a href="/console/login">Log in to the console</a></p></body></html>'
    )
    return HTMLResponse(body, status_code=exc.status_code)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "reason": error.get("msg", "invalid"),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or 'request'}: {e['reason']}" for e in errors[:5])
    return problem(422, "Invalid input", summary or "the request is not valid", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
    return problem(exc.status_code, str(exc.detail), str(exc.detail), headers or None)


def allowed_methods(request: Request) -> set[str]:
    """Every method the path answers: Starlette's own `Allow` names only the first route that
    matched the path, while FastAPI makes one route per method (GET and POST on one path)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(route_methods)
    return methods


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    # Two requests raced past the same check (e.g. one email signing up twice at once).
    log.warning("constraint refused a request: %s", type(exc).__name__)
    return problem(409, "Conflict", "the request conflicts with stored data and was not applied")


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database refused a value: %s", type(exc).__name__)
    return problem(422, "Invalid input", "a value is out of range for what can be stored")


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", type(exc).__name__)
    return problem(503, "Service unavailable", "the database is not reachable; try again shortly")


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "something went wrong on our side; nothing was applied")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BackOfficeError, _business_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    app.add_exception_handler(Exception, _unexpected_error)


def error_responses(reasons: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problem answers a route can give."""
    return {
        status: {"description": reason, "content": {PROBLEM_JSON: {}}}
        for status, reason in reasons.items()
    }


# A staff decision on a held payment, answered alike whoever decides (finance or compliance).
PAYMENT_DECISION_ERRORS = error_responses(
    {
        404: "no such payment of that direction",
        409: "nothing to decide, or refused by the workflow (e.g. the same officer twice)",
        503: "workflow engine down or silent",
    }
)
