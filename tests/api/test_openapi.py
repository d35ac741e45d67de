"""The OpenAPI document's shape, checked without a server (tests/e2e/test_fuzz.py holds the
running API to it with schemathesis, for every role)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.app import create_app
from api.openapi import policy_of
from api.policy import Policy
from api.problems import PROBLEM_JSON
from domain.roles import StaffRole
from tests.conftest import make_settings
from tests.support.people import People

PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(make_settings("postgresql://openapi@127.0.0.1:1/nowhere"))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_is_a_documented_problem(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                content = response.get("content", {})
                # A problem, or a page a console route declares (its log-in refused).
                assert "application/json" not in content, (method, path, status)
                assert content.get(PROBLEM_JSON, {"schema": PROBLEM}) == {"schema": PROBLEM}
                assert PROBLEM_JSON in content or "text/html" in content, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_routes_behind_a_policy_document_401_and_403(
    app: FastAPI, document: dict[str, Any]
) -> None:
    guarded = [
        (method.lower(), route.path_format)
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        if isinstance(policy_of(route.dependant), Policy)
        for method in route.methods
    ]
    assert len(guarded) > 50
    for method, path in guarded:
        responses = document["paths"][path][method]["responses"]
        assert {"401", "403"} <= responses.keys(), (method, path)
        assert "WWW-Authenticate" in responses["401"]["headers"]


def test_limits_are_the_servers(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    password = schemas["StaffCreate"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (12, 128)
    assert "pattern" in password
    assert "enum" in schemas["FxRateCreate"]["properties"]["base"]


def patterns_in(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from patterns_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from patterns_in(value)


def test_no_pattern_uses_a_class_the_regex_dialects_read_differently(
    document: dict[str, Any],
) -> None:
    """`\\s`, `\\d`, `\\w`, `\\b` mean other characters to a client's JSON Schema validator
    (ECMA-262) than to the server's regex engine (Unicode): U+0085 is a space to one only, `\\d`
    is ASCII to one only. `[\\s\\S]` (any character) means the same to both."""
    patterns = list(patterns_in(document))
    assert len(patterns) > 20
    ambiguous = re.compile(r"(?<!\\)\\[sSdDwWbB]")
    assert [p for p in patterns if ambiguous.search(p.replace("[\\s\\S]", ""))] == []


def unbounded_integers(document: dict[str, Any], node: object, at: str) -> Iterator[str]:
    """Where `node` (a schema a client sends) admits an integer of any size."""
    while isinstance(node, dict) and "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer" and not {"maximum", "exclusiveMaximum"} & node.keys():
        yield at
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key, []):
            yield from unbounded_integers(document, branch, at)
    for name, field in node.get("properties", {}).items():
        yield from unbounded_integers(document, field, f"{at}.{name}")
    if "items" in node:
        yield from unbounded_integers(document, node["items"], f"{at}[]")


# A plan's terms are kept as a JSON document and a preview is computed in memory: their
# integers (MT5's deal fields among them) are never put in a bigint column.
NO_BIGINT_COLUMN = {
    "POST /v1/ibs/plans",
    "POST /v1/ibs/plans/{plan_id}/versions",
    "POST /v1/ibs/plan-preview",
}


def test_every_integer_a_client_sends_fits_the_column_it_goes_to(
    document: dict[str, Any],
) -> None:
    """An id, a login or a time beyond a bigint was a 422 the document did not foresee (a
    fuzzing run sent `before_id` 7.6e23): each says its maximum (below 2**63, exact in a JSON
    number)."""
    unbounded = [
        where
        for method, path, operation in operations(document)
        if f"{method} {path}" not in NO_BIGINT_COLUMN
        for where in [
            *(
                found
                for p in operation.get("parameters", [])
                for found in unbounded_integers(
                    document, p["schema"], f"{method} {path} {p['in']}.{p['name']}"
                )
            ),
            *(
                found
                for content in operation.get("requestBody", {}).get("content", {}).values()
                for found in unbounded_integers(
                    document, content["schema"], f"{method} {path} body"
                )
            ),
        ]
    ]
    assert unbounded == []


async def test_405_names_every_method_of_the_path(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.request("TRACE", "/v1/staff/users")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert {"GET", "POST"} <= set(response.headers["allow"].split(", "))


async def test_a_broken_multipart_list_upload_is_refused_not_a_500(
    api: httpx.AsyncClient, people: People
) -> None:
    officer = await people.staff(StaffRole.COMPLIANCE)
    boundary = "b0undary"
    response = await api.post(
        "/v1/compliance/screening/lists",
        headers={**officer.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        # A part header with a bare carriage return: python-multipart's own ValueError.
        content=f"--{boundary}\r\nContent-Disposition: form-data; na\rme=x\r\n\r\n1\r\n"
        f"--{boundary}--\r\n".encode(),
    )
    assert response.status_code == 422, response.text
    assert "not valid multipart/form-data" in response.json()["detail"]
