"""Schema-driven fuzzing of the whole OpenAPI on the running stack: no input may cause a 5xx.

Each operation is tried anonymously and as an admin (so the checks behind the policy are reached
too), with a bounded number of generated examples; `BROKERFLOW_FUZZ_EXAMPLES` raises the bound.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pyotp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from ops.seed import SeedReport, seed_staff
from tests.conftest import make_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("BROKERFLOW_FUZZ_EXAMPLES", "15"))


def admin_headers(stack: Stack) -> dict[str, str]:
    app_settings = make_settings(stack.owner_url)

    async def create_staff() -> SeedReport:
        engine = create_engine(app_database_url(stack.owner_url, app_settings), pool_size=1)
        report = SeedReport()
        async with create_sessionmaker(engine).begin() as session:
            await seed_staff(session, SecretBox(app_settings.secrets_key), report)
        await engine.dispose()
        return report

    report = asyncio.run(create_staff())
    [admin] = [c for c in report.created if c.email.startswith("admin@")]
    assert admin.totp_secret
    response = httpx.post(
        f"{stack.api_url}/v1/auth/staff/login",
        json={
            "email": admin.email,
            "password": admin.password,
            "totp_code": pyotp.TOTP(admin.totp_secret).now(),
        },
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def fuzz_operation(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def call(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    call()


def test_no_input_causes_a_server_error(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    schema.config.update(base_url=stack.api_url)
    admin = admin_headers(stack)
    # .ok() raises with the reason if an operation's schema cannot be used.
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    for operation in operations:
        for headers in ({}, admin):
            fuzz_operation(operation, headers)
