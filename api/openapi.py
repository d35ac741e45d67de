"""The OpenAPI document, made to tell the truth in one place.

FastAPI documents what a route declares; the answers every route can give because of what it
depends on are added here, from the route itself, so no route can forget them:

- every error leaves as `application/problem+json` (api/problems.py): each 4xx/5xx answer of the
  document gets the `Problem` schema, FastAPI's own 422 schema is replaced;
- a route behind a `Policy` answers 401 (no valid token: missing, forged, expired, revoked, or its
  principal disabled) and 403 (the policy does not admit the caller, or a staff user's IP
  allowlist refuses the address); console routes give both as an HTML page to a browser;
- a route with parameters or a body answers 422 with the reasons, one with a path parameter
  404 when nothing has that id; one with a body answers 400 when the body cannot be read at
  all (not UTF-8, a broken multipart stream);
- a route on the database answers 503 while the database is unreachable;
- 401 carries `WWW-Authenticate`, 429 carries `Retry-After`;
- a route returning a page or a redirect (the console) answers HTML, or 303 with `Location`;
  a console page (GET) asked for by a browser with no session is a 303 to the log-in page.

The schemathesis run in tests/e2e/test_fuzz.py holds the document to this, for every role.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from api.deps import get_session
from api.policy import ConsolePolicy, Policy, PublicPolicy
from api.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details: what went wrong and a reason a person can act on.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "description": "On 422: each refused field with its reason.",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
    # Some problems carry more (e.g. `retry_after`, the open hits of a refused approval).
    "additionalProperties": True,
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
HTML_PAGE = {"text/html": {"schema": {"type": "string"}}}

BAD_BODY = "the body cannot be read (not UTF-8, or a broken multipart stream)"
UNAUTHENTICATED = (
    "no valid bearer access token: missing, malformed, expired, revoked, or its principal "
    "is disabled"
)
INVALID = "invalid input: the reason for each refused field is in `errors`"
NOT_FOUND = "nothing of that id (or not one the caller may see)"
DATABASE_DOWN = "the database is not reachable; nothing was applied"
WWW_AUTHENTICATE = {
    "description": "`Bearer`: the scheme to authenticate with",
    "schema": {"type": "string"},
}
RETRY_AFTER = {
    "description": "seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 0},
}
TO_LOGIN = {
    "description": "See Other: no session (a browser): the log-in page, in `Location`, with "
    "`next` the page asked for",
    "headers": {"Location": {"schema": {"type": "string"}}},
}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` with the completed document (built once, then cached)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate(), app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Add the answers each route gives because of its dependencies, all errors as problems."""
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        item = document.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            operation = item.get(method.lower())
            if operation is not None:
                _complete_operation(operation, route, method)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    # FastAPI's own 422 body is never sent: every 422 is a problem (api/problems.py).
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return document


def _complete_operation(operation: dict[str, Any], route: APIRoute, method: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    _document_pages(responses, route)
    policy = policy_of(route.dependant)
    answers: dict[int, str] = {}
    if isinstance(policy, Policy):
        answers[401] = UNAUTHENTICATED
        answers[403] = _refusal(policy)
    if operation.get("requestBody"):
        answers[400] = BAD_BODY
    if operation.get("parameters") or operation.get("requestBody"):
        answers[422] = INVALID
    if any(parameter.get("in") == "path" for parameter in operation.get("parameters", ())):
        answers[404] = NOT_FOUND
    if uses(route.dependant, get_session):
        answers[503] = DATABASE_DOWN
    for code, description in answers.items():
        existing = responses.get(str(code))
        if existing is None or existing.get("description") in ("Validation Error", None):
            responses[str(code)] = {"description": description}
    html_refusals = isinstance(policy, ConsolePolicy)
    if html_refusals and method == "GET":
        # A browser (Accept: text/html) asking for a page with no session goes to the log-in.
        responses.setdefault("303", TO_LOGIN)
    for status, response in responses.items():
        if status[:1] not in ("4", "5"):
            continue
        # A route that declares another kind of answer (a console log-in's page) keeps it.
        declared = {
            media: body
            for media, body in response.get("content", {}).items()
            if media not in ("application/json", PROBLEM_JSON)
        }
        content = declared or {PROBLEM_JSON: {"schema": PROBLEM_REF}}
        if html_refusals and status in ("401", "403"):
            content |= HTML_PAGE
        response["content"] = content
        if status == "401":
            response.setdefault("headers", {})["WWW-Authenticate"] = WWW_AUTHENTICATE
        if status == "429":
            response.setdefault("headers", {})["Retry-After"] = RETRY_AFTER


def _document_pages(responses: dict[str, Any], route: APIRoute) -> None:
    """A route of no response model that returns a page or a redirect (the console) says so
    in its return annotation: its success answer is HTML, or a 303 to the page to go on to."""
    if route.response_model is not None:
        return
    returns = set(_response_classes(route.endpoint))
    success = str(route.status_code or 200)
    if any(issubclass(cls, RedirectResponse) for cls in returns):
        responses["303"] = {
            "description": "See Other: the page to go on to is in `Location`",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }
        if not any(issubclass(cls, HTMLResponse) for cls in returns):
            responses.pop(success, None)
    if any(issubclass(cls, HTMLResponse) for cls in returns) and success in responses:
        responses[success]["content"] = HTML_PAGE


def _response_classes(endpoint: Callable[..., Any]) -> Iterator[type]:
    try:
        annotation = inspect.signature(endpoint, eval_str=True).return_annotation
    except (NameError, TypeError):
        return
    for candidate in get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, Response):
            yield candidate


def _refusal(policy: Policy) -> str:
    who = [f"staff with role {', '.join(sorted(policy.staff_roles))}"] if policy.staff_roles else []
    who += ["clients"] if policy.clients else []
    who += ["introducing brokers"] if policy.ibs else []
    allowlist = " (from an address on the staff user's IP allowlist)" if policy.staff_roles else ""
    return f"policy `{policy.name}`: only {' and '.join(who)}{allowlist} may call this"


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def policy_of(dependant: Dependant) -> Policy | PublicPolicy | None:
    """The route's `Policy` (every route declares exactly one; tests/api walks them)."""
    for dependency in _dependencies(dependant):
        if isinstance(dependency.call, Policy | PublicPolicy):
            return dependency.call
    return None


def uses(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(dependency.call is call for dependency in _dependencies(dependant))
