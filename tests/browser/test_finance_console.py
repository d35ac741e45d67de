"""The finance console in a real headless Chromium: log in with password and TOTP code, see a
withdrawal waiting for approval with its flags, decide it with the form, read the ledger."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import sync_playwright

from api.security import hash_password
from db.models import Client, Payment, StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.money_flows import MovementKind, reference_for
from domain.roles import StaffRole
from tests.browser.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import make_settings
from tests.support.stack import Stack

pytestmark = pytest.mark.browser
PASSWORD = "Officer-Pass-42"


def seed(stack: Stack) -> tuple[str, str, Payment]:
    """A finance officer who has not logged in yet, and a flagged withdrawal to look at."""
    settings = make_settings(stack.owner_url)
    email = f"console-{uuid.uuid4().hex[:8]}@example.com"
    secret = pyotp.random_base32()
    client_id, payment_id = uuid.uuid4(), uuid.uuid4()
    payment = Payment(
        id=payment_id,
        client_id=client_id,
        direction="withdrawal",
        provider="bankco",
        reference=reference_for(MovementKind.PAYMENT, payment_id),
        status="pending_approval",
        currency="USD",
        amount_minor=250_000,
        requested_minor=250_000,
        idempotency_key=str(payment_id),
        request_hash="0" * 64,
        # No such workflow: deciding it shows the engine's answer on the page.
        workflow_id=f"withdrawal-{payment_id}",
        compliance_status="pending",
        risk_flags=["large_amount"],
    )

    async def insert() -> None:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        async with create_sessionmaker(engine).begin() as session:
            session.add(
                StaffUser(
                    id=uuid.uuid4(),
                    email=email,
                    full_name="Console Officer",
                    password_hash=await hash_password(PASSWORD),
                    totp_secret_enc=SecretBox(settings.secrets_key).seal(secret),
                    roles=[StaffRole.FINANCE.value],
                    ip_allowlist=["127.0.0.1/32"],
                    active=True,
                )
            )
            session.add(
                Client(
                    id=client_id,
                    email=f"console-client-{uuid.uuid4().hex[:8]}@example.com",
                    password_hash=await hash_password(PASSWORD),
                    full_name="Console Client",
                    country="DE",
                    date_of_birth=date(1985, 3, 1),
                    status="active",
                )
            )
            await session.flush()
            session.add(payment)
        await engine.dispose()

    asyncio.run(insert())
    return email, secret, payment


def test_an_officer_logs_in_and_decides(stack: Stack, artifacts_dir: Path) -> None:
    email, secret, payment = seed(stack)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{stack.api_url}/console")
            page.click("text=Payments and approvals")
            page.wait_for_url("**/console/finance")
            page.click("a[href='/console/login']")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=totp_code]", pyotp.TOTP(secret).now())
            page.click("button[type=submit]")
            page.wait_for_url("**/console/finance")

            row = page.locator(f"#approvals tr[data-payment='{payment.id}']")
            assert "large_amount" in row.inner_text()
            assert "2500.00 USD" in row.inner_text()
            assert payment.reference in page.locator("#payments").inner_text()
            page.screenshot(path=str(artifacts_dir / "console-finance.png"), full_page=True)

            row.locator("input[name=reason]").fill("documents checked")
            row.locator("button[value=approve]").click()
            page.wait_for_url("**/console/finance?error=*")
            assert "nothing to decide" in page.locator(".error").inner_text()

            page.click("text=Ledger")
            page.wait_for_url("**/console/ledger")
            assert page.title() == "BrokerFlow console: ledger"
        finally:
            browser.close()
