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
